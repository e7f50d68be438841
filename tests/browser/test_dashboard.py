"""The dashboard in a real browser, against `python run.py serve` as a real process.

Every test signs in as a person does (the login form), then watches the grid the way the
staff do: cards change in place, without a reload, whether the change came from this
tablet, another tablet or the command line, and across a restart of the server.

The demo restaurant, as the first start creates it: tables 1-8 ("1".."8", Main room) and
9-12 (T1-T4, Terrace); 1, 4, 6 and T2 (id 10) occupied, T4 (id 12) disabled, the rest free.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .conftest import Server, cli, new_key

try:
    from playwright.async_api import Browser, Locator, Page, WebSocketRoute, expect
except ImportError:  # the conftest's `browser` fixture skips (or fails on CI) with the reason
    Browser = Locator = Page = WebSocketRoute = Any  # type: ignore[misc,assignment]
    expect = None  # type: ignore[assignment]

LIVE = "live"
# the indicator when the socket is down ("polling": the page fetches the grid while the socket stays down)
TROUBLE = re.compile(r"^(reconnecting|offline|polling)$")
SOCKET = re.compile(r"/admin/ws/dashboard(\?.*)?$")
BUTTON_LABELS = {"close_table": "Close", "move_table": "Move", "join_tables": "Join", "split_table": "Split",
                 "disable_table": "Disable", "enable_table": "Enable", "restore_table": "Restore"}
PANELS = {"Seat", "Party"}  # a card's popovers: their buttons (counts, Set, Save) show once opened
DEMO_STATUS = {1: "occupied", 2: "free", 3: "free", 4: "occupied", 5: "free", 6: "occupied", 7: "free", 8: "free",
               9: "free", 10: "occupied", 11: "free", 12: "disabled"}

# A card as it stands, for comparing one page with another. Left out: the idle minutes, which each
# page counts from its own clock (a minute may turn between two reads), and a form's per-session
# CSRF token, which a page render carries and a push (the same card for every tablet) cannot.
CARD_HTML = """card => {
  const copy = card.cloneNode(true);
  copy.querySelectorAll('.minutes').forEach(m => { m.textContent = ''; });
  copy.querySelectorAll('input[name=csrf_token]').forEach(i => { i.removeAttribute('value'); });
  return copy.outerHTML;
}"""


async def sign_in(browser: Browser, server: Server, key: str, **context_options: Any) -> Page:
    """A new browser context (a tablet of its own) signed in through the login form, its socket live."""
    context = await browser.new_context(**context_options)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await open_signed_in(page, server, key)
    return page


async def open_signed_in(page: Page, server: Server, key: str) -> None:
    await page.goto(f"{server.url}/admin/login")
    await page.fill("input#key", key)
    await page.click("form button[type=submit]")
    await expect(page).to_have_url(f"{server.url}/admin/dashboard")
    await expect(page.locator("#connection")).to_have_attribute("data-state", LIVE)


async def mark_no_reload(page: Page) -> None:
    await page.evaluate("window.__maitreNotReloaded = true")


async def assert_not_reloaded(page: Page) -> None:
    assert await page.evaluate("window.__maitreNotReloaded === true"), "the page was reloaded"


def card(page: Page, table_id: int) -> Locator:
    return page.locator(f"#grid article.card#table-{table_id}")


def button(page: Page, table_id: int, action: str) -> Locator:
    return card(page, table_id).locator(f"button[data-action={action}]")


async def labels(page: Page, table_id: int) -> list[str]:
    """The card's buttons and panels (Seat, Party), in order; each button must say what its data-action does."""
    pairs = await card(page, table_id).locator(".actions > form > button, .actions > .opener").evaluate_all(
        "items => items.map(b => [b.dataset.action || null, b.textContent.trim()])")
    for action, label in pairs:
        if action is None:
            assert label in PANELS, f"table {table_id}: a panel {label!r}"
        else:
            assert BUTTON_LABELS.get(action) == label, f"table {table_id}: a button {label!r} does {action!r}"
    return [label for _, label in pairs]


