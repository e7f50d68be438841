"""Seating a party, its size and note, joining and splitting tables, and the floor editor, in a real browser.

Two tablets (two browser contexts, each signed in with a key of its own) against `python run.py serve`:
what one does, the other shows live, without a reload. The demo restaurant as test_dashboard.py
describes it: tables 1-8 (Main room; 1 and 2 with 2 seats, the others 4) and T1-T4 (ids 9-12,
Terrace); 1, 4, 6 and T2 occupied, T4 disabled.
"""

from __future__ import annotations

from typing import Any

from .conftest import Server, new_key
from .test_dashboard import (
    DEMO_STATUS,
    LIVE,
    assert_matches_fresh_load,
    assert_not_reloaded,
    button,
    card,
    expect_status,
    labels,
    mark_no_reload,
    sign_in,
    statuses,
)

try:
    from playwright.async_api import Browser, Locator, Page, expect
except ImportError:  # the conftest's `browser` fixture skips (or fails on CI) with the reason
    Browser = Locator = Page = Any  # type: ignore[misc,assignment]
    expect = None  # type: ignore[assignment]

# a note as someone might type it: on every tablet it stays text, never markup
NOTE = "<script>window.pwned=1</script><b>x</b>"
OCCUPIED = ["Close", "Move", "Join", "Party"]
JOINED = ["Close", "Move", "Join", "Split", "Party"]


async def two_tablets(browser: Browser, server: Server) -> tuple[Page, Page]:
    """Tablet A, which acts, and tablet B, which watches (marked, to tell a reload)."""
    a = await sign_in(browser, server, server.admin_key())
    b = await sign_in(browser, server, await new_key(server.db, label="second tablet"))
    await mark_no_reload(b)
    return a, b


async def open_panel(page: Page, table_id: int, name: str) -> Locator:
    """Opens the card's Seat or Party panel (a popover, which needs no script) and returns it."""
    opener = card(page, table_id).locator(".opener")
    await expect(opener).to_have_text(name)
    await opener.click()
    panel = card(page, table_id).locator(".more")
    await expect(panel).to_be_visible()
    return panel


async def expect_guests(page: Page, table_id: int, guests: int) -> None:
    await expect_status(page, table_id, "occupied")
    await expect(card(page, table_id).locator(".state")).to_have_text(f"Occupied · {guests} guests")


async def grid_order(page: Page, area: str) -> list[str]:
    return await page.locator(f'#grid section.area[data-area="{area}"] article.card h3').all_text_contents()


async def test_seat_a_free_table_with_a_tap_or_a_typed_number(browser, server):
    a, b = await two_tablets(browser, server)

    seat = await open_panel(a, 3, "Seat")
    counts = seat.locator(".counts button")
    await expect(counts).to_have_text(["1", "2", "3", "4"])  # one button a seat
    await expect(seat.locator(".counts button.default")).to_have_text("4")
    await counts.nth(2).click()
    await expect_guests(b, 3, 3)
    await expect_guests(a, 3, 3)
    await expect(card(b, 3).locator("input[name=guest_count]")).to_have_value("3")  # in its Party panel

    # a party bigger than the table: More, typed
    seat = await open_panel(a, 5, "Seat")
    await seat.locator("input[name=guest_count]").fill("12")
    await seat.locator("form:not(.counts) button[data-action=seat_table]").click()
    await expect_guests(b, 5, 12)

    # a count the server refuses: the card says why, and nobody is seated
    seat = await open_panel(a, 7, "Seat")
    await seat.locator("input[name=guest_count]").fill("100")
    await seat.locator("form:not(.counts) button[data-action=seat_table]").click()
    await expect(card(a, 7).locator(".note")).to_have_text("The number of guests must be between 1 and 99.")
    await expect_status(a, 7, "free")

    # More left empty: as many as the table has seats, as over HTTP (not a count of 0)
    seat = await open_panel(a, 8, "Seat")
    await seat.locator("input[name=guest_count]").fill("")
    await seat.locator("form:not(.counts) button[data-action=seat_table]").click()
    await expect_guests(b, 8, 4)

    await assert_matches_fresh_load(b, [3, 5, 8], {3: OCCUPIED, 5: OCCUPIED, 8: OCCUPIED})
    assert await statuses(b) == DEMO_STATUS | {3: "occupied", 5: "occupied", 8: "occupied"}
    await assert_not_reloaded(b)


