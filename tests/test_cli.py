"""The command line, run as a person runs it: a real process on a real database file."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from app.auth import KeyService
from app.cli import the_table
from app.db import Database, format_time
from app.services.core import Actor
from app.services.floor import FloorService
from app.services.reports import ReportService
from app.services.restaurants import RestaurantService
from app.services.tables import TableService
from app.services.waiters import WaiterService
from app.settings import Settings
from bench.servers import RUN_PY

from .support import Place, Server, dashboard, make_place, receive


def run(*args: str, db: str | None = None, env: dict[str, str] | None = None, stdin: str | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(RUN_PY), *args] + (["--db", db] if db else [])
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAITRE_")} | (env or {})
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment, input=stdin, cwd=cwd)


def ok(*args: str, db: str) -> str:
    result = run(*args, db=db)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(*args: str, db: str | None = None, env: dict[str, str] | None = None) -> str:
    result = run(*args, db=db, env=env)
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_restaurants_tables_and_keys(db_path):
    added = ok("restaurant", "add", "bistro", "--name", "Le Bistro", "--tables", "3", db=db_path)
    assert "added with 3 tables" in added
    ok("table", "add", "bistro", "Terrace 3", "--seats", "6", "--area", "Terrace", db=db_path)

    restaurants = json.loads(ok("restaurant", "list", "--json", db=db_path))
    assert [(r["slug"], r["name"], r["tables"], r["version"]) for r in restaurants] == [("bistro", "Le Bistro", 4, 4)]
    assert "Le Bistro" in ok("restaurant", "list", db=db_path)

    tables = json.loads(ok("table", "list", "bistro", "--json", db=db_path))
    assert [(t["number"], t["seats"], t["area"], t["status"]) for t in tables] == [
        ("1", 4, "Main room", "free"), ("2", 4, "Main room", "free"), ("3", 4, "Main room", "free"),
        ("Terrace 3", 6, "Terrace", "free"),
    ]
    assert all(t["guest_url"] == f"http://127.0.0.1:8080/t/{t['qr_token']}" for t in tables)
    assert len({t["qr_token"] for t in tables}) == 4
    text = ok("table", "list", "bistro", db=db_path).splitlines()
    assert text[0].split() == ["id", "label", "area", "seats", "status", "guest_url"]
    assert "Terrace 3" in text[-1] and tables[-1]["guest_url"] in text[-1]

    rotated = ok("table", "rotate-qr", "bistro", "Terrace 3", db=db_path).splitlines()[-1]
    after = json.loads(ok("table", "list", "bistro", "--json", db=db_path))
    assert rotated == after[-1]["guest_url"] != tables[-1]["guest_url"]
    assert [t["qr_token"] for t in after[:3]] == [t["qr_token"] for t in tables[:3]]
    assert "no table" in refused("table", "rotate-qr", "bistro", "Nope", db=db_path)

    key = ok("key", "add", "bistro", "--label", "bar tablet", "--role", "viewer", db=db_path).splitlines()[-1]
    assert key.startswith("mtr_") and " " not in key
    keys = json.loads(ok("key", "list", "bistro", "--json", db=db_path))
    assert [(k["label"], k["role"], k["revoked_at"]) for k in keys] == [("bar tablet", "viewer", None)]
    assert key not in ok("key", "list", "bistro", db=db_path)

    ok("restaurant", "set", "bistro", "--restore-window-minutes", "45", "--name", "Bistro Two", db=db_path)
    (configured,) = json.loads(ok("restaurant", "list", "--json", db=db_path))
    assert (configured["name"], configured["restore_window_minutes"]) == ("Bistro Two", 45)
    ok("restaurant", "set", "bistro", "--restore-window-minutes", "default", db=db_path)
    assert json.loads(ok("restaurant", "list", "--json", db=db_path))[0]["restore_window_minutes"] is None

    assert "revoked" in ok("key", "revoke", str(keys[0]["id"]), db=db_path)
    assert json.loads(ok("key", "list", "bistro", "--json", db=db_path))[0]["revoked_at"]


def test_a_key_has_a_name_and_a_waiter_key_is_a_waiter(db_path):
    ok("restaurant", "add", "bistro", "--name", "Bistro", "--tables", "2", db=db_path)
    said = ok("key", "add", "bistro", "--role", "waiter", "--name", "Sam", db=db_path).splitlines()
    assert said[0] == "Key 1 (waiter 'Sam', label 'Sam') for bistro. Keep it now, it is not shown again:"
    ok("key", "add", "bistro", "--role", "waiter", "--name", " Alex ", "--label", "Alex's phone", db=db_path)
    ok("key", "add", "bistro", "--label", "a host stand with a rather long label, over forty", db=db_path)
    ok("key", "add", "bistro", "--role", "viewer", db=db_path)
    keys = json.loads(ok("key", "list", "bistro", "--json", db=db_path))
    assert [(k["name"], k["role"], k["label"]) for k in keys] == [
        ("Sam", "waiter", "Sam"), ("Alex", "waiter", "Alex's phone"),
        ("a host stand with a rather long label, o", "admin", "a host stand with a rather long label, over forty"),
        ("viewer", "viewer", "viewer")]
    text = ok("key", "list", "bistro", db=db_path).splitlines()
    assert text[0].split() == ["id", "name", "role", "label", "created_at", "revoked_at"]
    assert text[2].split()[:4] == ["2", "Alex", "waiter", "Alex's"]
    assert refused("key", "add", "bistro", "--role", "waiter", "--name", " ", db=db_path) == (
        "run.py: error: A name is 1 to 40 characters, on one line.")
    assert len(json.loads(ok("key", "list", "bistro", "--json", db=db_path))) == 4


async def terrace_and_waiters(db, settings) -> Place:
    """Tables 1..4 in the main room and T1, T2 on the terrace; waiter keys for Sam and Alex, and an admin's."""
    place = await make_place(db, settings, "bistro", 4)
    floor = FloorService(db, settings)
    for label in ("T1", "T2"):
        place.ids[label] = the_table(await floor.add_table(place.actor, label, 4, "Terrace"))["id"]
    for name in ("Sam", "Alex"):
        await KeyService(db).add("bistro", f"{name}'s phone", "waiter", name=name)
    return place