async def statuses(page: Page) -> dict[int, str]:
    pairs = await page.eval_on_selector_all(
        "#grid article.card", "cards => cards.map(c => [c.dataset.id, c.dataset.status])")
    return {int(table_id): status for table_id, status in pairs}


async def expect_status(page: Page, table_id: int, status: str, timeout: float = 5_000) -> None:
    await expect(card(page, table_id)).to_have_attribute("data-status", status, timeout=timeout)


async def assert_matches_fresh_load(page: Page, table_ids: list[int], expected: dict[int, list[str]]) -> None:
    """What the live page shows for these cards is what a page loaded now shows for them."""
    fresh = await page.context.new_page()
    try:
        await fresh.goto(page.url)
        await expect(fresh.locator("#connection")).to_have_attribute("data-state", LIVE)
        for table_id in table_ids:
            assert await labels(page, table_id) == expected[table_id], f"table {table_id} on the live page"
            assert await labels(fresh, table_id) == expected[table_id], f"table {table_id} on a fresh load"
            live_html = await card(page, table_id).evaluate(CARD_HTML)
            fresh_html = await card(fresh, table_id).evaluate(CARD_HTML)
            assert live_html == fresh_html, f"table {table_id}: the live card differs from a fresh load"
    finally:
        await fresh.close()


async def test_changes_in_one_page_show_in_another_without_reload(browser, server):
    first_key = server.admin_key()
    second_key = await new_key(server.db, label="second tablet")
    a = await sign_in(browser, server, first_key)
    b = await sign_in(browser, server, second_key)
    assert await statuses(b) == DEMO_STATUS
    await mark_no_reload(b)

    # close table 1: free, and restorable for a while
    await button(a, 1, "close_table").click()
    await expect_status(b, 1, "free")
    await expect_status(a, 1, "free")
    await assert_matches_fresh_load(b, [1], {1: ["Seat", "Restore", "Disable"]})

    # restore it: the party is back
    await button(a, 1, "restore_table").click()
    await expect_status(b, 1, "occupied")
    await expect_status(a, 1, "occupied")
    await assert_matches_fresh_load(b, [1], {1: ["Close", "Move", "Join", "Party"]})

    # move the party at table 4 to table 3: tap Move, then the free card
    await button(a, 4, "move_table").click()
    await expect(a.locator("#move-bar")).to_be_visible()
    await expect(a.locator("#move-bar")).to_contain_text("Move table 4")
    await card(a, 3).click()
    await expect(a.locator("#move-bar")).to_be_hidden()
    await expect_status(b, 4, "free")
    await expect_status(b, 3, "occupied")
    await expect_status(a, 3, "occupied")
    await assert_matches_fresh_load(b, [3, 4], {3: ["Close", "Move", "Join", "Party"], 4: ["Seat", "Disable"]})

    # disable table 5, then enable it again
    await button(a, 5, "disable_table").click()
    await expect_status(b, 5, "disabled")
    await assert_matches_fresh_load(b, [5], {5: ["Enable"]})
    await button(a, 5, "enable_table").click()
    await expect_status(b, 5, "free")
    await assert_matches_fresh_load(b, [5], {5: ["Seat", "Disable"]})

    expected = DEMO_STATUS | {3: "occupied", 4: "free"}
    assert await statuses(b) == expected
    assert await statuses(a) == expected
    for page in (a, b):
        await expect(page.locator("#grid .note:not(:empty)")).to_have_count(0)
    await expect(b.locator("#connection")).to_have_attribute("data-state", LIVE)
    await assert_not_reloaded(b)


