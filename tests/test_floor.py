"""The floor plan (FloorService): adding, changing, reordering and removing tables, as an admin does it in the
service, over the socket, over HTTP and on the no-script floor page; nobody else may."""

from __future__ import annotations

import re

import pytest

from app.services.core import Actor, Result
from app.services.floor import FloorService
from app.services.table_view import Table
from app.services.tables import TableService

from .html import cards, forms
from .support import dashboard, receive, signed_in

JSON = {"Accept": "application/json"}


async def rows(tables: TableService, actor: Actor) -> list[Table]:
    return (await tables.list_tables(actor.restaurant_id))[1]


async def ids_by_label(tables: TableService, actor: Actor) -> dict[str, int]:
    return {row["number"]: row["id"] for row in await rows(tables, actor)}


async def version(tables: TableService, actor: Actor) -> int:
    return (await tables.list_tables(actor.restaurant_id))[0]


def refused(result: Result, code: str) -> None:
    assert not result.ok and result.code == code, result
    assert result.detail and result.updates == () and result.version is None


def contiguous(result: Result, start: int) -> None:
    """One version per changed table, in order, right after `start`."""
    assert [update.version for update in result.updates] == list(range(start + 1, start + 1 + len(result.updates)))
    assert result.version == start + len(result.updates)


@pytest.fixture
async def ids(tables: TableService, bistro: Actor) -> dict[str, int]:
    return await ids_by_label(tables, bistro)


# -- adding and changing --------------------------------------------------------------------------


async def test_an_added_table_comes_last_with_four_seats_in_the_main_room_unless_told(floor, tables, bistro):
    start = await version(tables, bistro)
    plain = await floor.add_table(bistro, "7")
    assert plain.ok and plain.version == start + 1
    (added,) = plain.tables
    assert (added["number"], added["seats"], added["area"], added["position"], added["status"]) == (
        "7", 4, "Main room", 7, "free")
    terrace = await floor.add_table(bistro, "  Terrace 1 ", 2, "Terrace ")
    assert (terrace.tables[0]["number"], terrace.tables[0]["area"], terrace.tables[0]["position"]) == (
        "Terrace 1", "Terrace", 8)  # what was typed, stripped
    listed = await rows(tables, bistro)
    assert listed[-2:] == [added, terrace.tables[0]]


async def test_set_table_changes_the_label_seats_and_area_given_and_nothing_else(floor, tables, bistro, ids):
    start = await version(tables, bistro)
    renamed = await floor.set_table(bistro, ids["2"], label="Window")
    (table,) = renamed.tables
    assert (table["id"], table["number"], table["seats"], table["area"], table["position"]) == (
        ids["2"], "Window", 4, "Main room", 2)
    moved = await floor.set_table(bistro, ids["2"], seats=2, area="Terrace")
    assert (moved.tables[0]["number"], moved.tables[0]["seats"], moved.tables[0]["area"]) == ("Window", 2, "Terrace")
    contiguous(moved, start + 1)
    assert (await rows(tables, bistro))[1] == moved.tables[0]
    same = await floor.set_table(bistro, ids["3"], label="3")  # its own label is no clash
    assert same.ok and same.tables[0]["number"] == "3"


async def test_a_party_keeps_its_table_through_a_rename(floor, tables, bistro, ids):
    await tables.seat_table(bistro, ids["1"], 3)
    result = await floor.set_table(bistro, ids["1"], label="Bar", seats=6)
    (table,) = result.tables
    assert (table["number"], table["status"], table["session"]["guest_count"]) == ("Bar", "occupied", 3)
    assert table["session"]["tables"] == [{"id": ids["1"], "number": "Bar"}]


