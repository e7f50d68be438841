"""The front door and the health checks: the process answers (`/healthz`), it can serve (`/readyz`)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from redis.exceptions import RedisError

from ..bus import RedisBus
from ..typedefs import bus_key, db_key

READY_WITHIN = 2.0  # seconds a check may take (SQLite waits up to 5 s for a write lock another process holds)


async def index(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(request.app.router["dashboard"].url_for())


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers a read, 503 when it does not."""
    try:
        await request.app[db_key].ping()
    except sqlite3.Error:
        return web.json_response({"status": "unavailable", "database": "error"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when the database takes a write and Redis (when configured) answers; 503 with the reason otherwise."""
    reason = await not_ready(request.app)
    if reason is not None:
        return web.json_response({"status": "not ready", "reason": reason}, status=503)
    return web.json_response({"status": "ready"})


async def not_ready(app: web.Application) -> str | None:
    try:
        await asyncio.wait_for(app[db_key].take_write(), READY_WITHIN)
    except TimeoutError:
        return f"database: no write within {READY_WITHIN} s"
    except sqlite3.Error as error:
        return f"database: {error}"
    bus = app[bus_key]
    if isinstance(bus, RedisBus):
        try:
            await asyncio.wait_for(bus.redis.ping(), READY_WITHIN)
        except (RedisError, OSError, TimeoutError) as error:
            return f"redis: {type(error).__name__}"
    return None


def protocol_document(path: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The protocol description, linked from the old endpoints' Deprecation headers."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Content-Type": "text/markdown; charset=utf-8"})

    return handler
