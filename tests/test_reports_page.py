"""Reports over HTTP (issue 19): the page of charts, the CSV of parties and the JSON report, for admins and waiters
and nobody else; the charts' templates over hand-made reports (a full day, a day without guests, long or hostile
names); the period refused with its reason."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import aiohttp_jinja2
import jsonschema_rs
import pytest
from aiohttp.test_utils import TestClient

from app import create_app
from app.auth import KeyService
from app.db import Database, format_time
from app.services.core import Actor, ServiceError
from app.services.floor import FloorService
from app.services.reports import Report, ReportService
from app.services.restaurants import RestaurantService
from app.services.tables import TableService
from app.settings import Settings
from app.web.openapi import build
from app.web.reports import cell

from .support import sign_in

DAY = (datetime.now(UTC) - timedelta(days=3)).date()  # a service day over, in the default zone (UTC, from 04:00)
CSV_HEADER = ["party", "table", "area", "tables", "seated", "closed", "turn_minutes", "guests", "calls",
              "claim_wait_seconds", "resolve_wait_seconds", "restores"]


class _Page(HTMLParser):
    """What a report page shows: each chart (its attributes, its <title>, the words it writes), the totals, the
    tables of numbers inside <details>, and the text outside the charts."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[dict[str, Any]] = []
        self.totals: dict[str, str] = {}
        self.detail_tables = 0
        self.text: list[str] = []
        self._in: list[str] = []
        self._term: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "svg":
            self.charts.append({"attrs": attributes, "title": "", "words": []})
        if tag == "table" and "details" in self._in:
            self.detail_tables += 1
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        words = data.strip()
        if not words:
            return
        if "svg" in self._in:
            chart = self.charts[-1]
            if self._in[-1] == "title" and self._in[-2] == "svg":
                chart["title"] += words
            elif self._in[-1] == "text":
                chart["words"].append(words)
            return
        self.text.append(words)
        if self._in and self._in[-1] == "dt":
            self._term = words
        elif self._in and self._in[-1] == "dd" and self._term is not None:
            self.totals[self._term] = words
            self._term = None


def read_page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def chart(page: _Page, chart_id: str) -> dict[str, Any]:
    (found,) = [c for c in page.charts if c["attrs"].get("id") == chart_id]
    return found


# -- the templates, over hand-made reports --------------------------------------------------------------------