async def waiters_of(db, settings, place: Place) -> dict[str, str | None]:
    _, tables = await TableService(db, settings).list_tables(place.actor.restaurant_id)
    return {table["number"]: table["waiter"] for table in tables}


async def test_sections_are_set_and_listed_from_the_command_line(db_path, db, settings):
    place = await terrace_and_waiters(db, settings)
    listing = await asyncio.to_thread(ok, "section", "list", "bistro", db=db_path)
    assert listing.splitlines() == ["Alex: no section", "Sam: no section",
                                    "In nobody's section: tables 1, 2, 3, 4, T1 and T2"]
    said = await asyncio.to_thread(ok, "section", "set", "bistro", "Sam", "--area", "Terrace", "--table", "1",
                                   db=db_path)
    assert said == "Sam: area Terrace, table 1 (serves tables 1, T1 and T2)\n"
    # Alex takes the main room, and T2 by itself: a table's own assignment wins over its area's
    said = await asyncio.to_thread(ok, "section", "set", "bistro", "Alex", "--area", "Main room", "--table", "T2",
                                   db=db_path)
    assert said == "Alex: area Main room, table T2 (serves tables 2, 3, 4 and T2)\n"
    assert await waiters_of(db, settings, place) == {"1": "Sam", "2": "Alex", "3": "Alex", "4": "Alex",
                                                     "T1": "Sam", "T2": "Alex"}
    listing = await asyncio.to_thread(ok, "section", "list", "bistro", db=db_path)
    assert listing.splitlines() == ["Alex: area Main room, table T2 (serves tables 2, 3, 4 and T2)",
                                    "Sam: area Terrace, table 1 (serves tables 1 and T1)",
                                    "Every table is in a section."]
    as_json = json.loads(await asyncio.to_thread(ok, "section", "list", "bistro", "--json", db=db_path))
    assert as_json["sections"][1] == {"waiter": "Sam", "areas": ["Terrace"],
                                      "tables": [{"id": place.ids["1"], "number": "1"}]}
    assert as_json["unassigned"] == []

    assert await asyncio.to_thread(ok, "section", "set", "bistro", "Alex", db=db_path) == "Alex: no section\n"
    listing = await asyncio.to_thread(ok, "section", "list", "bistro", db=db_path)
    assert listing.splitlines()[0] == "Alex: no section"
    assert listing.splitlines()[-1] == "In nobody's section: tables 2, 3 and 4"  # T2 is the terrace's again: Sam's
    as_json = json.loads(await asyncio.to_thread(ok, "section", "list", "bistro", "--json", db=db_path))
    assert as_json["unassigned"] == [{"id": place.ids[label], "number": label} for label in ("2", "3", "4")]


async def test_a_section_names_a_waiter_areas_and_tables_that_exist_or_nothing_changes(db_path, db, settings):
    place = await terrace_and_waiters(db, settings)
    await asyncio.to_thread(ok, "section", "set", "bistro", "Sam", "--area", "Terrace", db=db_path)
    before = await TableService(db, settings).list_tables(place.actor.restaurant_id)
    for args, line in [
        (("Nobody", "--area", "Terrace"), "There is no waiter named 'Nobody': a waiter is the name of a waiter key "
                                          "(run.py key add SLUG --role waiter --name NAME)."),
        (("admin tablet",), "There is no waiter named 'admin tablet'"),  # an admin key is no waiter
        (("Sam", "--area", "Patio"), "There is no area 'Patio' (areas: Main room, Terrace)."),
        (("Sam", "--table", "9", "--table", "1", "--table", "X"), "bistro has no tables '9' and 'X'"),
        (("Sam", "--table", "9"), "bistro has no table '9'"),
    ]:
        said = await asyncio.to_thread(refused, "section", "set", "bistro", *args, db=db_path)
        assert said.startswith(f"run.py: error: {line}"), said
    assert await TableService(db, settings).list_tables(place.actor.restaurant_id) == before
    assert "no restaurant" in await asyncio.to_thread(refused, "section", "list", "nowhere", db=db_path)


