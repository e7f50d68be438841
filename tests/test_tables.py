from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta

import pytest

from app.db import Database, format_time, parse_time, utc_now
from app.services.core import Actor, Result
from app.services.tables import TableService


async def ids_by_label(tables: TableService, actor: Actor) -> dict[str, int]:
    _, rows = await tables.list_tables(actor.restaurant_id)
    return {row["number"]: row["id"] for row in rows}


async def table(tables: TableService, actor: Actor, table_id: int) -> dict:
    _, rows = await tables.list_tables(actor.restaurant_id)
    (found,) = [row for row in rows if row["id"] == table_id]
    return found


async def version(tables: TableService, actor: Actor) -> int:
    return (await tables.list_tables(actor.restaurant_id))[0]


def audit_events(db_path: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM audit_event ORDER BY id").fetchall()
    finally:
        conn.close()


def assert_error(result: Result, code: str) -> None:
    assert not result.ok
    assert result.code == code
    assert result.detail and result.detail[0].isupper()
    assert result.updates == () and result.version is None


@pytest.fixture
async def ids(tables: TableService, bistro: Actor) -> dict[str, int]:
    return await ids_by_label(tables, bistro)


async def seat(tables: TableService, actor: Actor, table_id: int, guests: int = 2) -> Result:
    result = await tables.seat_party(actor, table_id, guests)
    assert result.ok, result
    return result


# -- the table dict -------------------------------------------------------------------------------


async def test_free_table_dict(tables, bistro, ids):
    assert await table(tables, bistro, ids["1"]) == {
        "id": ids["1"],
        "number": "1",
        "seats": 4,
        "area": "Main room",
        "status": "free",
        "session": None,
        "restorable": False,
        "restorable_until": None,
        "requests": [],
    }


async def test_seating_a_party_makes_the_table_occupied(tables, bistro, ids):
    result = await seat(tables, bistro, ids["2"], guests=3)
    (changed,) = result.tables
    assert changed["status"] == "occupied"
    session = changed["session"]
    assert set(session) == {"id", "opened_at", "last_active", "guest_count"}
    assert session["guest_count"] == 3
    assert session["opened_at"] == session["last_active"]
    assert session["opened_at"].endswith("Z")
    assert abs(parse_time(session["opened_at"]) - parse_time(utc_now())) < timedelta(seconds=5)
    assert await table(tables, bistro, ids["2"]) == changed


# -- versions and audit ---------------------------------------------------------------------------


async def test_every_change_adds_one_per_table_touched(tables, bistro, ids):
    start = await version(tables, bistro)
    opened = await seat(tables, bistro, ids["1"])
    assert opened.version == start + 1
    assert [update.version for update in opened.updates] == [start + 1]

    moved = await tables.move_table(bistro, ids["1"], ids["2"])
    assert moved.ok
    assert moved.version == start + 3
    assert [(u.version, u.table["id"]) for u in moved.updates] == [(start + 2, ids["1"]), (start + 3, ids["2"])]
    assert await version(tables, bistro) == start + 3


async def test_a_refused_operation_changes_nothing(tables, bistro, ids, db_path):
    start = await version(tables, bistro)
    events = len(audit_events(db_path))
    assert_error(await tables.close_table(bistro, ids["1"]), "no_active_session")
    assert await version(tables, bistro) == start
    assert len(audit_events(db_path)) == events


async def test_every_change_writes_an_audit_event(tables, bistro, ids, db_path):
    await seat(tables, bistro, ids["1"])
    await tables.move_table(bistro, ids["1"], ids["2"])
    await tables.close_table(bistro, ids["2"])
    await tables.restore_table(bistro, ids["2"])
    await tables.close_table(bistro, ids["2"])
    await tables.disable_table(bistro, ids["3"])
    await tables.enable_table(bistro, ids["3"])
    events = [e for e in audit_events(db_path) if e["restaurant_id"] == bistro.restaurant_id][1:]
    assert [e["action"] for e in events] == [
        "open_session", "move_table", "close_table",
        "restore_table", "close_table", "disable_table", "enable_table",
    ]
    assert all(e["actor"] == "test admin" for e in events)
    move = events[1]
    assert json.loads(move["table_ids"]) == [ids["1"], ids["2"]]
    before, after = json.loads(move["before"]), json.loads(move["after"])
    assert [t["status"] for t in before] == ["occupied", "free"]
    assert [t["status"] for t in after] == ["free", "occupied"]
    assert [e["version"] for e in events] == sorted({e["version"] for e in events})


async def test_audit_events_cannot_be_changed_or_deleted(tables, bistro, ids, db_path):
    await seat(tables, bistro, ids["1"])
    conn = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit_event SET actor = 'someone else'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit_event")
    finally:
        conn.close()


# -- close ----------------------------------------------------------------------------------------


async def test_close_ends_the_session(tables, bistro, ids, db_path):
    session_id = (await seat(tables, bistro, ids["1"])).tables[0]["session"]["id"]
    result = await tables.close_table(bistro, ids["1"])
    assert result.ok
    (closed,) = result.tables
    assert closed["status"] == "free" and closed["session"] is None and closed["restorable"] is True
    conn = sqlite3.connect(db_path)
    state, closed_at = conn.execute("SELECT state, closed_at FROM table_session WHERE id = ?", (session_id,)).fetchone()
    conn.close()
    assert state == "closed" and closed_at.endswith("Z")
    assert parse_time(closed["restorable_until"]) - parse_time(closed_at) == timedelta(minutes=30)


async def test_close_errors(tables, bistro, ids):
    assert_error(await tables.close_table(bistro, 9999), "table_not_found")
    assert_error(await tables.close_table(bistro, ids["1"]), "no_active_session")


# -- disable and enable ---------------------------------------------------------------------------


async def test_disable_then_enable(tables, bistro, ids):
    disabled = await tables.disable_table(bistro, ids["3"])
    assert disabled.ok and disabled.tables[0]["status"] == "disabled"
    enabled = await tables.enable_table(bistro, ids["3"])
    assert enabled.ok and enabled.tables[0]["status"] == "free"


async def test_disable_errors(tables, bistro, ids):
    assert_error(await tables.disable_table(bistro, 9999), "table_not_found")
    await seat(tables, bistro, ids["1"])
    assert_error(await tables.disable_table(bistro, ids["1"]), "table_occupied")
    await tables.disable_table(bistro, ids["2"])
    assert_error(await tables.disable_table(bistro, ids["2"]), "already_disabled")


async def test_enable_errors(tables, bistro, ids):
    assert_error(await tables.enable_table(bistro, 9999), "table_not_found")
    assert_error(await tables.enable_table(bistro, ids["1"]), "not_disabled")


# -- restore --------------------------------------------------------------------------------------


async def test_restore_reopens_the_closed_session(tables, bistro, ids):
    opened = (await seat(tables, bistro, ids["1"], guests=4)).tables[0]["session"]
    await tables.close_table(bistro, ids["1"])
    result = await tables.restore_table(bistro, ids["1"])
    assert result.ok
    (restored,) = result.tables
    assert restored["status"] == "occupied" and restored["restorable"] is False
    assert restored["session"]["id"] == opened["id"]
    assert restored["session"]["opened_at"] == opened["opened_at"]
    assert restored["session"]["guest_count"] == 4
    assert restored["session"]["last_active"] >= opened["last_active"]


async def test_restore_errors(tables, bistro, ids):
    assert_error(await tables.restore_table(bistro, 9999), "table_not_found")
    assert_error(await tables.restore_table(bistro, ids["1"]), "no_session_to_restore")
    await seat(tables, bistro, ids["1"])
    assert_error(await tables.restore_table(bistro, ids["1"]), "table_occupied")
    await tables.close_table(bistro, ids["1"])
    await tables.disable_table(bistro, ids["1"])
    assert_error(await tables.restore_table(bistro, ids["1"]), "table_disabled")
    assert (await table(tables, bistro, ids["1"]))["restorable"] is False


def backdate_closes(db_path: str, minutes: int) -> None:
    conn = sqlite3.connect(db_path)
    closed_at = format_time(parse_time(utc_now()) - timedelta(minutes=minutes))
    with conn:
        conn.execute("UPDATE table_session SET closed_at = ?, opened_at = ? WHERE state = 'closed'",
                     (closed_at, format_time(parse_time(closed_at) - timedelta(hours=1))))
        conn.execute("UPDATE dining_table SET seated_at = NULL")
    conn.close()


async def test_restore_only_within_the_window(tables, bistro, ids, db_path):
    await seat(tables, bistro, ids["1"])
    await seat(tables, bistro, ids["2"])
    await tables.close_table(bistro, ids["1"])
    await tables.close_table(bistro, ids["2"])
    backdate_closes(db_path, minutes=29)
    one_left = await table(tables, bistro, ids["1"])
    assert one_left["restorable"] is True
    assert timedelta(0) < parse_time(one_left["restorable_until"]) - parse_time(utc_now()) <= timedelta(minutes=1)
    assert (await tables.restore_table(bistro, ids["1"])).ok

    backdate_closes(db_path, minutes=31)
    too_late = await table(tables, bistro, ids["2"])
    assert too_late["restorable"] is False and too_late["restorable_until"] is None
    assert_error(await tables.restore_table(bistro, ids["2"]), "no_session_to_restore")


async def test_a_restaurant_can_set_its_own_restore_window(tables, bistro, ids, db_path):
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE restaurant SET restore_window_minutes = 120 WHERE id = ?", (bistro.restaurant_id,))
    conn.close()
    await seat(tables, bistro, ids["1"])
    await tables.close_table(bistro, ids["1"])
    backdate_closes(db_path, minutes=90)
    until = parse_time((await table(tables, bistro, ids["1"]))["restorable_until"])
    assert timedelta(minutes=29) < until - parse_time(utc_now()) <= timedelta(minutes=30)
    assert (await tables.restore_table(bistro, ids["1"])).ok


async def test_restore_refused_once_a_newer_party_sat_down(tables, bistro, ids):
    await seat(tables, bistro, ids["1"])
    await tables.close_table(bistro, ids["1"])
    await seat(tables, bistro, ids["1"])
    assert_error(await tables.restore_table(bistro, ids["1"]), "table_occupied")
    await tables.close_table(bistro, ids["1"])
    # the newer party is the one that was closed last: that one comes back
    result = await tables.restore_table(bistro, ids["1"])
    assert result.ok


async def test_restore_refused_after_a_party_was_moved_through(tables, bistro, ids):
    await seat(tables, bistro, ids["1"])
    await tables.close_table(bistro, ids["1"])
    await seat(tables, bistro, ids["2"])
    await tables.move_table(bistro, ids["2"], ids["1"])
    await tables.move_table(bistro, ids["1"], ids["3"])
    assert (await table(tables, bistro, ids["1"]))["restorable"] is False
    assert_error(await tables.restore_table(bistro, ids["1"]), "no_session_to_restore")


# -- move -----------------------------------------------------------------------------------------


async def test_move_takes_the_session_along(tables, bistro, ids):
    session = (await seat(tables, bistro, ids["1"], guests=5)).tables[0]["session"]
    result = await tables.move_table(bistro, ids["1"], ids["4"])
    assert result.ok
    source, target = result.tables
    assert source["id"] == ids["1"] and source["status"] == "free" and source["session"] is None
    assert source["restorable"] is False
    assert target["id"] == ids["4"] and target["session"] == session


async def test_move_errors(tables, bistro, cafe, ids):
    cafe_ids = await ids_by_label(tables, cafe)
    assert_error(await tables.move_table(bistro, ids["1"], ids["1"]), "same_table")
    assert_error(await tables.move_table(bistro, 9999, ids["2"]), "source_table_not_found")
    assert_error(await tables.move_table(bistro, ids["1"], 9999), "target_table_not_found")
    assert_error(await tables.move_table(bistro, ids["1"], ids["2"]), "no_session_to_move")
    await seat(tables, bistro, ids["1"])
    assert_error(await tables.move_table(bistro, ids["1"], cafe_ids["1"]), "target_table_not_found")
    await seat(tables, bistro, ids["2"])
    occupied = await tables.move_table(bistro, ids["1"], ids["2"])
    assert_error(occupied, "target_unavailable")
    assert "occupied" in occupied.detail
    await tables.disable_table(bistro, ids["3"])
    disabled = await tables.move_table(bistro, ids["1"], ids["3"])
    assert_error(disabled, "target_unavailable")
    assert "disabled" in disabled.detail


# -- the guest side -------------------------------------------------------------------------------


async def test_seat_party_errors(tables, bistro, ids):
    assert_error(await tables.seat_party(bistro, 9999), "table_not_found")
    await seat(tables, bistro, ids["1"])
    assert_error(await tables.seat_party(bistro, ids["1"]), "table_occupied")
    await tables.disable_table(bistro, ids["2"])
    assert_error(await tables.seat_party(bistro, ids["2"]), "table_disabled")
    assert_error(await tables.seat_party(bistro, ids["3"], guest_count=0), "invalid_guest_count")


# -- scope ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["close_table", "disable_table", "enable_table", "restore_table",
                                       "seat_party"])
