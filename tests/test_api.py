"""The HTTP side: a table's changes (the page's routes and the old, deprecated ones), the read API, the polled grid
and the no-script forms."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from .html import cards
from .support import SOCKET, Place, receive, signed_in

JSON = {"Accept": "application/json"}


@pytest.fixture
async def bistro_place(bistro_place: Place, tables) -> Place:
    """The bistro, with a party of two at table 1 in every test here."""
    await tables.seat_table(bistro_place.actor, bistro_place.ids["1"], 2)
    return bistro_place


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def assert_deprecated(response, deprecated: bool = True) -> None:
    if not deprecated:
        assert "Deprecation" not in response.headers and "Link" not in response.headers
        return
    assert response.headers["Deprecation"].startswith("@")
    assert 'rel="deprecation"' in response.headers["Link"] and "/docs/protocol.md" in response.headers["Link"]


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            attributes = dict(attrs)
            self.found.append((attributes.get("method") or "", attributes.get("action") or ""))


def form_actions(html: str) -> list[tuple[str, str]]:
    """Every form's (method, action) in `html`, in order."""
    parser = _Forms()
    parser.feed(html)
    parser.close()
    return parser.found


# The page's own routes, and the old HTMX dashboard's (deprecated, kept): the same answers, but for the headers.
PREFIXES = pytest.mark.parametrize(("prefix", "deprecated"), [("/admin/tables", False), ("/admin/table", True)])

# -- a table's changes ----------------------------------------------------------------------------


@PREFIXES
@pytest.mark.parametrize(
    ("verb", "label", "data", "status_after"),
    [
        ("close", "1", None, "free"),
        ("disable", "2", None, "disabled"),
        ("move", "1", {"target": "TARGET"}, "free"),
    ],
)
async def test_a_change_answers_json_and_pushes_to_the_dashboards(
    client, bistro_place, prefix, deprecated, verb, label, data, status_after
):
    ws = await client.ws_connect(f"{SOCKET}?token={bistro_place.viewer}")
    snapshot = await receive(ws)
    if data:
        data = {"target": str(bistro_place.ids["5"])}
    response = await client.post(
        f"{prefix}/{bistro_place.ids[label]}/{verb}", data=data, headers=bearer(bistro_place.admin, **JSON)
    )
    assert response.status == 200
    assert_deprecated(response, deprecated)
    body = await response.json()
    assert body["type"] == "ack" and body["version"] == snapshot["version"] + len(body["tables"])
    assert body["tables"][0]["id"] == bistro_place.ids[label] and body["tables"][0]["status"] == status_after
    pushed = await receive(ws)
    assert pushed["type"] == "table_update" and pushed["table"] == body["tables"][0]


@PREFIXES
async def test_the_default_answer_is_the_toast_fragment_for_htmx(client, bistro_place, prefix, deprecated):
    done = await client.post(
        f"{prefix}/{bistro_place.ids['1']}/close", headers=bearer(bistro_place.admin, **{"HX-Request": "true"})
    )
    assert done.status == 200 and done.content_type == "text/html"
    assert_deprecated(done, deprecated)
    assert (await done.text()).strip() == '<div class="toast-success" role="status">Table 1 closed.</div>'
    again = await client.post(f"{prefix}/{bistro_place.ids['1']}/close", headers=bearer(bistro_place.admin))
    assert again.status == 200
    assert_deprecated(again, deprecated)
    assert (
        await again.text()
    ).strip() == '<div class="toast-error" role="status">Table 1 has no guests to close.</div>'


