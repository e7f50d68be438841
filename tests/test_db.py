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
        actor = Actor(added["id"], "test")
        tables = TableService(db, settings)
        _, rows = await tables.list_tables(actor.restaurant_id)
        assert (await tables.seat_party(actor, rows[0]["id"])).ok
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
    actor = Actor(restaurant["id"], "test")
    tables = TableService(db, settings)
    _, rows = await tables.list_tables(actor.restaurant_id)
    opened = await tables.seat_party(actor, rows[0]["id"], 2)
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
    assert (await tables.seat_party(bistro, rows[0]["id"])).ok
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
    assert (await tables.seat_party(bistro, rows[0]["id"])).ok


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
