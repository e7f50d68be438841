"""Waiters' phones (issue 15), in a real browser: two waiters and an admin tablet against `python run.py serve`.

Sam Wilson has the Terrace (T1-T4, ids 9-12), Alex the Main room (1-8), set on the command line as a host
does. A guest calls from a terrace table's page: Sam's phone has it first, and buzzes and notifies; Alex's
has it under the other calls, quietly; Sam claims it, and every screen says so; Done clears it everywhere.
What each phone did to get attention is recorded by an init script (navigator.vibrate, and the service
worker's showNotification, which is how a page shows a notification on Chrome for Android).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .. import support
from .conftest import Server, cli
from .test_dashboard import LIVE, assert_fits_width, assert_not_reloaded, mark_no_reload, sign_in

try:
    from playwright.async_api import Browser, Locator, Page, expect
except ImportError:  # the conftest's `browser` fixture skips (or fails on CI) with the reason
    Browser = Locator = Page = Any  # type: ignore[misc,assignment]
    expect = None  # type: ignore[assignment]

PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}
TABLET = {"viewport": {"width": 1024, "height": 768}}
T1, T3, TABLE_2 = 9, 11, 2
LABELS = {i: str(i) for i in range(1, 9)} | {9: "T1", 10: "T2", 11: "T3", 12: "T4"}  # the demo's, by id
RECORD = """
window.__buzz = [];
window.__shown = [];
navigator.vibrate = (pattern) => { window.__buzz.push(pattern); return true; };
ServiceWorkerRegistration.prototype.showNotification = function (title) {
  window.__shown.push(title);
  return Promise.resolve();
};
"""
OVERDUE = [400, 100, 400, 100, 400]


@pytest.fixture
async def hurried(tmp_path: Path) -> AsyncIterator[Server]:
    """A server on which a call nobody claims is overdue after 3 seconds."""
    running = Server(await asyncio.to_thread(support.Server, tmp_path, "--claim-within-seconds", "3"))
    yield running
    assert await running.stop() == 0, "the server did not stop cleanly:\n" + "\n".join(running.output)


async def give_sections(server: Server) -> tuple[str, str]:
    """Keys for Sam Wilson (the Terrace) and Alex (the Main room), as a host makes them."""
    keys = []
    for name, area in (("Sam Wilson", "Terrace"), ("Alex", "Main room")):
        out = await cli("key", "add", "demo", "--role", "waiter", "--name", name, db=server.db)
        keys.append(out.strip().splitlines()[-1])
        await cli("section", "set", "demo", name, "--area", area, db=server.db)
    return keys[0], keys[1]


async def recording(browser: Browser, server: Server, options: dict[str, Any], clock: bool = False) -> Page:
    """A device whose vibrations and notifications are recorded, notifications allowed."""
    context = await browser.new_context(**options)
    context.set_default_timeout(10_000)
    await context.grant_permissions(["notifications"], origin=server.url)
    await context.add_init_script(RECORD)
    if clock:
        await context.clock.install()
    return await context.new_page()


async def waiter_phone(browser: Browser, server: Server, key: str, clock: bool = False) -> Page:
    """A waiter's phone signed in through the login form: it lands on the waiter's page, live."""
    page = await recording(browser, server, PHONE, clock)
    await page.goto(f"{server.url}/admin/login")
    await page.fill("input#key", key)
    await page.click("form button[type=submit]")
    await expect(page).to_have_url(f"{server.url}/admin/waiter")
    await expect(page.locator("#connection")).to_have_attribute("data-state", LIVE)
    await expect(page.locator("#notify")).to_have_attribute("aria-pressed", "true")  # allowed, and it says so
    return page


async def admin_tablet(browser: Browser, server: Server, clock: bool = False) -> Page:
    page = await recording(browser, server, TABLET, clock)
    await page.goto(f"{server.url}/admin/login")
    await page.fill("input#key", server.admin_key())
    await page.click("form button[type=submit]")
    await expect(page).to_have_url(f"{server.url}/admin/dashboard")
    await expect(page.locator("#connection")).to_have_attribute("data-state", LIVE)
    return page


async def guest_pages(browser: Browser, server: Server) -> tuple[Page, dict[int, str]]:
    """A guest's phone, and each table's page address by table id."""
    tables = json.loads(await cli("table", "list", "demo", "--json", db=server.db))
    guest = await (await browser.new_context(**PHONE)).new_page()
    return guest, {t["id"]: f"{server.url}/t/{t['qr_token']}" for t in tables}


async def call_waiter(guest: Page, url: str) -> None:
    await guest.goto(url)
    await guest.get_by_role("button", name="Call a waiter").click()
    await expect(guest.locator(".guest-status")).to_contain_text("The staff have your call")


def listed(page: Page, list_id: str) -> Locator:
    return page.locator(f"#{list_id} > article.card")


async def expect_list(page: Page, list_id: str, table_ids: list[int]) -> None:
    """The list holds these tables' cards, in this order (waiting until it does)."""
    if not table_ids:
        await expect(listed(page, list_id)).to_have_count(0)
        return
    await expect(listed(page, list_id).locator("h3")).to_have_text([LABELS[i] for i in table_ids])