@PREFIXES
@pytest.mark.parametrize(
    ("path", "data", "status", "code"),
    [
        ("999/close", None, 404, "table_not_found"),
        ("CAFE1/close", None, 404, "table_not_found"),
        ("B2/close", None, 409, "no_active_session"),
        ("B1/disable", None, 409, "table_occupied"),
        ("B2/enable", None, 409, "not_disabled"),
        ("B2/restore", None, 409, "no_session_to_restore"),
        ("B1/move", {"target": "B1"}, 422, "same_table"),
        ("B2/move", {"target": "B3"}, 409, "no_session_to_move"),
        ("B1/move", {"target": "CAFE1"}, 404, "target_table_not_found"),
        ("B1/move", {}, 422, "invalid_action"),
        ("B1/move", {"target": "three"}, 422, "invalid_action"),
        ("abc/close", None, 422, "invalid_action"),
        ("99999999999999999999999/close", None, 422, "invalid_action"),
    ],
)
async def test_refusals_carry_their_code_and_http_status(
    client, bistro_place, cafe_place, prefix, deprecated, path, data, status, code
):
    names = {"B1": bistro_place.ids["1"], "B2": bistro_place.ids["2"], "B3": bistro_place.ids["3"],
             "CAFE1": cafe_place.ids["1"]}
    path = re.sub(r"B\d|CAFE1", lambda m: str(names[m.group(0)]), f"{prefix}/{path}")
    data = {k: str(names.get(v, v)) for k, v in (data or {}).items()}
    response = await client.post(path, data=data, headers=bearer(bistro_place.admin, **JSON))
    assert response.status == status
    assert_deprecated(response, deprecated)
    body = await response.json()
    assert body["type"] == "error" and body["code"] == code and body["detail"]


async def test_a_malformed_id_is_named_for_what_it_should_be(client, bistro_place):
    for path, wording in (("/admin/tables/abc/close", "The table must be a table id"),
                          ("/admin/table/abc/close", "The table must be a table id"),
                          ("/admin/request/abc/resolve", "The request must be a waiter request's id")):
        response = await client.post(path, headers=bearer(bistro_place.admin, **JSON))
        assert response.status == 422
        body = await response.json()
        assert body["code"] == "invalid_action" and body["detail"].startswith(wording), body


async def test_credentials_and_roles(client, bistro_place):
    path = f"/admin/table/{bistro_place.ids['1']}/close"
    nobody = await client.post(path, headers=JSON)
    assert nobody.status == 401 and (await nobody.json())["code"] == "unauthorized"
    assert nobody.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await client.post(path, headers=bearer("mtr_wrong", **JSON))
    assert wrong.status == 401
    not_bearer = await client.post(path, headers={"Authorization": f"Basic {bistro_place.admin}", **JSON})
    assert not_bearer.status == 401
    viewer = await client.post(path, headers=bearer(bistro_place.viewer, **JSON))
    assert viewer.status == 403 and (await viewer.json())["code"] == "forbidden"


async def test_changes_over_http_are_rate_limited_per_key(client, bistro_place):
    statuses = []
    for _ in range(25):
        response = await client.post(f"/admin/table/{bistro_place.ids['3']}/enable",
                                     headers=bearer(bistro_place.admin, **JSON))
        statuses.append(response.status)
    assert statuses.count(409) >= 19 and statuses.count(429) >= 3
    assert (
        await (await client.post(f"/admin/table/{bistro_place.ids['3']}/enable",
                                 headers=bearer(bistro_place.admin, **JSON))).json()
    )["code"] == "rate_limited"


# -- the cookie: CSRF and origin ------------------------------------------------------------------


@PREFIXES
async def test_with_the_cookie_a_change_needs_the_csrf_token(client, bistro_place, prefix, deprecated):
    token = await signed_in(client, bistro_place.admin)
    path = f"{prefix}/{bistro_place.ids['4']}/disable"
    missing = await client.post(path, headers=JSON)
    assert missing.status == 403 and (await missing.json())["code"] == "forbidden"
    wrong = await client.post(path, data={"csrf_token": ("y" if token[0] == "x" else "x") + token[1:]}, headers=JSON)
    assert wrong.status == 403
    header = await client.post(path, headers={"X-CSRF-Token": token, **JSON})
    assert header.status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null", "Referer": "https://evil.example/page"},
    ],
)
@PREFIXES
async def test_with_the_cookie_a_foreign_origin_is_refused_even_with_the_token(
    client, bistro_place, headers, prefix, deprecated
):
    token = await signed_in(client, bistro_place.admin)
    response = await client.post(
        f"{prefix}/{bistro_place.ids['4']}/disable", data={"csrf_token": token}, headers={**headers, **JSON}
    )
    assert response.status == 403


