"""Bulk operations: several changes in one transaction, on every road (service, socket, HTTP)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from app.db import Database
from app.services.bulk import BulkService, Item
from app.services.core import Actor
from app.services.tables import TableService
from app.web.socket import MAX_MESSAGE_BYTES

from .support import audit_events, dashboard, eventually, make_place, origin, receive, signed_in

JSON = {"Accept": "application/json"}


def close(table_id: int) -> dict[str, Any]:
    return {"action": "close_table", "table_id": table_id}


def items(tables: TableService, actor: Actor, asked: list[dict[str, Any]]) -> list[Item]:
    """Service-level items for what a client would send (the web layer's parse_bulk does this for real)."""
    built = []
    for item in asked:
        method = getattr(tables, item["action"])
        fields = {key: value for key, value in item.items() if key != "action"}
        built.append(Item(item, method(actor, *fields.values())))
    return built


@pytest.fixture
def bulk(db: Database, settings) -> BulkService:
    return BulkService(db, settings)


@pytest.fixture
async def big(db, settings):
    """A restaurant of 60 tables, every one seated."""
    place = await make_place(db, settings, "big", 60)
    tables = TableService(db, settings)
    for table_id in place.ids.values():
        assert (await tables.seat_table(place.actor, table_id, 2)).ok
    return place


# -- the service ----------------------------------------------------------------------------------


async def test_an_atomic_bulk_changes_every_table_once_in_one_event(tables, bulk, bistro_place, db_path):
    place, ids = bistro_place, bistro_place.ids
    for label in "123":
        await tables.seat_table(place.actor, ids[label], 2)
    before = (await tables.list_tables(place.actor.restaurant_id))[0]
    events_before = len(audit_events(db_path))
    asked = [close(ids["1"]), close(ids["2"]), {"action": "disable_table", "table_id": ids["5"]},
             {"action": "set_note", "table_id": ids["3"], "note": "birthday"}, close(ids["3"])]
    result = await bulk.bulk(place.actor, items(tables, place.actor, asked))
    assert result.ok and result.outcomes == ({"ok": True},) * 5
    # table 3 changed twice (a note, then closed): one update, its final state
    assert [update.table["id"] for update in result.updates] == [ids["1"], ids["2"], ids["5"], ids["3"]]
    assert [update.version for update in result.updates] == [before + 1, before + 2, before + 3, before + 4]
    assert result.version == before + 4
    final = {update.table["id"]: update.table for update in result.updates}
    assert final[ids["3"]]["status"] == "free" and final[ids["5"]]["status"] == "disabled"
    events = audit_events(db_path)[events_before:]
    assert len(events) == 1 and events[0]["action"] == "bulk" and events[0]["version"] == before + 4
    assert json.loads(events[0]["items"]) == [{**item, "ok": True} for item in asked]
    assert [table["id"] for table in json.loads(events[0]["before"])] == [ids["1"], ids["2"], ids["5"], ids["3"]]
    assert json.loads(events[0]["before"])[3]["session"]["note"] is None  # as it was before the bulk


async def test_an_atomic_bulk_whose_fiftieth_item_fails_changes_nothing(tables, bulk, big, db_path):
    before = await tables.list_tables(big.actor.restaurant_id)
    events_before = audit_events(db_path)
    asked = [close(table_id) for table_id in list(big.ids.values())[:49]]
    asked.append({"action": "disable_table", "table_id": big.ids["50"]})  # seated: refused
    asked.extend(close(table_id) for table_id in list(big.ids.values())[50:])
    result = await bulk.bulk(big.actor, items(tables, big.actor, asked))
    assert not result.ok and result.code == "bulk_failed"
    assert result.failed == {"index": 49, "code": "table_occupied",
                             "detail": "Table 50 has guests; close it before disabling it."}
    assert result.detail.startswith("Item 50 (disable_table): Table 50 has guests") and "Nothing was changed" in (
        result.detail)
    assert await tables.list_tables(big.actor.restaurant_id) == before  # every table, and the version
    assert audit_events(db_path) == events_before


async def test_a_bulk_that_is_not_atomic_keeps_what_succeeded(tables, bulk, bistro_place, db_path):
    place, ids = bistro_place, bistro_place.ids
    await tables.seat_table(place.actor, ids["1"], 2)
    before = (await tables.list_tables(place.actor.restaurant_id))[0]
    asked = [close(ids["2"]), close(ids["1"]), {"action": "enable_table", "table_id": ids["4"]},
             {"action": "disable_table", "table_id": ids["4"]}, {"action": "seat_table", "table_id": 999_999}]
    result = await bulk.bulk(place.actor, items(tables, place.actor, asked), atomic=False)
    assert result.ok
    assert [outcome["ok"] for outcome in result.outcomes] == [False, True, False, True, False]
    assert [outcome.get("code") for outcome in result.outcomes] == [
        "no_active_session", None, "not_disabled", None, "table_not_found"]
    assert [update.table["id"] for update in result.updates] == [ids["1"], ids["4"]]
    assert result.version == before + 2
    (event,) = [row for row in audit_events(db_path) if row["action"] == "bulk"]
    assert [item["ok"] for item in json.loads(event["items"])] == [False, True, False, True, False]
    assert json.loads(event["items"])[0]["code"] == "no_active_session"


async def test_a_failed_item_is_rolled_back_to_where_it_began(tables, floor, bulk, bistro_place):
    """A removal that fails leaves no trace: not in the database, not among the bulk's updates."""
    place, ids = bistro_place, bistro_place.ids
    await tables.seat_table(place.actor, ids["2"], 2)
    asked = [Item({"action": "remove_table", "table_id": ids["1"]}, floor.remove_table(place.actor, ids["1"])),
             Item({"action": "remove_table", "table_id": ids["2"]}, floor.remove_table(place.actor, ids["2"]))]
    result = await bulk.bulk(place.actor, asked, atomic=False)
    assert [outcome["ok"] for outcome in result.outcomes] == [True, False]
    assert [update.table for update in result.updates] == [{"id": ids["1"], "number": "1", "removed": True}]
    _, rows = await tables.list_tables(place.actor.restaurant_id)
    assert [row["number"] for row in rows] == ["2", "3", "4", "5", "6"]


async def test_a_joined_party_closes_once(tables, bulk, bistro_place):
    place, ids = bistro_place, bistro_place.ids
    await tables.seat_table(place.actor, ids["1"], 6)
    await tables.join_tables(place.actor, ids["1"], ids["2"])
    result = await bulk.bulk(place.actor, items(tables, place.actor, [close(ids["1"])]))
    assert [update.table["id"] for update in result.updates] == [ids["1"], ids["2"]]
    await tables.restore_table(place.actor, ids["1"])
    result = await bulk.bulk(place.actor, items(tables, place.actor, [close(ids["1"]), close(ids["2"])]))
    assert result.failed is not None and result.failed["index"] == 1 and result.failed["code"] == "no_active_session"


async def test_a_key_that_may_not_change_tables_sends_no_bulk(tables, bulk, bistro_place):
    viewer = Actor(bistro_place.actor.restaurant_id, "wall screen", "viewer")
    result = await bulk.bulk(viewer, items(tables, viewer, [close(bistro_place.ids["1"])]))
    assert result.code == "forbidden"


async def test_a_bulk_is_its_actors_and_at_most_a_hundred_items(tables, bulk, bistro_place, cafe_place):
    with pytest.raises(ValueError):
        bulk.bulk(bistro_place.actor, items(tables, bistro_place.actor, [close(bistro_place.ids["1"])] * 101))
    with pytest.raises(ValueError):
        bulk.bulk(bistro_place.actor, items(tables, cafe_place.actor, [close(cafe_place.ids["1"])]))


async def test_an_atomic_bulk_is_never_seen_half_done_beside_another_writer(db_path, settings, tables, bulk, big):
    """Another process's connection writes single changes while bulks close and restore ten tables at once;
    a reader on a third connection sees those ten all closed or all seated, never some of each."""
    bulk_ids = list(big.ids.values())[:10]
    others = list(big.ids.values())[10:20]
    writer_db, reader_db = await Database.open(db_path), await Database.open(db_path)
    writer = TableService(writer_db, settings)
    reader = TableService(reader_db, settings)
    seen: set[tuple[bool, ...]] = set()
    done = asyncio.Event()

    async def write_alone() -> None:
        while not done.is_set():
            for table_id in others:
                await writer.close_table(big.actor, table_id)
                await writer.seat_table(big.actor, table_id, 2)

    async def read() -> None:
        while not done.is_set():
            _, rows = await reader.list_tables(big.actor.restaurant_id)
            seen.add(tuple(row["status"] == "occupied" for row in rows if row["id"] in bulk_ids))
            await asyncio.sleep(0)

    try:
        background = [asyncio.create_task(write_alone()), asyncio.create_task(read())]
        for n in range(20):
            action = "close_table" if n % 2 == 0 else "restore_table"
            result = await bulk.bulk(big.actor, items(tables, big.actor,
                                                      [{"action": action, "table_id": t} for t in bulk_ids]))
            assert result.ok, result
        await eventually(lambda: len(seen) >= 2)
        done.set()
        await asyncio.gather(*background)
    finally:
        await writer_db.close()
        await reader_db.close()
    assert seen == {(True,) * 10, (False,) * 10}


# -- the socket -----------------------------------------------------------------------------------


async def test_a_bulk_over_the_socket_is_one_update_per_table_on_every_dashboard(client, bistro_place, tables):
    place, ids = bistro_place, bistro_place.ids
    for label in "123":
        await tables.seat_table(place.actor, ids[label], 2)
    ws, snapshot = await dashboard(client, place.admin)
    other, _ = await dashboard(client, place.viewer)
    version = snapshot["version"]
    await ws.send_str(json.dumps({"action": "bulk", "ref": "r1", "actions": [
        close(ids["1"]), close(ids["2"]), {"action": "set_note", "table_id": ids["3"], "note": "late"},
        close(ids["3"])]}))
    for watcher in (ws, other):
        updates = [await receive(watcher) for _ in range(3)]
        assert [(u["type"], u["version"], u["table"]["id"]) for u in updates] == [
            ("table_update", version + 1, ids["1"]), ("table_update", version + 2, ids["2"]),
            ("table_update", version + 3, ids["3"])]
        assert {u["table"]["status"] for u in updates} == {"free"}
    assert await receive(ws) == {"type": "ack", "ref": "r1", "version": version + 3, "results": [{"ok": True}] * 4}
    await ws.send_str(json.dumps({"action": "ping"}))
    assert await receive(ws) == {"type": "pong"}  # nothing else was sent: one update per table
    await other.send_str(json.dumps({"action": "ping"}))
    assert await receive(other) == {"type": "pong"}


async def test_a_failed_atomic_bulk_over_the_socket_pushes_nothing(client, bistro_place, tables):
    place, ids = bistro_place, bistro_place.ids
    await tables.seat_table(place.actor, ids["1"], 2)
    ws, _ = await dashboard(client, place.admin)
    other, _ = await dashboard(client, place.viewer)
    await ws.send_str(json.dumps({"action": "bulk", "ref": 7, "atomic": True,
                                  "actions": [close(ids["1"]), close(ids["2"])]}))
    assert await receive(ws) == {
        "type": "error", "code": "bulk_failed", "ref": 7,
        "detail": "Item 2 (close_table): Table 2 has no guests to close. Nothing was changed.",
        "failed": {"index": 1, "code": "no_active_session", "detail": "Table 2 has no guests to close."}}
    await other.send_str(json.dumps({"action": "ping"}))
    assert await receive(other) == {"type": "pong"}


async def test_a_bulk_that_is_not_atomic_answers_item_by_item(client, bistro_place, tables):
    place, ids = bistro_place, bistro_place.ids
    await tables.seat_table(place.actor, ids["1"], 2)
    ws, snapshot = await dashboard(client, place.admin)
    await ws.send_str(json.dumps({"action": "bulk", "ref": "n", "atomic": False,
                                  "actions": [close(ids["2"]), close(ids["1"])]}))
    assert (await receive(ws))["table"]["id"] == ids["1"]
    assert await receive(ws) == {"type": "ack", "ref": "n", "version": snapshot["version"] + 1, "results": [
        {"ok": False, "code": "no_active_session", "detail": "Table 2 has no guests to close."}, {"ok": True}]}


@pytest.mark.parametrize(("message", "code", "names"), [
    ({"actions": []}, "invalid_action", "actions"),
    ({"actions": "close"}, "invalid_action", "actions"),
    ({"atomic": "yes", "actions": [{"action": "close_table", "table_id": 1}]}, "invalid_action", "atomic"),
    ({"actions": [{"action": "close_table", "table_id": 1}, {"action": "bulk", "actions": []}]}, "invalid_action",
     "actions[1]"),
    ({"actions": [{"action": "ping"}]}, "invalid_action", "actions[0]"),
    ({"actions": [{"action": "sync", "since": 1}]}, "invalid_action", "actions[0]"),
    ({"actions": [{"action": "close_table", "table_id": "1"}]}, "invalid_action", "actions[0]"),
    ({"actions": [7]}, "invalid_action", "actions[0]"),
    ({"actions": [{"action": "dance", "table_id": 1}]}, "unknown_action", "actions[0]"),
    ({"actions": [{"action": "close_table", "table_id": 1}] * 101}, "bulk_too_large", "100"),
])
async def test_a_malformed_bulk_is_refused_whole_and_the_socket_kept(client, bistro_place, message, code, names):
    ws, _ = await dashboard(client, bistro_place.admin)
    await ws.send_str(json.dumps({"action": "bulk", "ref": "m", **message}))
    reply = await receive(ws)
    assert reply["type"] == "error" and reply["code"] == code and reply["ref"] == "m" and names in reply["detail"]
    await ws.send_str(json.dumps({"action": "ping"}))
    assert await receive(ws) == {"type": "pong"}


async def test_a_full_bulk_of_the_longest_items_fits_in_one_frame(client, bistro_place):
    """100 moves with the largest ids and an inflated `ref` are still under the 16 KiB limit: answered, not cut."""
    ws, _ = await dashboard(client, bistro_place.admin)
    move = {"action": "move_table", "from_table_id": 2**62, "to_table_id": 2**62 - 1}
    text = json.dumps({"action": "bulk", "ref": "r" * 64, "atomic": False, "actions": [move] * 100})
    assert 8_000 < len(text) < MAX_MESSAGE_BYTES
    await ws.send_str(text)
    reply = await receive(ws)
    assert reply["type"] == "ack" and len(reply["results"]) == 100
    assert {result["code"] for result in reply["results"]} == {"source_table_not_found"}


async def test_the_rate_limit_counts_a_bulk_as_one_message(client, bistro_place, tables):
    place, ids = bistro_place, bistro_place.ids
    ws, _ = await dashboard(client, place.admin)
    toggles = [{"action": "disable_table", "table_id": ids["6"]}, {"action": "enable_table", "table_id": ids["6"]}]
    for n in range(15):  # 15 bulks of 100 items each: within the burst of 20 messages
        await ws.send_str(json.dumps({"action": "bulk", "ref": n, "actions": toggles * 50}))
    acks = []
    while len(acks) < 15:
        message = await receive(ws)
        assert message["type"] != "error", message
        if message["type"] == "ack":
            acks.append(message["ref"])
    assert acks == list(range(15))


# -- HTTP -----------------------------------------------------------------------------------------


async def test_the_bulk_endpoint_answers_as_the_socket_does(client, bistro_place, tables):
    place, ids = bistro_place, bistro_place.ids
    await tables.seat_table(place.actor, ids["1"], 2)
    bearer = {"Authorization": f"Bearer {place.admin}"}
    ws, snapshot = await dashboard(client, place.viewer)
    response = await client.post("/admin/api/bulk", json={"actions": [close(ids["1"])]}, headers=bearer)
    assert response.status == 200
    body = await response.json()
    assert body["type"] == "ack" and body["version"] == snapshot["version"] + 1 and body["results"] == [{"ok": True}]
    assert [table["id"] for table in body["tables"]] == [ids["1"]]
    assert (await receive(ws))["table"]["status"] == "free"
    failed = await client.post("/admin/api/bulk", json={"actions": [close(ids["1"])]}, headers=bearer)
    assert failed.status == 409
    assert (await failed.json())["failed"] == {"index": 0, "code": "no_active_session",
                                               "detail": "Table 1 has no guests to close."}
    for body, code in [("{", "invalid_json"), (json.dumps({"actions": [{"action": "nap"}]}), "unknown_action"),
                       (json.dumps({"actions": [close(1)] * 101}), "bulk_too_large")]:
        malformed = await client.post("/admin/api/bulk", data=body,
                                      headers={**bearer, "Content-Type": "application/json"})
        assert malformed.status == 422 and (await malformed.json())["code"] == code
    viewer = await client.post("/admin/api/bulk", json={"actions": [close(ids["1"])]},
                               headers={"Authorization": f"Bearer {place.viewer}"})
    assert viewer.status == 403 and (await viewer.json())["code"] == "forbidden"
    nobody = await client.post("/admin/api/bulk", json={"actions": [close(ids["1"])]})
    assert nobody.status == 401


async def test_the_bulk_endpoint_takes_the_sign_in_with_its_proof_only(client, bistro_place, tables):
    place, ids = bistro_place, bistro_place.ids
    token = await signed_in(client, place.admin)
    body = {"actions": [{"action": "disable_table", "table_id": ids["4"]}]}
    ours = {"Origin": origin(client)}
    without = await client.post("/admin/api/bulk", json=body, headers=ours)
    assert without.status == 403
    foreign = await client.post("/admin/api/bulk", json=body,
                                headers={"Origin": "https://evil.example", "X-CSRF-Token": token})
    assert foreign.status == 403
    assert (await tables.list_tables(place.actor.restaurant_id))[1][3]["status"] == "free"
    sent = await client.post("/admin/api/bulk", json=body, headers={**ours, "X-CSRF-Token": token})
    assert sent.status == 200 and (await sent.json())["results"] == [{"ok": True}]


async def test_the_no_script_form_posts_a_bulk_and_comes_back_with_undo(client, bistro_place, tables):
    place, ids = bistro_place, bistro_place.ids
    for label in "12":
        await tables.seat_table(place.actor, ids[label], 2)
    token = await signed_in(client, place.admin)
    form = aiohttp.FormData([("action", "close_table"), ("table_id", str(ids["1"])), ("table_id", str(ids["2"])),
                             ("csrf_token", token), ("back", "dashboard")])
    response = await client.post("/admin/api/bulk", data=form, headers={"Origin": origin(client)},
                                 allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/dashboard"
    _, rows = await tables.list_tables(place.actor.restaurant_id)
    assert [row["status"] for row in rows[:2]] == ["free", "free"]
    page = await (await client.get("/admin/dashboard")).text()
    assert "Tables 1 and 2 closed." in page
    undo = aiohttp.FormData([("action", "restore_table"), ("table_id", str(ids["1"])), ("table_id", str(ids["2"])),
                             ("csrf_token", token), ("back", "dashboard")])
    assert (await client.post("/admin/api/bulk", data=undo, headers={"Origin": origin(client)},
                              allow_redirects=False)).status == 303
    _, rows = await tables.list_tables(place.actor.restaurant_id)
    assert [row["status"] for row in rows[:2]] == ["occupied", "occupied"]
    # a joined party's two boxes both name its own table: one close
    await tables.join_tables(place.actor, ids["1"], ids["3"])
    both = aiohttp.FormData([("action", "close_table"), ("table_id", str(ids["1"])), ("table_id", str(ids["1"])),
                             ("csrf_token", token), ("back", "dashboard")])
    assert (await client.post("/admin/api/bulk", data=both, headers={"Origin": origin(client)},
                              allow_redirects=False)).status == 303
    assert "Tables 1 and 3 closed." in await (await client.get("/admin/dashboard")).text()
    nothing = aiohttp.FormData([("action", "close_table"), ("csrf_token", token), ("back", "dashboard")])
    assert (await client.post("/admin/api/bulk", data=nothing, headers={"Origin": origin(client)},
                              allow_redirects=False)).status == 303
    assert "Select one or more tables first." in await (await client.get("/admin/dashboard")).text()


async def test_the_events_feed_lists_a_bulks_items(client, bistro_place, tables):
    place, ids = bistro_place, bistro_place.ids
    bearer = {"Authorization": f"Bearer {place.admin}", **JSON}
    asked = [{"action": "disable_table", "table_id": ids["5"]}, {"action": "disable_table", "table_id": ids["6"]}]
    assert (await client.post("/admin/api/bulk", json={"actions": asked}, headers=bearer)).status == 200
    feed = await (await client.get("/admin/api/events?since=6", headers=bearer)).json()
    (event,) = feed["events"]
    assert event["action"] == "bulk" and [table["id"] for table in event["tables"]] == [ids["5"], ids["6"]]
    assert event["items"] == [{**item, "ok": True} for item in asked]


async def test_a_bulk_written_by_another_process_reaches_the_dashboards_whole(client, bistro_place, tables, bulk):
    """`tables` and `bulk` write through a connection of their own, as the command line does: the server's
    watcher finds the bulk's one event in the log and pushes its updates, numbered as the event says."""
    place, ids = bistro_place, bistro_place.ids
    ws, snapshot = await dashboard(client, place.viewer)
    asked = [{"action": "disable_table", "table_id": ids["5"]}, {"action": "disable_table", "table_id": ids["6"]},
             {"action": "enable_table", "table_id": ids["5"]}]
    assert (await bulk.bulk(place.actor, items(tables, place.actor, asked))).ok
    updates = [await receive(ws, timeout=10), await receive(ws)]
    assert [(u["version"], u["table"]["id"], u["table"]["status"]) for u in updates] == [
        (snapshot["version"] + 1, ids["5"], "free"), (snapshot["version"] + 2, ids["6"], "disabled")]
