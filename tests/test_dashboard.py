"""Signing in and out, and the dashboard page as the server renders it."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from html.parser import HTMLParser
from http.cookies import SimpleCookie

import pytest
from aiohttp.test_utils import TestClient

from app import create_app
from app.auth import SIGN_IN_COOKIE
from app.db import utc_now
from app.services.core import Actor
from app.services.waiters import WaiterService

from .html import cards
from .support import Clock, keys_on, origin, sign_in


@pytest.fixture
async def place(restaurants, floor, keys):
    restaurant = await restaurants.add("bistro", "Bistro <b>Bold</b>", tables=0)
    actor = Actor(restaurant["id"], "setup", "admin")
    for label, area in [("1", "Main room"), ("2", "Main room"), ("T1", "Terrace"), ("3", "Main room")]:
        await floor.add_table(actor, label, 4, area)
    _, admin = await keys.add("bistro", "admin")
    _, viewer = await keys.add("bistro", "wall", "viewer")
    return actor, admin, viewer


async def test_the_login_page(client):
    response = await client.get("/admin/login")
    assert response.status == 200
    text = await response.text()
    assert 'name="key"' in text and 'action="/admin/login"' in text


async def test_signing_in_sets_a_strict_session_cookie_and_goes_to_the_dashboard(client, place):
    _, admin, _ = place
    response = await sign_in(client, admin)
    assert response.status == 303 and response.headers["Location"] == "/admin/dashboard"
    cookie = SimpleCookie(response.headers["Set-Cookie"])[SIGN_IN_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/admin"
    assert not cookie["secure"]  # plain HTTP here; over HTTPS it is Secure
    assert admin not in response.headers["Set-Cookie"]
    page = await client.get("/admin/dashboard", allow_redirects=False)
    assert page.status == 200
    assert (await client.get("/admin/login", allow_redirects=False)).status == 303


async def test_the_session_is_stored_only_as_a_hash(client, place, db_path):
    _, admin, _ = place
    response = await sign_in(client, admin)
    token = SimpleCookie(response.headers["Set-Cookie"])[SIGN_IN_COOKIE].value
    conn = sqlite3.connect(db_path)
    stored = conn.execute("SELECT token_hash FROM login_session").fetchall()
    conn.close()
    assert len(stored) == 1
    with open(db_path, "rb") as main, open(db_path + "-wal", "rb") as wal:
        assert token.encode() not in main.read() + wal.read()


async def test_a_wrong_key_shows_the_form_again_with_a_message(client, place):
    response = await sign_in(client, "mtr_wrong")
    assert response.status == 401
    assert "not recognised" in await response.text()
    assert SIGN_IN_COOKIE not in response.cookies


async def test_sign_in_attempts_are_rate_limited_per_address(client, place):
    _, admin, _ = place
    statuses = [(await sign_in(client, "mtr_guess")).status for _ in range(12)]
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
    refused = await sign_in(client, admin)
    assert refused.status == 429 and "Wait a minute" in await refused.text()


async def test_without_a_session_the_dashboard_sends_you_to_sign_in(client):
    response = await client.get("/admin/dashboard", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/login"


async def test_the_dashboard_is_rendered_on_the_server_grouped_by_area(client, place):
    _, admin, _ = place
    await sign_in(client, admin)
    text = await (await client.get("/admin/dashboard")).text()
    grid = cards(text)
    assert [card["text"].split()[0] for card in grid] == ["1", "2", "3", "T1"]
    assert all(card["id"] == f"table-{card['data-id']}" and card["data-status"] == "free" for card in grid)
    assert grid[0]["buttons"] == ["Seat", "1", "2", "3", "4", "Seat", "Disable"]  # Seat opens 1..seats guests, or More
    assert [card["data-place"] for card in grid] == ["Main room/1", "Main room/2", "Main room/4", "Terrace/3"]
    assert 'href="/admin/floor"' in text  # an admin may edit the floor
    assert text.index(">Main room<") < text.index(">Terrace<")
    assert 'data-role="admin"' in text and 'data-version="4"' in text
    assert '<script src="/static/dashboard.js' in text and "<script>" not in text


async def test_names_and_labels_are_escaped(client, place, floor):
    actor, admin, _ = place
    await floor.add_table(actor, '<img src=x onerror=alert(1)>', 2, "<script>alert(2)</script>")
    await sign_in(client, admin)
    text = await (await client.get("/admin/dashboard")).text()
    assert "<img src=x" not in text and "<script>alert" not in text and "<b>Bold</b>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "Bistro &lt;b&gt;Bold&lt;/b&gt;" in text


async def test_a_viewer_gets_the_dashboard_marked_as_viewer(client, place):
    _, _, viewer = place
    await sign_in(client, viewer)
    assert 'data-role="viewer"' in await (await client.get("/admin/dashboard")).text()


async def csrf_of(client: TestClient) -> str:
    """The CSRF token the dashboard page gives its forms."""
    text = await (await client.get("/admin/dashboard")).text()
    return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)


async def test_signing_out_ends_the_session(client, place):
    _, admin, _ = place
    await sign_in(client, admin)
    without_token = await client.post("/admin/logout", allow_redirects=False)
    assert without_token.status == 403
    assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 200
    response = await client.post("/admin/logout", data={"csrf_token": await csrf_of(client)}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/login"
    assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 303


async def test_revoking_the_key_ends_its_sessions(client, place, keys):
    _, admin, _ = place
    await sign_in(client, admin)
    (record,) = [k for k in await keys.list("bistro") if k["label"] == "admin"]
    await keys.revoke(record["id"])
    assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 303


async def test_sessions_expire_on_the_server(aiohttp_client, settings, place):
    _, admin, _ = place
    clock = Clock()
    client = await aiohttp_client(keys_on(clock, create_app(dataclasses.replace(settings, session_hours=1 / 3600))))
    response = await sign_in(client, admin)
    token = SimpleCookie(response.headers["Set-Cookie"])[SIGN_IN_COOKIE].value
    assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 200
    clock.advance(1.1)
    client.session.cookie_jar.clear()
    stale = await client.get("/admin/dashboard", allow_redirects=False, headers={"Cookie": f"{SIGN_IN_COOKIE}={token}"})
    assert stale.status == 303


@pytest.mark.parametrize("path", ["/admin/login", "/admin/logout"])
async def test_forms_posted_from_another_site_are_refused(client, place, path):
    _, admin, _ = place
    await sign_in(client, admin)
    token = await csrf_of(client)
    response = await client.post(path, data={"key": admin, "csrf_token": token},
                                 headers={"Origin": "https://evil.example"}, allow_redirects=False)
    assert response.status == 403
    assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 200


async def test_pages_carry_the_security_headers(client):
    for path in ("/admin/login", "/static/dashboard.js", "/nowhere"):
        response = await client.get(path)
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


async def test_the_pushed_card_is_the_card_on_the_page(client, place, tables):
    actor, admin, _ = place
    await sign_in(client, admin)
    _, rows = await tables.list_tables(actor.restaurant_id)
    origin = f"http://{client.host}:{client.port}"
    ws = await client.ws_connect("/admin/ws/dashboard", headers={"Origin": origin})
    await ws.receive_json()
    await ws.send_json({"action": "disable_table", "table_id": rows[1]["id"]})
    update = await ws.receive_json()
    page = cards(await (await client.get("/admin/dashboard")).text())
    assert cards(update["html"]) == [page[1]]


class _ButtonPlaces(HTMLParser):
    """Each card button's label, with the classes of the elements around it."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []  # the class attribute of each open element (void elements never open)
        self.places: list[tuple[str, set[str]]] = []
        self.label: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("input", "br", "img", "meta", "link"):
            return
        self.open.append(dict(attrs).get("class") or "")
        if tag == "button":
            self.label = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self.label is not None:
            self.places.append(("".join(self.label).strip(), {c for cls in self.open for c in cls.split()}))
            self.label = None
        if tag not in ("input", "br", "img", "meta", "link"):
            self.open.pop()

    def handle_data(self, data: str) -> None:
        if self.label is not None:
            self.label.append(data)


