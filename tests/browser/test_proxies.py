"""Two tablets in real Chromium, over HTTPS through the guide's nginx and Caddy (docs/deploy.md), in front
of `python run.py serve` with the service's settings (tests/support.py: behind_proxy).

Chromium reaches the box by its name (maitre.lan, mapped to 127.0.0.1) and is told to accept the
certificate (nginx's is made by the test, Caddy's signed by its own authority), as a tablet that
trusts the box's certificate would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.auth import SIGN_IN_COOKIE

from .. import support
from .conftest import new_key

try:
    from playwright.async_api import Browser, Page, Response, expect
except ImportError:  # the `browser` fixture skips (or fails on CI) with the reason
    Browser = Page = Response = Any  # type: ignore[misc,assignment]
    expect = None  # type: ignore[assignment]


@pytest.fixture(params=["nginx", "caddy"])
async def deployed(request: pytest.FixtureRequest,
                   tmp_path: Path) -> AsyncIterator[tuple[support.Server, support.Proxy]]:
    """Maître (the demo restaurant) behind nginx or Caddy, each from the guide's config."""
    maitre, proxy = await asyncio.to_thread(support.behind_proxy, request.param, tmp_path)
    yield maitre, proxy
    await asyncio.to_thread(proxy.stop)
    assert await asyncio.to_thread(maitre.stop) == 0, "Maître did not stop cleanly:\n" + maitre.process_output()


@dataclasses.dataclass
class Tablet:
    """A signed-in page, every answer of 400 or above it got, and the sockets it opened."""

    page: Page
    refused: list[str]
    sockets: list[str]


async def sign_in(browser: Browser, url: str, key: str) -> Tablet:
    """A tablet of its own (a browser context) signed in through the login form, its socket live."""
    context = await browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(10_000)
    tablet = Tablet(await context.new_page(), [], [])

    def note(response: Response) -> None:
        if response.status >= 400:
            tablet.refused.append(f"{response.status} {response.url}")

    tablet.page.on("response", note)
    tablet.page.on("websocket", lambda ws: tablet.sockets.append(ws.url))
    await tablet.page.goto(f"{url}/admin/login")
    await tablet.page.fill("input#key", key)
    await tablet.page.click("form button[type=submit]")
    await expect(tablet.page).to_have_url(f"{url}/admin/dashboard")
    await expect(tablet.page.locator("#connection")).to_have_attribute("data-state", "live")
    return tablet


# Chromium finds the box by its name, as a tablet on the restaurant's network does
@pytest.mark.parametrize("browser", [(f"--host-resolver-rules=MAP {support.PUBLIC_NAME} 127.0.0.1",)], indirect=True)
async def test_a_close_on_one_tablet_shows_live_on_another_through_the_proxy(browser, deployed):
    maitre, proxy = deployed
    first = await sign_in(browser, proxy.url, maitre.admin_key())
    second = await sign_in(browser, proxy.url, await new_key(maitre.db, label="second tablet"))

    cookies = [cookie for cookie in await first.page.context.cookies() if cookie["name"] == SIGN_IN_COOKIE]
    assert len(cookies) == 1 and cookies[0]["secure"] and cookies[0]["httpOnly"], cookies

    await first.page.locator("#grid article.card#table-1 button[data-action=close_table]").click()
    for tablet in (second, first):
        await expect(tablet.page.locator("#grid article.card#table-1")).to_have_attribute("data-status", "free")
        indicator = tablet.page.locator("#connection")
        await expect(indicator).to_have_attribute("data-state", "live")
        await expect(indicator).to_have_text(re.compile(r"^\s*Live\s*$"))
        # one socket, over TLS through the proxy, never refused (a 403 there would mean polling) nor reopened
        assert tablet.refused == [], tablet.refused
        assert tablet.sockets == [f"wss://{support.PUBLIC_NAME}:{proxy.port}/admin/ws/dashboard"], tablet.sockets
