"""The waiter's page as the server renders it (app/web/waiter.py), the cards' waiter and claims, and the guest's
page once a waiter is on the way."""

from __future__ import annotations

import sqlite3
from html.parser import HTMLParser

import pytest

from app.services.floor import FloorService
from app.services.sections import SectionService
from app.services.waiters import WaiterService

from .html import cards, forms
from .support import Place, origin, sign_in

NAME = '<b>Sam</b> "O\'Neil"'  # as an admin might type it: text everywhere, never markup


@pytest.fixture
async def floor_plan(db, settings, bistro_place, keys) -> Place:
    """The bistro: 1-4 in the main room, 5 and 6 on the terrace; Sam Wilson has the terrace and table 1, Alex the
    rest of the main room; a waiter whose name needs escaping, with no section."""
    place = bistro_place
    floor = FloorService(db, settings)
    for label in "56":
        assert (await floor.set_table(place.actor, place.ids[label], area="Terrace")).ok
    for name in ("Sam Wilson", "Alex", NAME):
        await keys.add("bistro", f"{name}'s phone", "waiter", name=name)
    sections = SectionService(db, settings)
    assert (await sections.set_section(place.actor, "Sam Wilson", ["Terrace"], [place.ids["1"]])).ok
    assert (await sections.set_section(place.actor, "Alex", ["Main room"])).ok
    return place


async def waiter_key(keys, name: str) -> str:
    _, key = await keys.add("bistro", f"{name}'s second phone", "waiter", name=name)
    return key


async def call(db, settings, floor_plan: Place, label: str, at: str) -> int:
    """A guest's call at the table, made at `at` (the order of calls is what the lists are about)."""
    tokens = await FloorService(db, settings).qr_tokens(floor_plan.actor.restaurant_id)
    result = await WaiterService(db, settings).request(tokens[floor_plan.ids[label]], "call_waiter")
    request_id = result.tables[0]["requests"][-1]["id"]
    conn = sqlite3.connect(settings.db_path)
    with conn:
        conn.execute("UPDATE waiter_request SET created_at = ? WHERE id = ?", (at, request_id))
    conn.close()
    return request_id