async def test_a_section_set_on_the_command_line_reaches_the_open_dashboards(db_path, db, settings, client):
    """The server hears of it from the database: one update per table whose waiter changed."""
    place = await terrace_and_waiters(db, settings)
    ws, snapshot = await dashboard(client, place.viewer)
    said = await asyncio.to_thread(ok, "section", "set", "bistro", "Sam", "--area", "Terrace", "--table", "2",
                                   db=db_path)
    assert said == "Sam: area Terrace, table 2 (serves tables 2, T1 and T2)\n"
    pushed = [await receive(ws, timeout=5) for _ in range(3)]
    assert [(update["type"], update["version"], update["table"]["number"], update["table"]["waiter"])
            for update in pushed] == [("table_update", snapshot["version"] + n, label, "Sam")
                                      for n, label in enumerate(("2", "T1", "T2"), start=1)]
    await ws.close()


def listed(db_path: str) -> list[tuple[str, int, str, int]]:
    tables = json.loads(ok("table", "list", "bistro", "--json", db=db_path))
    return [(t["number"], t["seats"], t["area"], t["position"]) for t in tables]


def test_a_table_is_changed_from_the_command_line(db_path):
    ok("restaurant", "add", "bistro", "--name", "Bistro", "--tables", "3", db=db_path)
    changed = ok("table", "set", "bistro", "2", "--label", "Window", "--seats", "2", "--area", "Terrace",
                 "--position", "1", db=db_path)
    assert changed == "Table Window of bistro: 2 seats, Terrace, position 1.\n"
    assert listed(db_path) == [("Window", 2, "Terrace", 1), ("1", 4, "Main room", 2), ("3", 4, "Main room", 3)]
    assert ok("table", "set", "bistro", "3", "--seats", "8", db=db_path) == (
        "Table 3 of bistro: 8 seats, Main room, position 3.\n")  # only what is given changes
    ok("table", "set", "bistro", "Window", "--position", "99", db=db_path)  # past the end: last
    assert [label for label, *_ in listed(db_path)] == ["1", "3", "Window"]
    (restaurant,) = json.loads(ok("restaurant", "list", "--json", db=db_path))
    # one version per table touched: 3 added; Window and 1 swap places; 3's seats; all three renumbered
    assert restaurant["version"] == 3 + 2 + 1 + 3


def test_a_table_is_removed_from_the_command_line_and_its_label_can_come_back(db_path):
    ok("restaurant", "add", "bistro", "--name", "Bistro", "--tables", "3", db=db_path)
    before = json.loads(ok("table", "list", "bistro", "--json", db=db_path))
    removed = ok("table", "remove", "bistro", "2", db=db_path)
    assert removed == "Table 2 removed from bistro; its QR code no longer works. Its history is kept.\n"
    assert [label for label, *_ in listed(db_path)] == ["1", "3"]
    assert "bistro has no table '2'" in refused("table", "remove", "bistro", "2", db=db_path)
    ok("table", "add", "bistro", "2", "--seats", "6", db=db_path)
    after = json.loads(ok("table", "list", "bistro", "--json", db=db_path))
    (again,) = [t for t in after if t["number"] == "2"]
    (old,) = [t for t in before if t["number"] == "2"]
    assert again["id"] != old["id"] and again["qr_token"] != old["qr_token"] and again["seats"] == 6
    assert json.loads(ok("restaurant", "list", "--json", db=db_path))[0]["tables"] == 3


async def test_a_table_with_guests_is_not_removed_from_the_command_line(db_path, db, settings):
    place = await make_place(db, settings, "bistro", 2)
    await TableService(db, settings).seat_table(place.actor, place.ids["1"], 2)
    line = await asyncio.to_thread(refused, "table", "remove", "bistro", "1", db=db_path)
    assert line == "run.py: error: Table 1 has guests; close it before removing it."
    _, tables = await TableService(db, settings).list_tables(place.actor.restaurant_id)
    assert [(t["number"], t["status"]) for t in tables] == [("1", "occupied"), ("2", "free")]
    assert "Table 2 removed" in await asyncio.to_thread(ok, "table", "remove", "bistro", "2", db=db_path)


async def floor_with_parties(db, settings) -> Place:
    """Tables 1..6 in the main room and T1, T2 on the terrace; seated: 1; 2 with 3 joined; T1 with 6 joined; T2."""
    place = await make_place(db, settings, "bistro", 6)
    floor = FloorService(db, settings)
    for label in ("T1", "T2"):
        place.ids[label] = the_table(await floor.add_table(place.actor, label, 4, "Terrace"))["id"]
    tables = TableService(db, settings)
    for label in ("1", "2", "T1", "T2"):
        assert (await tables.seat_table(place.actor, place.ids[label], 2)).ok
    for party, joined in (("2", "3"), ("T1", "6")):
        assert (await tables.join_tables(place.actor, place.ids[party], place.ids[joined])).ok
    return place


async def floor_state(db, settings, place: Place) -> tuple[int, dict[str, str]]:
    version, tables = await TableService(db, settings).list_tables(place.actor.restaurant_id)
    return version, {table["number"]: table["status"] for table in tables}