async def buzzes(page: Page) -> list[Any]:
    return await page.evaluate("window.__buzz")


async def notifications(page: Page) -> list[str]:
    return await page.evaluate("window.__shown")


def request_of(page: Page, table_id: int) -> Locator:
    return page.locator(f"#table-{table_id} .request")  # wherever the page keeps the card


async def test_a_terrace_call_reaches_sam_first_he_claims_it_and_every_screen_shows_it(browser, server):
    sam_key, alex_key = await give_sections(server)
    sam = await waiter_phone(browser, server, sam_key)
    alex = await waiter_phone(browser, server, alex_key)
    tablet = await admin_tablet(browser, server)
    for page in (sam, alex):
        await mark_no_reload(page)

    # each card names its waiter: initials, the whole name for a screen reader and on hover
    badge = tablet.locator(f"#table-{T1} .waiter")
    await expect(badge).to_have_attribute("title", "Sam Wilson")
    await expect(badge.locator("[aria-hidden=true]")).to_have_text("SW")
    await expect(badge.locator(".sr")).to_have_text("Waiter: Sam Wilson")
    await expect(tablet.locator("#table-1 .waiter [aria-hidden=true]")).to_have_text("Al")
    # my tables in the floor's order; the rest of the floor folded away, and there
    await expect_list(sam, "my-tables", [9, 10, 11, 12])
    await expect_list(alex, "my-tables", [1, 2, 3, 4, 5, 6, 7, 8])
    await expect(sam.locator("#grid article.card")).to_have_count(8)
    await expect(sam.locator("#grid article.card").first).to_be_hidden()
    await expect(sam.locator("#my-calls + .none")).to_have_text("No calls in your section.")

    guest, pages = await guest_pages(browser, server)
    await call_waiter(guest, pages[T1])
    await expect_list(sam, "my-calls", [T1])
    await expect_list(alex, "other-calls", [T1])
    await expect(sam.locator("#my-calls + .none")).to_be_hidden()
    await expect(request_of(tablet, T1)).to_contain_text("Waiter called")
    await expect(tablet.locator("#requests li")).to_have_text(["Table T1: ☎ Waiter called"])

    # a second terrace call comes after it (oldest first); a main-room call is Alex's and among Sam's others
    await call_waiter(guest, pages[T3])
    await call_waiter(guest, pages[TABLE_2])
    await expect_list(sam, "my-calls", [T1, T3])
    await expect_list(sam, "other-calls", [TABLE_2])
    await expect_list(alex, "my-calls", [TABLE_2])
    await expect_list(alex, "other-calls", [T1, T3])
    await expect_list(sam, "my-tables", [10, 12])
    await expect(request_of(sam, T1).locator(".ago")).to_have_text("0 min ago")  # the time waiting

    # On my way, from Sam's list: every screen says who is on it, and the guest's page names him
    await request_of(sam, T1).get_by_role("button", name="On my way").click()
    for page in (sam, alex, tablet):
        await expect(request_of(page, T1).locator(".who")).to_have_text("Sam Wilson is on it")
        await expect(request_of(page, T1).get_by_role("button", name="On my way")).to_have_count(0)
        await expect(request_of(page, T3).get_by_role("button", name="On my way")).to_have_count(1)
    await expect_list(sam, "my-calls", [T1, T3])  # still waiting to be seen to, in the same order
    await expect_list(alex, "other-calls", [T1, T3])
    await guest.goto(pages[T1])
    await expect(guest.locator(".guest-status")).to_have_text("Sam is on the way.")  # the first name only

    # Done clears it everywhere; the table goes back to Sam's tables, and to the rest of the floor on Alex's
    await request_of(sam, T1).get_by_role("button", name="Done").click()
    for page in (sam, alex, tablet):
        await expect(request_of(page, T1)).to_have_count(0)
    await expect_list(sam, "my-calls", [T3])
    await expect_list(sam, "my-tables", [T1, 10, 12])
    await expect_list(alex, "other-calls", [T3])
    await expect(alex.locator(f'#grid [data-area="Terrace"] #table-{T1}')).to_have_count(1)
    await expect(tablet.locator("#requests li")).to_have_text(["Table T3: ☎ Waiter called", "Table 2: ☎ Waiter called"])
    await guest.goto(pages[T1])
    await expect(guest.locator(".guest-status")).to_have_text("A waiter is on the way.")

    # getting attention: Sam's phone for the terrace's two calls, Alex's for table 2 only; the tablet for all
    assert await buzzes(sam) == [200, 200]
    assert await notifications(sam) == ["Table T1: ☎ Waiter called", "Table T3: ☎ Waiter called"]
    assert await buzzes(alex) == [200]
    assert await notifications(alex) == ["Table 2: ☎ Waiter called"]
    assert await buzzes(tablet) == [200, 200, 200]
    for page in (sam, alex):
        await expect(page.locator("#connection")).to_have_attribute("data-state", LIVE)
        await assert_not_reloaded(page)