async def test_restore_leaves_the_card_when_its_window_runs_out(browser, server):
    """The server would refuse Restore after 30 minutes; the tablet takes the button away then, by its clock."""
    context = await browser.new_context()
    context.set_default_timeout(10_000)
    await context.clock.install()  # the tablet's clock, to be moved on by the test
    page = await context.new_page()
    await open_signed_in(page, server, server.admin_key())
    await button(page, 1, "close_table").click()
    await expect_status(page, 1, "free")
    await expect(button(page, 1, "restore_table")).to_be_visible()

    await page.clock.fast_forward("29:00")  # the page's 15 s check runs: still within the window
    await expect(button(page, 1, "restore_table")).to_be_visible()
    await page.clock.fast_forward("01:30")
    await expect(button(page, 1, "restore_table")).to_have_count(0)
    assert await labels(page, 1) == ["Seat", "Disable"]
    await expect(page.locator("#connection")).to_have_attribute("data-state", LIVE)


async def test_a_tablet_whose_clock_is_off_counts_by_the_servers(browser, server):
    """Five minutes ahead, the tablet still shows idle minutes and takes Restore away as the server counts them."""
    context = await browser.new_context()
    context.set_default_timeout(10_000)
    await context.clock.install(time=datetime.now(UTC) + timedelta(minutes=5))
    page = await context.new_page()
    await open_signed_in(page, server, server.admin_key())
    # table 6 has been quiet for 2 minutes by the server's clock (7 by the tablet's), table 4 for 25
    await expect(card(page, 6).locator(".idle .minutes")).to_have_text(re.compile(r"^[23]$"))
    await expect(card(page, 6)).not_to_have_attribute("data-idle", re.compile("."))
    await expect(card(page, 4).locator(".idle .minutes")).to_have_text(re.compile(r"^2[56]$"))

    await button(page, 1, "close_table").click()
    await expect_status(page, 1, "free")
    await expect(button(page, 1, "restore_table")).to_be_visible()
    await page.clock.fast_forward("27:00")  # 32 minutes after the close by the tablet's clock, 27 by the server's
    await expect(button(page, 1, "restore_table")).to_be_visible()
    await expect(card(page, 6)).to_have_attribute("data-idle", "warning")  # 29 or 30 minutes quiet
    await page.clock.fast_forward("03:30")
    await expect(button(page, 1, "restore_table")).to_have_count(0)
    await expect(page.locator("#connection")).to_have_attribute("data-state", LIVE)


async def test_a_restaurant_renamed_on_the_command_line_changes_on_the_page(browser, server):
    page = await sign_in(browser, server, server.admin_key())
    await mark_no_reload(page)
    await expect(page.locator("header h1")).to_have_text("Demo Bistro")
    await expect(card(page, 4)).to_have_attribute("data-idle", "warning")  # quiet 25 minutes: past 20, not 40
    await expect(card(page, 6)).not_to_have_attribute("data-idle", re.compile("."))  # quiet 2 minutes

    await cli("restaurant", "set", "demo", "--name", "Chez Démo", "--idle-warning-minutes", "1",
              "--idle-alert-minutes", "2", db=server.db)
    await expect(page.locator("header h1")).to_have_text("Chez Démo", timeout=3_000)
    await expect(card(page, 4)).to_have_attribute("data-idle", "alert")
    await expect(card(page, 6)).to_have_attribute("data-idle", "alert")
    await cli("restaurant", "set", "demo", "--idle-warning-minutes", "default", "--idle-alert-minutes", "default",
              db=server.db)
    await expect(card(page, 4)).to_have_attribute("data-idle", "warning", timeout=3_000)
    await expect(card(page, 6)).to_have_attribute("data-idle", "")
    await expect(page.locator("header h1")).to_have_text("Chez Démo")
    await expect(page.locator("#connection")).to_have_attribute("data-state", LIVE)
    await assert_not_reloaded(page)


