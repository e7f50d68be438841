"""End-to-end fixtures: the server as a real `python run.py serve` process, and a real Chromium.

The browser is the system's Chromium (Debian's /usr/bin/chromium), driven by Playwright's
async API; nothing is ever downloaded. Without Chromium (or without the playwright
package) the browser tests are skipped, except on CI (`CI=true`), where they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_PY = ROOT / "run.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
START_SECONDS = 30


def unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail on CI, where a skipped browser suite would pass unnoticed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run on CI)", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without any MAITRE_* setting, so only the flags we pass count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MAITRE_")} | {"PYTHONUNBUFFERED": "1"} | extra


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    """`python run.py serve` on a database file in a directory of its own; it can be stopped and started again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.db = directory / "maitre.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None
        self.runs: list[list[str]] = []  # the output of each start, line by line

    @property
    def output(self) -> list[str]:
        return self.runs[-1]

    def admin_key(self) -> str:
        """The key the first start printed for the demo restaurant."""
        lines = [line for line in self.runs[0] if line.startswith("Admin key for 'demo'")]
        assert len(lines) == 1, "\n".join(self.runs[0])
        return lines[0].rsplit(" ", 1)[1]

    async def start(self) -> None:
        assert self.process is None, "already running"
        lines: list[str] = []
        self.runs.append(lines)
        listening = threading.Event()
        process = subprocess.Popen(
            [sys.executable, str(RUN_PY), "serve", "--db", str(self.db), "--port", str(self.port),
             "--host", "127.0.0.1"],
            cwd=self.directory, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment(),
        )
        self.process = process

        def read() -> None:  # keeps draining the pipe, so the server never blocks on a full one
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                if "Running on" in line:
                    listening.set()
            listening.set()

        self.reader = threading.Thread(target=read, name=f"server-{self.port}-output", daemon=True)
        self.reader.start()
        await asyncio.to_thread(listening.wait, START_SECONDS)
        if process.poll() is not None or not any("Running on" in line for line in lines):
            await self.stop()
            raise AssertionError("the server did not start listening:\n" + "\n".join(lines))

    async def stop(self) -> int:
        """SIGINT, as Ctrl+C does, then wait for the process to end; returns its exit status."""
        process, self.process = self.process, None
        assert process is not None, "not running"
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            code = await asyncio.to_thread(process.wait, 20)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
            raise AssertionError("the server did not stop within 20 s of SIGINT:\n" + "\n".join(self.output)) from None
        finally:
            if self.reader is not None:
                await asyncio.to_thread(self.reader.join, 5)
            assert process.stdout is not None
            process.stdout.close()
        return code


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A server on a fresh database: its first start creates the demo restaurant."""
    running = Server(tmp_path)
    await running.start()
    yield running
    if running.process is not None:
        code = await running.stop()
        assert code == 0, "the server did not stop cleanly:\n" + "\n".join(running.output)


@pytest.fixture
async def browser(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """Headless system Chromium, launched for one test (each test has an event loop of its own)."""
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
        chromium = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()