async def test_a_note_shows_as_typed_never_as_markup_and_the_party_size_changes(browser, server):
    a, b = await two_tablets(browser, server)

    party = await open_panel(a, 6, "Party")
    await party.locator("input[name=note]").fill(NOTE)
    await party.locator("input[name=note]").press("Enter")  # Enter saves, as Save does
    for page in (b, a):
        note = card(page, 6).locator(".party-note")
        await expect(note).to_have_text(NOTE)
        await expect(card(page, 6).locator("b, .party-note script")).to_have_count(0)
        await expect(card(page, 6).locator("input[name=note]")).to_have_value(NOTE)
        assert await page.evaluate("typeof window.pwned") == "undefined"

    party = await open_panel(a, 6, "Party")
    await party.locator("input[name=guest_count]").fill("7")
    await party.get_by_role("button", name="Set").click()
    await expect_guests(b, 6, 7)
    await expect(card(b, 6).locator(".party-note")).to_have_text(NOTE)  # the note stays
    await assert_matches_fresh_load(b, [6], {6: OCCUPIED})

    # B clears the note: an empty note is none
    party = await open_panel(b, 6, "Party")
    await party.locator("input[name=note]").fill("")
    await party.get_by_role("button", name="Save").click()
    for page in (a, b):
        await expect(card(page, 6).locator(".party-note")).to_have_count(0)
    await expect_guests(a, 6, 7)
    await assert_not_reloaded(b)

    await b.reload()  # a page rendered whole by the server escapes the note too
    await expect(b.locator("#connection")).to_have_attribute("data-state", LIVE)
    assert await b.evaluate("typeof window.pwned") == "undefined"


async def test_join_two_tables_split_them_and_close_the_party_from_either(browser, server):
    a, b = await two_tablets(browser, server)
    await button(a, 6, "close_table").click()
    await expect_status(b, 6, "free")
    seat = await open_panel(a, 5, "Seat")
    await seat.locator(".counts button").nth(1).click()
    await expect_guests(b, 5, 2)

    await button(a, 5, "join_tables").click()
    bar = a.locator("#move-bar")
    await expect(bar).to_be_visible()
    await expect(bar).to_contain_text("Join a table to table 5's party: tap a free table.")
    await card(a, 6).click()
    await expect(bar).to_be_hidden()
    for page in (b, a):
        await expect_guests(page, 6, 2)  # one party at two tables
        await expect(card(page, 6).locator(".joined")).to_have_text("With 5")
        await expect(card(page, 5).locator(".joined")).to_have_text("Joined with 6")
    await assert_matches_fresh_load(b, [5, 6], {5: OCCUPIED, 6: JOINED})

    # Split: table 6 is free again, the party stays at 5
    await button(a, 6, "split_table").click()
    for page in (b, a):
        await expect_status(page, 6, "free")
        await expect(card(page, 5).locator(".joined")).to_have_count(0)
        await expect_guests(page, 5, 2)

    # joined again, from B this time; Close on the joined table closes the whole party
    await button(b, 5, "join_tables").click()
    await card(b, 6).click()
    await expect(card(a, 6).locator(".joined")).to_have_text("With 5")
    await button(a, 6, "close_table").click()
    for page in (b, a):
        await expect_status(page, 6, "free")
        await expect_status(page, 5, "free")
        await expect(page.locator("#grid .joined")).to_have_count(0)

    # Restore brings the party back to both tables
    await button(b, 6, "restore_table").click()
    for page in (a, b):
        await expect(card(page, 5).locator(".joined")).to_have_text("Joined with 6")
        await expect(card(page, 6).locator(".joined")).to_have_text("With 5")
    assert await statuses(b) == DEMO_STATUS | {5: "occupied"}
    await expect(b.locator("#grid .note:not(:empty)")).to_have_count(0)
    await assert_not_reloaded(b)


