"""A guest's phone calls a waiter; every admin tablet shows it at once; an admin sees to it with a tap."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .conftest import cli

try:
    from playwright.async_api import expect
except ImportError:  # the conftest's `browser` fixture skips (or fails on CI) with the reason
    expect = None  # type: ignore[assignment]


async def test_a_guest_calls_and_an_admin_sees_to_it(browser: Any, server: Any) -> None:
    tables = json.loads(await cli("table", "list", "demo", "--json", db=server.db))
    table_3 = next(t for t in tables if t["number"] == "3")  # a free table
    guest_url = f"{server.url}/t/{table_3['qr_token']}"

    admin_context = await browser.new_context(viewport={"width": 1024, "height": 768})
    admin_context.set_default_timeout(10_000)
    admin = await admin_context.new_page()
    await admin.goto(f"{server.url}/admin/login")
    await admin.fill("input#key", server.admin_key())
    await admin.click("form button[type=submit]")
    await expect(admin.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(admin.locator("#requests")).to_be_hidden()

    phone = await (await browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)).new_page()
    await phone.goto(guest_url)
    await expect(phone.locator("h1")).to_have_text("Table 3")
    started = time.monotonic()
    await phone.get_by_role("button", name="Call a waiter").click()
    await expect(phone.locator(".guest-status")).to_contain_text("The staff have your call")

    card = admin.locator(f"#table-{table_3['id']}")
    await expect(card.locator(".request")).to_contain_text("Waiter called", timeout=1_000)
    assert time.monotonic() - started < 2
    await expect(card).to_have_attribute("data-status", "occupied")
    await expect(admin.locator("#requests")).to_be_visible()
    await expect(admin.locator("#requests li")).to_have_text(["Table 3: ☎ Waiter called"])
    if os.environ.get("MAITRE_SCREENSHOT_DIR"):
        shots = Path(os.environ["MAITRE_SCREENSHOT_DIR"])
        await phone.screenshot(path=str(shots / "guest.png"))
        await admin.screenshot(path=str(shots / "dashboard-request.png"))

    await card.get_by_role("button", name="Done").click()
    await expect(card.locator(".request")).to_have_count(0)
    await expect(admin.locator("#requests")).to_be_hidden()

    await phone.reload()
    await expect(phone.locator(".guest-status")).to_have_text("A waiter is on the way.")
    await admin_context.close()
