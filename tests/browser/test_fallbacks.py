"""Without the script, and without the socket: the dashboard still works, the old way.

With JavaScript off every card button is a form: it posts to /admin/tables/{id}/<verb> and
the page comes back with the result shown. With WebSockets blocked (as by a proxy), the page
falls back to fetching the grid every 30 s, still shows a change made elsewhere, and posts
each action to its form's own URL.
"""

from __future__ import annotations

import re
from typing import Any

from .conftest import Server, cli

try:
    from playwright.async_api import Page, expect
except ImportError:  # the conftest's `browser` fixture skips (or fails on CI) with the reason
    Page = Any  # type: ignore[misc,assignment]
    expect = None  # type: ignore[assignment]


async def sign_in_by_form(page: Page, server: Server) -> None:
    await page.goto(f"{server.url}/admin/login")
    await page.fill("input#key", server.admin_key())
    await page.click("form button[type=submit]")
    await expect(page).to_have_url(f"{server.url}/admin/dashboard")


async def test_without_javascript_the_forms_close_restore_and_move(browser, server):
    context = await browser.new_context(java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await sign_in_by_form(page, server)
    table = page.locator("#table-1")
    await expect(table).to_have_attribute("data-status", "occupied")

    await table.get_by_role("button", name="Close").click()
    await expect(page).to_have_url(f"{server.url}/admin/dashboard")
    await expect(page.locator(".notice")).to_have_text("Table 1 closed.")
    await expect(table).to_have_attribute("data-status", "free")

    await table.get_by_role("button", name="Restore").click()
    await expect(page.locator(".notice")).to_have_text("Table 1 restored.")
    await expect(table).to_have_attribute("data-status", "occupied")

    await page.locator("#table-4").get_by_role("button", name="Move").click()
    await expect(page).to_have_url(re.compile(rf"^{re.escape(server.url)}/admin/tables/4/move\??$"))  # a GET form
    await expect(page.locator("h1")).to_have_text("Move table 4 to…")
    await page.get_by_role("button", name="3 Main room").click()
    await expect(page.locator(".notice")).to_have_text("Party moved from table 4 to table 3.")
    await expect(page.locator("#table-3")).to_have_attribute("data-status", "occupied")
    await expect(page.locator("#table-4")).to_have_attribute("data-status", "free")
    await context.close()


async def test_with_websockets_blocked_the_page_polls_and_still_shows_changes(browser, server):
    context = await browser.new_context()
    context.set_default_timeout(10_000)
    page = await context.new_page()
    # as a proxy that refuses WebSockets: every handshake is turned away
    await page.route_web_socket(re.compile(r"/admin/ws/dashboard"), lambda ws: ws.close(code=1008, reason="blocked"))
    await sign_in_by_form(page, server)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "polling", timeout=15_000)
    await expect(page.locator("#connection")).to_contain_text("every 30 s")

    await cli("table", "add", "demo", "Bar 1", "--area", "Bar", db=server.db)
    # the next poll brings it; a tablet coming back to the page polls at once, as this does
    await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    await expect(page.locator("#grid")).to_contain_text("Bar 1", timeout=5_000)

    # acting still works, over HTTP, at the page's own routes (not the deprecated ones)
    async with page.expect_response(lambda response: response.request.method == "POST") as posted:
        await page.locator("#table-6").get_by_role("button", name="Close").click()
    closed = await posted.value
    assert closed.url == f"{server.url}/admin/tables/6/close" and "deprecation" not in closed.headers
    await expect(page.locator("#table-6")).to_have_attribute("data-status", "free")
    async with page.expect_response(lambda response: response.request.method == "POST") as posted:
        await page.locator("#table-4").get_by_role("button", name="Move").click()
        await page.locator("#table-6").click()
    assert (await posted.value).url == f"{server.url}/admin/tables/4/move"
    await expect(page.locator("#table-6")).to_have_attribute("data-status", "occupied")
    await expect(page.locator("#table-4")).to_have_attribute("data-status", "free")
    await context.close()
