from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta

import pytest

from app.db import Database, format_time, parse_time, utc_now
from app.services.core import Actor, Result
from app.services.floor import FloorService
from app.services.tables import TableService
from app.services.waiters import WaiterService

from .support import audit_events


async def ids_by_label(tables: TableService, actor: Actor) -> dict[str, int]:
    _, rows = await tables.list_tables(actor.restaurant_id)
    return {row["number"]: row["id"] for row in rows}


async def table(tables: TableService, actor: Actor, table_id: int) -> dict:
    _, rows = await tables.list_tables(actor.restaurant_id)
    (found,) = [row for row in rows if row["id"] == table_id]
    return found


async def version(tables: TableService, actor: Actor) -> int:
    return (await tables.list_tables(actor.restaurant_id))[0]


def assert_error(result: Result, code: str) -> None:
    assert not result.ok
    assert result.code == code
    assert result.detail and result.detail[0].isupper()
    assert result.updates == () and result.version is None


@pytest.fixture
async def ids(tables: TableService, bistro: Actor) -> dict[str, int]:
    return await ids_by_label(tables, bistro)


async def seat(tables: TableService, actor: Actor, table_id: int, guests: int = 2) -> Result:
    result = await tables.seat_table(actor, table_id, guests)
    assert result.ok, result
    return result


# -- the table dict -------------------------------------------------------------------------------


async def test_free_table_dict(tables, bistro, ids):
    assert await table(tables, bistro, ids["1"]) == {
        "id": ids["1"],
        "number": "1",
        "seats": 4,
        "area": "Main room",
        "position": 1,
        "status": "free",
        "session": None,
        "restorable": False,
        "restorable_until": None,
        "requests": [],
        "waiter": None,
    }


async def test_seating_a_party_makes_the_table_occupied(tables, bistro, ids):
    result = await seat(tables, bistro, ids["2"], guests=3)
    (changed,) = result.tables
    assert changed["status"] == "occupied"
    session = changed["session"]
    assert set(session) == {"id", "opened_at", "last_active", "guest_count", "note", "tables"}
    assert session["guest_count"] == 3
    assert session["note"] is None
    assert session["tables"] == [{"id": ids["2"], "number": "2"}]
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
        "seat_table", "move_table", "close_table",
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
    # the same party, now at table 4
    assert target["id"] == ids["4"] and target["session"] == {**session, "tables": [{"id": ids["4"], "number": "4"}]}


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


# -- seat -----------------------------------------------------------------------------------------


async def test_seat_table_seats_as_many_guests_as_the_table_has_seats_unless_told(floor, tables, bistro, ids):
    assert (await tables.seat_table(bistro, ids["1"])).tables[0]["session"]["guest_count"] == 4
    long_table = (await floor.add_table(bistro, "Long", seats=100)).tables[0]["id"]
    assert (await tables.seat_table(bistro, long_table)).tables[0]["session"]["guest_count"] == 99
    assert (await tables.seat_table(bistro, ids["2"], 1)).tables[0]["session"]["guest_count"] == 1
    assert (await tables.seat_table(bistro, ids["3"], 99)).tables[0]["session"]["guest_count"] == 99
    assert (await tables.seat_table(bistro, ids["4"], guest_count=7)).tables[0]["session"]["guest_count"] == 7


async def test_seat_table_errors(tables, bistro, ids):
    assert_error(await tables.seat_table(bistro, 9999), "table_not_found")
    await seat(tables, bistro, ids["1"])
    assert_error(await tables.seat_table(bistro, ids["1"]), "table_occupied")
    await tables.disable_table(bistro, ids["2"])
    assert_error(await tables.seat_table(bistro, ids["2"]), "table_disabled")


@pytest.mark.parametrize("guest_count", [0, 100, -1, True, 2.5, "3"])
async def test_seat_table_refuses_a_guest_count_that_is_not_1_to_99(tables, bistro, ids, db_path, guest_count):
    start, events = await version(tables, bistro), len(audit_events(db_path))
    assert_error(await tables.seat_table(bistro, ids["3"], guest_count), "invalid_guest_count")
    assert (await table(tables, bistro, ids["3"]))["status"] == "free"
    assert (await version(tables, bistro), len(audit_events(db_path))) == (start, events)