async def bulk_events(db, place: Place) -> list[list[dict]]:
    """The items of each bulk the audit log holds for the place, oldest first."""
    rows = await db.read(lambda conn: conn.execute(
        "SELECT items FROM audit_event WHERE restaurant_id = ? AND action = 'bulk' ORDER BY id",
        (place.actor.restaurant_id,)).fetchall())
    return [json.loads(row["items"]) for row in rows]


async def test_close_all_closes_every_party_once_in_one_change(db_path, db, settings):
    place = await floor_with_parties(db, settings)
    version, _ = await floor_state(db, settings, place)
    said = await asyncio.to_thread(ok, "table", "close-all", "bistro", db=db_path)
    assert said == "Closed 6 tables: 1, 2, 3, T1, 6, T2.\n"  # as closed: each party's own table, then its others
    after, statuses = await floor_state(db, settings, place)
    assert set(statuses.values()) == {"free"} and after == version + 6  # one version per table
    (items,) = await bulk_events(db, place)  # one bulk, one item per party, named by its own table
    assert items == [{"action": "close_table", "table_id": place.ids[label], "ok": True} for label in ("1", "2", "T1",
                                                                                                        "T2")]
    assert await asyncio.to_thread(ok, "table", "close-all", "bistro", db=db_path) == "Nothing to close.\n"
    assert (await floor_state(db, settings, place))[0] == after


async def test_close_all_in_an_area_frees_every_table_of_it(db_path, db, settings):
    """A party with a table in the area is closed whole, its tables elsewhere with it; the others stay."""
    place = await floor_with_parties(db, settings)
    said = await asyncio.to_thread(ok, "table", "close-all", "bistro", "--area", "Terrace", db=db_path)
    assert said == "Closed 3 tables: T1, 6, T2.\n"
    _, statuses = await floor_state(db, settings, place)
    assert statuses == {"1": "occupied", "2": "occupied", "3": "occupied", "4": "free", "5": "free", "6": "free",
                        "T1": "free", "T2": "free"}
    again = await asyncio.to_thread(ok, "table", "close-all", "bistro", "--area", "Terrace", db=db_path)
    assert again == "Nothing to close in Terrace.\n"
    line = await asyncio.to_thread(refused, "table", "close-all", "bistro", "--area", "Patio", db=db_path)
    assert line == "run.py: error: bistro has no area 'Patio'; its areas are Main room, Terrace"
    assert (await floor_state(db, settings, place))[1] == statuses


async def test_a_close_all_reaches_the_open_dashboards_of_a_running_server(db_path, db, settings, client):
    """The server hears of the command line's bulk from the database: one update per table, numbered in turn."""
    place = await floor_with_parties(db, settings)
    ws, snapshot = await dashboard(client, place.viewer)
    said = await asyncio.to_thread(ok, "table", "close-all", "bistro", "--area", "Terrace", db=db_path)
    assert said == "Closed 3 tables: T1, 6, T2.\n"
    pushed = [await receive(ws, timeout=5) for _ in range(3)]
    assert [(update["type"], update["version"], update["table"]["number"], update["table"]["status"])
            for update in pushed] == [("table_update", snapshot["version"] + n, label, "free")
                                      for n, label in enumerate(("T1", "6", "T2"), start=1)]
    await ws.close()


def write_actions(tmp_path: Path, actions: object) -> str:
    path = tmp_path / "actions.json"
    path.write_text(json.dumps(actions), encoding="utf-8")
    return str(path)


async def test_a_bulk_from_a_file_or_stdin_prints_each_actions_result(db_path, db, settings, tmp_path):
    place = await floor_with_parties(db, settings)
    ids = place.ids
    actions = [{"action": "close_table", "table_id": ids["1"]}, {"action": "disable_table", "table_id": ids["4"]},
               {"action": "move_table", "from_table_id": ids["T2"], "to_table_id": ids["5"]}]
    said = await asyncio.to_thread(ok, "bulk", "bistro", write_actions(tmp_path, actions), db=db_path)
    assert said.splitlines() == [f"1. close_table table {ids['1']}: ok", f"2. disable_table table {ids['4']}: ok",
                                 f"3. move_table from table {ids['T2']} to table {ids['5']}: ok"]
    _, statuses = await floor_state(db, settings, place)
    assert (statuses["1"], statuses["4"], statuses["5"], statuses["T2"]) == ("free", "disabled", "occupied", "free")
    piped = await asyncio.to_thread(run, "bulk", "bistro", "-", db=db_path,  # 4.0 is 4, as on the socket
                                    stdin=f'[{{"action": "enable_table", "table_id": {ids["4"]}.0}}]')
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, f"1. enable_table table {ids['4']}: ok\n", "")
    assert [len(items) for items in await bulk_events(db, place)] == [3, 1]


async def test_a_failing_atomic_bulk_changes_nothing(db_path, db, settings, tmp_path):
    place = await floor_with_parties(db, settings)
    ids = place.ids
    actions = [{"action": "close_table", "table_id": ids["1"]}, {"action": "disable_table", "table_id": ids["4"]},
               {"action": "disable_table", "table_id": ids["4"]}, {"action": "close_table", "table_id": ids["T2"]}]
    before = await TableService(db, settings).list_tables(place.actor.restaurant_id)
    line = await asyncio.to_thread(refused, "bulk", "bistro", write_actions(tmp_path, actions), db=db_path)
    assert line == "run.py: error: Item 3 (disable_table): Table 4 is already disabled. Nothing was changed."
    assert await TableService(db, settings).list_tables(place.actor.restaurant_id) == before
    assert await bulk_events(db, place) == []


