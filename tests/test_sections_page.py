"""The sections page (/admin/sections): an admin gives waiters their areas and tables with plain forms, every
dashboard sees the change; nobody else may, and a form from elsewhere or without its token is refused."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from app.auth import SIGN_IN_COOKIE, csrf_token
from app.services.floor import FloorService
from app.services.sections import SectionService

from .support import Place, dashboard, origin, receive, sign_in, signed_in, waiters_of

NOTICE = re.compile(r'<p class="notice" role="status">([^<]*)</p>')


class _SectionForms(HTMLParser):
    """Each form: its action, its hidden fields, and its boxes (name, value, ticked, the words of their label)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.box: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attributes["action"], "method": attributes["method"], "hidden": {},
                               "boxes": []})
        elif tag == "input" and attributes.get("type") == "hidden":
            self.forms[-1]["hidden"][attributes["name"]] = attributes["value"]
        elif tag == "input" and attributes.get("type") == "checkbox":
            self.box = {"name": attributes["name"], "value": attributes["value"], "checked": "checked" in attributes,
                        "label": ""}
            self.forms[-1]["boxes"].append(self.box)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self.box is not None:
            self.box["label"] = " ".join(self.box["label"].split())
            self.box = None

    def handle_data(self, data: str) -> None:
        if self.box is not None:
            self.box["label"] += data


def section_forms(page: str) -> dict[str, dict[str, Any]]:
    """The page's forms, by the waiter they set."""
    parser = _SectionForms()
    parser.feed(page)
    parser.close()
    return {form["hidden"]["waiter"]: form for form in parser.forms if form["action"] == "/admin/sections"}


def ticked(form: dict[str, Any]) -> list[tuple[str, str]]:
    return [(box["name"], box["value"]) for box in form["boxes"] if box["checked"]]


@pytest.fixture
def place(terrace: Place) -> Place:
    return terrace


async def post(client: TestClient, token: str | None, *fields: tuple[str, str], **headers: str):
    data = [("csrf_token", token)] if token is not None else []
    return await client.post("/admin/sections", data=[*data, *fields],
                             headers={"Origin": origin(client), **headers}, allow_redirects=False)


async def notice_after(client: TestClient, response) -> str:
    """The page a no-script form comes back to, and the line it shows."""
    assert response.status == 303 and response.headers["Location"] == "/admin/sections"
    page = await (await client.get("/admin/sections")).text()
    found = NOTICE.search(page)
    assert found is not None, page
    return html.unescape(found[1])


async def test_the_page_lists_each_waiter_with_every_area_and_table_and_their_section_ticked(client, place,
                                                                                             tables, db, settings):
    sections = SectionService(db, settings)
    ids = place.ids
    assert (await sections.set_section(place.actor, "Sam", ["Terrace"], [ids["1"]])).ok
    assert (await sections.set_section(place.actor, "Alex", [], [ids["6"]])).ok  # a table's own wins over its area
    await signed_in(client, place.admin)
    assert 'href="/admin/sections"' in await (await client.get("/admin/floor")).text()
    response = await client.get("/admin/sections")
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    text = await response.text()
    forms = section_forms(text)
    assert list(forms) == ["Alex", "Sam"]
    every = [("area", "Main room"), ("table_id", str(ids["1"])), ("table_id", str(ids["2"])),
             ("table_id", str(ids["3"])), ("table_id", str(ids["4"])), ("area", "Terrace"),
             ("table_id", str(ids["5"])), ("table_id", str(ids["6"]))]  # area by area, each area's box first
    for form in forms.values():
        assert form["method"] == "post" and form["hidden"]["csrf_token"]
        assert [(box["name"], box["value"]) for box in form["boxes"]] == every
    assert ticked(forms["Sam"]) == [("table_id", str(ids["1"])), ("area", "Terrace")]
    assert ticked(forms["Alex"]) == [("table_id", str(ids["6"]))]
    labels = {box["value"]: box["label"] for box in forms["Sam"]["boxes"]}
    assert labels[str(ids["2"])] == "Table 2 Main room"  # every table says its area, and whose it is, if another's
    assert labels[str(ids["6"])] == "Table 6 Terrace · Alex's"
    assert labels["Terrace"] == "All of Terrace"
    assert [box["label"] for box in forms["Alex"]["boxes"] if box["value"] in ("Terrace", str(ids["5"]))] == [
        "All of Terrace now Sam's", "Table 5 Terrace · Sam's"]
    assert "Serves 1, 5" in text and "Serves 6" in text
    assert re.search(r"In nobody's section</h2>\s*<p>Tables 2, 3, 4</p>", text)