async def test_reordering_renumbers_the_tables_and_reports_every_one_that_moved(floor, tables, bistro, ids):
    start = await version(tables, bistro)
    result = await floor.set_table(bistro, ids["5"], position=2)
    assert result.ok
    # table 5 first, then each table whose place changed (2, 3 and 4 each go one down); 1 and 6 stay
    assert [(t["number"], t["position"]) for t in result.tables] == [("5", 2), ("2", 3), ("3", 4), ("4", 5)]
    contiguous(result, start)
    listed = await rows(tables, bistro)
    assert [(t["number"], t["position"]) for t in listed] == [
        ("1", 1), ("5", 2), ("2", 3), ("3", 4), ("4", 5), ("6", 6)]
    assert {t["id"]: t for t in listed} | {t["id"]: t for t in result.tables} == {t["id"]: t for t in listed}


async def test_a_table_moved_down_and_past_the_end_goes_last(floor, tables, bistro, ids):
    down = await floor.set_table(bistro, ids["1"], position=3)
    assert [(t["number"], t["position"]) for t in down.tables] == [("1", 3), ("2", 1), ("3", 2)]
    start = await version(tables, bistro)
    last = await floor.set_table(bistro, ids["2"], position=99)
    assert [(t["number"], t["position"]) for t in last.tables] == [
        ("2", 6), ("3", 1), ("1", 2), ("4", 3), ("5", 4), ("6", 5)]
    contiguous(last, start)
    assert [t["number"] for t in await rows(tables, bistro)] == ["3", "1", "4", "5", "6", "2"]
    again = await floor.set_table(bistro, ids["2"], position=6)  # already there: only itself, unchanged
    assert [(t["number"], t["position"]) for t in again.tables] == [("2", 6)]


async def test_reordering_after_a_removal_closes_the_gap(floor, tables, bistro, ids):
    await floor.remove_table(bistro, ids["3"])
    result = await floor.set_table(bistro, ids["6"], position=1)
    # 6 → 1, then 1 and 2 go one down; 4 and 5 were 4 and 5 already
    assert [(t["number"], t["position"]) for t in result.tables] == [("6", 1), ("1", 2), ("2", 3)]
    assert [(t["number"], t["position"]) for t in await rows(tables, bistro)] == [
        ("6", 1), ("1", 2), ("2", 3), ("4", 4), ("5", 5)]


async def test_label_seats_area_and_position_in_one_change(floor, tables, bistro, ids):
    result = await floor.set_table(bistro, ids["4"], label="T4", seats=8, area="Terrace", position=1)
    assert [(t["number"], t["position"]) for t in result.tables] == [("T4", 1), ("1", 2), ("2", 3), ("3", 4)]
    assert (result.tables[0]["seats"], result.tables[0]["area"]) == (8, "Terrace")


# -- removing -------------------------------------------------------------------------------------


async def test_a_removed_table_leaves_the_floor_and_its_guest_page(floor, tables, bistro, ids, client):
    token = (await floor.qr_tokens(bistro.restaurant_id))[ids["4"]]
    assert (await client.get(f"/t/{token}")).status == 200
    start = await version(tables, bistro)
    result = await floor.remove_table(bistro, ids["4"])
    assert result.ok and result.version == start + 1
    assert result.tables == [{"id": ids["4"], "number": "4", "removed": True}]
    assert [t["number"] for t in await rows(tables, bistro)] == ["1", "2", "3", "5", "6"]
    assert ids["4"] not in await floor.qr_tokens(bistro.restaurant_id)
    gone = await client.get(f"/t/{token}")
    assert gone.status == 404
    assert (await client.post(f"/t/{token}/call_waiter", allow_redirects=False)).status == 404