async def test_the_page_posts_to_its_own_routes_not_the_deprecated_ones(client, bistro_place, tables):
    await tables.disable_table(bistro_place.actor, bistro_place.ids["3"])
    await signed_in(client, bistro_place.admin)
    ws = await client.ws_connect(f"{SOCKET}?token={bistro_place.viewer}")
    pushed = await receive(ws)  # rendered outside any request
    page = form_actions(await (await client.get("/admin/dashboard")).text())
    one, two, three = (bistro_place.ids[label] for label in ("1", "2", "3"))
    expected = [("post", f"/admin/tables/{one}/close"), ("get", f"/admin/tables/{one}/move"),
                ("get", f"/admin/tables/{one}/join"), ("post", f"/admin/tables/{one}/guests"),
                ("post", f"/admin/tables/{one}/note"),  # the party: close, move, join, its size and note
                ("post", f"/admin/tables/{two}/seat"), ("post", f"/admin/tables/{two}/seat"),  # 1..4, or More
                ("post", f"/admin/tables/{two}/disable"), ("post", f"/admin/tables/{three}/enable")]
    assert page[1:10] == expected and page[0] == ("post", "/admin/logout")
    assert form_actions(pushed["html"])[:9] == expected
    assert not [action for _, action in page if action.startswith("/admin/table/")]  # nothing deprecated