async def test_a_saved_form_sets_the_section_and_every_dashboard_sees_it(client, place, tables):
    watcher, snapshot = await dashboard(client, place.viewer)
    token = await signed_in(client, place.admin)
    ids = place.ids
    saved = await post(client, token, ("waiter", "Sam"), ("area", "Terrace"), ("table_id", str(ids["1"])))
    assert await notice_after(client, saved) == "Sam's section saved."
    pushed = [await receive(watcher) for _ in range(3)]
    assert [(update["type"], update["version"], update["table"]["number"], update["table"]["waiter"])
            for update in pushed] == [("table_update", snapshot["version"] + n, label, "Sam")
                                      for n, label in enumerate("156", start=1)]
    assert await waiters_of(tables, place) == {"1": "Sam", "2": None, "3": None, "4": None, "5": "Sam", "6": "Sam"}
    page = await (await client.get("/admin/sections")).text()
    assert ticked(section_forms(page)["Sam"]) == [("table_id", str(ids["1"])), ("area", "Terrace")]
    assert NOTICE.search(page) is None  # shown once

    cleared = await post(client, token, ("waiter", "Sam"))  # nothing ticked: no section
    assert await notice_after(client, cleared) == "Sam has no section now."
    pushed = [await receive(watcher) for _ in range(3)]
    assert [(update["table"]["number"], update["table"]["waiter"]) for update in pushed] == [
        ("1", None), ("5", None), ("6", None)]
    assert set((await waiters_of(tables, place)).values()) == {None}
    await watcher.close()