async def test_a_removed_tables_label_can_be_used_again_and_its_history_stays(floor, tables, bistro, ids):
    await tables.seat_table(bistro, ids["2"], 2)
    await tables.close_table(bistro, ids["2"])
    old_token = (await floor.qr_tokens(bistro.restaurant_id))[ids["2"]]
    removed = await floor.remove_table(bistro, ids["2"])
    again = await floor.add_table(bistro, "2", 6)
    assert again.ok, again
    (new,) = again.tables
    assert new["id"] != ids["2"] and (new["number"], new["seats"], new["status"]) == ("2", 6, "free")
    assert new["restorable"] is False  # the old table's party is not this table's
    assert (await floor.qr_tokens(bistro.restaurant_id))[new["id"]] != old_token
    _, events = await tables.events_after(bistro.restaurant_id, 0)
    mine = [e["action"] for e in events if ids["2"] in [t["id"] for t in e["tables"]]]
    assert mine == ["add_restaurant", "seat_table", "close_table", "remove_table"]
    (removal,) = [e for e in events if e["action"] == "remove_table"]
    assert removal["version"] == removed.version and removal["actor"] == "test admin"
    assert removal["tables"] == [{"id": ids["2"], "number": "2", "removed": True}]


async def test_a_table_with_guests_cannot_be_removed(floor, tables, bistro, ids):
    await tables.seat_table(bistro, ids["1"], 2)
    start = await version(tables, bistro)
    refused(await floor.remove_table(bistro, ids["1"]), "table_occupied")
    await tables.join_tables(bistro, ids["1"], ids["2"])  # nor one joined to a party
    refused(await floor.remove_table(bistro, ids["2"]), "table_occupied")
    assert [t["status"] for t in await rows(tables, bistro)][:2] == ["occupied", "occupied"]
    assert await version(tables, bistro) == start + 2  # the join's two; the refusals none
    await tables.close_table(bistro, ids["1"])
    assert (await floor.remove_table(bistro, ids["2"])).ok  # free again: it can go


async def test_a_disabled_table_can_be_removed(floor, tables, bistro, ids):
    await tables.disable_table(bistro, ids["6"])
    assert (await floor.remove_table(bistro, ids["6"])).ok


async def test_a_removed_table_is_not_found_by_any_operation(floor, tables, bistro, ids):
    await floor.remove_table(bistro, ids["3"])
    start = await version(tables, bistro)
    for result in [
        await floor.remove_table(bistro, ids["3"]),
        await floor.set_table(bistro, ids["3"], label="Back"),
        await floor.rotate_qr(bistro, ids["3"]),
        await tables.seat_table(bistro, ids["3"]),
        await tables.disable_table(bistro, ids["3"]),
        await tables.enable_table(bistro, ids["3"]),
        await tables.close_table(bistro, ids["3"]),
    ]:
        refused(result, "table_not_found")
    await tables.seat_table(bistro, ids["1"], 2)
    refused(await tables.move_table(bistro, ids["1"], ids["3"]), "target_table_not_found")
    refused(await tables.join_tables(bistro, ids["1"], ids["3"]), "table_not_found")
    assert await version(tables, bistro) == start + 1  # only the seating


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("label", "seats", "area", "code"), [
    ("", 4, "Main room", "invalid_label"),
    ("   ", 4, "Main room", "invalid_label"),
    ("x" * 41, 4, "Main room", "invalid_label"),
    (7, 4, "Main room", "invalid_label"),
    (" 1 ", 4, "Main room", "label_taken"),
    ("9", 0, "Main room", "invalid_seats"),
    ("9", 101, "Main room", "invalid_seats"),
    ("9", "4", "Main room", "invalid_seats"),
    ("9", True, "Main room", "invalid_seats"),
    ("9", 2.5, "Main room", "invalid_seats"),
    ("9", 4, "", "invalid_area"),
    ("9", 4, "y" * 41, "invalid_area"),
    ("9", 4, 3, "invalid_area"),
])
async def test_add_table_refuses_bad_input(floor, tables, bistro, label, seats, area, code):
    start = await version(tables, bistro)
    refused(await floor.add_table(bistro, label, seats, area), code)
    assert await version(tables, bistro) == start and len(await rows(tables, bistro)) == 6


async def test_the_limits_themselves_are_accepted(floor, bistro):
    assert (await floor.add_table(bistro, "x" * 40, 100, "y" * 40)).ok
    assert (await floor.add_table(bistro, "z", 1, "y")).ok