async def test_another_restaurants_table_is_not_found(tables, bistro, cafe, operation):
    cafe_ids = await ids_by_label(tables, cafe)
    await tables.seat_party(cafe, cafe_ids["1"])
    before = await tables.list_tables(cafe.restaurant_id)
    result = await getattr(tables, operation)(bistro, cafe_ids["1"])
    assert_error(result, "table_not_found")
    assert result.detail == f"There is no table {cafe_ids['1']}."
    assert await tables.list_tables(cafe.restaurant_id) == before


async def test_moving_another_restaurants_party_is_not_found(tables, bistro, cafe, ids):
    cafe_ids = await ids_by_label(tables, cafe)
    await tables.seat_party(cafe, cafe_ids["1"])
    assert_error(await tables.move_table(bistro, cafe_ids["1"], ids["1"]), "source_table_not_found")


async def test_list_tables_shows_only_the_restaurants_own(tables, bistro, cafe):
    _, bistro_tables = await tables.list_tables(bistro.restaurant_id)
    _, cafe_tables = await tables.list_tables(cafe.restaurant_id)
    assert [t["number"] for t in bistro_tables] == ["1", "2", "3", "4", "5", "6"]
    assert [t["number"] for t in cafe_tables] == ["1", "2", "3"]
    assert not {t["id"] for t in bistro_tables} & {t["id"] for t in cafe_tables}


