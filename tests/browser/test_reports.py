"""Reports (issue 19) in a real browser, against `python run.py serve` as a real process: a manager opens Reports
on the tablet after a service and the charts are there, drawn by the server, with their axes, and nothing on the
page fails (no script error, nothing the CSP refuses); printed, the page's controls go and the charts fit A4.

The services are seeded through the real service layer on a clock set by hand (the test process writes the
server's database, as the command line does): two days ago, lunch and dinner on free tables of the demo, a close
undone, guests' calls claimed by Sam; and in the three weeks before it, some of the same parties on five days a
week, for the heat map.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from app.auth import KeyService
from app.db import Database, format_time
from app.services.core import Actor
from app.services.floor import FloorService
from app.services.restaurants import RestaurantService
from app.services.tables import TableService
from app.services.waiters import WaiterService
from app.settings import Settings

from .conftest import Server
from .test_dashboard import assert_fits_width, open_signed_in

try:
    from playwright.async_api import Browser, Page, expect
except ImportError:  # the conftest's `browser` fixture skips (or fails on CI) with the reason
    Browser = Page = Any  # type: ignore[misc,assignment]
    expect = None  # type: ignore[assignment]

DAY = (datetime.now(UTC) - timedelta(days=2)).date()  # over, whatever the hour (days start at 04:00 UTC)
TABLET = {"viewport": {"width": 1024, "height": 768}}
# The day's parties on the demo's tables that are free (1, 4, 6 and T2 are seated now, T4 disabled):
# table, guests, seated, closed
SERVICE = [
    ("2", 2, "12:05", "13:20"), ("3", 4, "12:15", "13:45"), ("5", 3, "12:40", "14:05"), ("T1", 2, "12:50", "13:35"),
    ("7", 5, "13:10", "14:50"), ("2", 2, "13:30", "14:15"), ("8", 6, "19:00", "21:10"), ("3", 2, "19:10", "20:25"),
    ("T1", 4, "19:20", "21:05"), ("T3", 4, "19:30", "21:30"), ("5", 2, "19:45", "21:00"), ("2", 3, "20:00", "21:40"),
    ("7", 4, "20:10", "22:20"), ("3", 2, "20:40", "22:05"), ("5", 5, "21:15", "23:00"), ("T1", 2, "21:20", "22:10"),
]
RESTORED = "T3"  # its close at 21:30 undone a minute later, closed again at 22:00
CALLS = [("8", "call_waiter", "19:40", "19:41", "19:44"), ("T3", "ask_for_bill", "21:05", "21:07", "21:25"),
         ("2", "call_waiter", "20:30", "20:33", "20:36"), ("7", "ask_for_bill", "22:00", "22:01", "22:12")]


class Clock:
    def __init__(self) -> None:
        self.moment = datetime.now(UTC)

    def __call__(self) -> str:
        return format_time(self.moment)

    def at(self, day: date, clock: str) -> None:
        hour, minute = map(int, clock.split(":"))
        self.moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


async def seed(db_path: Path) -> None:
    """The services above, written to the server's database through the services, each at its time."""
    settings = Settings.from_env(environ={}, db_path=str(db_path))
    db = await Database.open(str(db_path))
    try:
        clock = Clock()
        restaurant = await RestaurantService(db, settings).by_slug("demo")
        admin = Actor(restaurant["id"], "manager", "admin")
        record, _ = await KeyService(db).add("demo", "Sam's phone", "waiter", name="Sam")
        sam = Actor(restaurant["id"], "Sam's phone", "waiter", record["id"])
        tables, waiters = TableService(db, settings, clock), WaiterService(db, settings, clock)
        _, rows = await tables.list_tables(restaurant["id"])
        ids = {row["number"]: row["id"] for row in rows}
        tokens = {number: (await FloorService(db, settings).qr_tokens(restaurant["id"]))[ids[number]]
                  for number in ids}
        steps: list[tuple[date, str, Callable[[], Any]]] = []

        def step(day: date, clock_time: str, operation: Callable[[], Any]) -> None:
            steps.append((day, clock_time, operation))

        for weeks_back in range(1, 4):  # the heat map: some of the day's parties on it and the four days before it
            for back in range(5):
                day = DAY - timedelta(days=7 * weeks_back + back)
                for label, guests, seated, closed in SERVICE[(weeks_back + 2 * back) % 9:]:
                    step(day, seated, lambda label=label, guests=guests: tables.seat_table(admin, ids[label], guests))
                    step(day, closed, lambda label=label: tables.close_table(admin, ids[label]))
        for label, guests, seated, closed in SERVICE:
            step(DAY, seated, lambda label=label, guests=guests: tables.seat_table(admin, ids[label], guests))
            step(DAY, closed, lambda label=label: tables.close_table(admin, ids[label]))
        step(DAY, "21:31", lambda: tables.restore_table(admin, ids[RESTORED]))
        step(DAY, "22:00", lambda: tables.close_table(admin, ids[RESTORED]))
        called: dict[str, int] = {}
        for label, kind, at, claimed, resolved in CALLS:
            async def call(label: str = label, kind: str = kind) -> Any:
                result = await waiters.request(tokens[label], kind)
                called[label] = result.announcements[0]["request"]["id"]
                return result
            step(DAY, at, call)
            step(DAY, claimed, lambda label=label: waiters.claim(sam, called[label]))
            step(DAY, resolved, lambda label=label: waiters.resolve(sam, called[label]))
        for day, clock_time, operation in sorted(steps, key=lambda s: (s[0], s[1])):
            clock.at(day, clock_time)
            result = await operation()
            assert result.ok, (day, clock_time, result)
    finally:
        await db.close()