def hand_made(*, guests: bool = True, waiter: str | None = None) -> Report:
    """A day at a bistro, as ReportService.report would give it: lunch and dinner in the main room, the terrace
    at dinner, the bar never used; or the same day without a guest."""
    hours = [f"{(4 + i) % 24:02d}:00" for i in range(24)]
    covers = {"12:00": 14, "13:00": 22, "19:00": 31, "20:00": 40, "21:00": 18} if guests else {}
    parties = {"12:00": 5, "13:00": 8, "19:00": 10, "20:00": 13, "21:00": 7} if guests else {}
    slots = []
    for i in range(96):
        minute = 4 * 60 + i * 15
        dinner = guests and 19 * 60 <= minute < 22 * 60
        slots.append({"at": f"{minute // 60 % 24:02d}:{minute % 60:02d}",
                      "areas": {"Main room": 6.5 if dinner else 0.0, "<i>Patio</i>": 2.0 if dinner else 0.0,
                                "Bar": 0.0}})

    def turn(key: str, parties: int, median: float | None, p90: float | None) -> Any:
        return {"key": key, "parties": parties, "median_minutes": median, "p90_minutes": p90}

    def calls(key: str, n: int, claim: float | None, resolve: float | None) -> Any:
        return {"key": key, "calls": n, "claimed": n, "claim_median_seconds": claim, "claim_p90_seconds": claim,
                "resolved": n if resolve else 0, "resolve_median_seconds": resolve, "resolve_p90_seconds": resolve}

    return {
        "restaurant": {"slug": "bistro", "name": "Bistro"},
        "waiter": waiter,
        "period": {"start": "2026-11-25T04:00:00+00:00", "end": "2026-11-26T04:00:00+00:00",
                   "first_day": "2026-11-25", "last_day": "2026-11-25", "days": 1, "time_zone": "UTC",
                   "day_starts_at": "04:00", "label": "Wednesday 25 November 2026"},
        "totals": {"parties": sum(parties.values()), "covers": sum(covers.values()), "unknown_size": 0,
                   "tables_used": 9 if guests else 0, "tables": 12, "restores": 2 if guests else 0,
                   "calls": 9 if guests else 0},
        "hours": [{"hour": hour, "parties": parties.get(hour, 0), "covers": covers.get(hour, 0)} for hour in hours],
        "occupancy": {"slot_minutes": 15, "areas": ["Main room", "<i>Patio</i>", "Bar"],
                      "tables": {"Main room": 8, "<i>Patio</i>": 3, "Bar": 0}, "slots": slots},
        "turns": {
            "all": turn("all", 43, 62.5, 104.0) if guests else turn("all", 0, None, None),
            "by_area": [turn("Main room", 35, 65.0, 110.0), turn("<i>Patio</i>", 8, 48.0, 71.5),
                        turn("Bar", 0, None, None)] if guests else [],
            "by_size": [turn("2 seats", 20, 45.0, 70.0), turn("4 seats", 23, 70.0, 118.0)] if guests else [],
            "distribution": [{"from_minutes": i * 15, "to_minutes": None if i == 11 else (i + 1) * 15,
                              "parties": [0, 1, 3, 6, 9, 11, 5, 3, 2, 2, 0, 1][i] if guests else 0}
                             for i in range(12)],
        },
        "calls": {"by_kind": [calls("Call a waiter", 6, 48.0, 150.0), calls("The bill", 3, 30.0, None)]
                  if guests else [],
                  "by_waiter": [calls("Sam", 9, 40.0, 160.0)] if guests else []},
        "heat_map": {"first_day": "2026-10-29", "last_day": "2026-11-25", "hours": hours,
                     "rows": [{"weekday": weekday, "covers": [(7 * n if guests and 8 <= hour <= 17 else 0)
                                                              for hour in range(24)]}
                              for n, weekday in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])],
                     "max": 42 if guests else 0},
        "unused_tables": [{"id": 12, "number": "<b>x</b>", "area": "Bar", "seats": 2}] + ([] if guests else [
            {"id": 1, "number": "1", "area": "Main room", "seats": 4}]),
        "restores": [{"day": "2026-11-25", "restores": 2}] if guests else [],
    }


def render(settings: Settings, report: Report) -> str:
    app = create_app(settings)
    return aiohttp_jinja2.get_env(app).get_template("reports.html").render(
        app=app, report=report, error=None, asked={"day": None, "first": None, "last": None}, home="dashboard",
        around={"previous": "2026-11-24", "next": "2026-11-26"})


def test_a_day_is_drawn_as_charts_each_with_its_numbers(settings):
    html = render(settings, hand_made())
    page = read_page(html)
    assert [c["attrs"]["id"] for c in page.charts] == [
        "hours-chart", "occupancy-chart", "turns-area-chart", "turns-size-chart", "turns-chart", "calls-kind-chart",
        "calls-waiter-chart", "heat-chart"]
    for drawn in page.charts:  # each a picture with a name, for a screen reader
        assert drawn["attrs"]["role"] == "img" and drawn["attrs"]["aria-labelledby"] == drawn["attrs"]["id"] + "-title"
        assert drawn["title"]
    assert page.detail_tables == 4  # under the hours, the occupancy, the turns' distribution and the heat map
    assert page.totals == {"Parties": "43", "Covers": "125", "Tables used": "9", "Restores": "2", "Calls": "9"}

    hours = chart(page, "hours-chart")
    assert hours["words"][:2] == ["Covers", "Parties"]  # the legend
    assert ["0", "10", "20", "30", "40"] == hours["words"][2:7]  # the y axis's ticks
    assert {"Guests", "Hour seated (UTC)", "12:00", "13:00", "21:00", "40", "13"} <= set(hours["words"])
    assert "11:00" not in hours["words"] and "22:00" not in hours["words"]  # from the first guests to the last
    occupancy = chart(page, "occupancy-chart")
    assert {"0%", "50%", "100%", "Tables occupied", "19:00", "Time of day (UTC)", "Main room (8)",
            "<i>Patio</i> (3)", "Bar (0)"} <= set(occupancy["words"])  # the area with no tables left divides nothing
    heat = chart(page, "heat-chart")
    assert [w for w in heat["words"] if w.isdigit() and int(w) > 23] == ["28"] * 10 + ["35"] * 10 + ["42"] * 10
    assert "Mon" in heat["words"] and "Hour of the day (UTC)" in heat["words"]
    assert "1 h 05 min / 1 h 50 min" in chart(page, "turns-area-chart")["words"]
    assert "2 min 30 s / 2 min 30 s" in chart(page, "calls-kind-chart")["words"]
    assert "Table <b>x</b>" in page.text and "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<i>" not in html and "&lt;i&gt;Patio&lt;/i&gt; (3)" in html  # areas are escaped in charts too
    assert 'href="/admin/reports.csv?from=2026-11-25&amp;to=2026-11-25"' in html
    assert 'href="/admin/api/reports?from=2026-11-25&amp;to=2026-11-25"' in html
    assert 'href="/admin/reports?day=2026-11-24"' in html and 'href="/admin/reports?day=2026-11-26"' in html
    assert "style=" not in html  # the CSP allows no inline style