@pytest.mark.parametrize(("operation", "args"), [
    ("seat_table", ("1",)),
    ("set_guest_count", ("5", 2)),
    ("set_note", ("5", "window seat")),
    ("join_tables", ("5", "1")),
    ("split_table", ("6",)),
    ("close_table", ("5",)),
    ("move_table", ("5", "1")),
    ("disable_table", ("1",)),
])
async def test_a_viewer_may_not_change_the_tables(tables, bistro, ids, db_path, operation, args):
    await seat(tables, bistro, ids["5"])
    assert (await tables.join_tables(bistro, ids["5"], ids["6"])).ok
    viewer = Actor(bistro.restaurant_id, "wall screen", "viewer")
    before, events = await tables.list_tables(bistro.restaurant_id), len(audit_events(db_path))
    args = tuple(ids[arg] if isinstance(arg, str) and arg in ids else arg for arg in args)
    result = await getattr(tables, operation)(viewer, *args)
    assert_error(result, "forbidden")
    assert result.detail == "This key may watch the tables but not change them."
    assert await tables.list_tables(bistro.restaurant_id) == before
    assert len(audit_events(db_path)) == events


# -- the party's size and note --------------------------------------------------------------------


async def test_set_guest_count_changes_the_party(tables, bistro, ids, db_path):
    await seat(tables, bistro, ids["1"], guests=2)
    start = await version(tables, bistro)
    result = await tables.set_guest_count(bistro, ids["1"], 6)
    assert result.ok and result.version == start + 1
    (changed,) = result.tables
    assert changed["session"]["guest_count"] == 6
    assert await table(tables, bistro, ids["1"]) == changed
    assert audit_events(db_path)[-1]["action"] == "set_guest_count"


@pytest.mark.parametrize("guest_count", [0, 100, -1, True, 2.5, "3", None])
async def test_set_guest_count_refuses_a_count_that_is_not_1_to_99(tables, bistro, ids, guest_count):
    await seat(tables, bistro, ids["1"], guests=2)
    assert_error(await tables.set_guest_count(bistro, ids["1"], guest_count), "invalid_guest_count")
    assert (await table(tables, bistro, ids["1"]))["session"]["guest_count"] == 2


async def test_the_party_size_and_note_need_a_party(tables, bistro, ids):
    assert_error(await tables.set_guest_count(bistro, ids["1"], 2), "no_active_session")
    assert_error(await tables.set_note(bistro, ids["1"], "birthday"), "no_active_session")
    assert_error(await tables.set_guest_count(bistro, 9999, 2), "table_not_found")
    assert_error(await tables.set_note(bistro, 9999, "birthday"), "table_not_found")
    assert (await table(tables, bistro, ids["1"]))["status"] == "free"


@pytest.mark.parametrize(("note", "kept"), [
    ("Birthday", "Birthday"),
    ("  nut allergy \t", "nut allergy"),
    ("x" * 140, "x" * 140),
    ("  " + "y" * 140 + "  ", "y" * 140),  # the length counts once stripped
    ("<b>VIP</b> & co", "<b>VIP</b> & co"),  # kept as typed: escaping is the page's job
    ("Crème brûlée 🎂", "Crème brûlée 🎂"),
    ("", None),
    ("   ", None),
])
async def test_set_note_keeps_the_text_stripped_and_empty_clears_it(tables, bistro, ids, db_path, note, kept):
    await seat(tables, bistro, ids["1"])
    assert (await tables.set_note(bistro, ids["1"], "to be replaced")).ok
    result = await tables.set_note(bistro, ids["1"], note)
    assert result.ok
    assert result.tables[0]["session"]["note"] == kept
    assert (await table(tables, bistro, ids["1"]))["session"]["note"] == kept
    assert audit_events(db_path)[-1]["action"] == "set_note"


@pytest.mark.parametrize("note", ["x" * 141, 5, None, ["birthday"], "first line\nsecond line", "nul\x00byte",
                                  "\x00", "tab\tinside", "bell\x07"])