def button_places(html: str) -> list[tuple[str, set[str]]]:
    parser = _ButtonPlaces()
    parser.feed(html)
    parser.close()
    return [(label, classes) for label, classes in parser.places if "card" in classes]


async def test_a_viewer_has_no_done_button_on_a_guests_call(client, place, tables, floor, db, settings):
    """The pushed card is the same for every dashboard, so the viewer's page hides its forms, On my way and Done
    included."""
    actor, _, viewer = place
    _, rows = await tables.list_tables(actor.restaurant_id)
    tokens = await floor.qr_tokens(actor.restaurant_id)
    assert (await WaiterService(db, settings).request(tokens[rows[0]["id"]], "call_waiter")).ok
    await sign_in(client, viewer)
    text = await (await client.get("/admin/dashboard")).text()
    assert 'data-role="viewer"' in text
    calling = cards(text)[0]
    assert calling["data-requests"] == "1"
    # Set and Save: the party's size and its note
    assert calling["buttons"] == ["On my way", "Done", "Close", "Move", "Join", "Party", "Set", "Save"]
    assert 'href="/admin/floor"' not in text  # nor a way to the floor editor
    css = await (await client.get("/static/dashboard.css")).text()
    hidden = re.search(r'body\[data-role="viewer"\] ([^{]+)\{ display: none; \}', css)
    assert hidden is not None
    viewer_hides = [selector.strip().removeprefix('body[data-role="viewer"] ') for selector in hidden[1].split(",")]
    assert viewer_hides == [".actions", ".request form"]
    # every button on a card sits in the card's actions or in a call's form, which that rule hides
    places = button_places(text)
    assert [label for label, _ in places] == [button for card in cards(text) for button in card["buttons"]]
    for label, classes in places:
        assert "actions" in classes or "request" in classes, f"{label} is outside what a viewer's page hides"