async def test_page_recovers_by_itself_after_a_server_restart(browser, server):
    page = await sign_in(browser, server, server.admin_key())
    await mark_no_reload(page)
    indicator = page.locator("#connection")

    assert await server.stop() == 0
    await expect(indicator).to_have_attribute("data-state", TROUBLE)
    await expect(indicator).not_to_have_text(re.compile(r"^\s*Live\s*$"))

    # meanwhile, an administrator adds a table from the command line
    await cli("table", "add", "demo", "Bar 1", "--area", "Bar", db=server.db)
    await server.start()
    assert not any(line.startswith("Admin key") for line in server.output), "the demo was created again"
    assert any("key add" in line for line in server.output)

    # reconnect backs off from 0.5 s with jitter: allow the whole schedule a restart this quick needs
    await expect(indicator).to_have_attribute("data-state", LIVE, timeout=20_000)
    await expect(indicator).to_have_text(re.compile(r"^\s*Live\s*$"))
    bar = page.locator('#grid section.area[data-area="Bar"] article.card', has_text="Bar 1")
    await expect(bar).to_be_visible()
    await expect(bar).to_have_attribute("data-status", "free")
    assert await statuses(page) == DEMO_STATUS | {13: "free"}

    # the restarted server pushes the next change too
    await cli("table", "add", "demo", "Bar 2", "--area", "Bar", db=server.db)
    await expect(page.locator("#grid article.card", has_text="Bar 2")).to_be_visible(timeout=3_000)
    await assert_not_reloaded(page)

    # the sign-in lives in the database, so it outlived the restart
    await page.reload()
    await expect(page).to_have_url(f"{server.url}/admin/dashboard")
    await expect(indicator).to_have_attribute("data-state", LIVE)


async def test_a_tap_while_the_server_is_away_is_refused_on_the_card(browser, server):
    """Nothing can be sent without the server: the card says so, and the tablet stays on its dashboard."""
    page = await sign_in(browser, server, server.admin_key())
    await mark_no_reload(page)
    assert await server.stop() == 0
    await expect(page.locator("#connection")).to_have_attribute("data-state", TROUBLE)

    await button(page, 6, "close_table").click()
    await expect(card(page, 6).locator(".note")).to_have_text("Not connected. Try again in a moment.")
    assert page.url == f"{server.url}/admin/dashboard"
    await expect_status(page, 6, "occupied")

    await server.start()
    await expect(page.locator("#connection")).to_have_attribute("data-state", LIVE, timeout=20_000)
    await expect_status(page, 6, "occupied")  # the refused close was never sent
    assert await statuses(page) == DEMO_STATUS
    await assert_not_reloaded(page)


async def test_a_table_added_on_the_command_line_appears_within_seconds(browser, server):
    page = await sign_in(browser, server, server.admin_key())
    await mark_no_reload(page)
    await expect(page.locator("#grid article.card")).to_have_count(12)

    await cli("table", "add", "demo", "Window 1", "--area", "Window", "--seats", "6", db=server.db)
    added = time.monotonic()
    new = page.locator('#grid section.area[data-area="Window"] article.card', has_text="Window 1")
    await expect(new).to_be_visible(timeout=3_000)
    seconds = time.monotonic() - added
    assert seconds < 3, f"the new table took {seconds:.1f} s to appear"

    await expect(page.locator("#grid article.card")).to_have_count(13)
    await expect(new).to_have_attribute("data-status", "free")
    await expect(new.locator(".seats")).to_have_text("6 seats")
    assert await labels(page, 13) == ["Seat", "Disable"]
    assert await statuses(page) == DEMO_STATUS | {13: "free"}
    await expect(page.locator("#connection")).to_have_attribute("data-state", LIVE)
    await assert_not_reloaded(page)


