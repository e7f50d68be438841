"""End-to-end fixtures: the server as a real `python run.py serve` process, and a real Chromium.

The browser is the system's Chromium (Debian's /usr/bin/chromium), driven by Playwright's
async API; nothing is ever downloaded. Without Chromium (or without the playwright
package) the browser tests are skipped, except on CI (`CI=true`), where they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bench.servers import RUN_PY, environment

from .. import support
from ..support import unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


async def cli(*args: str, db: Path) -> str:
    """`python run.py ARGS --db DB`, as an administrator types it; returns its stdout."""
    command = [sys.executable, str(RUN_PY), *args, "--db", str(db)]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, env=environment(), cwd=db.parent)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


async def new_key(db: Path, role: str = "admin", label: str = "browser test") -> str:
    key = (await cli("key", "add", "demo", "--role", role, "--label", label, db=db)).strip().splitlines()[-1]
    assert key.startswith("mtr_"), key
    return key


class Server:
    """The server under test (tests/support.py) for a test's event loop: starting and stopping it wait for
    the process in a thread."""

    def __init__(self, server: support.Server) -> None:
        self.server = server
        self.db = server.db
        self.url = server.url

    @property
    def output(self) -> list[str]:
        return self.server.output

    def admin_key(self) -> str:
        return self.server.admin_key()

    async def start(self) -> None:
        await asyncio.to_thread(self.server.start)

    async def stop(self) -> int:
        return await asyncio.to_thread(self.server.stop)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A server on a fresh database: its first start creates the demo restaurant."""
    running = Server(await asyncio.to_thread(support.Server, tmp_path))
    yield running
    code = await running.stop()  # once more if the test stopped it: that changes nothing
    assert code == 0, "the server did not stop cleanly:\n" + "\n".join(running.output)


@pytest.fixture
async def browser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """Headless system Chromium, launched for one test (each test has an event loop of its own).

    Parametrize it indirectly with a tuple of Chromium flags to add some (e.g. a host-resolver rule).
    """
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install playwright); no browser to test with")
    executable = chromium_path()
    if executable is None:
        unavailable(f"Chromium is not installed ({CHROMIUM} and `chromium` on PATH are missing); "
                    "install Debian's chromium package to run the browser tests")
    # Playwright must never fetch a browser of its own: we always name the executable.
    monkeypatch.setenv("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    async with async_playwright() as playwright:
        extra = getattr(request, "param", ())
        chromium = await playwright.chromium.launch(executable_path=executable, args=[*CHROMIUM_ARGS, *extra],
                                                    headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()
