from __future__ import annotations

import sqlite3

import pytest

from app.db import Database, configure, latest_version, migrate, migrations, statements, utc_now
from app.services.core import Actor
from app.services.restaurants import RestaurantService
from app.services.tables import TableService


def pragma(conn: sqlite3.Connection, name: str):
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


async def test_connections_are_durable_and_checked(db: Database):
    def read_pragmas(conn):
        return {name: pragma(conn, name) for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}

    expected = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 5000}
    assert await db.write(read_pragmas) == expected  # synchronous 2 is FULL
    assert await db.read(read_pragmas) == expected


async def test_a_new_database_is_at_the_latest_version(db: Database):
    assert await db.read(lambda conn: pragma(conn, "user_version")) == latest_version() >= 1


def test_migrations_are_numbered_from_one_without_gaps():
    assert [number for number, _ in migrations()] == list(range(1, latest_version() + 1))


@pytest.mark.parametrize("start", range(latest_version()))
async def test_upgrade_from_every_earlier_version(tmp_path, start, settings):
    path = str(tmp_path / f"at-{start}.db")
    conn = configure(sqlite3.connect(path, isolation_level=None))
    assert migrate(conn, target=start) == start
    if start >= 1:
        conn.execute("INSERT INTO restaurant (slug, name, created_at) VALUES ('old', 'Old Place', ?)", (utc_now(),))
    conn.close()

    db = await Database.open(path)
    try:
        assert await db.read(lambda c: pragma(c, "user_version")) == latest_version()
        assert await db.read(lambda c: c.execute("PRAGMA integrity_check").fetchone()[0]) == "ok"
        assert await db.read(lambda c: c.execute("PRAGMA foreign_key_check").fetchall()) == []
        restaurants = RestaurantService(db, settings)
        if start >= 1:
            assert [r["slug"] for r in await restaurants.all()] == ["old"]
        # the upgraded database works for every operation
        added = await restaurants.add("new", "New Place", tables=2)
        actor = Actor(added["id"], "test", "admin")
        tables = TableService(db, settings)
        _, rows = await tables.list_tables(actor.restaurant_id)
        assert (await tables.seat_table(actor, rows[0]["id"])).ok
        assert (await tables.move_table(actor, rows[0]["id"], rows[1]["id"])).ok
    finally:
        await db.close()


