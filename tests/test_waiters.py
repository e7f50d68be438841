"""Guests calling from their table's page; staff seeing to it: the service, the page, the dashboards."""

from __future__ import annotations

import re
import sqlite3

import pytest

from app.services.core import Actor
from app.services.waiters import WaiterService

from .support import SOCKET, Place, origin, receive, signed_in


@pytest.fixture
def waiters(db, settings) -> WaiterService:
    return WaiterService(db, settings)


async def token_of(floor, place: Place, label: str) -> str:
    return (await floor.qr_tokens(place.actor.restaurant_id))[place.ids[label]]


def audit(db_path: str) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT action, actor FROM audit_event WHERE action LIKE '%waiter%' OR action LIKE '%bill%'"
                            " ORDER BY id").fetchall()
    finally:
        conn.close()


# -- the service ----------------------------------------------------------------------------------


async def test_a_call_at_a_free_table_seats_a_party_and_shows_on_the_table(floor, waiters, tables, bistro_place,
                                                                          db_path):
    token = await token_of(floor, bistro_place, "2")
    result = await waiters.request(token, "call_waiter")
    assert result.ok and result.restaurant_id == bistro_place.actor.restaurant_id
    (table,) = result.tables
    assert table["status"] == "occupied" and table["session"]["guest_count"] is None
    assert [r["kind"] for r in table["requests"]] == ["call_waiter"]
    (announcement,) = result.announcements
    assert announcement["type"] == "waiter_request"
    assert announcement["request"] == {"id": table["requests"][0]["id"], "kind": "call_waiter",
                                       "since": table["requests"][0]["since"], "table_id": bistro_place.ids["2"],
                                       "table": "2", "claimed_by": None}
    assert audit(db_path) == [("call_waiter", "guest")]


async def test_a_call_at_an_occupied_table_joins_its_party_and_counts_as_activity(floor, waiters, tables,
                                                                                  bistro_place, db_path):
    opened = (await tables.seat_table(bistro_place.actor, bistro_place.ids["1"], 3)).tables[0]["session"]
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE table_session SET last_activity_at = '2020-01-01T00:00:00.000Z'")
    conn.close()
    result = await waiters.request(await token_of(floor, bistro_place, "1"), "ask_for_bill")
    session = result.tables[0]["session"]
    assert session["id"] == opened["id"] and session["guest_count"] == 3 and session["last_active"] > "2026"


async def test_the_same_request_twice_is_refused_not_counted_twice(floor, waiters, tables, bistro_place):
    token = await token_of(floor, bistro_place, "1")
    assert (await waiters.request(token, "call_waiter")).ok
    again = await waiters.request(token, "call_waiter")
    assert not again.ok and again.code == "request_already_pending"
    assert (await waiters.request(token, "ask_for_bill")).ok  # another kind is another request
    _, rows = await tables.list_tables(bistro_place.actor.restaurant_id)
    assert [r["kind"] for r in rows[0]["requests"]] == ["call_waiter", "ask_for_bill"]


@pytest.mark.parametrize(("token", "kind", "code"), [
    ("not-a-token-at-all", "call_waiter", "table_not_found"),
    ("REAL", "dance", "invalid_kind"),
])
async def test_bad_guest_requests(floor, waiters, tables, bistro_place, token, kind, code):
    if token == "REAL":
        token = await token_of(floor, bistro_place, "1")
    result = await waiters.request(token, kind)
    assert not result.ok and result.code == code


async def test_a_disabled_table_takes_no_calls(floor, waiters, tables, bistro_place):
    await tables.disable_table(bistro_place.actor, bistro_place.ids["3"])
    result = await waiters.request(await token_of(floor, bistro_place, "3"), "call_waiter")
    assert not result.ok and result.code == "table_disabled"
    _, rows = await tables.list_tables(bistro_place.actor.restaurant_id)
    assert rows[2]["status"] == "disabled" and rows[2]["session"] is None


async def test_resolving_a_request(floor, waiters, tables, bistro_place, cafe_place, db_path):
    call = await waiters.request(await token_of(floor, bistro_place, "1"), "call_waiter")
    request_id = call.tables[0]["requests"][0]["id"]
    other = await waiters.resolve(cafe_place.actor, request_id)
    assert not other.ok and other.code == "request_not_found"  # another restaurant's: not found
    done = await waiters.resolve(Actor(bistro_place.actor.restaurant_id, "floor tablet", "admin"), request_id)
    assert done.ok and done.tables[0]["requests"] == []
    assert done.announcements == ({"type": "waiter_request_resolved", "request_id": request_id,
                                   "table_id": bistro_place.ids["1"]},)
    again = await waiters.resolve(bistro_place.actor, request_id)
    assert not again.ok and again.code == "request_not_found"
    assert audit(db_path)[-1] == ("resolve_waiter_request", "floor tablet")
    guest = await waiters.guest_table(await token_of(floor, bistro_place, "1"))
    assert guest.answered and guest.pending == ()