@pytest.mark.parametrize(("change", "code"), [
    ({}, "invalid_action"),
    ({"label": ""}, "invalid_label"),
    ({"label": "x" * 41}, "invalid_label"),
    ({"label": "2"}, "label_taken"),
    ({"label": " 2"}, "label_taken"),
    ({"seats": 0}, "invalid_seats"),
    ({"seats": 101}, "invalid_seats"),
    ({"seats": "6"}, "invalid_seats"),
    ({"area": " "}, "invalid_area"),
    ({"area": "a" * 41}, "invalid_area"),
    ({"position": 0}, "invalid_position"),
    ({"position": -1}, "invalid_position"),
    ({"position": "2"}, "invalid_position"),
    ({"position": True}, "invalid_position"),
    ({"position": 1.5}, "invalid_position"),
    ({"label": "New", "seats": 0}, "invalid_seats"),  # all or nothing: the label is not changed either
    ({"label": "New", "position": 0}, "invalid_position"),
])
async def test_set_table_refuses_bad_input_and_changes_nothing(floor, tables, bistro, ids, change, code):
    before = await rows(tables, bistro)
    start = await version(tables, bistro)
    refused(await floor.set_table(bistro, ids["1"], **change), code)
    assert await version(tables, bistro) == start and await rows(tables, bistro) == before


async def test_unknown_tables_and_other_restaurants_tables_are_not_found(floor, tables, bistro, cafe):
    (cafe_table, *_) = await rows(tables, cafe)
    before = await rows(tables, cafe)
    for result in [
        await floor.set_table(bistro, 99_999, label="X"),
        await floor.remove_table(bistro, 99_999),
        await floor.set_table(bistro, cafe_table["id"], label="Mine now"),
        await floor.set_table(bistro, cafe_table["id"], position=1),
        await floor.remove_table(bistro, cafe_table["id"]),
        await floor.rotate_qr(bistro, cafe_table["id"]),
    ]:
        refused(result, "table_not_found")
    assert await rows(tables, cafe) == before


async def test_what_was_typed_is_checked_before_the_table_is_looked_up(floor, tables, bistro):
    """As TableService does: bad input is bad input (422 over HTTP) whichever table it names."""
    refused(await floor.set_table(bistro, 99_999, seats=0), "invalid_seats")
    refused(await floor.set_table(bistro, 99_999, position=0), "invalid_position")
    refused(await tables.seat_table(bistro, 99_999, 0), "invalid_guest_count")


async def test_labels_are_unique_per_restaurant_only(floor, bistro, cafe):
    assert (await floor.add_table(cafe, "Terrace 1")).ok
    assert (await floor.add_table(bistro, "Terrace 1")).ok  # the café's has nothing to do with the bistro's


async def test_only_an_admin_may_edit_the_floor(floor, tables, bistro, ids):
    before, start = await rows(tables, bistro), await version(tables, bistro)
    for role in ("viewer", "guest", "owner"):
        someone = Actor(bistro.restaurant_id, f"a {role}", role)
        for result in [
            await floor.add_table(someone, "9"),
            await floor.set_table(someone, ids["1"], label="X"),
            await floor.set_table(someone, ids["1"], position=3),
            await floor.remove_table(someone, ids["1"]),
            await floor.rotate_qr(someone, ids["1"]),
            await floor.remove_table(someone, 99_999),  # refused before anything is looked up
        ]:
            refused(result, "forbidden")
    assert await rows(tables, bistro) == before and await version(tables, bistro) == start
    admin = Actor(bistro.restaurant_id, "another admin", "admin")
    assert (await floor.add_table(admin, "9")).ok and (await floor.remove_table(admin, ids["1"])).ok


# -- over the socket ------------------------------------------------------------------------------


