"""Helpers the test modules share (their fixtures are in conftest.py): import from here, never from a test module."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.test_utils import TestClient

from app.auth import KeyService, Principal
from app.db import Database, format_time
from app.services.core import Actor
from app.services.restaurants import RestaurantService
from app.services.tables import TableService
from app.settings import Settings
from app.typedefs import api_keys_key, db_key
from bench.servers import RUN_PY, Process, free_port

SOCKET = "/admin/ws/dashboard"


@dataclasses.dataclass
class Place:
    """A restaurant on the test server: its tables by label, and its keys."""

    actor: Actor
    ids: dict[str, int]
    admin: str
    viewer: str


async def make_place(db: Database, settings: Settings, slug: str, tables: int) -> Place:
    restaurant = await RestaurantService(db, settings).add(slug, slug.title(), tables=tables)
    actor = Actor(restaurant["id"], "setup")
    _, rows = await TableService(db, settings).list_tables(actor.restaurant_id)
    keys = KeyService(db)
    _, admin = await keys.add(slug, "admin tablet")
    _, viewer = await keys.add(slug, "wall screen", "viewer")
    return Place(actor, {row["number"]: row["id"] for row in rows}, admin, viewer)


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3) -> dict[str, Any]:
    message = await ws.receive(timeout=timeout)
    assert message.type is WSMsgType.TEXT, message
    return json.loads(message.data)


def origin(client: TestClient) -> str:
    """The test server's own origin, as a browser on its pages sends it."""
    return f"http://{client.host}:{client.port}"


async def sign_in(client: TestClient, key: str) -> aiohttp.ClientResponse:
    """Post the sign-in form as the browser does from our own page (with its Origin)."""
    return await client.post("/admin/login", data={"key": key}, headers={"Origin": origin(client)},
                             allow_redirects=False)


async def signed_in(client: TestClient, key: str) -> str:
    """Sign in, and the CSRF token the dashboard page gives its forms."""
    assert (await sign_in(client, key)).status == 303
    page = await (await client.get("/admin/dashboard")).text()
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def dashboard(client: TestClient, key: str) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    ws = await client.ws_connect(f"{SOCKET}?token={key}")
    snapshot = await receive(ws)
    assert snapshot["type"] == "tables_snapshot"
    return ws, snapshot


class Clock:
    """Time that moves on only when the test says so: `now` as the services read it, `monotonic` as the limiters do."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC)
        self.seconds = 0.0

    def now(self) -> str:
        return format_time(self.start + timedelta(seconds=self.seconds))

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


def keys_on(clock: Clock, app: web.Application) -> web.Application:
    """The app, its key service (sign-ins and their expiry) reading the time from `clock`."""

    async def replace_key_service(app: web.Application) -> None:  # runs once the database is open
        app[api_keys_key] = KeyService(app[db_key], clock.now)

    app.on_startup.append(replace_key_service)
    return app


async def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Wait until `condition()` holds, looking every few milliseconds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {timeout} s"
        await asyncio.sleep(0.01)


class Server:
    """`python run.py ARGS --port PORT` as a developer starts it, in a directory of its own.

    It starts at once; it can be stopped and started again, on the same port (and database).
    """

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        self.args = args
        self.db = directory / "maitre.db"  # unless ARGS name another
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runs: list[Process] = []
        self.start()

    def start(self) -> None:
        assert not self.runs or self.runs[-1].process.poll() is not None, "already running"
        self.runs.append(Process([sys.executable, str(RUN_PY), *self.args, "--port", str(self.port)],
                                 cwd=self.directory))

    def stop(self) -> int:
        """SIGINT, as Ctrl+C does; returns the exit status."""
        return self.runs[-1].stop()

    @property
    def process(self) -> subprocess.Popen[str]:
        return self.runs[-1].process

    @property
    def output(self) -> list[str]:
        """What the latest start printed, line by line (so far, while it runs)."""
        return self.runs[-1].output

    def process_output(self) -> str:
        """Everything the latest start printed, its log included."""
        return "\n".join(self.output)

    def admin_key(self) -> str:
        """The key the first start printed for the demo restaurant."""
        lines = [line for line in self.runs[0].output if line.startswith("Admin key for 'demo'")]
        assert len(lines) == 1, "\n".join(self.runs[0].output)
        return lines[0].rsplit(" ", 1)[1]

    def get(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as response:
            return response.status, response.read().decode()


# -- stand-ins for the unit tests of the hub and the socket mechanics ------------------------------


class RecordingTransport(asyncio.Transport):
    """Records writes; its write buffer holds whatever `buffered` says."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.buffered = 0
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.aborted

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def abort(self) -> None:
        self.aborted = True


class StandInSocket:
    """The part of aiohttp's WebSocketResponse a Connection uses: closing it, and how it was closed."""

    def __init__(self, takes_the_close: bool = True) -> None:
        self.close_code: int | None = None
        self.closed_with: list[int] = []
        self.takes_the_close = takes_the_close

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"") -> bool:
        self.closed_with.append(code)
        if not self.takes_the_close:
            await asyncio.Event().wait()  # a client that never takes the close frame
        self.close_code = code
        return True


def principal(restaurant_id: int = 1, key_id: int = 1, expires_at: str | None = None) -> Principal:
    return Principal(key_id, restaurant_id, f"place-{restaurant_id}", "test", "admin", expires_at=expires_at)
