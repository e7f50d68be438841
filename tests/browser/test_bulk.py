"""Select mode, End of service and Undo (issue 14), in a real browser.

Two tablets (two browser contexts, each signed in with a key of its own) against `python run.py serve`:
what one does in one bulk, the other shows live, without a reload. The demo restaurant as test_dashboard.py
describes it: tables 1-8 (Main room) and T1-T4 (ids 9-12, Terrace); 1, 4, 6 and T2 occupied, T4 disabled.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .conftest import new_key
from .test_dashboard import (
    DEMO_STATUS,
    LIVE,
    SOCKET,
    HeldPushes,
    assert_cards_do_not_overlap,
    assert_fits_width,
    assert_not_reloaded,
    button,
    card,
    expect_status,
    mark_no_reload,
    open_signed_in,
    sign_in,
    statuses,
)
from .test_floor_moves import open_panel, two_tablets

try:
    from playwright.async_api import Browser, Locator, Page, expect
except ImportError:  # the conftest's `browser` fixture skips (or fails on CI) with the reason
    Browser = Locator = Page = Any  # type: ignore[misc,assignment]
    expect = None  # type: ignore[assignment]

OCCUPIED = [1, 4, 6, 10]
BAR = {"Close": "close_table", "Disable": "disable_table", "Enable": "enable_table"}  # the select bar's buttons


def bar_button(page: Page, label: str) -> Locator:
    return page.locator("#bulk-form").get_by_role("button", name=label, exact=True)


def undo(page: Page) -> Locator:
    return page.locator("#undo").get_by_role("button", name="Undo the close")


async def start_selecting(page: Page) -> None:
    await page.locator("header").get_by_text("Select", exact=True).click()
    await expect(page.locator("#selecting")).to_be_checked()
    await expect(page.locator("#bulk-form")).to_be_visible()


async def expect_selected(page: Page, table_ids: list[int]) -> None:
    boxes = page.locator("#grid .pick:checked")
    await expect(boxes).to_have_count(len(table_ids))
    for table_id in table_ids:
        await expect(page.locator(f"#pick-{table_id}")).to_be_checked()


async def expect_reason(page: Page, label: str, reason: str) -> None:
    """The bar's button is disabled and says why, beside it and to a screen reader (aria-describedby)."""
    pressed = bar_button(page, label)
    await expect(pressed).to_be_disabled()
    why = page.locator(f"#why-{BAR[label]}")
    await expect(why).to_have_text(reason)
    await expect(why).to_be_visible()
    await expect(pressed).to_have_accessible_description(re.compile(re.escape(reason) + "$"))


async def test_select_three_cards_and_close_them_the_other_tablet_sees_all_three(browser, server):
    a, b = await two_tablets(browser, server)
    await expect(a.locator("#grid .pick:visible")).to_have_count(0)  # not until Select
    await start_selecting(a)
    await expect(a.locator("#grid .pick:visible")).to_have_count(12)
    await expect(a.locator("#picked")).to_have_text("Select tables first.")
    await expect(a.locator("#pick-4")).to_have_accessible_name("Select table 4")

    for table_id in (1, 4, 6):
        await card(a, table_id).click()  # anywhere on the card
    await expect_selected(a, [1, 4, 6])
    await expect(a.locator("#picked")).to_have_text("Selected: 3")
    await expect(a.locator("#picked")).to_have_attribute("role", "status")
    await expect(bar_button(a, "Close")).to_be_enabled()
    await expect_reason(a, "Disable", "Table 1 is occupied.")
    await card(a, 6).click()  # a second tap lets it go
    await expect(a.locator("#picked")).to_have_text("Selected: 2")
    await a.locator("#pick-6").focus()  # and the keyboard ticks it again
    await a.keyboard.press("Space")
    await expect_selected(a, [1, 4, 6])

    await bar_button(a, "Close").click()
    for page in (b, a):
        for table_id in (1, 4, 6):
            await expect_status(page, table_id, "free")
    await expect(a.locator("#grid .pick:checked")).to_have_count(0)  # the selection goes after a bulk
    await expect(a.locator("#picked")).to_have_text("Select tables first.")
    await expect(undo(a)).to_be_visible()  # the same Undo as End of service's
    await expect(undo(b)).to_be_hidden()  # only where the close was made
    assert await statuses(b) == DEMO_STATUS | {1: "free", 4: "free", 6: "free"}
    await expect(b.locator("#connection")).to_have_attribute("data-state", LIVE)
    await assert_not_reloaded(b)

    # Undo: one bulk, the three parties back on both tablets
    await undo(a).click()
    for page in (b, a):
        for table_id in (1, 4, 6):
            await expect_status(page, table_id, "occupied")
    await expect(undo(a)).to_be_hidden()
    assert await statuses(b) == DEMO_STATUS

    # leaving select mode hides the boxes and the bar; the card's own buttons are back
    await a.locator("#bulk-form").get_by_text("Done", exact=True).click()
    await expect(a.locator("#bulk-form")).to_be_hidden()
    await expect(a.locator("#grid .pick:visible")).to_have_count(0)
    await expect(button(a, 1, "close_table")).to_be_visible()