async def test_an_admins_socket_edits_the_floor_and_every_dashboard_sees_it(client, bistro_place):
    admin, snapshot = await dashboard(client, bistro_place.admin)
    watcher, _ = await dashboard(client, bistro_place.viewer)
    start = snapshot["version"]

    await admin.send_json({"action": "add_table", "label": "Terrace 1", "seats": 2, "area": "Terrace", "ref": "a"})
    added = await receive(admin)
    assert added["type"] == "table_update" and added["version"] == start + 1
    assert (added["table"]["number"], added["table"]["seats"], added["table"]["area"], added["table"]["position"]) \
        == ("Terrace 1", 2, "Terrace", 7)
    (card,) = cards(added["html"])
    assert card["data-place"] == "Terrace/7" and card["text"].startswith("Terrace 1")
    assert await receive(admin) == {"type": "ack", "ref": "a", "version": start + 1}
    assert await receive(watcher) == added
    new_id = added["table"]["id"]

    await admin.send_json({"action": "add_table", "label": "8", "ref": "plain"})  # seats and area left out
    plain = await receive(admin)
    assert (plain["table"]["seats"], plain["table"]["area"]) == (4, "Main room")
    assert (await receive(admin))["type"] == "ack" and await receive(watcher) == plain

    await admin.send_json({"action": "set_table", "table_id": new_id, "position": 1, "ref": "b"})
    moved = [await receive(admin) for _ in range(7)]  # itself, then tables 1..6, each one down
    assert [(m["table"]["number"], m["table"]["position"]) for m in moved] == [
        ("Terrace 1", 1), ("1", 2), ("2", 3), ("3", 4), ("4", 5), ("5", 6), ("6", 7)]
    assert [m["version"] for m in moved] == list(range(start + 3, start + 10))
    assert await receive(admin) == {"type": "ack", "ref": "b", "version": start + 9}
    assert [await receive(watcher) for _ in range(7)] == moved

    await admin.send_json({"action": "remove_table", "table_id": new_id, "ref": "c"})
    removed = {"type": "table_removed", "version": start + 10, "table_id": new_id}
    assert await receive(admin) == removed
    assert await receive(admin) == {"type": "ack", "ref": "c", "version": start + 10}
    assert await receive(watcher) == removed


async def test_a_floor_refusal_on_the_socket_comes_back_with_its_code(client, bistro_place):
    admin, _ = await dashboard(client, bistro_place.admin)
    for message, code in [
        ({"action": "add_table", "label": "1"}, "label_taken"),
        ({"action": "add_table", "label": "9", "seats": "4"}, "invalid_seats"),
        ({"action": "set_table", "table_id": bistro_place.ids["1"]}, "invalid_action"),
        ({"action": "set_table", "table_id": bistro_place.ids["1"], "position": 0}, "invalid_position"),
        ({"action": "set_table", "table_id": "1", "label": "X"}, "invalid_action"),  # an id is a whole number
        ({"action": "remove_table", "table_id": 99_999}, "table_not_found"),
    ]:
        await admin.send_json({**message, "ref": code})
        reply = await receive(admin)
        assert (reply["type"], reply["code"], reply["ref"]) == ("error", code, code), reply


async def test_a_sync_from_before_a_removal_leaves_the_table_out(client, bistro_place):
    """A dashboard that missed a removal is never left showing the table (it gets a snapshot without it)."""
    admin, snapshot = await dashboard(client, bistro_place.admin)
    start = snapshot["version"]
    await admin.send_json({"action": "remove_table", "table_id": bistro_place.ids["2"]})
    assert (await receive(admin))["type"] == "table_removed"
    assert (await receive(admin))["type"] == "ack"
    await admin.send_json({"action": "sync", "since": start, "ref": "s"})
    fresh = await receive(admin)
    assert fresh["type"] == "tables_snapshot" and fresh["version"] == start + 1
    assert [t["number"] for t in fresh["tables"]] == ["1", "3", "4", "5", "6"]
    assert f"table-{bistro_place.ids['2']}" not in [card["id"] for card in cards(fresh["html"])]
    assert await receive(admin) == {"type": "ack", "ref": "s", "version": start + 1}