async def test_a_call_is_claimed_once_then_resolved_and_who_and_when_are_kept(floor, waiters, keys, bistro_place,
                                                                                cafe_place, db_path):
    token = await token_of(floor, bistro_place, "2")
    request_id = (await waiters.request(token, "call_waiter")).announcements[0]["request"]["id"]
    sam_key, _ = await keys.add("bistro", "Sam's phone", "waiter", name="Sam Wilson")
    alex_key, _ = await keys.add("bistro", "Alex's phone", "waiter", name="Alex")
    sam = Actor(bistro_place.actor.restaurant_id, "Sam's phone", "waiter", sam_key["id"])
    alex = Actor(bistro_place.actor.restaurant_id, "Alex's phone", "waiter", alex_key["id"])
    claimed = await waiters.claim(sam, request_id)
    assert claimed.ok and claimed.announcements == ({"type": "waiter_request_claimed", "request_id": request_id,
                                                     "table_id": bistro_place.ids["2"], "claimed_by": "Sam Wilson"},)
    (table,) = claimed.tables
    assert table["requests"][0]["claimed_by"] == "Sam Wilson" and table["requests"][0]["claimed_at"]
    again = await waiters.claim(alex, request_id)
    assert (again.code, again.detail) == ("request_already_claimed", "Sam Wilson is already on it.")
    other_restaurant = Actor(cafe_place.actor.restaurant_id, "cafe", "admin")
    assert (await waiters.claim(other_restaurant, request_id)).code == "request_not_found"
    assert (await waiters.resolve(alex, request_id)).ok  # anyone serving may say it is done
    assert (await waiters.claim(sam, request_id)).code == "request_not_found"
    conn = sqlite3.connect(db_path)
    row = conn.execute("SELECT created_at <= claimed_at, claimed_by, claimed_by_key, claimed_at <= resolved_at,"
                       " resolved_by, resolved_by_key FROM waiter_request WHERE id = ?", (request_id,)).fetchone()
    conn.close()
    assert row == (1, "Sam Wilson", sam_key["id"], 1, "Alex's phone", alex_key["id"])


async def test_closing_resolves_and_moving_takes_the_calls_along(floor, waiters, tables, bistro_place, db_path):
    await waiters.request(await token_of(floor, bistro_place, "1"), "ask_for_bill")
    moved = await tables.move_table(bistro_place.actor, bistro_place.ids["1"], bistro_place.ids["4"])
    source, target = moved.tables
    assert source["requests"] == [] and [r["kind"] for r in target["requests"]] == ["ask_for_bill"]
    closed = await tables.close_table(bistro_place.actor, bistro_place.ids["4"])
    assert closed.tables[0]["requests"] == []
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT resolved_by FROM waiter_request").fetchall() == [("table closed",)]
    conn.close()
    guest = await waiters.guest_table(await token_of(floor, bistro_place, "4"))
    assert not guest.answered  # closed with the table: not "a waiter is on the way"


async def test_rotating_the_code_retires_the_printed_one(floor, waiters, tables, bistro_place):
    old = await token_of(floor, bistro_place, "2")
    assert (await floor.rotate_qr(bistro_place.actor, bistro_place.ids["2"])).ok
    new = await token_of(floor, bistro_place, "2")
    assert new != old and len(new) >= 22
    assert await waiters.guest_table(old) is None
    assert (await waiters.request(old, "call_waiter")).code == "table_not_found"
    assert (await waiters.guest_table(new)).table["number"] == "2"


# -- the guest's page -----------------------------------------------------------------------------