async def test_a_selected_card_changed_by_a_push_stays_selected_and_the_reasons_follow(browser, server):
    a, b = await two_tablets(browser, server)
    await start_selecting(a)
    await card(a, 2).click()
    await card(a, 3).click()
    await expect(bar_button(a, "Disable")).to_be_enabled()
    await expect_reason(a, "Close", "Table 2 is free.")
    await expect_reason(a, "Enable", "Table 2 is free.")

    seat = await open_panel(b, 3, "Seat")  # B seats table 3: A's card 3 is pushed anew
    await seat.locator(".counts button").nth(1).click()
    await expect_status(a, 3, "occupied")
    await expect_selected(a, [2, 3])
    await expect_reason(a, "Disable", "Table 3 is occupied.")
    await expect_reason(a, "Close", "Table 2 is free.")

    await card(a, 2).click()  # only table 3 now: Close fits it
    await expect(bar_button(a, "Close")).to_be_enabled()
    await expect(a.locator("#bulk-form small:visible")).to_have_count(2)  # Disable's and Enable's reasons
    await card(a, 3).click()  # nothing selected: nothing to do, and that is the reason
    for label in ("Close", "Disable", "Enable"):
        await expect(bar_button(a, label)).to_be_disabled()
        await expect(bar_button(a, label)).to_have_accessible_description("Select tables first.")
    await expect(a.locator("#picked")).to_have_text("Select tables first.")
    await assert_not_reloaded(b)


async def test_a_mixed_selection_disables_what_does_not_fit_every_table(browser, server):
    page = await sign_in(browser, server, server.admin_key())
    await start_selecting(page)
    for table_id in (1, 2, 12):  # occupied, free, disabled
        await card(page, table_id).click()
    await expect(page.locator("#picked")).to_have_text("Selected: 3")
    await expect_reason(page, "Close", "Table 2 is free.")
    await expect_reason(page, "Disable", "Table 1 is occupied.")
    await expect_reason(page, "Enable", "Table 1 is occupied.")

    await card(page, 1).click()
    await card(page, 12).click()
    await expect(bar_button(page, "Disable")).to_be_enabled()
    await bar_button(page, "Disable").click()
    await expect_status(page, 2, "disabled")
    await expect(undo(page)).to_be_hidden()  # Undo is for a close
    await card(page, 2).click()
    await card(page, 12).click()
    await bar_button(page, "Enable").click()
    await expect_status(page, 2, "free")
    await expect_status(page, 12, "free")