async def test_migrating_twice_changes_nothing(db_path):
    first = await Database.open(db_path)
    await first.close()
    second = await Database.open(db_path)
    try:
        assert await second.read(lambda c: pragma(c, "user_version")) == latest_version()
    finally:
        await second.close()


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path, monkeypatch):
    broken = tmp_path / "migrations"
    broken.mkdir()
    (broken / "0001_ok.sql").write_text("CREATE TABLE one (x);")
    (broken / "0002_broken.sql").write_text("CREATE TABLE two (x);\nINSERT INTO nowhere VALUES (1);")
    monkeypatch.setattr("app.db.MIGRATIONS_DIR", broken)
    conn = sqlite3.connect(str(tmp_path / "m.db"), isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        migrate(conn)
    assert pragma(conn, "user_version") == 1
    names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert names == {"one"}


def fill_at_migration_3(conn: sqlite3.Connection) -> None:
    """A restaurant as version 3 kept it: tables, a party seated, one gone, a guest's call, the audit trail."""
    now = utc_now()
    conn.execute("INSERT INTO restaurant (id, slug, name, version, created_at) VALUES (7, 'old', 'Old Place', 4, ?)",
                 (now,))
    conn.executemany(
        "INSERT INTO dining_table (id, restaurant_id, label, seats, area, sort_order, enabled, qr_token, seated_at)"
        " VALUES (?, 7, ?, ?, ?, ?, ?, ?, ?)",
        [(11, "1", 4, "Main room", 1, 1, "token-of-table-one-xx", now),
         (12, "2", 2, "Main room", 2, 1, "token-of-table-two-xx", now),
         (13, "Bar", 6, "Terrace", 3, 0, "token-of-the-bar-xxxx", None)])
    conn.execute("INSERT INTO table_session (id, table_id, state, guest_count, opened_at, last_activity_at)"
                 " VALUES (21, 11, 'active', 3, ?, ?)", (now, now))
    conn.execute("INSERT INTO table_session (id, table_id, state, guest_count, opened_at, last_activity_at, closed_at)"
                 " VALUES (22, 12, 'closed', 2, ?, ?, ?)", (now, now, now))
    conn.execute("INSERT INTO waiter_request (id, table_id, kind, created_at) VALUES (31, 11, 'ask_for_bill', ?)",
                 (now,))
    conn.executemany(
        "INSERT INTO audit_event (restaurant_id, version, action, table_ids, actor, at, before, after)"
        " VALUES (7, ?, ?, ?, 'old admin', ?, '[]', '[]')",
        [(1, "open_session", "[11]", now), (2, "open_session", "[12]", now), (3, "close_table", "[12]", now),
         (4, "ask_for_bill", "[11]", now)])


KEPT = {  # table: the columns migration 3 had
    "restaurant": "id, slug, name, version, created_at",
    "dining_table": "id, restaurant_id, label, seats, area, sort_order, enabled, qr_token, seated_at",
    "table_session": "id, table_id, state, guest_count, opened_at, last_activity_at, closed_at",
    "waiter_request": "id, table_id, kind, created_at, resolved_at, resolved_by",
    "audit_event": "id, restaurant_id, version, action, table_ids, actor, at, before, after",
}


def everything(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    return {name: [tuple(row) for row in conn.execute(f"SELECT {columns} FROM {name} ORDER BY id")]
            for name, columns in KEPT.items()}


async def test_upgrading_from_migration_3_keeps_every_row(tmp_path, settings):
    path = str(tmp_path / "at-3.db")
    conn = configure(sqlite3.connect(path, isolation_level=None))
    try:
        assert migrate(conn, target=3) == 3
        fill_at_migration_3(conn)
        kept = everything(conn)
        assert migrate(conn) == latest_version() >= 4
        assert everything(conn) == kept
        assert pragma(conn, "foreign_keys") == 1  # off while migrating, on again afterwards
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert pragma(conn, "integrity_check") == "ok"
        # the new columns start empty: no table removed, no note, no table joined to a party
        assert conn.execute("SELECT count(*) FROM dining_table WHERE removed_at IS NOT NULL").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM table_session WHERE note IS NOT NULL OR joined_to IS NOT NULL"
                            ).fetchone()[0] == 0
    finally:
        conn.close()

    db = await Database.open(path)
    try:
        version, rows = await TableService(db, settings).list_tables(7)
    finally:
        await db.close()
    assert version == 4
    assert [(r["id"], r["number"], r["status"]) for r in rows] == [
        (11, "1", "occupied"), (12, "2", "free"), (13, "Bar", "disabled")]
    assert rows[0]["session"]["id"] == 21 and rows[0]["session"]["guest_count"] == 3
    assert rows[0]["session"]["tables"] == [{"id": 11, "number": "1"}]
    assert [(r["id"], r["kind"]) for r in rows[0]["requests"]] == [(31, "ask_for_bill")]


def test_after_the_upgrade_a_removed_tables_label_can_be_reused(tmp_path):
    conn = configure(sqlite3.connect(str(tmp_path / "at-3.db"), isolation_level=None))
    try:
        migrate(conn, target=3)
        fill_at_migration_3(conn)
        migrate(conn)
        add = "INSERT INTO dining_table (restaurant_id, label, qr_token) VALUES (7, ?, ?)"
        conn.execute("UPDATE dining_table SET removed_at = ? WHERE id = 12", (utc_now(),))
        conn.execute(add, ("2", "token-of-the-new-two-x"))
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed: dining_table.restaurant_id, "
                                                         "dining_table.label"):
            conn.execute(add, ("1", "token-of-another-one-x"))
        # the removed table keeps its history
        assert [tuple(row) for row in conn.execute("SELECT id FROM table_session WHERE table_id = 12")] == [(22,)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def test_a_migration_that_breaks_a_reference_is_refused(tmp_path, monkeypatch):
    scripts = tmp_path / "migrations"
    scripts.mkdir()
    (scripts / "0001_parent.sql").write_text(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n"
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));\n"
        "INSERT INTO parent VALUES (1);\nINSERT INTO child VALUES (1, 1);")
    (scripts / "0002_orphan.sql").write_text("DELETE FROM parent;")
    monkeypatch.setattr("app.db.MIGRATIONS_DIR", scripts)
    conn = sqlite3.connect(str(tmp_path / "m.db"), isolation_level=None)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="migration 2 leaves a broken reference in child"):
            migrate(conn)
        assert pragma(conn, "user_version") == 1
        assert conn.execute("SELECT count(*) FROM parent").fetchone()[0] == 1
        assert pragma(conn, "foreign_keys") == 1
    finally:
        conn.close()