async def test_set_note_refuses_what_is_not_one_short_line_of_text(tables, bistro, ids, note):
    await seat(tables, bistro, ids["1"])
    assert (await tables.set_note(bistro, ids["1"], "kept")).ok
    assert_error(await tables.set_note(bistro, ids["1"], note), "invalid_note")
    assert (await table(tables, bistro, ids["1"]))["session"]["note"] == "kept"


async def test_the_note_goes_with_the_party_on_move_and_on_restore(tables, bistro, ids):
    await seat(tables, bistro, ids["1"], guests=3)
    await tables.set_note(bistro, ids["1"], "birthday")
    moved = await tables.move_table(bistro, ids["1"], ids["2"])
    assert moved.tables[0]["session"] is None
    assert moved.tables[1]["session"]["note"] == "birthday"
    await tables.close_table(bistro, ids["2"])
    restored = (await tables.restore_table(bistro, ids["2"])).tables[0]["session"]
    assert (restored["note"], restored["guest_count"]) == ("birthday", 3)
    # a new party starts without one
    await tables.close_table(bistro, ids["2"])
    assert (await seat(tables, bistro, ids["2"])).tables[0]["session"]["note"] is None


# -- join and split -------------------------------------------------------------------------------


@pytest.fixture
def waiters(db: Database, settings) -> WaiterService:
    return WaiterService(db, settings)


async def call(floor: FloorService, waiters: WaiterService, actor: Actor, table_id: int, kind: str) -> None:
    """A guest at the table taps a call on the table's page."""
    token = (await floor.qr_tokens(actor.restaurant_id))[table_id]
    result = await waiters.request(token, kind)
    assert result.ok, result


def party_tables(ids: dict[str, int], *labels: str) -> list[dict]:
    """The session's "tables" of a party at these tables, its own first."""
    return [{"id": ids[label], "number": label} for label in labels]


async def join_5_and_6(tables: TableService, actor: Actor, ids: dict[str, int]) -> dict:
    """A party of 7 at table 5 with a note, table 6 pushed to it; the party's session."""
    await seat(tables, actor, ids["5"], guests=7)
    assert (await tables.set_note(actor, ids["5"], "birthday")).ok
    joined = await tables.join_tables(actor, ids["5"], ids["6"])
    assert joined.ok, joined
    return joined.tables[0]["session"]


def assert_numbered_from(result: Result, start: int, table_ids: list[int]) -> None:
    """The change's updates are these tables, in this order, numbered start+1, start+2, ..."""
    assert [(update.version, update.table["id"]) for update in result.updates] == [
        (start + n, table_id) for n, table_id in enumerate(table_ids, 1)]
    assert result.version == start + len(table_ids)


async def test_join_seats_the_party_at_both_tables(tables, bistro, ids, db_path):
    party = (await seat(tables, bistro, ids["5"], guests=7)).tables[0]["session"]
    await tables.set_note(bistro, ids["5"], "birthday")
    start = await version(tables, bistro)
    result = await tables.join_tables(bistro, ids["5"], ids["6"])
    assert result.ok
    assert_numbered_from(result, start, [ids["5"], ids["6"]])
    five, six = result.tables
    for card in (five, six):
        assert card["status"] == "occupied"
        session = card["session"]
        assert session["id"] == party["id"] and session["opened_at"] == party["opened_at"]
        assert (session["guest_count"], session["note"]) == (7, "birthday")
        assert session["tables"] == party_tables(ids, "5", "6")
    assert five["session"] == six["session"]
    assert await table(tables, bistro, ids["5"]) == five and await table(tables, bistro, ids["6"]) == six
    event = audit_events(db_path)[-1]
    assert event["action"] == "join_tables" and json.loads(event["table_ids"]) == [ids["5"], ids["6"]]
    assert [t["status"] for t in json.loads(event["before"])] == ["occupied", "free"]


async def test_joining_from_a_joined_table_adds_a_third(tables, bistro, ids):
    party = await join_5_and_6(tables, bistro, ids)
    start = await version(tables, bistro)
    result = await tables.join_tables(bistro, ids["6"], ids["4"])
    assert result.ok
    assert_numbered_from(result, start, [ids["5"], ids["6"], ids["4"]])
    for card in result.tables:
        assert card["session"]["id"] == party["id"]
        assert card["session"]["tables"] == party_tables(ids, "5", "6", "4")