async def test_a_bulk_not_atomic_reports_each_action_and_keeps_those_that_worked(db_path, db, settings, tmp_path):
    place = await floor_with_parties(db, settings)
    ids = place.ids
    actions = [{"action": "close_table", "table_id": ids["1"]}, {"action": "disable_table", "table_id": ids["4"]},
               {"action": "disable_table", "table_id": ids["4"]}, {"action": "seat_table", "table_id": ids["2"]}]
    done = await asyncio.to_thread(run, "bulk", "bistro", write_actions(tmp_path, actions), "--not-atomic",
                                   db=db_path)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"1. close_table table {ids['1']}: ok",
        f"2. disable_table table {ids['4']}: ok",
        f"3. disable_table table {ids['4']}: already_disabled: Table 4 is already disabled.",
        f"4. seat_table table {ids['2']}: table_occupied: Table 2 already has guests.",
    ]
    assert done.stderr == "run.py: error: 2 of 4 actions failed; the others were done.\n"
    _, statuses = await floor_state(db, settings, place)
    assert (statuses["1"], statuses["2"], statuses["4"]) == ("free", "occupied", "disabled")
    (items,) = await bulk_events(db, place)
    assert [item["ok"] for item in items] == [True, True, False, False]


TOO_MANY = [{"action": "disable_table", "table_id": 1}] * 101


@pytest.mark.parametrize(("content", "reason"), [
    ("[{\"action\": \"close_table\", \"table_id\": 1}", "actions.json is not valid JSON: Expecting"),
    ('{"actions": [{"action": "close_table", "table_id": 1}]}', "actions.json holds an object, not an array"),
    ("[]", "actions.json: A bulk needs \"actions\": a list of one or more actions."),
    ('[{"action": "close_table", "table_id": 1}, 4]', "actions.json: actions[1] is not an action"),
    ('[{"action": "close_table", "table_id": "1"}]', "actions.json: actions[0]: close_table needs table_id"),
    ('[{"action": "close"}]', "actions.json: actions[0]: there is no action 'close'."),
    ('[{"action": "bulk", "actions": []}]', "actions.json: actions[0]: bulk cannot be part of a bulk."),
    (json.dumps(TOO_MANY), "actions.json: A bulk holds at most 100 actions, not 101."),
    (None, "cannot read actions.json: [Errno 2] No such file"),
])
async def test_a_malformed_bulk_file_is_a_usage_error_and_changes_nothing(db_path, db, settings, tmp_path, content,
                                                                           reason):
    place = await floor_with_parties(db, settings)
    before = await floor_state(db, settings, place)
    if content is not None:
        (tmp_path / "actions.json").write_text(content, encoding="utf-8")
    refusal = await asyncio.to_thread(run, "bulk", "bistro", "actions.json", db=db_path, cwd=tmp_path)
    assert (refusal.returncode, refusal.stdout) == (2, "")
    assert refusal.stderr.startswith(f"run.py: error: {reason}") and refusal.stderr.count("\n") == 1, refusal.stderr
    assert await floor_state(db, settings, place) == before


def test_the_database_can_come_from_the_environment(tmp_path):
    path = str(tmp_path / "from-env.db")
    result = run("restaurant", "add", "envy", "--name", "Envy", env={"MAITRE_DB_PATH": path})
    assert result.returncode == 0, result.stderr
    assert Path(path).exists()


@pytest.mark.parametrize(("env", "base"), [
    ({"MAITRE_PORT": "9000"}, "http://127.0.0.1:9000"),
    ({"MAITRE_HOST": "192.168.1.20", "MAITRE_PORT": "8081"}, "http://192.168.1.20:8081"),
    ({"MAITRE_PUBLIC_URL": "https://maitre.example/", "MAITRE_HOST": "0.0.0.0"}, "https://maitre.example"),
])
def test_guests_addresses_follow_the_servers_settings(db_path, env, base):
    ok("restaurant", "add", "bistro", "--name", "Bistro", "--tables", "2", db=db_path)
    listed = run("table", "list", "bistro", "--json", db=db_path, env=env)
    assert listed.returncode == 0 and listed.stderr == ""
    assert [t["guest_url"] for t in json.loads(listed.stdout)] == [
        f"{base}/t/{t['qr_token']}" for t in json.loads(listed.stdout)]
    rotated = run("table", "rotate-qr", "bistro", "1", db=db_path, env=env)
    assert rotated.returncode == 0 and rotated.stdout.splitlines()[-1].startswith(f"{base}/t/")


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_server_on_every_address_has_no_guests_address_to_print(db_path, host):
    """Phones cannot reach 0.0.0.0: the command line says it cannot know their address and what to set."""
    ok("restaurant", "add", "bistro", "--name", "Bistro", "--tables", "2", db=db_path)
    listed = run("table", "list", "bistro", db=db_path, env={"MAITRE_HOST": host})
    assert listed.returncode == 0
    assert [line.split()[-1] for line in listed.stdout.splitlines()] == ["guest_url", "-", "-"]
    (note,) = listed.stderr.splitlines()
    assert f"MAITRE_HOST is {host}" in note and "not known" in note and "set MAITRE_PUBLIC_URL" in note
    assert all(t["guest_url"] is None for t in json.loads(
        run("table", "list", "bistro", "--json", db=db_path, env={"MAITRE_HOST": host}).stdout))
    rotated = run("table", "rotate-qr", "bistro", "1", db=db_path, env={"MAITRE_HOST": host})
    assert rotated.returncode == 0 and "new QR code" in rotated.stdout and "/t/" not in rotated.stdout
    assert "set MAITRE_PUBLIC_URL" in rotated.stderr and host not in rotated.stdout