def test_statements_keep_triggers_whole():
    script = """
    CREATE TABLE a (x); -- a comment; with a semicolon
    CREATE TRIGGER t BEFORE DELETE ON a
    BEGIN
        SELECT RAISE(ABORT, 'no; never');
    END;
    """
    parts = list(statements(script))
    assert len(parts) == 2
    assert parts[1].startswith("CREATE TRIGGER") and parts[1].endswith("END;")


async def test_data_survives_closing_and_reopening(db_path, settings):
    db = await Database.open(db_path)
    restaurant = await RestaurantService(db, settings).add("kept", "Kept", tables=3)
    actor = Actor(restaurant["id"], "test", "admin")
    tables = TableService(db, settings)
    _, rows = await tables.list_tables(actor.restaurant_id)
    opened = await tables.seat_table(actor, rows[0]["id"], 2)
    await tables.disable_table(actor, rows[1]["id"])
    await db.close()

    reopened = await Database.open(db_path)
    try:
        version, rows_after = await TableService(reopened, settings).list_tables(actor.restaurant_id)
    finally:
        await reopened.close()
    assert version == opened.version + 1
    assert rows_after[0] == opened.tables[0]
    assert [row["status"] for row in rows_after] == ["occupied", "disabled", "free"]


async def test_the_database_refuses_a_second_active_session(tables, bistro, db_path):
    _, rows = await tables.list_tables(bistro.restaurant_id)
    assert (await tables.seat_table(bistro, rows[0]["id"])).ok
    conn = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute(
                "INSERT INTO table_session (table_id, state, opened_at, last_activity_at) VALUES (?, 'active', ?, ?)",
                (rows[0]["id"], utc_now(), utc_now()),
            )
    finally:
        conn.close()


async def test_a_failed_write_rolls_back_everything_it_did(db: Database, tables, bistro):
    def half_done(conn):
        conn.execute("UPDATE restaurant SET name = 'Half done'")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await db.write(half_done)
    names = await db.read(lambda conn: [n for (n,) in conn.execute("SELECT name FROM restaurant")])
    assert "Half done" not in names
    # the writer connection is still usable afterwards
    _, rows = await tables.list_tables(bistro.restaurant_id)
    assert (await tables.seat_table(bistro, rows[0]["id"])).ok


async def test_aiosqlite_still_has_the_private_names_db_py_relies_on(db_path):
    """app/db.py `_on_thread` uses aiosqlite's Connection._execute and Connection._conn (see setup.cfg's pin)."""
    import inspect
    import threading

    import aiosqlite

    from app.db import _on_thread

    version = aiosqlite.__version__
    assert inspect.iscoroutinefunction(getattr(aiosqlite.Connection, "_execute", None)), (
        f"aiosqlite {version} has no coroutine Connection._execute: app/db.py's _on_thread needs another way "
        "to run a whole operation on the connection's thread")
    assert isinstance(getattr(aiosqlite.Connection, "_conn", None), property), (
        f"aiosqlite {version} has no Connection._conn property: app/db.py's _on_thread needs the sqlite3 connection")
    connection = await aiosqlite.connect(db_path, isolation_level=None)
    try:
        ran_on = await _on_thread(connection, lambda conn, n: (threading.get_ident(), conn.execute("SELECT ?", (n,))
                                                              .fetchone()[0], type(conn)), 7)
        assert ran_on[1:] == (7, sqlite3.Connection)
        assert ran_on[0] != threading.get_ident(), "the operation must run on the connection's own thread"
        assert await _on_thread(connection, lambda conn: threading.get_ident()) == ran_on[0]  # and always that one
    finally:
        await connection.close()