async def test_the_party_size_and_note_change_on_every_card(tables, bistro, ids):
    await join_5_and_6(tables, bistro, ids)
    start = await version(tables, bistro)
    sized = await tables.set_guest_count(bistro, ids["6"], 9)
    assert_numbered_from(sized, start, [ids["5"], ids["6"]])
    noted = await tables.set_note(bistro, ids["6"], "two high chairs")
    assert_numbered_from(noted, start + 2, [ids["5"], ids["6"]])
    for table_id in (ids["5"], ids["6"]):
        session = (await table(tables, bistro, table_id))["session"]
        assert (session["guest_count"], session["note"]) == (9, "two high chairs")


async def test_join_errors(tables, bistro, cafe, ids):
    cafe_ids = await ids_by_label(tables, cafe)
    await join_5_and_6(tables, bistro, ids)
    await seat(tables, bistro, ids["2"])
    await tables.disable_table(bistro, ids["3"])
    start = await version(tables, bistro)
    assert_error(await tables.join_tables(bistro, ids["5"], ids["5"]), "same_table")
    assert_error(await tables.join_tables(bistro, 9999, ids["1"]), "table_not_found")
    assert_error(await tables.join_tables(bistro, ids["5"], 9999), "table_not_found")
    assert_error(await tables.join_tables(bistro, ids["5"], cafe_ids["1"]), "table_not_found")
    assert_error(await tables.join_tables(bistro, ids["1"], ids["4"]), "no_active_session")
    occupied = await tables.join_tables(bistro, ids["5"], ids["2"])
    assert_error(occupied, "target_unavailable")
    assert "occupied" in occupied.detail
    disabled = await tables.join_tables(bistro, ids["5"], ids["3"])
    assert_error(disabled, "target_unavailable")
    assert "disabled" in disabled.detail
    assert_error(await tables.join_tables(bistro, ids["5"], ids["6"]), "target_unavailable")  # already joined
    assert_error(await tables.join_tables(bistro, ids["6"], ids["5"]), "target_unavailable")
    assert await version(tables, bistro) == start
    assert (await table(tables, bistro, ids["5"]))["session"]["tables"] == party_tables(ids, "5", "6")


async def test_split_frees_the_joined_table_and_the_party_stays(floor, waiters, tables, bistro, ids):
    party = await join_5_and_6(tables, bistro, ids)
    await call(floor, waiters, bistro, ids["6"], "ask_for_bill")
    start = await version(tables, bistro)
    result = await tables.split_table(bistro, ids["6"])
    assert result.ok
    assert_numbered_from(result, start, [ids["6"], ids["5"]])
    six, five = result.tables
    assert six["status"] == "free" and six["session"] is None and six["restorable"] is False
    assert six["requests"] == []
    assert five["session"]["id"] == party["id"]
    assert (five["session"]["guest_count"], five["session"]["note"]) == (7, "birthday")
    assert five["session"]["tables"] == party_tables(ids, "5")
    # the call made at table 6 is the party's: it waits at table 5 now
    assert [r["kind"] for r in five["requests"]] == ["ask_for_bill"]
    assert await table(tables, bistro, ids["5"]) == five
    # table 6 can take a party of its own
    await seat(tables, bistro, ids["6"])


async def test_split_errors(tables, bistro, ids):
    await join_5_and_6(tables, bistro, ids)
    start = await version(tables, bistro)
    assert_error(await tables.split_table(bistro, 9999), "table_not_found")
    assert_error(await tables.split_table(bistro, ids["5"]), "not_joined")
    assert_error(await tables.split_table(bistro, ids["1"]), "no_active_session")
    assert await version(tables, bistro) == start


async def test_a_joined_table_cannot_be_disabled(tables, bistro, ids):
    await join_5_and_6(tables, bistro, ids)
    assert_error(await tables.disable_table(bistro, ids["6"]), "table_occupied")
    assert_error(await tables.disable_table(bistro, ids["5"]), "table_occupied")