# -- add_table ------------------------------------------------------------------------------------


async def test_add_table(tables, bistro):
    start = await version(tables, bistro)
    result = await tables.add_table(bistro, "Terrace 3", seats=6, area="Terrace")
    assert result.ok and result.version == start + 1
    (added,) = result.tables
    assert (added["number"], added["seats"], added["area"], added["status"]) == ("Terrace 3", 6, "Terrace", "free")
    _, rows = await tables.list_tables(bistro.restaurant_id)
    assert rows[-1] == added


@pytest.mark.parametrize(("label", "seats", "area", "code"), [
    ("", 4, "Main room", "invalid_label"),
    ("x" * 41, 4, "Main room", "invalid_label"),
    ("9", 0, "Main room", "invalid_seats"),
    ("9", 4, " ", "invalid_area"),
    ("1", 4, "Main room", "label_taken"),
])
async def test_add_table_errors(tables, bistro, label, seats, area, code):
    assert_error(await tables.add_table(bistro, label, seats, area), code)


async def test_each_table_gets_its_own_unguessable_qr_token(tables, bistro, db_path):
    conn = sqlite3.connect(db_path)
    tokens = [token for (token,) in conn.execute("SELECT qr_token FROM dining_table")]
    conn.close()
    assert len(set(tokens)) == len(tokens) == 6
    assert all(len(token) >= 22 for token in tokens)  # 18 random bytes, url-safe base64