async def test_a_viewers_socket_may_not_edit_the_floor(client, bistro_place, tables):
    viewer, snapshot = await dashboard(client, bistro_place.viewer)
    for message in [
        {"action": "add_table", "label": "9"},
        {"action": "set_table", "table_id": bistro_place.ids["1"], "label": "X"},
        {"action": "remove_table", "table_id": bistro_place.ids["1"]},
    ]:
        await viewer.send_json({**message, "ref": "v"})
        reply = await receive(viewer)
        assert (reply["type"], reply["code"], reply["ref"]) == ("error", "forbidden", "v")
    version, listed = await tables.list_tables(bistro_place.actor.restaurant_id)
    assert version == snapshot["version"] and [t["number"] for t in listed] == ["1", "2", "3", "4", "5", "6"]


# -- over HTTP ------------------------------------------------------------------------------------


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **JSON}


async def test_an_admin_key_edits_the_floor_over_http(client, bistro_place):
    watcher, snapshot = await dashboard(client, bistro_place.viewer)
    start = snapshot["version"]
    added = await client.post("/admin/tables", data={"label": "Bar 1", "seats": "3", "area": "Bar"},
                              headers=bearer(bistro_place.admin))
    assert added.status == 200
    body = await added.json()
    assert body["type"] == "ack" and body["version"] == start + 1
    (table,) = body["tables"]
    assert (table["number"], table["seats"], table["area"], table["position"]) == ("Bar 1", 3, "Bar", 7)
    assert (await receive(watcher))["table"] == table

    changed = await client.post(f"/admin/tables/{table['id']}/set", data={"label": "Bar 2", "position": "1"},
                                headers=bearer(bistro_place.admin))
    body = await changed.json()
    assert changed.status == 200 and body["version"] == start + 8
    assert [(t["number"], t["position"]) for t in body["tables"]] == [
        ("Bar 2", 1), ("1", 2), ("2", 3), ("3", 4), ("4", 5), ("5", 6), ("6", 7)]
    assert [(await receive(watcher))["version"] for _ in range(7)] == list(range(start + 2, start + 9))

    removed = await client.post(f"/admin/tables/{table['id']}/remove", headers=bearer(bistro_place.admin))
    assert removed.status == 200
    assert await removed.json() == {"type": "ack", "version": start + 9,
                                    "tables": [{"id": table["id"], "number": "Bar 2", "removed": True}]}
    assert await receive(watcher) == {"type": "table_removed", "version": start + 9, "table_id": table["id"]}


@pytest.mark.parametrize(("path", "data", "status", "code"), [
    ("/admin/tables", {"label": "1"}, 409, "label_taken"),
    ("/admin/tables", {}, 422, "invalid_label"),
    ("/admin/tables", {"label": "9", "seats": "many"}, 422, "invalid_seats"),
    ("/admin/tables", {"label": "9", "seats": "0"}, 422, "invalid_seats"),
    ("/admin/tables/B1/set", {}, 422, "invalid_action"),
    ("/admin/tables/B1/set", {"seats": "", "position": ""}, 422, "invalid_action"),  # empty numbers: no change
    ("/admin/tables/B1/set", {"label": ""}, 422, "invalid_label"),
    ("/admin/tables/B1/set", {"position": "first"}, 422, "invalid_position"),
    ("/admin/tables/B1/set", {"label": "2"}, 409, "label_taken"),
    ("/admin/tables/99999/set", {"label": "X"}, 404, "table_not_found"),
    ("/admin/tables/B1/remove", {}, 409, "table_occupied"),
    ("/admin/tables/99999/remove", {}, 404, "table_not_found"),
    ("/admin/tables/abc/remove", {}, 422, "invalid_action"),
])
async def test_floor_refusals_over_http(client, bistro_place, tables, path, data, status, code):
    await tables.seat_table(bistro_place.actor, bistro_place.ids["1"])
    response = await client.post(path.replace("B1", str(bistro_place.ids["1"])), data=data,
                                 headers=bearer(bistro_place.admin))
    assert response.status == status
    body = await response.json()
    assert (body["type"], body["code"]) == ("error", code) and body["detail"]