async def test_the_database_keeps_a_table_in_at_most_one_party(tables, bistro, ids, db_path):
    party = await join_5_and_6(tables, bistro, ids)
    conn = sqlite3.connect(db_path)
    try:
        for label in ("5", "6"):
            for joined_to in (None, party["id"]):
                with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
                    conn.execute(
                        "INSERT INTO table_session (table_id, state, opened_at, last_activity_at, joined_to)"
                        " VALUES (?, 'active', ?, ?, ?)", (ids[label], utc_now(), utc_now(), joined_to))
    finally:
        conn.close()


# -- a joined party: close, restore, move ---------------------------------------------------------


async def test_closing_a_joined_table_closes_the_whole_party(floor, waiters, tables, bistro, ids, db_path):
    await join_5_and_6(tables, bistro, ids)
    await call(floor, waiters, bistro, ids["5"], "call_waiter")
    await call(floor, waiters, bistro, ids["6"], "ask_for_bill")
    start = await version(tables, bistro)
    result = await tables.close_table(bistro, ids["6"])
    assert result.ok
    assert_numbered_from(result, start, [ids["6"], ids["5"]])
    for card in result.tables:
        assert card["status"] == "free" and card["session"] is None and card["requests"] == []
        assert card["restorable"] is True
    conn = sqlite3.connect(db_path)
    sessions = conn.execute("SELECT state, closed_at FROM table_session").fetchall()
    calls = conn.execute("SELECT resolved_by FROM waiter_request").fetchall()
    conn.close()
    assert len(sessions) == 2 and {state for state, _ in sessions} == {"closed"}
    assert len({closed_at for _, closed_at in sessions}) == 1  # one close, one moment
    assert calls == [("table closed",), ("table closed",)]


@pytest.mark.parametrize("restore_from", ["5", "6"])
async def test_restoring_a_joined_party_brings_it_back_at_every_table(tables, bistro, ids, restore_from):
    party = await join_5_and_6(tables, bistro, ids)
    await tables.close_table(bistro, ids["5"])
    start = await version(tables, bistro)
    result = await tables.restore_table(bistro, ids[restore_from])
    assert result.ok
    other = "6" if restore_from == "5" else "5"
    assert_numbered_from(result, start, [ids[restore_from], ids[other]])
    for card in result.tables:
        assert card["status"] == "occupied" and card["restorable"] is False
        session = card["session"]
        assert (session["id"], session["opened_at"]) == (party["id"], party["opened_at"])
        assert (session["guest_count"], session["note"]) == (7, "birthday")
        assert session["tables"] == party_tables(ids, "5", "6")
    # back as it was: still joined, so table 6 splits off again
    assert (await tables.split_table(bistro, ids["6"])).ok


@pytest.mark.parametrize("restore_from", ["5", "6"])
async def test_restore_refused_when_a_table_of_the_party_was_seated_meanwhile(tables, bistro, ids, restore_from):
    await join_5_and_6(tables, bistro, ids)
    await tables.close_table(bistro, ids["5"])
    await seat(tables, bistro, ids["6"])
    before = await tables.list_tables(bistro.restaurant_id)
    assert_error(await tables.restore_table(bistro, ids[restore_from]), "table_occupied")
    assert await tables.list_tables(bistro.restaurant_id) == before
    assert (await table(tables, bistro, ids["5"]))["status"] == "free"


async def test_restore_refused_when_a_table_of_the_party_was_disabled_meanwhile(tables, bistro, ids):
    await join_5_and_6(tables, bistro, ids)
    await tables.close_table(bistro, ids["5"])
    await tables.disable_table(bistro, ids["6"])
    before = await tables.list_tables(bistro.restaurant_id)
    assert_error(await tables.restore_table(bistro, ids["5"]), "table_disabled")
    assert await tables.list_tables(bistro.restaurant_id) == before
    # enabled again, the party can come back
    await tables.enable_table(bistro, ids["6"])
    assert (await tables.restore_table(bistro, ids["5"])).ok


async def test_restore_refused_when_another_party_sat_at_a_joined_table_since(tables, bistro, ids):
    """As for a single table: a restore needs nobody seated at any of the party's tables since its close."""
    await join_5_and_6(tables, bistro, ids)
    await tables.close_table(bistro, ids["5"])
    await seat(tables, bistro, ids["6"])
    await tables.close_table(bistro, ids["6"])  # party B came and went at 6: 6 is free again
    before = await tables.list_tables(bistro.restaurant_id)
    assert_error(await tables.restore_table(bistro, ids["5"]), "table_occupied")
    assert await tables.list_tables(bistro.restaurant_id) == before