class _Lists(HTMLParser):
    """The table labels in each of the page's lists (an element with an id holding cards), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.lists: dict[str, list[str]] = {}
        self.current: list[str] | None = None
        self.in_label = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id") in ("my-calls", "my-tables", "other-calls", "grid"):
            self.current = self.lists.setdefault(attributes["id"] or "", [])
        self.in_label = tag == "h3"

    def handle_endtag(self, tag: str) -> None:
        self.in_label = False

    def handle_data(self, data: str) -> None:
        if self.in_label and self.current is not None:
            self.current.append(data)


def lists(html: str) -> dict[str, list[str]]:
    parser = _Lists()
    parser.feed(html)
    return parser.lists


async def test_a_waiters_sign_in_lands_on_the_waiters_page_and_others_on_the_dashboard(client, floor_plan, keys):
    sam = await waiter_key(keys, "Sam Wilson")
    response = await sign_in(client, sam)
    assert response.status == 303 and response.headers["Location"] == "/admin/waiter"
    login = await client.get("/admin/login", allow_redirects=False)  # signed in already: to the waiter's page
    assert login.status == 303 and login.headers["Location"] == "/admin/waiter"
    assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 200  # the whole floor too
    assert 'href="/admin/reports"' in await (await client.get("/admin/waiter")).text()  # their own figures
    client.session.cookie_jar.clear()
    response = await sign_in(client, floor_plan.admin)
    assert response.headers["Location"] == "/admin/dashboard"
    assert (await client.get("/admin/waiter", allow_redirects=False)).status == 200  # an admin may open it


async def test_the_short_address_and_signing_in_first(client):
    short = await client.get("/waiter", allow_redirects=False)
    assert short.status == 303 and short.headers["Location"] == "/admin/waiter"
    page = await client.get("/admin/waiter", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/admin/login"


async def test_a_viewer_is_sent_to_the_dashboard_and_told_why(client, floor_plan):
    await sign_in(client, floor_plan.viewer)
    response = await client.get("/admin/waiter", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/dashboard"
    text = await (await client.get("/admin/dashboard")).text()
    assert "This key may watch the tables but not change them." in text
    assert 'href="/admin/waiter"' not in text  # no way to it either


async def test_my_calls_oldest_first_then_my_tables_then_the_other_calls_then_the_rest(client, floor_plan, keys, db,
                                                                                      settings):
    await call(db, settings, floor_plan, "6", "2026-11-26T19:02:00.000Z")
    await call(db, settings, floor_plan, "2", "2026-11-26T19:00:00.000Z")
    await call(db, settings, floor_plan, "1", "2026-11-26T19:05:00.000Z")
    await call(db, settings, floor_plan, "5", "2026-11-26T19:01:00.000Z")
    await sign_in(client, await waiter_key(keys, "Sam Wilson"))
    text = await (await client.get("/admin/waiter")).text()
    assert lists(text) == {"my-calls": ["5", "6", "1"], "my-tables": [], "other-calls": ["2"], "grid": ["3", "4"]}
    assert [card["data-waiter"] for card in cards(text)] == ["Sam Wilson"] * 3 + ["Alex"] * 3
    assert 'data-name="Sam Wilson"' in text and 'data-claim-within="120"' in text
    assert '<script src="/static/live.js' in text and '<script src="/static/waiter.js' in text

    client.session.cookie_jar.clear()
    await sign_in(client, await waiter_key(keys, "Alex"))
    text = await (await client.get("/admin/waiter")).text()
    assert lists(text) == {"my-calls": ["2"], "my-tables": ["3", "4"], "other-calls": ["5", "6", "1"], "grid": []}


async def test_a_card_names_its_waiter_and_a_claim_and_the_same_card_is_pushed(client, floor_plan, keys, db, settings):
    request_id = await call(db, settings, floor_plan, "5", "2026-11-26T19:00:00.000Z")
    await sign_in(client, await waiter_key(keys, "Sam Wilson"))
    text = await (await client.get("/admin/waiter")).text()
    table_5, = [card for card in cards(text) if card["id"] == f"table-{floor_plan.ids['5']}"]
    assert "SW Waiter: Sam Wilson" in table_5["text"] and table_5["buttons"][:2] == ["On my way", "Done"]
    assert "Overdue" in table_5["text"]  # the word is there, shown once the script marks the call overdue
    claim, = [form for form in forms(text) if form["button"] == "On my way"]
    assert claim["action"] == f"/admin/request/{request_id}/claim" and claim["fields"]["request_id"] == str(request_id)
    table_3, = [card for card in cards(text) if card["id"] == f"table-{floor_plan.ids['3']}"]
    assert "AL Waiter: Alex" not in table_3["text"] and "Al Waiter: Alex" in table_3["text"]

    ws = await client.ws_connect("/admin/ws/dashboard", headers={"Origin": origin(client)})
    await ws.receive_json()
    await ws.send_json({"action": "claim_waiter_request", "request_id": request_id, "table_id": floor_plan.ids["5"]})
    update = await ws.receive_json()
    pushed, = cards(update["html"])
    assert "Sam Wilson is on it" in pushed["text"] and "Overdue" not in pushed["text"]
    assert pushed["buttons"][0] == "Done"  # On my way is gone
    page, = [card for card in cards(await (await client.get("/admin/waiter")).text()) if card["id"] == pushed["id"]]
    assert pushed == page  # the page's card is the pushed one (no per-viewer content)
    await ws.close()


async def test_a_table_in_nobodys_section_says_so(client, floor_plan, db, settings):
    await SectionService(db, settings).set_section(floor_plan.actor, "Alex", [])
    await sign_in(client, floor_plan.admin)
    text = await (await client.get("/admin/dashboard")).text()
    table_2, = [card for card in cards(text) if card["id"] == f"table-{floor_plan.ids['2']}"]
    assert "No section" in table_2["text"] and "data-waiter" not in table_2
    assert 'href="/admin/waiter"' in text  # an admin's way to the waiter's page


async def test_names_are_escaped_on_the_cards_the_page_and_the_guests_page(client, floor_plan, keys, db, settings):
    sections = SectionService(db, settings)
    assert (await sections.set_section(floor_plan.actor, NAME, [], [floor_plan.ids["3"]])).ok
    request_id = await call(db, settings, floor_plan, "3", "2026-11-26T19:00:00.000Z")
    key = await waiter_key(keys, NAME)
    assert (await WaiterService(db, settings).claim((await keys.authenticate(key)).actor, request_id)).ok
    await sign_in(client, key)
    text = await (await client.get("/admin/waiter")).text()
    assert "<b>Sam</b>" not in text and "&lt;b&gt;Sam&lt;/b&gt;" in text
    assert lists(text)["my-calls"] == ["3"]
    table_3, = [card for card in cards(text) if card["id"] == f"table-{floor_plan.ids['3']}"]
    assert table_3["data-waiter"] == NAME
    assert f'<" Waiter: {NAME}' in table_3["text"] and f"{NAME} is on it" in table_3["text"]
    tokens = await FloorService(db, settings).qr_tokens(floor_plan.actor.restaurant_id)
    guest = await (await client.get(f"/t/{tokens[floor_plan.ids['3']]}")).text()
    assert "&lt;b&gt;Sam&lt;/b&gt; is on the way." in guest and "<b>" not in guest


async def test_the_guests_page_names_the_waiter_on_the_way_by_first_name(client, floor_plan, keys, db, settings):
    request_id = await call(db, settings, floor_plan, "5", "2026-11-26T19:00:00.000Z")
    tokens = await FloorService(db, settings).qr_tokens(floor_plan.actor.restaurant_id)
    guest = f"/t/{tokens[floor_plan.ids['5']]}"
    assert "The staff have your call." in await (await client.get(guest)).text()
    sam = await keys.authenticate(await waiter_key(keys, "Sam Wilson"))
    assert (await WaiterService(db, settings).claim(sam.actor, request_id)).ok
    for address in (guest, f"{guest}?done=call_waiter"):  # the confirmation's reload says so too
        text = await (await client.get(address)).text()
        assert "Sam is on the way." in text and "Wilson" not in text and "The staff have your call" not in text


async def test_without_scripts_a_waiters_forms_come_back_to_the_waiters_page(client, floor_plan, keys, db, settings):
    request_id = await call(db, settings, floor_plan, "5", "2026-11-26T19:00:00.000Z")
    key = await waiter_key(keys, "Sam Wilson")
    assert (await sign_in(client, key)).status == 303
    page = await (await client.get("/admin/waiter")).text()
    (claim,) = [form for form in forms(page) if form["action"] == f"/admin/request/{request_id}/claim"]
    assert claim["fields"]["back"] == "waiter"
    answer = await client.post(claim["action"], data=claim["fields"], headers={"Origin": origin(client)},
                               allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"] == "/admin/waiter"
    page = await (await client.get("/admin/waiter")).text()
    assert "Table 5: you are on your way." in page and "Sam Wilson is on it" in page