# -- concurrency ----------------------------------------------------------------------------------


async def test_twenty_concurrent_moves_to_one_table_have_one_winner(restaurants, tables):
    restaurant = await restaurants.add("busy", "Busy", tables=21)
    actor = Actor(restaurant["id"], "race")
    ids = await ids_by_label(tables, actor)
    sources = [ids[str(n)] for n in range(1, 21)]
    target = ids["21"]
    for source in sources:
        await seat(tables, actor, source)
    start = await version(tables, actor)

    results = await asyncio.gather(*(tables.move_table(actor, source, target) for source in sources))

    winners = [r for r in results if r.ok]
    assert len(winners) == 1
    assert sorted(r.code for r in results if not r.ok) == ["target_unavailable"] * 19
    version_now, rows = await tables.list_tables(actor.restaurant_id)
    assert version_now == start + 2
    by_id = {row["id"]: row for row in rows}
    winner_source = winners[0].tables[0]["id"]
    assert by_id[target]["status"] == "occupied"
    assert by_id[winner_source]["status"] == "free"
    assert sum(row["status"] == "occupied" for row in rows) == 20


async def test_racing_writers_on_separate_connections_leave_one_active_session(db_path, settings, tables, bistro, ids):
    # A second Database is what another process (the CLI, a second worker) would hold.
    other = await Database.open(db_path)
    try:
        second = TableService(other, settings)
        results = await asyncio.gather(*[
            service.seat_party(bistro, ids["1"]) for service in (tables, second) * 10
        ])
    finally:
        await other.close()
    assert sum(r.ok for r in results) == 1
    assert {r.code for r in results if not r.ok} == {"table_occupied"}
    conn = sqlite3.connect(db_path)
    (active,) = conn.execute("SELECT count(*) FROM table_session WHERE state = 'active'").fetchone()
    conn.close()
    assert active == 1


async def test_closes_racing_restores_alternate(tables, bistro, ids, db_path):
    await seat(tables, bistro, ids["1"])
    operations = [tables.close_table, tables.restore_table] * 25
    results = await asyncio.gather(*(operation(bistro, ids["1"]) for operation in operations))
    closes = sum(r.ok for op, r in zip(operations, results) if op == tables.close_table)
    restores = sum(r.ok for op, r in zip(operations, results) if op == tables.restore_table)
    assert closes >= 1
    final = await table(tables, bistro, ids["1"])
    assert final["status"] == ("occupied" if closes == restores else "free")
    assert closes - restores in (0, 1)
    conn = sqlite3.connect(db_path)
    sessions = conn.execute("SELECT count(*), sum(state = 'active') FROM table_session").fetchone()
    conn.close()
    assert sessions == (1, 1 if closes == restores else 0)