async def test_a_viewer_sees_the_grid_live_but_no_actions(browser, server):
    viewer = await sign_in(browser, server, await new_key(server.db, role="viewer", label="wall screen"))
    await expect(viewer.locator("body")).to_have_attribute("data-role", "viewer")
    await expect(viewer.locator("#grid article.card")).to_have_count(12)
    assert await statuses(viewer) == DEMO_STATUS
    await expect(card(viewer, 1).locator("h3")).to_have_text("1")
    await expect(card(viewer, 9).locator("h3")).to_have_text("T1")
    await expect(card(viewer, 1).locator(".state")).to_be_visible()

    # the buttons are in the cards but hidden: nothing to tap
    assert await viewer.locator("#grid button[data-action]").count() > 0
    await expect(viewer.locator("#grid button[data-action]:visible")).to_have_count(0)
    await expect(viewer.locator("#grid .actions:visible")).to_have_count(0)

    # an admin elsewhere closes table 6: the viewer sees it, and still has no buttons
    admin = await sign_in(browser, server, server.admin_key())
    await expect(button(admin, 6, "close_table")).to_be_visible()
    await button(admin, 6, "close_table").click()
    await expect_status(viewer, 6, "free")
    assert await labels(viewer, 6) == ["Seat", "Restore", "Disable"]
    await expect(viewer.locator("#grid button[data-action]:visible")).to_have_count(0)

    # a guest calls at table 3: the viewer sees the call, but not its Done (the admin does)
    tables = json.loads(await cli("table", "list", "demo", "--json", db=server.db))
    token = next(t["qr_token"] for t in tables if t["number"] == "3")
    phone = await (await browser.new_context()).new_page()
    await phone.goto(f"{server.url}/t/{token}")
    await phone.get_by_role("button", name="Call a waiter").click()
    done = "button[data-action=resolve_waiter_request]"
    await expect(card(admin, 3).locator(done)).to_be_visible()
    await expect(card(viewer, 3).locator(".request")).to_contain_text("Waiter called")
    await expect(card(viewer, 3).locator(done)).to_have_count(1)
    await expect(card(viewer, 3).locator(done)).to_be_hidden()
    await expect(viewer.locator("#grid button:visible")).to_have_count(0)


