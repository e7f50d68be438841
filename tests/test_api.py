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
    await tables.seat_party(bistro_place.actor, bistro_place.ids["1"], 2)
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
                ("post", f"/admin/tables/{two}/disable"), ("post", f"/admin/tables/{three}/enable")]
    assert page[1:5] == expected and page[0] == ("post", "/admin/logout")
    assert form_actions(pushed["html"])[:4] == expected


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
    assert card["data-status"] == "free" and card["buttons"] == ["Restore", "Disable"]
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
    targets = re.findall(r'name="target" value="(\d+)"', text)
    assert targets == [str(bistro_place.ids[label]) for label in ("2", "3", "4", "5")]
    assert form_actions(text) == [("post", url)] * 4  # each free table posts the move to the page's own URL
    old = await client.get(f"/admin/table/{bistro_place.ids['1']}/move")  # its old address still serves it
    assert old.status == 200 and form_actions(await old.text()) == [("post", url)] * 4
    moved = await client.post(url, data={"csrf_token": token, "back": "dashboard", "target": targets[0]})
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
    assert [(e["version"], e["action"]) for e in body["events"]] == [(7, "open_session"), (9, "move_table")]
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