async def test_a_bulk_refused_on_one_table_changes_none_and_says_why_in_the_bar(browser, server):
    """A closes 1 and 4 while B, unheard by A (its pushes held back), has just closed 4: nothing changes."""
    pushes = HeldPushes()
    context = await browser.new_context()
    context.set_default_timeout(10_000)
    a = await context.new_page()
    await a.route_web_socket(SOCKET, pushes.route)
    await open_signed_in(a, server, server.admin_key())
    b = await sign_in(browser, server, await new_key(server.db, label="second tablet"))
    pushes.holding = True

    await start_selecting(a)
    await card(a, 1).click()
    await card(a, 4).click()
    await button(b, 4, "close_table").click()
    await expect_status(b, 4, "free")
    await bar_button(a, "Close").click()
    note = a.locator(".tools .note")
    await expect(note).to_have_text(re.compile(r"Table 4 has no guests to close\. Nothing was changed\.$"))
    await expect(note).to_have_attribute("role", "status")
    await expect(a.locator("#grid .card.busy")).to_have_count(0)
    await expect_selected(a, [1, 4])  # kept, to try again
    await expect_status(b, 1, "occupied")

    pushes.release()
    await expect_status(a, 4, "free")
    await expect_reason(a, "Close", "Table 4 is free.")


async def test_end_of_service_counts_a_joined_party_once_and_undo_restores_them_all(browser, server):
    a, b = await two_tablets(browser, server)
    await button(a, 4, "join_tables").click()  # table 5 joins table 4's party
    await card(a, 5).click()
    await expect(card(b, 5).locator(".joined")).to_have_text("With 4")
    await expect(a.locator("#pick-5")).to_have_attribute("value", "4")  # its box closes the party at 4

    await a.get_by_role("button", name="End of service").click()
    confirm = a.locator("#end-service")
    await expect(confirm).to_be_visible()
    await expect(confirm.locator("p")).to_have_text("End of service. Occupied tables to close: 4")
    sent = await confirm.locator("input[name=table_id]").evaluate_all("inputs => inputs.map(i => +i.value)")
    assert sorted(sent) == OCCUPIED  # one close a party: 5 closes with 4

    await confirm.get_by_role("button", name="Cancel").click()

    # B seats table 3: A counts again from its live grid as End of service opens
    seat = await open_panel(b, 3, "Seat")
    await seat.locator(".counts button").nth(1).click()
    await expect_status(a, 3, "occupied")
    await a.get_by_role("button", name="End of service").click()
    await expect(confirm.locator("p b")).to_have_text("5")
    sent = await confirm.locator("input[name=table_id]").evaluate_all("inputs => inputs.map(i => +i.value)")
    assert sorted(sent) == [1, 3, 4, 6, 10]
    await confirm.get_by_role("button", name="Close them").click()
    await expect(confirm).to_be_hidden()
    closed = [1, 3, 4, 5, 6, 10]
    for page in (b, a):
        for table_id in closed:
            await expect_status(page, table_id, "free")
    assert await statuses(b) == DEMO_STATUS | dict.fromkeys(closed, "free")
    await expect(undo(a)).to_be_visible()

    await a.get_by_role("button", name="End of service").click()
    await expect(confirm.locator("p b")).to_have_text("0")
    await expect(confirm.get_by_role("button", name="Close them")).to_be_disabled()
    await confirm.get_by_role("button", name="Cancel").click()

    await undo(a).click()
    for page in (b, a):
        for table_id in closed:
            await expect_status(page, table_id, "occupied")
        await expect(card(page, 5).locator(".joined")).to_have_text("With 4")
        await expect(card(page, 4).locator(".joined")).to_have_text("Joined with 5")
    await expect(undo(a)).to_be_hidden()
    assert await statuses(b) == DEMO_STATUS | {3: "occupied", 5: "occupied"}
    await expect(b.locator("#connection")).to_have_attribute("data-state", LIVE)
    await assert_not_reloaded(b)


async def test_undo_goes_when_the_restore_window_runs_out(browser, server):
    context = await browser.new_context()
    context.set_default_timeout(10_000)
    await context.clock.install()
    page = await context.new_page()
    await open_signed_in(page, server, server.admin_key())
    await page.get_by_role("button", name="End of service").click()
    await page.locator("#end-service").get_by_role("button", name="Close them").click()
    await expect(undo(page)).to_be_visible()
    await page.clock.fast_forward("29:00")
    await expect(undo(page)).to_be_visible()
    await page.clock.fast_forward("01:30")  # the cards' Restore goes, and Undo with it
    await expect(button(page, 1, "restore_table")).to_have_count(0)
    await expect(undo(page)).to_be_hidden()