class HeldPushes:
    """Holds back the server's table pushes to one page, as a slow network would, until released."""

    def __init__(self) -> None:
        self.holding = False
        self.held: list[tuple[WebSocketRoute, str | bytes]] = []

    async def route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if self.holding and isinstance(message, str) and '"type":"table_update"' in message:
                self.held.append((ws, message))
            else:
                ws.send(message)

        server.on_message(from_server)

    def release(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for ws, message in held:
            ws.send(message)


async def test_a_refused_action_shows_its_reason_on_the_card(browser, server):
    """Two tablets race; the one that had not yet heard of the other's change is told why on the card.

    The race is made deterministic by holding back the pushes to page A (a slow network), so
    A still shows the tables as they were when it acts.
    """
    pushes = HeldPushes()
    a_context = await browser.new_context()
    a_context.set_default_timeout(10_000)
    a = await a_context.new_page()
    await a.route_web_socket(SOCKET, pushes.route)
    await open_signed_in(a, server, server.admin_key())
    b = await sign_in(browser, server, await new_key(server.db, label="second tablet"))
    pushes.holding = True

    # B disables table 8 while A is choosing where to move the party at table 6
    await button(a, 6, "move_table").click()
    await expect(a.locator("#move-bar")).to_be_visible()
    await button(b, 8, "disable_table").click()
    await expect_status(b, 8, "disabled")
    await expect_status(a, 8, "free")  # A has not heard yet
    await card(a, 8).click()
    source_note = card(a, 6).locator(".note")
    await expect(source_note).to_have_text("Table 8 is disabled.")
    await expect(card(a, 6)).not_to_have_class(re.compile(r"\bbusy\b"))
    await expect_status(b, 6, "occupied")

    # B closes table 1; A, still unaware, closes it too
    await button(b, 1, "close_table").click()
    await expect_status(b, 1, "free")
    await expect_status(a, 1, "occupied")
    await button(a, 1, "close_table").click()
    await expect(card(a, 1).locator(".note")).to_have_text("Table 1 has no guests to close.")
    await expect(button(a, 1, "close_table")).to_be_enabled()

    # once the pushes arrive, A shows what B did
    pushes.release()
    await expect_status(a, 8, "disabled")
    await expect_status(a, 1, "free")
    assert await statuses(a) == await statuses(b) == DEMO_STATUS | {1: "free", 8: "disabled"}
    await expect(a.locator("#connection")).to_have_attribute("data-state", LIVE)


async def test_screenshots(browser, server):
    """The pages at a tablet's and a phone's size; saved to MAITRE_SCREENSHOT_DIR when it is set."""
    directory = os.environ.get("MAITRE_SCREENSHOT_DIR")
    folder = Path(directory) if directory else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)

    async def shoot(page: Page, name: str) -> None:
        await assert_fits_width(page)
        image = await page.screenshot(animations="disabled", caret="hide")
        assert image.startswith(b"\x89PNG")
        if folder is not None:
            (folder / name).write_bytes(image)

    key = server.admin_key()
    tablet = await (await browser.new_context(viewport={"width": 1024, "height": 768})).new_page()
    tablet.set_default_timeout(10_000)
    await tablet.goto(f"{server.url}/admin/login")
    await expect(tablet.locator("input#key")).to_be_visible()
    await shoot(tablet, "login.png")

    await open_signed_in(tablet, server, key)
    assert await statuses(tablet) == DEMO_STATUS
    await assert_cards_do_not_overlap(tablet)
    await shoot(tablet, "dashboard.png")

    await button(tablet, 1, "move_table").click()
    await expect(tablet.locator("#move-bar")).to_be_visible()
    await expect(tablet.locator("#move-bar")).to_contain_text("Move table 1: tap a free table.")
    await expect(tablet.locator("body")).to_have_class(re.compile(r"\bmoving\b"))
    await shoot(tablet, "dashboard-move.png")
    await tablet.locator("#move-bar button[data-cancel]").click()
    await expect(tablet.locator("#move-bar")).to_be_hidden()
    await button(tablet, 4, "move_table").click()
    await expect(tablet.locator("#move-bar")).to_contain_text("Move table 4")
    await tablet.keyboard.press("Escape")
    await expect(tablet.locator("#move-bar")).to_be_hidden()
    await expect(tablet.locator("body")).not_to_have_class(re.compile(r"\bmoving\b"))
    assert await statuses(tablet) == DEMO_STATUS  # cancelling moved nobody

    phone = await sign_in(browser, server, key, viewport={"width": 360, "height": 740}, has_touch=True)
    await assert_cards_do_not_overlap(phone)
    await shoot(phone, "dashboard-phone.png")

    # a free table's Seat open: one button a seat, or a number typed
    await card(tablet, 3).locator(".opener").click()
    await expect(card(tablet, 3).locator(".counts button")).to_have_text(["1", "2", "3", "4"])
    await assert_cards_do_not_overlap(tablet)
    await shoot(tablet, "dashboard-seat.png")
    await tablet.keyboard.press("Escape")  # a popover closes as a dialog does
    await expect(card(tablet, 3).locator(".counts")).to_be_hidden()

    # table 5 joined to table 4's party, which has a note; the joined card's Party open
    await button(tablet, 4, "join_tables").click()
    await expect(tablet.locator("#move-bar")).to_contain_text("Join a table to table 4's party")
    await card(tablet, 5).click()
    await expect(card(tablet, 5).locator(".joined")).to_have_text("With 4")
    await card(tablet, 4).locator(".opener").click()
    await card(tablet, 4).locator("input[name=note]").fill("Birthday: cake at 9 pm, one nut allergy")
    await button(tablet, 4, "set_note").click()
    await expect(card(tablet, 5).locator(".party-note")).to_have_text("Birthday: cake at 9 pm, one nut allergy")
    await card(tablet, 5).locator(".opener").click()
    await expect(card(tablet, 5).locator("input[name=note]")).to_be_visible()
    await assert_cards_do_not_overlap(tablet)
    await shoot(tablet, "dashboard-party.png")

    await tablet.get_by_role("link", name="Edit floor").click()
    await expect(tablet.locator("#floor-1")).to_be_visible()
    await shoot(tablet, "floor.png")