async def test_a_viewer_key_may_not_edit_the_floor_over_http(client, bistro_place, tables):
    for path, data in [("/admin/tables", {"label": "9"}),
                       (f"/admin/tables/{bistro_place.ids['1']}/set", {"label": "X"}),
                       (f"/admin/tables/{bistro_place.ids['1']}/remove", {})]:
        response = await client.post(path, data=data, headers=bearer(bistro_place.viewer))
        assert response.status == 403 and (await response.json())["code"] == "forbidden"
        toast = await client.post(path, data=data, headers={"Authorization": f"Bearer {bistro_place.viewer}"})
        assert toast.status == 403 and "toast-error" in await toast.text()  # refused, as a toast too
    assert [t["number"] for t in await rows(tables, bistro_place.actor)] == ["1", "2", "3", "4", "5", "6"]


# -- the floor page -------------------------------------------------------------------------------


async def test_the_floor_page_has_forms_for_every_table(client, bistro_place, tables):
    await tables.seat_table(bistro_place.actor, bistro_place.ids["2"])
    await signed_in(client, bistro_place.admin)
    dashboard_page = await (await client.get("/admin/dashboard")).text()
    assert 'href="/admin/floor"' in dashboard_page
    response = await client.get("/admin/floor")
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    page = forms(await response.text())
    by_table: dict[int, list[dict]] = {}
    for form in page:
        found = re.fullmatch(r"/admin/tables/(\d+)/(set|remove)", form["action"] or "")
        if found:
            by_table.setdefault(int(found[1]), []).append(form)
    ids = [bistro_place.ids[str(n)] for n in range(1, 7)]
    assert list(by_table) == ids  # in the grid's order
    for n, table_id in enumerate(ids, 1):
        own = by_table[table_id]
        assert all(form["method"] == "post" and form["fields"]["back"] == "floor" and form["fields"]["csrf_token"]
                   for form in own)
        (fields,) = [form["fields"] for form in own if form["button"] == "Save"]
        assert (fields["label"], fields["seats"], fields["area"]) == (str(n), "4", "Main room")
        ups = [form["fields"]["position"] for form in own if form["button"] == "↑ Up"]
        downs = [form["fields"]["position"] for form in own if form["button"] == "↓ Down"]
        assert ups == ([str(n - 1)] if n > 1 else []) and downs == ([str(n + 1)] if n < 6 else [])
        removes = [form["button"] for form in own if form["action"].endswith("/remove")]
        assert removes == ([] if n == 2 else [f"Remove table {n}"])  # asked in a popover; none with guests
    (add,) = [form for form in page if form["action"] == "/admin/tables"]
    assert add["button"] == "Add" and {"label", "seats", "area", "back"} <= set(add["fields"])
    assert re.search(r'<button type="button" class="danger" disabled>Remove</button>', await response.text())