@pytest.mark.parametrize(("args", "reason"), [
    (("restaurant", "add", "Bad Slug", "--name", "X"), "slug"),
    (("restaurant", "add", "ok"), "--name"),
    (("restaurant", "add", "ok", "--name", "X", "--tables", "many"), "invalid int"),
    (("table", "add", "nowhere", "5"), "no restaurant"),
    (("table", "add", "bistro", "1"), "already a table 1"),
    (("table", "add", "bistro", "9", "--seats", "0"), "seats"),
    (("table", "list", "nowhere"), "no restaurant"),
    (("key", "add", "bistro", "--role", "owner"), "invalid choice"),
    (("key", "add", "bistro", "--name", "x" * 41), "A name is 1 to 40 characters"),
    (("section", "set", "bistro"), "required"),
    (("section", "set", "nowhere", "Sam"), "no restaurant"),
    (("section", "set", "bistro", "Sam", "--area"), "expected one argument"),
    (("section", "list", "nowhere"), "no restaurant"),
    (("key", "revoke", "42"), "no key 42"),
    (("key", "revoke", "abc"), "invalid int"),
    (("dance",), "invalid choice"),
    (("restaurant", "set", "bistro"), "nothing to set"),
    (("restaurant", "set", "bistro", "--idle-alert-minutes", "soon"), "number of minutes"),
    (("restaurant", "set", "bistro", "--idle-warning-minutes", "90"), "idle warning"),
    (("table", "set", "bistro", "2", "--label", "1"), "There is already a table 1."),
    (("table", "set", "bistro", "2", "--label", " "), "label must be 1 to 40 characters"),
    (("table", "set", "bistro", "2"), "Say what to change"),
    (("table", "set", "bistro", "2", "--seats", "0"), "between 1 and 100 seats"),
    (("table", "set", "bistro", "2", "--seats", "many"), "invalid int"),
    (("table", "set", "bistro", "2", "--area", ""), "area name must be 1 to 40"),
    (("table", "set", "bistro", "2", "--position", "0"), "A position is a whole number"),
    (("table", "set", "bistro", "Nope", "--seats", "2"), "bistro has no table 'Nope'"),
    (("table", "set", "nowhere", "1", "--seats", "2"), "no restaurant"),
    (("table", "remove", "bistro", "Nope"), "bistro has no table 'Nope'"),
    (("table", "remove", "nowhere", "1"), "no restaurant"),
    (("table", "remove", "bistro"), "required"),
])
def test_bad_input_exits_with_one_line(db_path, args, reason):
    ok("restaurant", "add", "bistro", "--name", "Bistro", "--tables", "2", db=db_path)
    assert reason in refused(*args, db=db_path)


def test_bad_setting_and_bad_database_path_exit_with_one_line(tmp_path):
    assert "MAITRE_PORT" in refused("restaurant", "list", env={"MAITRE_PORT": "eighty"})
    assert "cannot open the database" in refused("restaurant", "list", db=str(tmp_path / "no" / "such" / "dir.db"))
    assert "--port" in refused("serve", "--port", "eighty")
    assert "required" in refused("table")


def test_first_start_creates_the_demo_then_later_starts_do_not(tmp_path):
    server = Server(tmp_path)
    try:
        status, body = server.get("/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok", "database": "ok"}
        assert server.get("/")[0] == 200
    finally:
        assert server.stop() == 0
    key_lines = [line for line in server.output if line.startswith("Admin key")]
    assert len(key_lines) == 1
    key = key_lines[0].rsplit(" ", 1)[1]
    assert key.startswith("mtr_")
    assert any(f"http://127.0.0.1:{server.port}/" in line for line in server.output)
    db = str(tmp_path / "maitre.db")
    assert (tmp_path / "maitre.db").exists()
    demo = json.loads(ok("restaurant", "list", "--json", db=db))
    assert [(r["slug"], r["tables"]) for r in demo] == [("demo", 12)]

    again = Server(tmp_path)
    try:
        assert again.get("/healthz")[0] == 200
    finally:
        assert again.stop() == 0
    assert not any(line.startswith("Admin key") for line in again.output)
    assert any("key add" in line for line in again.output)
    assert json.loads(ok("restaurant", "list", "--json", db=db)) == demo
    assert len(json.loads(ok("key", "list", "demo", "--json", db=db))) == 1