async def assert_fits_width(page: Page) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px"


async def assert_cards_do_not_overlap(page: Page) -> None:
    boxes = await page.eval_on_selector_all(
        "#grid article.card", "cards => cards.map(c => { const r = c.getBoundingClientRect();"
        " return [c.id, r.left, r.top, r.right, r.bottom]; })")
    for i, (name, left, top, right, bottom) in enumerate(boxes):
        assert right - left > 0 and bottom - top > 0, f"{name} has no size"
        for other, left2, top2, right2, bottom2 in boxes[i + 1:]:
            apart = right <= left2 or right2 <= left or bottom <= top2 or bottom2 <= top
            assert apart, f"{name} overlaps {other}"
    # every button's label fits inside its button
    clipped = await page.eval_on_selector_all(
        "#grid button", "buttons => buttons.filter(b => b.offsetParent && b.scrollWidth > b.clientWidth)"
        ".map(b => b.closest('.card').id + ' ' + b.textContent)")
    assert clipped == [], f"button labels do not fit: {clipped}"


async def test_a_pushed_card_changes_in_place_and_reads_as_a_fresh_load(browser, server):
    """A push updates the card where it stands (issue 18: the grid is not laid out again): the same card, content
    box and checkbox, so a ticked box stays ticked; after each change the card reads as a page loaded now."""
    tables = json.loads(await cli("table", "list", "demo", "--json", db=server.db))
    qr_token = next(t["qr_token"] for t in tables if t["id"] == 3)
    a = await sign_in(browser, server, server.admin_key())
    b = await sign_in(browser, server, await new_key(server.db, label="second tablet"))
    await b.locator("header").get_by_text("Select", exact=True).click()
    await card(b, 3).click()
    await expect(b.locator("#pick-3")).to_be_checked()
    await b.evaluate("""() => { const c = document.getElementById('table-3');
        window.__parts = [c, c.querySelector('.in'), c.querySelector('.pick')]; }""")

    async def same_as_fresh_load() -> None:
        kept = "() => { const c = document.getElementById('table-3'); const [card, box, pick] = window.__parts;" \
               " return card === c && box === c.querySelector('.in') && pick === c.querySelector('.pick'); }"
        assert await b.evaluate(kept), "the card, its content box or its checkbox was replaced"
        await expect(b.locator("#pick-3")).to_be_checked()
        fresh = await b.context.new_page()
        await fresh.goto(b.url)
        await expect(fresh.locator("#connection")).to_have_attribute("data-state", LIVE)
        assert await card(b, 3).evaluate(CARD_HTML) == await card(fresh, 3).evaluate(CARD_HTML)
        await fresh.close()

    await card(a, 3).locator(".opener").click()
    await card(a, 3).locator(".counts button").nth(1).click()  # seated: two guests
    await expect(card(b, 3).locator(".state")).to_have_text("Occupied · 2 guests")
    await same_as_fresh_load()
    await card(a, 3).locator(".opener").click()
    await card(a, 3).locator("input[name=note]").fill("Window seat, a birthday, one nut allergy")
    await button(a, 3, "set_note").click()  # a part the card did not have
    await expect(card(b, 3).locator(".party-note")).to_have_text("Window seat, a birthday, one nut allergy")
    await same_as_fresh_load()
    guest = await (await browser.new_context()).new_page()
    await guest.goto(f"{server.url}/t/{qr_token}")
    await guest.get_by_role("button", name="Call a waiter").click()  # a call: the card grows to two rows
    await expect(card(b, 3).locator(".request")).to_contain_text("Waiter called")
    await same_as_fresh_load()
    await card(a, 3).get_by_role("button", name="Done").click()
    await expect(card(b, 3).locator(".request")).to_have_count(0)
    await button(a, 3, "close_table").click()  # parts taken away
    await expect_status(b, 3, "free")
    await same_as_fresh_load()
    await assert_cards_do_not_overlap(b)