async def test_the_guest_page_calls_and_the_dashboards_hear_at_once(floor, client, tables, bistro_place):
    token = await token_of(floor, bistro_place, "2")
    ws = await client.ws_connect(f"{SOCKET}?token={bistro_place.viewer}")
    await receive(ws)
    page = await client.get(f"/t/{token}")
    text = await page.text()
    assert page.status == 200 and "Bistro" in text and "Table 2" in text
    assert "Call a waiter" in text and "Ask for the bill" in text

    response = await client.post(f"/t/{token}/call_waiter", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == f"/t/{token}?done=call_waiter"
    update, announcement = await receive(ws), await receive(ws)
    assert update["type"] == "table_update" and update["table"]["requests"][0]["kind"] == "call_waiter"
    assert '☎ Waiter called' in update["html"] and 'data-action="resolve_waiter_request"' in update["html"]
    assert announcement["type"] == "waiter_request" and announcement["request"]["table"] == "2"
    followed = await (await client.get(response.headers["Location"])).text()
    assert "The staff have your call" in followed


async def test_resolving_from_the_dashboard_socket(floor, client, tables, waiters, bistro_place):
    result = await waiters.request(await token_of(floor, bistro_place, "1"), "call_waiter")
    request_id = result.tables[0]["requests"][0]["id"]
    ws = await client.ws_connect(f"{SOCKET}?token={bistro_place.admin}")
    snapshot = await receive(ws)
    assert snapshot["tables"][0]["requests"][0]["id"] == request_id  # the snapshot carries pending calls
    await ws.send_json({"action": "resolve_waiter_request", "request_id": request_id, "ref": "r"})
    update, resolved, ack = await receive(ws), await receive(ws), await receive(ws)
    assert update["table"]["requests"] == []
    assert resolved == {"type": "waiter_request_resolved", "request_id": request_id, "table_id": bistro_place.ids["1"]}
    assert ack["type"] == "ack" and ack["ref"] == "r"
    await ws.send_json({"action": "resolve_waiter_request", "request_id": request_id, "ref": "again"})
    assert (await receive(ws))["code"] == "request_not_found"
    viewer = await client.ws_connect(f"{SOCKET}?token={bistro_place.viewer}")
    await receive(viewer)
    await viewer.send_json({"action": "resolve_waiter_request", "request_id": 1})
    assert (await receive(viewer))["code"] == "forbidden"


async def test_resolving_without_the_script(floor, client, tables, waiters, bistro_place):
    result = await waiters.request(await token_of(floor, bistro_place, "1"), "ask_for_bill")
    request_id = result.tables[0]["requests"][0]["id"]
    await signed_in(client, bistro_place.admin)
    page = await (await client.get("/admin/dashboard")).text()
    assert "Waiting for the staff" in page and "Table 1: ✎ Bill asked for" in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = await client.post(f"/admin/request/{request_id}/resolve", data={"csrf_token": csrf, "back": "dashboard"})
    text = await response.text()
    assert "Table 1: seen to." in text and "Bill asked for" not in text  # neither in the list nor on the card


async def test_unknown_codes_and_disabled_tables(floor, client, tables, bistro_place):
    missing = await client.get("/t/nothing-like-a-real-token")
    assert missing.status == 404 and "not known here" in await missing.text()
    assert (await client.post("/t/nothing-like-a-real-token/call_waiter")).status == 404
    assert (await client.post(f"/t/{await token_of(floor, bistro_place, '1')}/order_champagne")).status == 404
    await tables.disable_table(bistro_place.actor, bistro_place.ids["3"])
    disabled = await client.get(f"/t/{await token_of(floor, bistro_place, '3')}")
    assert disabled.status == 200 and "not available right now" in await disabled.text()
    assert "Call a waiter" not in await disabled.text()


async def test_guest_calls_are_rate_limited_per_table_and_per_address(floor, client, tables, bistro_place):
    one, two = await token_of(floor, bistro_place, "1"), await token_of(floor, bistro_place, "2")
    outcomes = []
    for kind in ["call_waiter", "ask_for_bill"] * 3:
        response = await client.post(f"/t/{one}/{kind}", allow_redirects=False)
        outcomes.append(response.headers["Location"].split("?")[1])
    assert outcomes.count("problem=rate_limited") == 2  # four taps a minute per table
    assert "problem=request_already_pending" in outcomes
    assert "rate_limited" not in (await client.post(f"/t/{two}/call_waiter", allow_redirects=False)).headers["Location"]
    limited = [(await client.post(f"/t/{two}/ask_for_bill", allow_redirects=False)).headers["Location"]
               for _ in range(10)]
    assert any("rate_limited" in location for location in limited)


async def test_the_printable_qr_codes(floor, client, tables, bistro_place):
    await signed_in(client, bistro_place.viewer)
    response = await client.get("/admin/tables/qr")
    text = await response.text()
    assert response.status == 200 and text.count("<svg") == len(bistro_place.ids) and "Table 4" in text
    for label in ("1", "4"):
        assert f"{origin(client)}/t/{await token_of(floor, bistro_place, label)}" in text  # the SVG's title
    client.session.cookie_jar.clear()
    assert (await client.get("/admin/tables/qr", allow_redirects=False)).status == 303


async def test_behind_the_proxy_each_phone_has_its_own_allowance_at_a_table(floor, proxied, tables, bistro_place):
    one = await token_of(floor, bistro_place, "1")

    async def tap(phone: str, kind: str) -> str:
        response = await proxied.post(f"/t/{one}/{kind}", allow_redirects=False,
                                      headers={"X-Forwarded-For": phone, "X-Forwarded-Proto": "https"})
        return response.headers["Location"].split("?")[1]

    pranks = [await tap("192.0.2.66", kind) for kind in ["call_waiter", "ask_for_bill"] * 3]
    assert pranks.count("problem=rate_limited") == 2
    assert await tap("192.0.2.10", "call_waiter") != "problem=rate_limited"  # the table's own guests still get through