async def test_the_no_script_form_comes_back_to_the_dashboard_with_the_result(client, bistro_place):
    token = await signed_in(client, bistro_place.admin)
    response = await client.post(
        f"/admin/tables/{bistro_place.ids['1']}/close", data={"csrf_token": token, "back": "dashboard"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/admin/dashboard"
    assert_deprecated(response, deprecated=False)
    page = await (await client.get("/admin/dashboard")).text()
    assert '<p class="notice" role="status">Table 1 closed.</p>' in page
    card = next(c for c in cards(page) if c["id"] == f"table-{bistro_place.ids['1']}")
    # free again: seat 1..4 guests (its seats) or More, restore the party just closed, disable
    assert card["data-status"] == "free"
    assert card["buttons"] == ["Seat", "1", "2", "3", "4", "Seat", "Restore", "Disable"]
    assert "notice" not in await (await client.get("/admin/dashboard")).text()  # shown once

    refused = await client.post(
        f"/admin/tables/{bistro_place.ids['1']}/close", data={"csrf_token": token, "back": "dashboard"},
        allow_redirects=False,
    )
    assert refused.status == 303
    assert "Table 1 has no guests to close." in await (await client.get("/admin/dashboard")).text()


async def test_the_no_script_move_page(client, bistro_place, tables):
    await tables.disable_table(bistro_place.actor, bistro_place.ids["6"])
    token = await signed_in(client, bistro_place.admin)
    url = f"/admin/tables/{bistro_place.ids['1']}/move"
    page = await client.get(url)
    text = await page.text()
    assert page.status == 200 and "Move table 1 to" in text
    targets = re.findall(r'name="to_table_id" value="(\d+)"', text)
    assert targets == [str(bistro_place.ids[label]) for label in ("2", "3", "4", "5")]
    assert form_actions(text) == [("post", url)] * 4  # each free table posts the move to the page's own URL
    old = await client.get(f"/admin/table/{bistro_place.ids['1']}/move")  # its old address still serves it
    assert old.status == 200 and form_actions(await old.text()) == [("post", url)] * 4
    assert 'name="target"' not in text  # the old field's name is only still read, never sent
    moved = await client.post(url, data={"csrf_token": token, "back": "dashboard", "to_table_id": targets[0]})
    assert "Party moved from table 1 to table 2." in await moved.text()
    away = await client.get(url, allow_redirects=False)
    assert away.status == 303


# -- reading --------------------------------------------------------------------------------------


async def test_the_polled_grid_fragment(client, bistro_place):
    response = await client.get("/admin/tables", headers=bearer(bistro_place.viewer))
    assert response.status == 200 and response.content_type == "text/html"
    grid = cards(await response.text())
    assert [c["data-status"] for c in grid] == ["occupied", "free", "free", "free", "free", "free"]
    unchanged = await client.get(
        "/admin/tables", headers=bearer(bistro_place.viewer, **{"If-None-Match": response.headers["ETag"]})
    )
    assert unchanged.status == 304
    assert (await client.get("/admin/tables")).status == 401


async def test_the_read_api_with_its_etag(client, bistro_place):
    ws = await client.ws_connect(f"{SOCKET}?token={bistro_place.viewer}")
    snapshot = await receive(ws)
    response = await client.get("/admin/api/tables", headers=bearer(bistro_place.viewer))
    assert response.status == 200
    assert await response.json() == snapshot["tables"]
    assert response.headers["ETag"] == f'"{snapshot["version"]}"'
    same = await client.get(
        "/admin/api/tables", headers=bearer(bistro_place.viewer, **{"If-None-Match": response.headers["ETag"]})
    )
    assert same.status == 304 and same.headers["ETag"] == response.headers["ETag"]
    await client.post(f"/admin/table/{bistro_place.ids['2']}/disable", headers=bearer(bistro_place.admin))
    changed = await client.get(
        "/admin/api/tables", headers=bearer(bistro_place.viewer, **{"If-None-Match": response.headers["ETag"]})
    )
    assert changed.status == 200 and changed.headers["ETag"] == f'"{snapshot["version"] + 1}"'
    assert (await client.get("/admin/api/tables")).status == 401


async def test_the_events_feed(client, bistro_place, cafe_place):
    await client.post(
        f"/admin/table/{bistro_place.ids['1']}/move", data={"target": str(bistro_place.ids["2"])},
        headers=bearer(bistro_place.admin),
    )
    await client.post(f"/admin/table/{cafe_place.ids['1']}/disable", headers=bearer(cafe_place.admin))
    response = await client.get("/admin/api/events?since=6", headers=bearer(bistro_place.viewer))
    assert response.status == 200
    body = await response.json()
    assert body["version"] == 9 and body["more"] is False
    assert [(e["version"], e["action"]) for e in body["events"]] == [(7, "seat_table"), (9, "move_table")]
    move = body["events"][1]
    assert move["actor"] == "admin tablet" and [t["status"] for t in move["tables"]] == ["free", "occupied"]
    assert all(t["id"] in bistro_place.ids.values() for e in body["events"] for t in e["tables"])
    # "²" and "٣" pass str.isdigit() (int() refuses the first, reads the second as 3); only ASCII digits are a version
    for bad in ("", "?since=-1", "?since=soon", "?since=1e3", "?since=²", "?since=٣", "?since=" + "9" * 5000):
        refused = await client.get(f"/admin/api/events{bad}", headers=bearer(bistro_place.viewer))
        assert refused.status == 422 and (await refused.json())["code"] == "invalid_action"


async def test_the_protocol_document_is_served(client):
    response = await client.get("/docs/protocol.md")
    assert response.status == 200 and "tables_snapshot" in await response.text()


# -- a party's changes: seat, its size and note, join, split, move --------------------------------


async def post_json(client, path: str, key: str, **data: str):
    response = await client.post(path, data=data, headers=bearer(key, **JSON))
    return response.status, await response.json()


async def test_seating_over_http_takes_the_guest_count_typed_or_the_seats(client, bistro_place):
    ids, admin = bistro_place.ids, bistro_place.admin
    status, body = await post_json(client, f"/admin/tables/{ids['2']}/seat", admin, guest_count="3")
    assert status == 200 and body["type"] == "ack"
    (table,) = body["tables"]
    assert (table["id"], table["status"], table["session"]["guest_count"]) == (ids["2"], "occupied", 3)
    status, body = await post_json(client, f"/admin/tables/{ids['3']}/seat", admin)  # as many as it seats
    assert status == 200 and body["tables"][0]["session"]["guest_count"] == 4
    status, body = await post_json(client, f"/admin/tables/{ids['4']}/seat", admin, guest_count=" 2 ")
    assert status == 200 and body["tables"][0]["session"]["guest_count"] == 2
    status, body = await post_json(client, f"/admin/tables/{ids['5']}/seat", admin, guest_count="")  # More, empty
    assert status == 200 and body["tables"][0]["session"]["guest_count"] == 4


@pytest.mark.parametrize(("guest_count", "status", "code"), [
    ("abc", 422, "invalid_guest_count"),
    ("0", 422, "invalid_guest_count"),
    ("100", 422, "invalid_guest_count"),
    ("-3", 422, "invalid_guest_count"),
    ("2.5", 422, "invalid_guest_count"),
    ("²", 422, "invalid_guest_count"),
])
async def test_seating_over_http_refuses_a_guest_count_that_is_not_1_to_99(
        client, bistro_place, tables, guest_count, status, code):
    path = f"/admin/tables/{bistro_place.ids['2']}/seat"
    got, body = await post_json(client, path, bistro_place.admin, guest_count=guest_count)
    assert (got, body["code"]) == (status, code) and body["detail"]
    toast = await client.post(path, data={"guest_count": guest_count}, headers=bearer(bistro_place.admin))
    assert toast.status == status and "toast-error" in await toast.text()  # bad input keeps its status as a toast
    _, rows = await tables.list_tables(bistro_place.actor.restaurant_id)
    assert rows[1]["status"] == "free"


async def test_a_viewer_key_may_not_change_a_party_over_http(client, bistro_place, tables):
    ids, viewer = bistro_place.ids, bistro_place.viewer
    for path, data in [(f"/admin/tables/{ids['2']}/seat", {"guest_count": "2"}),
                       (f"/admin/tables/{ids['1']}/guests", {"guest_count": "5"}),
                       (f"/admin/tables/{ids['1']}/note", {"note": "window seat"}),
                       (f"/admin/tables/{ids['1']}/join", {"with_table_id": str(ids["2"])}),
                       (f"/admin/tables/{ids['1']}/move", {"to_table_id": str(ids["2"])})]:
        status, body = await post_json(client, path, viewer, **data)
        assert (status, body["code"]) == (403, "forbidden"), path
    _, rows = await tables.list_tables(bistro_place.actor.restaurant_id)
    assert [t["status"] for t in rows][:2] == ["occupied", "free"]
    assert rows[0]["session"]["guest_count"] == 2 and rows[0]["session"]["note"] is None


async def test_the_party_size_and_note_over_http(client, bistro_place):
    ids, admin = bistro_place.ids, bistro_place.admin
    watcher = await client.ws_connect(f"{SOCKET}?token={bistro_place.viewer}")
    await receive(watcher)
    status, body = await post_json(client, f"/admin/tables/{ids['1']}/guests", admin, guest_count="5")
    assert status == 200 and body["tables"][0]["session"]["guest_count"] == 5
    assert (await receive(watcher))["table"]["session"]["guest_count"] == 5

    note = '<script>alert("hi")</script> nut allergy'
    status, body = await post_json(client, f"/admin/tables/{ids['1']}/note", admin, note=f"  {note} ")
    assert status == 200 and body["tables"][0]["session"]["note"] == note  # the text as typed, stripped
    pushed = await receive(watcher)
    assert pushed["table"]["session"]["note"] == note
    assert "<script>" not in pushed["html"]
    assert '<p class="party-note">&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt; nut allergy</p>' in pushed["html"]

    status, body = await post_json(client, f"/admin/tables/{ids['1']}/note", admin, note="")
    assert status == 200 and body["tables"][0]["session"]["note"] is None  # empty clears it
    assert "party-note" not in (await receive(watcher))["html"]

    for path, data, code in [(f"/admin/tables/{ids['1']}/guests", {}, "invalid_guest_count"),
                             (f"/admin/tables/{ids['1']}/guests", {"guest_count": "many"}, "invalid_guest_count"),
                             (f"/admin/tables/{ids['1']}/note", {"note": "x" * 141}, "invalid_note"),
                             (f"/admin/tables/{ids['1']}/note", {}, "invalid_note")]:
        status, body = await post_json(client, path, admin, **data)
        assert (status, body["code"]) == (422, code), (path, data)
    status, body = await post_json(client, f"/admin/tables/{ids['2']}/guests", admin, guest_count="2")
    assert (status, body["code"]) == (409, "no_active_session")
    status, body = await post_json(client, f"/admin/tables/{ids['2']}/note", admin, note="hello")
    assert (status, body["code"]) == (409, "no_active_session")


async def test_join_and_split_over_http_push_every_changed_table(client, bistro_place):
    ids, admin = bistro_place.ids, bistro_place.admin
    watcher = await client.ws_connect(f"{SOCKET}?token={bistro_place.viewer}")
    start = (await receive(watcher))["version"]
    status, body = await post_json(client, f"/admin/tables/{ids['1']}/join", admin, with_table_id=str(ids["2"]))
    assert status == 200 and body["version"] == start + 2
    assert [(t["id"], t["status"]) for t in body["tables"]] == [(ids["1"], "occupied"), (ids["2"], "occupied")]
    pushed = [await receive(watcher), await receive(watcher)]
    assert [(m["version"], m["table"]) for m in pushed] == [(start + 1, body["tables"][0]),
                                                             (start + 2, body["tables"][1])]
    assert cards(pushed[0]["html"])[0]["text"].count("Joined with 2") == 1
    assert "With 1" in cards(pushed[1]["html"])[0]["text"]

    status, body = await post_json(client, f"/admin/tables/{ids['2']}/split", admin)
    assert status == 200 and body["version"] == start + 4
    assert {t["id"]: t["status"] for t in body["tables"]} == {ids["1"]: "occupied", ids["2"]: "free"}
    assert [(await receive(watcher))["version"] for _ in body["tables"]] == [start + 3, start + 4]

    for path, data, status_code, code in [
        (f"/admin/tables/{ids['1']}/join", {"with_table_id": str(ids["1"])}, 422, "same_table"),
        (f"/admin/tables/{ids['1']}/join", {}, 422, "invalid_action"),
        (f"/admin/tables/{ids['1']}/join", {"with_table_id": "two"}, 422, "invalid_action"),
        (f"/admin/tables/{ids['3']}/join", {"with_table_id": str(ids["4"])}, 409, "no_active_session"),
        (f"/admin/tables/{ids['1']}/split", {}, 409, "not_joined"),
        (f"/admin/tables/{ids['3']}/split", {}, 409, "no_active_session"),
    ]:
        status, body = await post_json(client, path, admin, **data)
        assert (status, body["code"]) == (status_code, code), (path, data)


@pytest.mark.parametrize("field", ["to_table_id", "target"])
async def test_a_move_takes_the_target_under_its_new_name_and_its_old_one(client, bistro_place, field):
    ids = bistro_place.ids
    status, body = await post_json(client, f"/admin/tables/{ids['1']}/move", bistro_place.admin,
                                   **{field: str(ids["4"])})
    assert status == 200
    assert [(t["id"], t["status"]) for t in body["tables"]] == [(ids["1"], "free"), (ids["4"], "occupied")]
    assert body["tables"][1]["session"]["guest_count"] == 2


async def test_the_no_script_join_page(client, bistro_place, tables):
    ids = bistro_place.ids
    await tables.seat_table(bistro_place.actor, ids["5"], 4)
    await tables.disable_table(bistro_place.actor, ids["3"])
    token = await signed_in(client, bistro_place.admin)
    url = f"/admin/tables/{ids['5']}/join"
    page = await client.get(url)
    text = await page.text()
    assert page.status == 200 and "Join a free table to table 5" in text
    targets = re.findall(r'name="with_table_id" value="(\d+)"', text)
    assert targets == [str(ids[label]) for label in ("2", "4", "6")]  # the free ones: not 1, 5 (guests) nor 3
    assert form_actions(text) == [("post", url)] * 3
    joined = await client.post(url, data={"csrf_token": token, "back": "dashboard", "with_table_id": str(ids["6"])},
                               allow_redirects=False)
    assert joined.status == 303 and joined.headers["Location"] == "/admin/dashboard"
    dashboard = await (await client.get("/admin/dashboard")).text()
    assert '<p class="notice" role="status">Table 6 joined to table 5.</p>' in dashboard
    grid = {card["id"]: card for card in cards(dashboard)}
    assert "Joined with 6" in grid[f"table-{ids['5']}"]["text"] and "With 5" in grid[f"table-{ids['6']}"]["text"]
    assert "Split" in grid[f"table-{ids['6']}"]["buttons"] and "Split" not in grid[f"table-{ids['5']}"]["buttons"]
    free = await client.get(f"/admin/tables/{ids['2']}/join", allow_redirects=False)
    assert free.status == 303 and free.headers["Location"] == "/admin/dashboard"
    assert "That table has no guests." in await (await client.get("/admin/dashboard")).text()