def test_serve_without_demo_explains_how_to_begin(tmp_path):
    server = Server(tmp_path, "serve", "--no-demo", "--db", "empty.db")
    try:
        assert server.get("/healthz")[0] == 200
    finally:
        assert server.stop() == 0
    assert any("restaurant add" in line for line in server.output)
    assert json.loads(ok("restaurant", "list", "--json", db=str(tmp_path / "empty.db"))) == []


def test_changes_from_the_cli_reach_a_running_server_database(tmp_path):
    server = Server(tmp_path)
    try:
        ok("table", "add", "demo", "Bar 1", "--area", "Bar", db=str(tmp_path / "maitre.db"))
        tables = json.loads(ok("table", "list", "demo", "--json", db=str(tmp_path / "maitre.db")))
        assert tables[-1]["number"] == "Bar 1"
        assert server.get("/healthz")[0] == 200
    finally:
        assert server.stop() == 0


def test_the_servers_log_never_shows_a_key(tmp_path):
    server = Server(tmp_path)
    key = next(line for line in server.output if line.startswith("Admin key")).rsplit(" ", 1)[1]

    async def visit() -> None:
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{server.port}"
            async with session.ws_connect(f"{base}/admin/ws/dashboard?token={key}") as ws:
                assert (await ws.receive_json())["type"] == "tables_snapshot"
            async with session.post(f"{base}/admin/login", data={"key": key}, headers={"Origin": base}) as response:
                assert response.status == 200

    try:
        asyncio.run(visit())
    finally:
        assert server.stop() == 0
    log = server.process_output().split("Running on", 1)[1]  # the key was printed once, at first start
    assert "/admin/ws/dashboard" in log and "POST /admin/login" in log
    assert key not in log


PARIS = {"MAITRE_TIME_ZONE": "Europe/Paris"}
PARIS_OFFSET = timedelta(hours=1)  # in November


async def a_day_in_paris(db: Database, settings: Settings) -> None:
    """Friday 20 November 2026 at Le Bistro (Paris), through the services on a clock set before each change:
    tables 1..4 in the main room, T1 on the terrace; lunch: 4 guests at 1 (closed, restored, closed again:
    105 min), 2 at 2 (90 min) whose call Sam claims in 1:30 and sees to 5:00 after it was made; dinner: 3 at T1,
    moved to 3 and closed after midnight (270 min). Table 4 stays free."""
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def at(hh_mm_ss: str, day: int = 20) -> None:
        nonlocal now
        now = datetime.fromisoformat(f"2026-11-{day}T{hh_mm_ss}").replace(tzinfo=UTC) - PARIS_OFFSET

    def clock() -> str:
        return format_time(now)

    restaurant = await RestaurantService(db, settings, clock).add("bistro", "Le Bistro", tables=4)
    admin = Actor(restaurant["id"], "setup", "admin")
    table_id = {"T1": the_table(await FloorService(db, settings, clock).add_table(admin, "T1", 4, "Terrace"))["id"]}
    _, rows = await TableService(db, settings).list_tables(restaurant["id"])
    table_id |= {row["number"]: row["id"] for row in rows}
    record, _ = await KeyService(db).add("bistro", "Sam's phone", "waiter", name="Sam")
    sam = Actor(restaurant["id"], "Sam's phone", "waiter", key_id=record["id"])
    tables, waiters = TableService(db, settings, clock), WaiterService(db, settings, clock)
    token = (await FloorService(db, settings).qr_tokens(restaurant["id"]))[table_id["2"]]
    for moment, change in [
        ("12:05:00", lambda: tables.seat_table(admin, table_id["1"], 4)),
        ("12:10:00", lambda: tables.seat_table(admin, table_id["2"], 2)),
        ("12:30:00", lambda: waiters.request(token, "call_waiter")),
        ("12:31:30", lambda: waiters.claim(sam, 1)),  # the database's first call
        ("12:35:00", lambda: waiters.resolve(sam, 1)),
        ("13:20:00", lambda: tables.close_table(admin, table_id["1"])),
        ("13:25:00", lambda: tables.restore_table(admin, table_id["1"])),
        ("13:40:00", lambda: tables.close_table(admin, table_id["2"])),
        ("13:50:00", lambda: tables.close_table(admin, table_id["1"])),
        ("20:00:00", lambda: tables.seat_table(admin, table_id["T1"], 3)),
        ("20:30:00", lambda: tables.move_table(admin, table_id["T1"], table_id["3"])),
    ]:
        at(moment)
        assert (await change()).ok, moment
    at("00:30:00", day=21)
    assert (await tables.close_table(admin, table_id["3"])).ok


def figures(text: str, heading: str) -> dict[str, list[str]]:
    """The rows under a heading of `run.py report`'s summary, each by its first cell: {"12:00": ["6", "2", ...]}."""
    section = text.split(f"\n{heading}\n", 1)[1].split("\n\n", 1)[0]
    return {cells[0]: cells[1:] for cells in (line.split() for line in section.splitlines())}