async def test_the_report_of_a_service_on_a_tablet(browser: Browser, server: Server) -> None:
    await seed(server.db)
    context = await browser.new_context(**TABLET)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    problems: list[str] = []

    def noted(message: Any) -> None:  # a script error, or anything the CSP refused (the browser's own favicon aside)
        if message.type in ("error", "warning") and not message.location.get("url", "").endswith("/favicon.ico"):
            problems.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", noted)
    page.on("pageerror", lambda error: problems.append(str(error)))
    await open_signed_in(page, server, server.admin_key())

    await page.get_by_role("link", name="Reports").click()  # the dashboard's link
    await expect(page).to_have_url(f"{server.url}/admin/reports")
    await page.locator("input[name=day]").fill(DAY.isoformat())
    await page.get_by_role("button", name="Show the day").click()
    await expect(page).to_have_url(f"{server.url}/admin/reports?day={DAY}")

    totals = page.locator(".totals dd:not(.aside)")
    await expect(totals).to_have_text(["16", "52", "7 of 12", "1", "4"])
    charts = page.locator("svg.chart[role=img]")
    assert await charts.count() >= 7
    for chart in await charts.all():
        assert await chart.get_attribute("aria-labelledby")
        box = await chart.bounding_box()
        assert box is not None and box["width"] > 900 and box["height"] > 100  # drawn, at the page's width
    hours = page.locator("#hours-chart")
    for label in ("Guests", "Hour seated (UTC)", "12:00", "20:00", "Covers", "Parties"):
        await expect(hours.locator("text", has_text=label).first).to_be_visible()
    await expect(page.locator("#occupancy-chart text", has_text="Tables occupied")).to_be_visible()
    await expect(page.locator("#occupancy-chart text", has_text="Terrace (4)")).to_be_visible()
    await expect(page.locator("#turns-chart text", has_text="Turn time (minutes)")).to_be_visible()
    await expect(page.locator("#calls-waiter-chart text", has_text="Sam, to claim")).to_be_visible()
    await expect(page.locator("#heat-chart text.cell-value").first).to_be_visible()
    await page.locator("details", has_text="covers and parties by hour").locator("summary").click()
    await expect(page.locator("details[open] table tbody tr").first).to_be_visible()
    await assert_fits_width(page)
    await page.locator("details[open] summary").click()

    directory = os.environ.get("MAITRE_SCREENSHOT_DIR")
    if directory:
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=folder / "reports.png", animations="disabled", caret="hide")
        await page.screenshot(path=folder / "reports-full.png", full_page=True, animations="disabled", caret="hide")

    await page.emulate_media(media="print")  # A4: the figures without the controls, every chart within the width
    await expect(page.locator("nav.choose")).to_be_hidden()
    await expect(page.get_by_role("link", name="Back to the tables")).to_be_hidden()
    a4_width = 794 - 2 * 45  # 210 mm at 96 dpi, less the page's 12 mm margins
    await page.set_viewport_size({"width": a4_width, "height": 1123})
    for figure in await page.locator("svg.chart, table.figures, .totals").all():
        box = await figure.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= a4_width
    await assert_fits_width(page)
    pdf = await page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    assert problems == []