@pytest.mark.parametrize("role", ["viewer", "waiter"])
async def test_only_an_admin_may_open_the_page_or_save_a_section(client, place, tables, keys, role):
    _, key = await keys.add("bistro", f"a {role}", role, name="Sam" if role == "waiter" else None)
    assert (await sign_in(client, key)).status == 303
    response = await client.get("/admin/sections", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/dashboard"
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/admin"))[SIGN_IN_COOKIE].value
    refused = await post(client, csrf_token(cookie), ("waiter", "Sam"), ("area", "Terrace"))
    assert refused.status == 303
    sent_on = await client.get("/admin/sections", allow_redirects=False)  # the page sends them on, told why
    assert sent_on.headers["Location"] == "/admin/dashboard"
    assert "Only an admin key may edit the floor." in await (await client.get("/admin/dashboard")).text()
    bearer = await client.post("/admin/sections", data={"waiter": "Sam", "area": "Terrace"},
                               headers={"Authorization": f"Bearer {key}"})
    assert bearer.status == 403 and (await bearer.json())["code"] == "forbidden"
    assert set((await waiters_of(tables, place)).values()) == {None}


@pytest.mark.parametrize(("token", "headers", "detail"), [
    (None, {}, "The form has expired. Reload the page and try again."),
    ("not the token", {}, "The form has expired. Reload the page and try again."),
    ("ours", {"Origin": "https://evil.example"}, "This request came from another site."),
    ("ours", {"Origin": "null", "Referer": "https://evil.example/page"}, "This request came from another site."),
])
async def test_a_form_without_its_token_or_from_another_site_is_refused(client, place, tables, token, headers,
                                                                        detail):
    watcher, snapshot = await dashboard(client, place.viewer)
    ours = await signed_in(client, place.admin)
    response = await post(client, ours if token == "ours" else token, ("waiter", "Sam"), ("area", "Terrace"),
                          **headers)
    assert (response.status, await response.text()) == (403, detail)
    assert set((await waiters_of(tables, place)).values()) == {None}
    assert (await tables.list_tables(place.actor.restaurant_id))[0] == snapshot["version"]
    assert (await post(client, ours, ("waiter", "Alex"), ("area", "Terrace"))).status == 303
    assert (await receive(watcher))["version"] == snapshot["version"] + 1  # the first change pushed is this one
    await watcher.close()


async def test_bad_input_is_said_on_the_page_and_changes_nothing(client, place, tables, db, settings):
    ids = place.ids
    assert (await SectionService(db, settings).set_section(place.actor, "Sam", ["Terrace"])).ok
    assert (await FloorService(db, settings).remove_table(place.actor, ids["4"])).ok
    watcher, snapshot = await dashboard(client, place.viewer)
    before = await tables.list_tables(place.actor.restaurant_id)
    token = await signed_in(client, place.admin)
    for fields, said in [
        ((("waiter", "Sam"), ("area", "Patio"), ("table_id", str(ids["1"]))),
         "There is no area 'Patio' (areas: Main room, Terrace). Nothing was changed."),
        ((("waiter", "Sam"), ("area", "Main room"), ("table_id", str(ids["4"]))),  # a table removed meanwhile
         f"There is no table {ids['4']}. Nothing was changed."),
        ((("waiter", "Nobody"), ("area", "Main room")),
         "There is no waiter named 'Nobody': a waiter is the name of a waiter key (run.py key add SLUG --role "
         "waiter --name NAME). Nothing was changed."),
        ((("area", "Main room"),), "There is no waiter named 'None'"),
    ]:
        assert (await notice_after(client, await post(client, token, *fields))).startswith(said)
    garbled = await post(client, token, ("waiter", "Sam"), ("table_id", "one"))
    assert (garbled.status, await garbled.text()) == (422, "table_id must be a table id (a whole number).")
    assert await tables.list_tables(place.actor.restaurant_id) == before
    assert (await post(client, token, ("waiter", "Alex"), ("table_id", str(ids["1"])))).status == 303
    assert (await receive(watcher))["version"] == snapshot["version"] + 1  # nothing was pushed before it
    await watcher.close()


async def test_without_waiters_the_page_says_how_to_make_one(client, bistro_place):
    await signed_in(client, bistro_place.admin)
    text = await (await client.get("/admin/sections")).text()
    assert section_forms(text) == {}
    assert "<code>python run.py key add bistro --role waiter --name NAME</code>" in text
    assert re.search(r"<p>Tables 1, 2, 3, 4, 5, 6</p>", text)


async def test_names_are_escaped_and_come_back_as_they_were(client, place, tables, keys, db, settings):
    odd = '<b>"Jo" & Co</b>'
    await keys.add("bistro", "odd phone", "waiter", name=odd)
    area = "<i>Patio</i>"
    assert (await FloorService(db, settings).set_table(place.actor, place.ids["4"], area=area)).ok
    token = await signed_in(client, place.admin)
    text = await (await client.get("/admin/sections")).text()
    assert "<b>" not in text and "<i>" not in text
    assert "&lt;b&gt;&#34;Jo&#34; &amp; Co&lt;/b&gt;" in text and "All of &lt;i&gt;Patio&lt;/i&gt;" in text
    form = section_forms(text)[odd]  # the parser reads the page's text back as it was
    (patio,) = [box for box in form["boxes"] if box["value"] == area]
    saved = await post(client, token, ("waiter", form["hidden"]["waiter"]), ("area", patio["value"]))
    assert await notice_after(client, saved) == f"{odd}'s section saved."
    assert (await waiters_of(tables, place))["4"] == odd


async def test_a_program_sets_a_section_with_an_admin_key_and_is_answered_in_json(client, place):
    watcher, snapshot = await dashboard(client, place.viewer)
    bearer = {"Authorization": f"Bearer {place.admin}"}
    done = await client.post("/admin/sections", data=[("waiter", "Alex"), ("area", "Terrace")], headers=bearer)
    assert done.status == 200
    body = await done.json()
    assert (body["type"], body["version"]) == ("ack", snapshot["version"] + 2)
    assert [(table["number"], table["waiter"]) for table in body["tables"]] == [("5", "Alex"), ("6", "Alex")]
    assert [(await receive(watcher))["table"]["number"] for _ in range(2)] == ["5", "6"]
    for data, status, code in [([("waiter", "Nobody")], 404, "waiter_not_found"),
                               ([("waiter", "Alex"), ("area", "Patio")], 404, "area_not_found"),
                               ([("waiter", "Alex"), ("table_id", "99999")], 404, "table_not_found"),
                               ([("waiter", "Alex"), ("table_id", "0")], 422, "invalid_action")]:
        refused = await client.post("/admin/sections", data=data, headers=bearer)
        assert refused.status == status and (await refused.json())["code"] == code
    unknown = await client.post("/admin/sections", data={"waiter": "Alex"}, headers={"Authorization": "Bearer no"})
    assert unknown.status == 401
    await watcher.close()


async def test_a_form_sent_after_the_sign_in_ended_goes_to_the_sign_in_page(client, place, tables):
    token = await signed_in(client, place.admin)
    client.session.cookie_jar.clear()
    response = await post(client, token, ("waiter", "Sam"), ("area", "Terrace"))
    assert response.status == 303 and response.headers["Location"] == "/admin/login"
    assert (await client.get("/admin/sections", allow_redirects=False)).headers["Location"] == "/admin/login"
    assert set((await waiters_of(tables, place)).values()) == {None}