async def test_a_call_nobody_claims_in_time_is_overdue_on_every_screen_and_alerts_once_more(browser, hurried):
    server = hurried
    sam_key, alex_key = await give_sections(server)
    sam = await waiter_phone(browser, server, sam_key, clock=True)
    alex = await waiter_phone(browser, server, alex_key, clock=True)
    tablet = await admin_tablet(browser, server, clock=True)
    guest, pages = await guest_pages(browser, server)
    await call_waiter(guest, pages[T1])
    await call_waiter(guest, pages[TABLE_2])
    screens = (sam, alex, tablet)
    for page in screens:
        await expect(request_of(page, TABLE_2)).to_have_count(1)
    await request_of(alex, TABLE_2).get_by_role("button", name="On my way").click()  # claimed in time
    for page in screens:
        await expect(request_of(page, T1)).not_to_have_attribute("data-overdue", re.compile(".*"))
        await expect(request_of(page, T1).locator(".overdue")).to_be_hidden()
        await expect(request_of(page, TABLE_2).locator(".who")).to_have_text("Alex is on it")

    # past the claim window (3 s here), at the pages' next check: overdue, in words as well as stripes
    for page in screens:
        await page.clock.fast_forward("00:16")
    for page in screens:
        await expect(request_of(page, T1)).to_have_attribute("data-overdue", "")
        await expect(request_of(page, T1).locator(".overdue")).to_be_visible()
        await expect(request_of(page, T1).locator(".overdue")).to_have_text("Overdue")
        await expect(request_of(page, TABLE_2)).not_to_have_attribute("data-overdue", re.compile(".*"))
    # every waiter and the admin are alerted once more, more strongly; Alex for someone else's call too
    await sam.wait_for_function("window.__buzz.length === 2")
    assert await buzzes(sam) == [200, OVERDUE]
    assert await notifications(sam) == ["Table T1: ☎ Waiter called", "Overdue: Table T1: ☎ Waiter called"]
    await alex.wait_for_function("window.__buzz.length === 2")
    assert await buzzes(alex) == [200, OVERDUE]  # table 2's call, then T1 overdue
    await tablet.wait_for_function("window.__buzz.length === 3")
    assert await buzzes(tablet) == [200, 200, OVERDUE]

    # a card pushed anew stays overdue, without alerting again; the next checks do not alert again either
    await tablet.locator(f"#table-{T1} .opener").click()
    await tablet.locator(f"#table-{T1} input[name=note]").fill("by the heater")
    await tablet.locator(f"#table-{T1} button[data-action=set_note]").click()
    for page in screens:
        await expect(page.locator(f"#table-{T1} .party-note")).to_have_text("by the heater")
        await expect(request_of(page, T1)).to_have_attribute("data-overdue", "")
        await page.clock.fast_forward("00:16")
    assert await buzzes(sam) == [200, OVERDUE]
    assert await buzzes(tablet) == [200, 200, OVERDUE]

    # the waiter's phone at 360 px: my calls (one overdue), my tables, the others' calls claimed
    await assert_phone_fits(sam)
    directory = os.environ.get("MAITRE_SCREENSHOT_DIR")
    image = await sam.screenshot(animations="disabled", caret="hide", full_page=True)
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "waiter-phone.png").write_bytes(image)

    # Sam is on his way after all: no longer overdue anywhere
    await request_of(sam, T1).get_by_role("button", name="On my way").click()
    for page in screens:
        await expect(request_of(page, T1).locator(".who")).to_have_text("Sam Wilson is on it")
        await expect(request_of(page, T1)).not_to_have_attribute("data-overdue", re.compile(".*"))
        await expect(request_of(page, T1).locator(".overdue")).to_have_count(0)