async def test_a_joined_table_removed_since_the_close_is_left_out_of_the_restore(tables, floor, bistro, ids):
    await join_5_and_6(tables, bistro, ids)
    await tables.close_table(bistro, ids["6"])
    assert (await floor.remove_table(bistro, ids["6"])).ok
    restored = await tables.restore_table(bistro, ids["5"])
    assert restored.ok, restored
    assert [t["number"] for t in restored.tables] == ["5"]
    assert restored.tables[0]["session"]["tables"] == [{"id": ids["5"], "number": "5"}]


async def test_a_party_whose_own_table_was_removed_cannot_be_restored(tables, floor, bistro, ids):
    await join_5_and_6(tables, bistro, ids)
    await tables.close_table(bistro, ids["5"])
    assert (await floor.remove_table(bistro, ids["5"])).ok
    assert (await table(tables, bistro, ids["6"]))["restorable"]
    assert_error(await tables.restore_table(bistro, ids["6"]), "no_session_to_restore")
    assert (await table(tables, bistro, ids["6"]))["status"] == "free"


@pytest.mark.parametrize("move_from", ["5", "6"])
async def test_moving_a_joined_party_takes_it_to_one_table(floor, waiters, tables, bistro, ids, move_from):
    party = await join_5_and_6(tables, bistro, ids)
    await call(floor, waiters, bistro, ids["5"], "call_waiter")
    await call(floor, waiters, bistro, ids["6"], "call_waiter")  # the same kind at both: one call at table 1
    await call(floor, waiters, bistro, ids["6"], "ask_for_bill")
    start = await version(tables, bistro)
    result = await tables.move_table(bistro, ids[move_from], ids["1"])
    assert result.ok
    other = "6" if move_from == "5" else "5"
    assert_numbered_from(result, start, [ids[move_from], ids[other], ids["1"]])
    *released, one = result.tables
    for card in released:
        assert card["status"] == "free" and card["session"] is None and card["requests"] == []
        assert card["restorable"] is False  # a move is no close
    session = one["session"]
    assert (session["id"], session["opened_at"]) == (party["id"], party["opened_at"])
    assert (session["guest_count"], session["note"]) == (7, "birthday")
    assert session["tables"] == party_tables(ids, "1")
    assert sorted(r["kind"] for r in one["requests"]) == ["ask_for_bill", "call_waiter"]
    # 5 and 6 are free for parties of their own, and the moved party can be joined again
    await seat(tables, bistro, ids["5"])
    assert (await tables.join_tables(bistro, ids["1"], ids["6"])).ok


# -- scope ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["close_table", "disable_table", "enable_table", "restore_table",
                                       "seat_table"])
async def test_another_restaurants_table_is_not_found(tables, bistro, cafe, operation):
    cafe_ids = await ids_by_label(tables, cafe)
    await tables.seat_table(cafe, cafe_ids["1"])
    before = await tables.list_tables(cafe.restaurant_id)
    result = await getattr(tables, operation)(bistro, cafe_ids["1"])
    assert_error(result, "table_not_found")
    assert result.detail == f"There is no table {cafe_ids['1']}."
    assert await tables.list_tables(cafe.restaurant_id) == before


async def test_moving_another_restaurants_party_is_not_found(tables, bistro, cafe, ids):
    cafe_ids = await ids_by_label(tables, cafe)
    await tables.seat_table(cafe, cafe_ids["1"])
    assert_error(await tables.move_table(bistro, cafe_ids["1"], ids["1"]), "source_table_not_found")


async def test_list_tables_shows_only_the_restaurants_own(tables, bistro, cafe):
    _, bistro_tables = await tables.list_tables(bistro.restaurant_id)
    _, cafe_tables = await tables.list_tables(cafe.restaurant_id)
    assert [t["number"] for t in bistro_tables] == ["1", "2", "3", "4", "5", "6"]
    assert [t["number"] for t in cafe_tables] == ["1", "2", "3"]
    assert not {t["id"] for t in bistro_tables} & {t["id"] for t in cafe_tables}