async def test_the_floor_editor_changes_every_tablets_grid_live(browser, server):
    a, b = await two_tablets(browser, server)
    await a.get_by_role("link", name="Edit floor").click()
    await expect(a).to_have_url(f"{server.url}/admin/floor")
    await expect(a.locator("script")).to_have_count(0)  # plain forms
    notice = a.locator(".notice")

    row = a.locator("#floor-2")
    await row.locator("input[name=label]").fill("Window")
    await row.get_by_role("button", name="Save").click()
    await expect(notice).to_have_text("Table Window saved.")
    await expect(card(b, 2).locator("h3")).to_have_text("Window")
    await expect(a.locator("#floor-2 input[name=label]")).to_have_value("Window")
    await a.locator("#floor-3 input[name=label]").fill("Window")  # refused, and said why
    await a.locator("#floor-3").get_by_role("button", name="Save").click()
    await expect(notice).to_have_text("There is already a table Window.")
    await expect(a.locator("#floor-3 input[name=label]")).to_have_value("3")

    # a table added here appears on B, in its new area
    add = a.locator("form.floor-add")
    await add.locator("input[name=label]").fill("Bar 1")
    await add.locator("input[name=area]").fill("Bar")
    await add.get_by_role("button", name="Add").click()
    await expect(notice).to_have_text("Table Bar 1 added.")
    await expect(b.locator('#grid section.area[data-area="Bar"] article.card h3')).to_have_text(["Bar 1"])

    # Down and Up swap a table with its neighbour in its area; B's grid takes the new order
    assert await grid_order(b, "Main room") == ["1", "Window", "3", "4", "5", "6", "7", "8"]
    await a.get_by_role("button", name="Move table 3 down", exact=True).click()
    await expect(notice).to_have_text("Table 3 saved.")
    main_room = b.locator('#grid [data-area="Main room"] h3')
    await expect(main_room).to_have_text(["1", "Window", "4", "3", "5", "6", "7", "8"])
    # a table added to the Main room comes after Bar 1 in the restaurant's order; Up still passes table 8
    await add.locator("input[name=label]").fill("9")
    await add.locator("input[name=area]").fill("Main room")
    await add.get_by_role("button", name="Add").click()
    await expect(main_room).to_have_text(["1", "Window", "4", "3", "5", "6", "7", "8", "9"])
    await a.get_by_role("button", name="Move table 9 up", exact=True).click()
    await expect(main_room).to_have_text(["1", "Window", "4", "3", "5", "6", "7", "9", "8"])
    await a.get_by_role("button", name="Move table T3 up", exact=True).click()
    await expect(b.locator('#grid [data-area="Terrace"] h3')).to_have_text(["T1", "T3", "T2", "T4"])
    terrace = await a.locator('.floor-area[data-area="Terrace"] li').evaluate_all("rows => rows.map(r => r.id)")
    assert terrace == ["floor-9", "floor-11", "floor-10", "floor-12"]

    # Remove a free table: its card leaves B; a table with guests cannot be removed
    await expect(a.locator("#floor-6").get_by_role("button", name="Remove")).to_be_disabled()
    await a.locator("#floor-7").get_by_role("button", name="Remove", exact=True).click()
    await expect(a.locator("#remove-7")).to_contain_text("its printed QR code stops working")  # asked once more
    await a.locator("#remove-7").get_by_role("button", name="Remove table 7").click()
    await expect(notice).to_have_text("Table 7 removed.")
    await expect(a.locator("#floor-7")).to_have_count(0)
    await expect(card(b, 7)).to_have_count(0)

    expected = {k: v for k, v in DEMO_STATUS.items() if k != 7} | {13: "free", 14: "free"}
    assert await statuses(b) == expected
    await expect(b.locator("#connection")).to_have_attribute("data-state", LIVE)
    await assert_not_reloaded(b)


async def test_a_viewer_has_none_of_these_controls(browser, server):
    admin = await sign_in(browser, server, server.admin_key())
    viewer = await sign_in(browser, server, await new_key(server.db, role="viewer", label="wall screen"))
    await button(admin, 6, "join_tables").click()  # a joined pair, so that there is a Split to see
    await card(admin, 7).click()
    await expect(card(viewer, 7).locator(".joined")).to_have_text("With 6")  # the viewer sees the party

    for name in ("Seat", "Party"):
        await expect(admin.locator("#grid .opener:visible", has_text=name).first).to_be_visible()
        await expect(viewer.locator("#grid .opener:visible", has_text=name)).to_have_count(0)
    for action in ("seat_table", "set_guest_count", "set_note", "join_tables", "split_table"):
        assert await admin.locator(f"#grid button[data-action={action}]").count() > 0, action
        await expect(viewer.locator(f"#grid button[data-action={action}]:visible")).to_have_count(0)
    await expect(viewer.locator("#grid button:visible, #grid input:visible")).to_have_count(0)
    await expect(admin.get_by_role("link", name="Edit floor")).to_be_visible()
    await expect(viewer.get_by_role("link", name="Edit floor")).to_have_count(0)

    await viewer.goto(f"{server.url}/admin/floor")
    await expect(viewer).to_have_url(f"{server.url}/admin/dashboard")
    await expect(viewer.locator(".notice")).to_have_text("Only an admin key may edit the floor.")


async def test_without_javascript_seat_note_and_join_post_and_come_back(browser, server):
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

    seat = await open_panel(page, 3, "Seat")
    await seat.locator(".counts button").nth(1).click()
    await expect(notice).to_have_text("Table 3 seated.")
    await expect(page).to_have_url(dashboard)
    await expect_guests(page, 3, 2)

    party = await open_panel(page, 3, "Party")
    await party.locator("input[name=note]").fill(NOTE)
    await party.get_by_role("button", name="Save").click()
    await expect(notice).to_have_text("Table 3: note saved.")
    await expect(card(page, 3).locator(".party-note")).to_have_text(NOTE)
    await expect(card(page, 3).locator("b")).to_have_count(0)

    party = await open_panel(page, 3, "Party")
    await party.locator("input[name=guest_count]").fill("5")
    await party.get_by_role("button", name="Set").click()
    await expect(notice).to_have_text("Table 3: party size changed.")
    await expect_guests(page, 3, 5)

    # Join: a page of the free tables, one tap each
    await button(page, 3, "join_tables").click()
    await expect(page.locator("h1")).to_have_text("Join a free table to table 3's party")
    await page.get_by_role("button", name="5 Main room").click()
    await expect(notice).to_have_text("Table 5 joined to table 3.")
    await expect(card(page, 5).locator(".joined")).to_have_text("With 3")
    await expect_guests(page, 5, 5)
    assert await labels(page, 5) == JOINED
    await context.close()