async def test_a_viewer_has_no_select_nor_end_of_service(browser, server):
    viewer = await sign_in(browser, server, await new_key(server.db, role="viewer", label="wall screen"))
    await expect(viewer.locator("#selecting, #bulk-form, #end-service, #undo")).to_have_count(0)
    await expect(viewer.get_by_role("button", name="End of service")).to_have_count(0)
    await expect(viewer.locator("header").get_by_text("Select", exact=True)).to_have_count(0)
    await expect(viewer.locator("#grid input:visible")).to_have_count(0)


async def test_without_javascript_select_and_close_then_end_of_service_and_undo(browser, server):
    context = await browser.new_context(java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await page.goto(f"{server.url}/admin/login")
    await page.fill("input#key", server.admin_key())
    await page.click("form button[type=submit]")
    dashboard = f"{server.url}/admin/dashboard"
    await expect(page).to_have_url(dashboard)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "connecting")  # no script ran
    notice = page.locator(".notice")

    await start_selecting(page)  # a checkbox and CSS: no script needed
    await card(page, 1).click()
    await card(page, 4).click()
    await expect_selected(page, [1, 4])
    await bar_button(page, "Close").click()
    await expect(page).to_have_url(dashboard)
    await expect(notice).to_have_text("Tables 1 and 4 closed.")
    await expect_status(page, 1, "free")
    await expect_status(page, 4, "free")
    await expect(undo(page)).to_be_visible()
    await undo(page).click()
    await expect(notice).to_have_text("Tables 1 and 4 restored.")
    await expect_status(page, 1, "occupied")
    await expect_status(page, 4, "occupied")
    await expect(undo(page)).to_be_hidden()

    await page.get_by_role("button", name="End of service").click()  # a popover: no script either
    confirm = page.locator("#end-service")
    await expect(confirm.locator("p b")).to_have_text("4")
    await confirm.get_by_role("button", name="Close them").click()
    await expect(notice).to_have_text("Tables 1, 4, 6 and T2 closed.")
    assert await statuses(page) == DEMO_STATUS | dict.fromkeys(OCCUPIED, "free")
    await undo(page).click()
    await expect(notice).to_have_text("Tables 1, 4, 6 and T2 restored.")
    assert await statuses(page) == DEMO_STATUS

    # a selection that does not fit: the server says why, and nothing changes
    await start_selecting(page)
    await card(page, 1).click()
    await card(page, 2).click()
    await bar_button(page, "Close").click()
    await expect(notice).to_have_text("Table 2 has no guests to close. Nothing was changed.")
    assert await statuses(page) == DEMO_STATUS
    await context.close()


async def test_screenshot_of_select_mode(browser, server):
    """Select mode at a tablet's and a phone's width; saved to MAITRE_SCREENSHOT_DIR when it is set."""
    directory = os.environ.get("MAITRE_SCREENSHOT_DIR")
    folder = Path(directory) if directory else None
    key = server.admin_key()
    for name, options in [("dashboard-select.png", {"viewport": {"width": 1024, "height": 768}}),
                          (None, {"viewport": {"width": 360, "height": 740}, "has_touch": True})]:
        page = await sign_in(browser, server, key, **options)
        await mark_no_reload(page)
        await start_selecting(page)
        for table_id in (1, 2, 4):
            await card(page, table_id).click()
        await expect_reason(page, "Close", "Table 2 is free.")
        await assert_fits_width(page)
        await assert_cards_do_not_overlap(page)
        box = await page.locator(".tools").bounding_box()
        viewport = page.viewport_size
        assert box is not None and viewport is not None
        assert box["y"] + box["height"] <= viewport["height"] + 1, "the bar is in sight at the foot of the screen"
        image = await page.screenshot(animations="disabled", caret="hide")
        if folder is not None and name:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(image)