async def test_a_viewer_is_sent_from_the_floor_page_to_the_dashboard(client, bistro_place):
    await signed_in(client, bistro_place.viewer)
    assert 'href="/admin/floor"' not in await (await client.get("/admin/dashboard")).text()
    response = await client.get("/admin/floor", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/dashboard"
    page = await (await client.get("/admin/dashboard")).text()
    assert '<p class="notice" role="status">Only an admin key may edit the floor.</p>' in page
    signed_out = await client.post("/admin/logout", data={"csrf_token": re.search(
        r'name="csrf_token" value="([^"]+)"', page)[1]}, allow_redirects=False)
    assert signed_out.status == 303
    assert (await client.get("/admin/floor", allow_redirects=False)).headers["Location"] == "/admin/login"


async def floor_post(client, path: str, token: str, **fields: str):
    return await client.post(path, data={"csrf_token": token, "back": "floor", **fields}, allow_redirects=False)


async def test_the_floor_pages_forms_come_back_to_it_with_the_result(client, bistro_place, tables):
    token = await signed_in(client, bistro_place.admin)
    one = bistro_place.ids["1"]
    saved = await floor_post(client, f"/admin/tables/{one}/set", token, label="Window", seats="2", area="Terrace")
    assert saved.status == 303 and saved.headers["Location"] == "/admin/floor"
    page = await (await client.get("/admin/floor")).text()
    assert '<p class="notice" role="status">Table Window saved.</p>' in page
    assert 'name="label" value="Window"' in page and "Table Window saved." not in await (
        await client.get("/admin/floor")).text()  # shown once

    down = await floor_post(client, f"/admin/tables/{one}/set", token, position="2")
    assert down.status == 303
    assert [t["number"] for t in await rows(tables, bistro_place.actor)][:2] == ["2", "Window"]

    added = await floor_post(client, "/admin/tables", token, label="7", seats="6", area="Main room")
    assert added.status == 303 and added.headers["Location"] == "/admin/floor"
    assert "Table 7 added." in await (await client.get("/admin/floor")).text()

    taken = await floor_post(client, "/admin/tables", token, label="2", seats="4", area="Main room")
    assert taken.status == 303 and taken.headers["Location"] == "/admin/floor"
    assert "There is already a table 2." in await (await client.get("/admin/floor")).text()

    await tables.seat_table(bistro_place.actor, bistro_place.ids["3"])
    occupied = await floor_post(client, f"/admin/tables/{bistro_place.ids['3']}/remove", token)
    assert occupied.headers["Location"] == "/admin/floor"
    assert "has guests" in await (await client.get("/admin/floor")).text()

    removed = await floor_post(client, f"/admin/tables/{bistro_place.ids['4']}/remove", token)
    assert removed.headers["Location"] == "/admin/floor"
    page = await (await client.get("/admin/floor")).text()
    assert "Table 4 removed." in page and f'id="floor-{bistro_place.ids["4"]}"' not in page
    assert [t["number"] for t in await rows(tables, bistro_place.actor)] == ["2", "Window", "3", "5", "6", "7"]


async def test_a_label_changed_on_the_floor_page_reaches_every_dashboard(client, bistro_place):
    watcher, snapshot = await dashboard(client, bistro_place.viewer)
    token = await signed_in(client, bistro_place.admin)
    five = bistro_place.ids["5"]
    response = await floor_post(client, f"/admin/tables/{five}/set", token, label="Corner", seats="4",
                                area="Main room")
    assert response.status == 303
    update = await receive(watcher)
    assert update["type"] == "table_update" and update["version"] == snapshot["version"] + 1
    assert (update["table"]["id"], update["table"]["number"]) == (five, "Corner")
    (card,) = cards(update["html"])
    assert card["id"] == f"table-{five}" and card["text"].startswith("Corner")


async def test_the_floor_page_needs_the_csrf_token(client, bistro_place, tables):
    await signed_in(client, bistro_place.admin)
    response = await client.post("/admin/tables", data={"label": "9", "back": "floor"}, allow_redirects=False)
    assert response.status == 403
    assert len(await rows(tables, bistro_place.actor)) == 6


async def test_the_guest_page_of_a_table_added_on_the_floor_works(client, bistro_place, floor: FloorService):
    token = await signed_in(client, bistro_place.admin)
    await floor_post(client, "/admin/tables", token, label="Garden", seats="4", area="Garden")
    tokens = await floor.qr_tokens(bistro_place.actor.restaurant_id)
    assert len(tokens) == 7
    (new_id,) = set(tokens) - set(bistro_place.ids.values())
    guest = await client.get(f"/t/{tokens[new_id]}")
    assert guest.status == 200 and "Garden" in await guest.text()