async def test_a_days_report_is_printed_for_a_manager_and_as_json(db_path, db, settings):
    await a_day_in_paris(db, settings)
    said = await asyncio.to_thread(run, "report", "bistro", "--day", "2026-11-20", db=db_path, env=PARIS)
    assert said.returncode == 0 and said.stderr == "", said.stderr
    text = said.stdout
    assert text.startswith("Le Bistro: Friday 20 November 2026\n"
                           "Service days start at 04:00, Europe/Paris time (1 day).\n\n"
                           "Parties 3, covers 9; tables used ")  # a restored party is one, a moved one too
    assert "; guests' calls 1; restores 1.\n" in text
    hours = figures(text, "Covers and parties per hour")
    assert list(hours) == ["hour", *(f"{hour}:00" for hour in range(12, 21))]  # the first seating to the last
    assert hours["12:00"] == ["6", "2", "#" * 40] and hours["20:00"] == ["3", "1", "#" * 20]
    assert all(hours[f"{hour}:00"] == ["0", "0"] for hour in range(13, 20))
    turns = figures(text, "Turn times, seated to closed")
    assert turns["All"][:4] == ["parties", "3", "105", "min"]  # 90, 105 and 270 minutes: the median
    calls = figures(text, "Guests' calls: time to claim and to resolve (minutes:seconds)")
    assert calls["Call"] == ["a", "waiter", "1", "1", "1:30", "/", "1:30", "1", "5:00", "/", "5:00"]
    assert calls["by"] == ["Sam", "1", "1", "1:30", "/", "1:30", "1", "5:00", "/", "5:00"]
    assert figures(text, "Restores per day")["2026-11-20"] == ["1"]
    assert text.endswith("Tables never used: 4 (Main room).\n")

    as_json = await asyncio.to_thread(run, "report", "bistro", "--from", "2026-11-20", "--to", "2026-11-20",
                                      "--json", db=db_path, env=PARIS)
    assert as_json.returncode == 0, as_json.stderr
    reports = ReportService(db, Settings.from_env(environ=PARIS, db_path=db_path))
    period = await reports.period(1, first="2026-11-20", last="2026-11-20")
    expected = await reports.report(Actor(1, "cli", "admin"), period)
    assert json.loads(as_json.stdout) == json.loads(json.dumps(expected))
    assert expected["totals"]["parties"] == 3 and expected["waiter"] is None  # the command line is an admin


async def test_a_day_without_guests_is_reported_as_such(db_path, db, settings):
    await a_day_in_paris(db, settings)
    said = await asyncio.to_thread(run, "report", "bistro", "--day", "2026-11-19", db=db_path, env=PARIS)
    assert said.returncode == 0, said.stderr
    assert "Parties 0, covers 0; tables used 0 of 5; guests' calls 0; restores 0.\n" in said.stdout
    for empty in ("  Nobody was seated.\n", "  No calls.\n", "Restores per day\n  None.\n",
                  "Tables never used: 1 (Main room), 2 (Main room), 3 (Main room), 4 (Main room), T1 (Terrace)."):
        assert empty in said.stdout, said.stdout


@pytest.mark.parametrize(("args", "code"), [
    (("--day", "yesterday"), 2),
    (("--day", "2026-02-30"), 2),
    (("--from", "2026-11-20", "--to", "2026-11-01"), 2),
    (("--from", "2026-01-01", "--to", "2026-11-20"), 2),  # over 90 days
    (("--day", "2026-11-20", "--from", "2026-11-19", "--to", "2026-11-20"), 2),
])
def test_a_report_of_dates_it_cannot_use_exits_2_with_one_line(db_path, args, code):
    ok("restaurant", "add", "bistro", "--name", "Bistro", "--tables", "2", db=db_path)
    said = run("report", "bistro", *args, db=db_path)
    assert said.returncode == code and said.stdout == "" and "Traceback" not in said.stderr
    assert len(said.stderr.strip().splitlines()) == 1 and said.stderr.startswith("run.py: error: "), said.stderr


async def test_a_restaurant_in_its_own_time_zone_is_reported_in_it(db_path, db, settings):
    await a_day_in_paris(db, settings)
    said = await asyncio.to_thread(ok, "restaurant", "set", "bistro", "--time-zone", "Europe/Paris", db=db_path)
    assert said.rstrip().endswith(", time_zone Europe/Paris.")
    assert "is not a time zone" in await asyncio.to_thread(refused, "restaurant", "set", "bistro", "--time-zone",
                                                           "Mars/Olympus", db=db_path)
    text = await asyncio.to_thread(ok, "report", "bistro", "--day", "2026-11-20", db=db_path)  # the server's: UTC
    assert text.startswith("Le Bistro: Friday 20 November 2026\nService days start at 04:00, Europe/Paris time")
    assert "Parties 3, covers 9; " in text
    said = await asyncio.to_thread(ok, "restaurant", "set", "bistro", "--time-zone", "default", db=db_path)
    assert said.rstrip().endswith(", time_zone default.")
    assert "04:00, UTC time" in await asyncio.to_thread(ok, "report", "bistro", "--day", "2026-11-20", db=db_path)


def test_a_report_of_an_unknown_restaurant_exits_1(db_path):
    assert "no restaurant" in refused("report", "nowhere", db=db_path)