class _SvgTitles(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.titles: list[str] = []
        self.in_svg_title = False
        self.in_svg = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_svg = self.in_svg or tag == "svg"
        self.in_svg_title = self.in_svg and tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self.in_svg = self.in_svg and tag != "svg"
        self.in_svg_title = False

    def handle_data(self, data: str) -> None:
        if self.in_svg_title:
            self.titles.append(data)


def qr_addresses(html: str) -> list[str]:
    """The address each QR code of the sheet encodes (its SVG's title)."""
    parser = _SvgTitles()
    parser.feed(html)
    parser.close()
    return parser.titles


@pytest.mark.parametrize(("host", "public_url", "host_header", "expected"), [
    ("0.0.0.0", "", None, "http://127.0.0.1:{port}"),  # listening on every address: the address the tablet used
    ("::", "", "maitre.lan:8080", "http://maitre.lan:8080"),
    ("0.0.0.0", "https://maitre.example", "maitre.lan:8080", "https://maitre.example"),  # the public URL wins
    ("192.168.1.20", "", "maitre.lan:8080", "http://maitre.lan:8080"),  # the address the printing tablet used
])
async def test_the_qr_sheet_encodes_the_address_the_tablet_used(
        aiohttp_client, settings, place, floor, host, public_url, host_header, expected):
    actor, admin, _ = place
    client = await aiohttp_client(create_app(dataclasses.replace(settings, host=host, public_url=public_url)))
    await sign_in(client, admin)
    response = await client.get("/admin/tables/qr", headers={"Host": host_header} if host_header else None)
    assert response.status == 200
    tokens = await floor.qr_tokens(actor.restaurant_id)
    base = expected.format(port=client.port)
    text = await response.text()
    assert sorted(qr_addresses(text)) == sorted(f"{base}/t/{token}" for token in tokens.values())
    assert ("phones cannot reach it" in text) == ("127.0.0.1" in base)  # printed from the box itself: say so


async def test_behind_a_trusted_proxy_the_qr_sheet_encodes_the_address_the_proxy_names(proxied, place, floor):
    actor, admin, _ = place
    behind = {"X-Forwarded-For": "192.168.1.31", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "maitre.lan"}
    signed = await proxied.post("/admin/login", data={"key": admin}, allow_redirects=False,
                                headers={**behind, "Origin": "https://maitre.lan"})
    cookie = SimpleCookie(signed.headers["Set-Cookie"])[SIGN_IN_COOKIE].value  # Secure: sent by hand over http
    response = await proxied.get("/admin/tables/qr", headers={**behind, "Cookie": f"{SIGN_IN_COOKIE}={cookie}"})
    tokens = await floor.qr_tokens(actor.restaurant_id)
    assert sorted(qr_addresses(await response.text())) == sorted(f"https://maitre.lan/t/{t}" for t in tokens.values())


class _Body(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attributes: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.attributes = dict(attrs)


def body_attributes(html: str) -> dict[str, str | None]:
    parser = _Body()
    parser.feed(html)
    parser.close()
    return parser.attributes


async def test_the_page_and_the_snapshot_carry_the_servers_time(client, place):
    """The script counts idle minutes and Restore's end by the server's clock, not the tablet's."""
    _, admin, _ = place
    await sign_in(client, admin)
    before = utc_now()
    page = body_attributes(await (await client.get("/admin/dashboard")).text())
    ws = await client.ws_connect("/admin/ws/dashboard", headers={"Origin": f"http://{client.host}:{client.port}"})
    snapshot = await ws.receive_json()
    after = utc_now()
    await ws.close()
    assert before <= page["data-now"] <= snapshot["now"] <= after  # the same UTC format, so text compares as time


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside each element that has an id."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, str] = {}
        self.open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag not in ("input", "br", "img", "meta", "link"):
            self.open.append(attributes.get("id"))
            if attributes.get("id"):
                self.texts[attributes["id"]] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("input", "br", "img", "meta", "link") and self.open:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        for element in filter(None, self.open):
            self.texts[element] += data


def tags(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


def bulk_forms(html: str) -> dict[str, dict]:
    """Each form posting to /admin/api/bulk, by id: its hidden fields (table_id as a list) and its buttons."""
    found: dict[str, dict] = {}
    current = None
    for tag, attributes in tags(html).tags:
        if tag == "form":
            current = None
            if attributes.get("action") == "/admin/api/bulk":
                assert attributes.get("method") == "post"
                current = found[attributes["id"] or ""] = {"fields": {}, "table_ids": [], "buttons": []}
        elif tag == "input" and current is not None and attributes.get("type") == "hidden":
            if attributes["name"] == "table_id":
                current["table_ids"].append(int(attributes["value"] or ""))
            else:
                current["fields"][attributes["name"]] = attributes["value"]
        elif tag == "button" and current is not None:
            current["buttons"].append(attributes)
    return found


async def test_select_mode_and_end_of_service_render_for_a_key_that_may_change_tables(client, place, tables):
    actor, admin, viewer = place
    _, rows = await tables.list_tables(actor.restaurant_id)
    one, two, three, t1 = ({row["number"]: row["id"] for row in rows}[label] for label in ("1", "2", "3", "T1"))
    await tables.seat_table(actor, one, 2)
    await tables.join_tables(actor, one, two)  # one party at 1 and 2: it closes once, at 1
    await tables.seat_table(actor, t1, 3)
    await sign_in(client, admin)
    text = await (await client.get("/admin/dashboard")).text()
    page = tags(text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)

    toggle = [a for t, a in page.tags if a.get("id") == "selecting"]
    assert toggle == [{"type": "checkbox", "id": "selecting", "class": "toggle", "aria-label": "Select tables"}]
    toggle_labels = [a["class"] for t, a in page.tags if t == "label" and a.get("for") == "selecting"]
    assert toggle_labels == ["quiet button select", "quiet button"]  # Select in the header, Done in the bar
    forms = bulk_forms(text)
    assert set(forms) == {"bulk-form", "end-form", "undo"}
    bar = forms["bulk-form"]
    assert bar["fields"] == {"csrf_token": csrf, "back": "dashboard"} and bar["table_ids"] == []
    assert [(b["name"], b["value"], b["data-needs"]) for b in bar["buttons"]] == [
        ("action", "close_table", "occupied"), ("action", "disable_table", "free"),
        ("action", "enable_table", "disabled")]
    assert all(b["aria-describedby"] == f"picked why-{b['value']}" for b in bar["buttons"])
    assert {"picked", "why-close_table", "why-disable_table", "why-enable_table"} <= set(page.texts)

    # a box on every card, in the bar's form; a joined table's names its party's own table
    boxes = {a["id"]: a for t, a in page.tags if t == "input" and "pick" in (a.get("class") or "")}
    assert list(boxes) == [f"pick-{i}" for i in (one, two, three, t1)]
    assert all(box["type"] == "checkbox" and box["name"] == "table_id" and box["form"] == "bulk-form"
               for box in boxes.values())
    assert [boxes[f"pick-{i}"]["value"] for i in (one, two, three, t1)] == [str(one), str(one), str(three), str(t1)]
    assert [box["aria-label"] for box in boxes.values()] == ["Select table 1", "Select table 2", "Select table 3",
                                                            "Select table T1"]
    labels = [a["for"] for t, a in page.tags if t == "label" and "cover" in (a.get("class") or "")]
    assert labels == list(boxes)

    # End of service: one close a party, so two (1 and 2 are one party), in a popover
    end = forms["end-form"]
    assert end["fields"] == {"csrf_token": csrf, "back": "dashboard", "action": "close_table"}
    assert end["table_ids"] == [one, t1]
    confirm = " ".join(page.texts["end-service"].split())
    assert confirm == "End of service. Occupied tables to close: 2 Close them Cancel"
    assert [a for t, a in page.tags if a.get("popovertarget") == "end-service"][0]["type"] == "button"
    assert forms["undo"]["table_ids"] == [] and forms["undo"]["fields"]["action"] == "restore_table"

    # the pushed card is the page's: its box too
    ws = await client.ws_connect("/admin/ws/dashboard", headers={"Origin": origin(client)})
    await ws.receive_json()
    await ws.send_json({"action": "disable_table", "table_id": three})
    update = await ws.receive_json()
    await ws.close()
    pushed = [(t, a) for t, a in tags(update["html"]).tags if t in ("input", "label")]
    text = await (await client.get("/admin/dashboard")).text()
    assert pushed == [(t, a) for t, a in tags(text).tags if f"pick-{three}" in (a.get("id"), a.get("for"))]

    # a key that may only watch gets none of it
    client.session.cookie_jar.clear()
    await sign_in(client, viewer)
    text = await (await client.get("/admin/dashboard")).text()
    assert bulk_forms(text) == {}
    assert 'id="selecting"' not in text and "End of service" not in text and 'popovertarget="end-service"' not in text


async def test_no_party_seated_end_of_service_has_nothing_to_close(client, place):
    _, admin, _ = place
    await sign_in(client, admin)
    text = await (await client.get("/admin/dashboard")).text()
    assert bulk_forms(text)["end-form"]["table_ids"] == []
    assert " ".join(tags(text).texts["end-service"].split()).startswith("End of service. Occupied tables to close: 0")
    closing = [a for t, a in tags(text).tags if t == "button" and a.get("class") == "danger"]
    assert "disabled" in closing[0]


async def test_a_notice_is_shown_by_whichever_worker_serves_the_next_page(aiohttp_client, settings, place, tables):
    """Two instances of the server on one database (two workers behind one address): the tablet posts to one
    and is redirected, and the other may answer the next page. The notice travels with the tablet (a cookie)."""
    actor, admin, _ = place
    _, rows = await tables.list_tables(actor.restaurant_id)
    await tables.seat_table(actor, rows[0]["id"], 2)
    a, b = await aiohttp_client(create_app(settings)), await aiohttp_client(create_app(settings))
    await sign_in(a, admin)  # a's browser; its cookies go to b too (the same host, as one site's workers are)
    csrf = bulk_forms(await (await a.session.get(b.make_url("/admin/dashboard"))).text())["bulk-form"]["fields"]
    posted = await a.post("/admin/api/bulk", data=[
        ("action", "close_table"), ("table_id", str(rows[0]["id"])), ("csrf_token", csrf["csrf_token"]),
        ("back", "dashboard")], headers={"Origin": origin(a)}, allow_redirects=False)
    assert posted.status == 303
    cookie = SimpleCookie(posted.headers["Set-Cookie"])["maitre_notice"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/admin"
    text = await (await a.session.get(b.make_url("/admin/dashboard"))).text()
    assert '<p class="notice" role="status">Table 1 closed.</p>' in text
    assert bulk_forms(text)["undo"]["table_ids"] == [rows[0]["id"]]
    again = await (await a.session.get(a.make_url("/admin/dashboard"))).text()
    assert 'class="notice"' not in again, "shown once, on whichever worker"

    # a notice the tablet made up itself is shown escaped, or not at all
    a.session.cookie_jar.update_cookies({"maitre_notice": "WyI8c2NyaXB0PiIsIFtdXQ=="})  # ["<script>", []]
    text = await (await a.get("/admin/dashboard")).text()
    assert "<script>" not in text.split('class="notice"')[1][:80] and "&lt;script&gt;" in text
    a.session.cookie_jar.update_cookies({"maitre_notice": "not base64 json!"})
    assert 'class="notice"' not in await (await a.get("/admin/dashboard")).text()


async def test_a_no_script_close_comes_back_with_an_undo_that_restores_the_same_tables(client, place, tables):
    actor, admin, _ = place
    _, rows = await tables.list_tables(actor.restaurant_id)
    one, three = ({row["number"]: row["id"] for row in rows}[label] for label in ("1", "3"))
    for table_id in (one, three):
        await tables.seat_table(actor, table_id, 2)
    await sign_in(client, admin)
    csrf = bulk_forms(await (await client.get("/admin/dashboard")).text())["bulk-form"]["fields"]["csrf_token"]
    posted = await client.post("/admin/api/bulk", data=[
        ("action", "close_table"), ("table_id", str(one)), ("table_id", str(three)), ("csrf_token", csrf),
        ("back", "dashboard")], headers={"Origin": origin(client)}, allow_redirects=False)
    assert posted.status == 303 and posted.headers["Location"] == "/admin/dashboard"
    text = await (await client.get("/admin/dashboard")).text()
    assert '<p class="notice" role="status">Tables 1 and 3 closed.</p>' in text
    undo = bulk_forms(text)["undo"]
    assert undo["table_ids"] == [one, three]
    assert undo["fields"] == {"csrf_token": csrf, "back": "dashboard", "action": "restore_table"}
    assert [b.get("type") for b in undo["buttons"]] == ["submit"]
    assert "Undo the close" in tags(text).texts["undo"]
    again = await (await client.get("/admin/dashboard")).text()
    assert bulk_forms(again)["undo"]["table_ids"] == []  # offered once, as the notice is shown once

    restored = await client.post("/admin/api/bulk", data=[
        ("action", "restore_table"), *(("table_id", str(i)) for i in undo["table_ids"]),
        *undo["fields"].items()], headers={"Origin": origin(client)}, allow_redirects=False)
    assert restored.status == 303
    text = await (await client.get("/admin/dashboard")).text()
    assert '<p class="notice" role="status">Tables 1 and 3 restored.</p>' in text
    assert bulk_forms(text)["undo"]["table_ids"] == []  # no Undo after an Undo
    assert [c["data-status"] for c in cards(text)] == ["occupied", "free", "occupied", "free"]