def test_a_day_without_guests_says_so_and_divides_by_nothing(settings):
    page = read_page(render(settings, hand_made(guests=False)))
    assert page.charts == []
    assert page.text.count("No guests this day.") == 3  # hours, occupancy, turn times
    assert "No calls this day." in page.text and "No close was undone." in page.text
    assert "No guests from 2026-10-29 to 2026-11-25." in page.text
    assert page.totals["Parties"] == "0"


def test_a_waiters_report_says_whose_it_is(settings):
    page = read_page(render(settings, hand_made(waiter="Sam")))
    assert "Sam's report:" in page.text


@pytest.mark.parametrize(("value", "written"), [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("Terrace", "Terrace"), ("a=b", "a=b"), (None, ""), (-2.5, -2.5), (3, 3),
])
def test_a_cell_a_spreadsheet_would_run_is_quoted(value, written):
    assert cell(value) == written  # numbers stay numbers: only text is anyone's


# -- over HTTP, through the real services -------------------------------------------------------------------


class Clock:
    """The seating services' clock, set by hand."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> str:
        return format_time(self.moment)

    def at(self, hour: int, minute: int = 0) -> None:
        self.moment = datetime.combine(DAY, datetime.min.time(), UTC).replace(hour=hour, minute=minute)


class Bistro:
    def __init__(self, actor: Actor, ids: dict[str, int], keys: dict[str, str]) -> None:
        self.actor, self.ids, self.keys = actor, ids, keys


@pytest.fixture
async def bistro_day(db: Database, settings: Settings) -> Bistro:
    """The bistro three days ago: tables 1-6; table 1 is labelled `=cmd` and table 6 `<b>x</b>`, in the area
    `<i>Patio</i>`; two parties at lunch (1 and 2), one at dinner (3); 6 never used. Keys: admin, waiter (Sam),
    viewer."""
    clock = Clock(datetime.now(UTC))
    clock.at(10)
    restaurant = await RestaurantService(db, settings, clock).add("bistro", "Bistro", tables=6)
    actor = Actor(restaurant["id"], "setup", "admin")
    tables, floor = TableService(db, settings, clock), FloorService(db, settings, clock)
    _, rows = await tables.list_tables(actor.restaurant_id)
    ids = {row["number"]: row["id"] for row in rows}
    assert (await floor.set_table(actor, ids["1"], label="=cmd")).ok
    assert (await floor.set_table(actor, ids["6"], label="<b>x</b>", area="<i>Patio</i>")).ok
    for label, guests, seated, closed in (("1", 2, (12, 0), (13, 10)), ("2", 4, (12, 30), (14, 0)),
                                          ("3", 3, (19, 15), (21, 0))):
        clock.at(*seated)
        assert (await tables.seat_table(actor, ids[label], guests)).ok
        clock.at(*closed)
        assert (await tables.close_table(actor, ids[label])).ok
    keys = KeyService(db)
    made = {role: (await keys.add("bistro", f"a {role}", role, name="Sam" if role == "waiter" else None))[1]
            for role in ("admin", "waiter", "viewer")}
    return Bistro(actor, ids, made)


async def as_signed_in(client: TestClient, key: str) -> None:
    assert (await sign_in(client, key)).status == 303


async def test_an_admin_sees_the_day_as_charts(client, bistro_day, db, settings):
    await as_signed_in(client, bistro_day.keys["admin"])
    assert 'href="/admin/reports"' in await (await client.get("/admin/dashboard")).text()
    response = await client.get(f"/admin/reports?day={DAY}")
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    html = await response.text()
    page = read_page(html)
    assert "<svg" in html and page.charts
    assert page.totals["Parties"] == "3" and page.totals["Covers"] == "9" and page.totals["Calls"] == "0"
    hours = chart(page, "hours-chart")
    assert {"12:00", "19:00", "Guests", "Hour seated (UTC)"} <= set(hours["words"])
    assert "Tables occupied" in chart(page, "occupancy-chart")["words"]
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html  # never used, and listed as typed
    assert "Table <b>x</b>" in " ".join(page.text)
    assert 'href="/admin/dashboard">Back to the tables' in html
    quiet = read_page(await (await client.get(f"/admin/reports?day={DAY - timedelta(days=1)}")).text())
    assert quiet.totals["Parties"] == "0" and quiet.text.count("No guests this day.") == 3 and quiet.charts == []
    bearer = {"Authorization": f"Bearer {bistro_day.keys['admin']}"}
    program = await client.get(f"/admin/reports?day={DAY}", headers=bearer)
    assert program.status == 200 and read_page(await program.text()).totals == page.totals


async def test_a_waiter_sees_their_own_report(client, bistro_day):
    await as_signed_in(client, bistro_day.keys["waiter"])
    assert 'href="/admin/reports"' in await (await client.get("/admin/dashboard")).text()
    response = await client.get(f"/admin/reports?day={DAY}")
    assert response.status == 200
    html = await response.text()
    assert "Sam's report:" in read_page(html).text
    assert 'href="/admin/waiter">Back to the tables' in html


async def test_a_viewer_is_refused_with_the_services_reason(client, bistro_day, db, settings):
    reports = ReportService(db, settings)
    viewer = Actor(bistro_day.actor.restaurant_id, "a viewer", "viewer")
    with pytest.raises(ServiceError) as refused:
        await reports.report(viewer, await reports.period(viewer.restaurant_id, day=str(DAY)))
    await as_signed_in(client, bistro_day.keys["viewer"])
    assert 'href="/admin/reports"' not in await (await client.get("/admin/dashboard")).text()
    response = await client.get(f"/admin/reports?day={DAY}")
    assert response.status == 403
    assert refused.value.detail in read_page(await response.text()).text
    bearer = {"Authorization": f"Bearer {bistro_day.keys['viewer']}"}
    for path in ("/admin/api/reports", "/admin/reports.csv"):
        refused_too = await client.get(path, headers=bearer)
        assert refused_too.status == 403
        assert await refused_too.json() == {"type": "error", "code": "forbidden", "detail": refused.value.detail}


async def test_without_a_sign_in_the_page_sends_you_to_sign_in_and_the_data_is_refused(client, bistro_day):
    response = await client.get("/admin/reports", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/login"
    for path in ("/admin/api/reports", "/admin/reports.csv"):
        refused = await client.get(path)
        assert refused.status == 401 and (await refused.json())["code"] == "unauthorized"
    wrong = await client.get("/admin/reports", headers={"Authorization": "Bearer mtr_wrong"})
    assert wrong.status == 401 and (await wrong.json())["code"] == "unauthorized"


async def test_a_period_too_long_is_refused_with_its_reason_and_the_form(client, bistro_day):
    bearer = {"Authorization": f"Bearer {bistro_day.keys['admin']}"}
    query = "?from=2026-01-01&to=2026-06-01"
    for path in ("/admin/api/reports", "/admin/reports.csv"):
        response = await client.get(path + query, headers=bearer)
        assert response.status == 400
        body = await response.json()
        assert body["code"] == "invalid_period" and body["detail"]
    await as_signed_in(client, bistro_day.keys["admin"])
    response = await client.get("/admin/reports" + query)
    assert response.status == 400
    html = await response.text()
    assert body["detail"] in read_page(html).text
    assert 'name="from" value="2026-01-01"' in html and 'name="to" value="2026-06-01"' in html  # to choose again
    garbled = await client.get("/admin/reports?day=yesterday")
    assert garbled.status == 400 and 'name="day" value="yesterday"' in await garbled.text()
    hostile = await client.get("/admin/reports", params={"day": '"><b>x</b>'})
    assert hostile.status == 400 and 'value="&#34;&gt;&lt;b&gt;x&lt;/b&gt;"' in await hostile.text()


async def test_the_csv_has_a_row_per_party_and_never_a_formula(client, bistro_day, db, settings):
    response = await client.get(f"/admin/reports.csv?from={DAY}&to={DAY}",
                                headers={"Authorization": f"Bearer {bistro_day.keys['admin']}"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == f'attachment; filename="bistro-reports-{DAY}-{DAY}.csv"'
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == CSV_HEADER
    parties = [dict(zip(CSV_HEADER, row, strict=True)) for row in rows[1:]]
    assert [(p["table"], p["area"], p["guests"], p["seated"][11:16], p["closed"][11:16]) for p in parties] == [
        ("'=cmd", "Main room", "2", "12:00", "13:10"), ("2", "Main room", "4", "12:30", "14:00"),
        ("3", "Main room", "3", "19:15", "21:00")]
    assert [float(p["turn_minutes"]) for p in parties] == [70, 90, 105]
    reports = ReportService(db, settings)
    expected = await reports.parties(bistro_day.actor, await reports.period(bistro_day.actor.restaurant_id,
                                                                             day=str(DAY)))
    assert [int(p["party"]) for p in parties] == [row["party"] for row in expected]


async def test_the_json_is_the_services_report_as_the_document_says(client, bistro_day, db, settings):
    response = await client.get(f"/admin/api/reports?day={DAY}",
                                headers={"Authorization": f"Bearer {bistro_day.keys['admin']}"})
    assert response.status == 200
    reports = ReportService(db, settings)
    period = await reports.period(bistro_day.actor.restaurant_id, day=str(DAY))
    body = await response.json()
    assert body == await reports.report(bistro_day.actor, period)
    document = build()
    assert "/admin/api/reports" in document["paths"]
    jsonschema_rs.validator_for(document["components"]["schemas"]["Report"]).validate(body)


async def test_a_range_of_days_sums_them(client, bistro_day):
    await as_signed_in(client, bistro_day.keys["admin"])
    week = await client.get(f"/admin/reports?from={DAY - timedelta(days=6)}&to={DAY}")
    assert week.status == 200
    html = await week.text()
    page = read_page(html)
    assert page.totals["Parties"] == "3" and any("; 7 days." in text for text in page.text)
    assert f'name="from" value="{DAY - timedelta(days=6)}"' in html and f'name="to" value="{DAY}"' in html
    assert f'href="/admin/reports.csv?from={DAY - timedelta(days=6)}&amp;to={DAY}"' in html
    assert f'href="/admin/reports?day={DAY + timedelta(days=1)}"' in html  # the day after the last


async def test_the_last_service_by_default_with_the_days_around_it(client, bistro_day):
    await as_signed_in(client, bistro_day.keys["admin"])
    html = await (await client.get("/admin/reports")).text()
    today = date.fromisoformat(re.search(r'name="day" value="([0-9-]+)"', html)[1])
    assert f'href="/admin/reports?day={today - timedelta(days=1)}"' in html
    assert f'href="/admin/reports?day={today + timedelta(days=1)}"' not in html  # the day is not over
    past = await (await client.get(f"/admin/reports?day={DAY}")).text()
    assert f'href="/admin/reports?day={DAY + timedelta(days=1)}"' in past