async def assert_phone_fits(page: Page) -> None:
    """Nothing scrolls sideways at 360 px, and every button a waiter taps is at least 44 px tall and wide."""
    await assert_fits_width(page)
    small = await page.eval_on_selector_all(
        "main button, header button", "buttons => buttons.filter(b => b.offsetParent)"
        ".map(b => [b.textContent.trim(), b.getBoundingClientRect()]).filter(([, r]) => r.height < 44 || r.width < 44)"
        ".map(([label, r]) => label + ' ' + r.width + 'x' + r.height)")
    assert small == [], f"buttons too small to tap: {small}"


async def test_a_waiter_has_no_admin_controls_and_an_admin_opens_the_waiters_view(browser, server):
    sam_key, _ = await give_sections(server)
    sam = await waiter_phone(browser, server, sam_key)
    await expect(sam.locator("#table-9 button[data-action=disable_table]")).to_have_count(1)  # the same card for all
    await expect(sam.locator("button[data-action=disable_table]:visible, button[data-action=enable_table]:visible"))\
        .to_have_count(0)
    await expect(sam.locator(f"#table-{T1} .opener")).to_have_text("Seat")  # but seats guests
    # Keep screen on (127.0.0.1 counts as secure, as HTTPS does). Sam's phone allowed notifications, and Playwright
    # refuses every other permission then: the lock is refused, and the button goes back to off
    wake = sam.get_by_role("button", name="Keep screen on")
    await wake.click()
    await expect(wake).to_have_attribute("aria-pressed", "false")
    context = await sam.context.browser.new_context(**PHONE)  # a phone that allows what a browser allows by default
    context.set_default_timeout(10_000)
    second = await context.new_page()
    await second.goto(f"{server.url}/admin/login")
    await second.fill("input#key", sam_key)
    await second.click("form button[type=submit]")
    await expect(second).to_have_url(f"{server.url}/admin/waiter")
    assert await second.evaluate("navigator.wakeLock.request('screen').then(l => l.release() && 'held')") == "held"
    wake = second.get_by_role("button", name="Keep screen on")
    await wake.click()
    await expect(wake).to_have_attribute("aria-pressed", "true")
    await wake.click()
    await expect(wake).to_have_attribute("aria-pressed", "false")
    await sam.get_by_role("link", name="Dashboard").click()
    await expect(sam).to_have_url(f"{server.url}/admin/dashboard")
    await expect(sam.locator("#connection")).to_have_attribute("data-state", LIVE)
    await expect(sam.get_by_role("button", name="End of service")).to_have_count(0)
    await expect(sam.locator("header").get_by_text("Select", exact=True)).to_have_count(0)
    await expect(sam.get_by_role("link", name="Edit floor")).to_have_count(0)
    await expect(sam.locator("#grid button[data-action=disable_table]:visible")).to_have_count(0)
    await expect(sam.locator("#grid button[data-action=enable_table]:visible")).to_have_count(0)
    await expect(sam.locator("#grid button[data-action=close_table]:visible")).to_have_count(4)

    admin = await sign_in(browser, server, server.admin_key(), **PHONE)
    await expect(admin.locator("#grid button[data-action=disable_table]:visible")).not_to_have_count(0)
    await admin.get_by_role("link", name="Waiter's view").click()
    await expect(admin).to_have_url(f"{server.url}/admin/waiter")
    await expect(admin.locator("#connection")).to_have_attribute("data-state", LIVE)
    await expect_list(admin, "my-calls", [])  # an admin has no section: every table is in the rest
    await expect(admin.locator("#grid article.card")).to_have_count(12)
    await expect(admin.locator("#my-tables + .none")).to_be_visible()