# -- add_table (the floor's; FloorService) -------------------------------------------------------


async def test_add_table(floor, tables, bistro):
    start = await version(tables, bistro)
    result = await floor.add_table(bistro, "Terrace 3", seats=6, area="Terrace")
    assert result.ok and result.version == start + 1
    (added,) = result.tables
    assert (added["number"], added["seats"], added["area"], added["status"]) == ("Terrace 3", 6, "Terrace", "free")
    assert added["position"] == 7  # after the bistro's six
    _, rows = await tables.list_tables(bistro.restaurant_id)
    assert rows[-1] == added


@pytest.mark.parametrize(("label", "seats", "area", "code"), [
    ("", 4, "Main room", "invalid_label"),
    ("x" * 41, 4, "Main room", "invalid_label"),
    ("9", 0, "Main room", "invalid_seats"),
    ("9", 4, " ", "invalid_area"),
    ("1", 4, "Main room", "label_taken"),
])
async def test_add_table_errors(floor, tables, bistro, label, seats, area, code):
    start = await version(tables, bistro)
    assert_error(await floor.add_table(bistro, label, seats, area), code)
    assert await version(tables, bistro) == start


async def test_each_table_gets_its_own_unguessable_qr_token(tables, bistro, db_path):
    conn = sqlite3.connect(db_path)
    tokens = [token for (token,) in conn.execute("SELECT qr_token FROM dining_table")]
    conn.close()
    assert len(set(tokens)) == len(tokens) == 6
    assert all(len(token) >= 22 for token in tokens)  # 18 random bytes, url-safe base64


# -- concurrency ----------------------------------------------------------------------------------


async def test_twenty_concurrent_moves_to_one_table_have_one_winner(restaurants, tables):
    restaurant = await restaurants.add("busy", "Busy", tables=21)
    actor = Actor(restaurant["id"], "race", "admin")
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
            service.seat_table(bistro, ids["1"]) for service in (tables, second) * 10
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


async def test_a_join_racing_a_seat_for_the_same_table_has_one_winner(db_path, settings, tables, bistro, ids):
    await seat(tables, bistro, ids["1"])
    contested = [ids[label] for label in ("2", "3", "4", "5", "6")]
    other = await Database.open(db_path)
    try:
        second = TableService(other, settings)
        racing = []  # for each table a seat and a join, on the two connections, all at once
        for n, table_id in enumerate(contested):
            seater, joiner = (tables, second) if n % 2 else (second, tables)
            racing += [seater.seat_table(bistro, table_id), joiner.join_tables(bistro, ids["1"], table_id)]
        outcomes = await asyncio.gather(*racing)
    finally:
        await other.close()
    joined = []
    for n, table_id in enumerate(contested):
        seated, join = outcomes[2 * n], outcomes[2 * n + 1]
        assert seated.ok != join.ok, (table_id, seated, join)
        if join.ok:
            assert_error(seated, "table_occupied")
            joined.append(table_id)
        else:
            assert_error(join, "target_unavailable")
    conn = sqlite3.connect(db_path)
    active = conn.execute("SELECT table_id, count(*) FROM table_session WHERE state = 'active' GROUP BY table_id")
    assert dict(active.fetchall()) == {table_id: 1 for table_id in [ids["1"], *contested]}
    conn.close()
    party = (await table(tables, bistro, ids["1"]))["session"]
    assert sorted(t["id"] for t in party["tables"][1:]) == sorted(joined)


async def test_renaming_a_joined_table_updates_every_card_that_names_it(tables, floor, bistro, ids):
    await join_5_and_6(tables, bistro, ids)
    renamed = await floor.set_table(bistro, ids["6"], label="Window")
    assert renamed.ok, renamed
    assert [t["number"] for t in renamed.tables] == ["Window", "5"]  # card 5 says "Joined with Window"
    assert all(t["session"]["tables"][1]["number"] == "Window" for t in renamed.tables)
    assert [u.version for u in renamed.updates] == [renamed.version - 1, renamed.version]
    seats_only = await floor.set_table(bistro, ids["6"], seats=6)  # no new label: no other card changes
    assert [t["number"] for t in seats_only.tables] == ["Window"]
