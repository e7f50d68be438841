"""The front door and the health check."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from ..typedefs import db_key


async def index(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(request.app.router["dashboard"].url_for())


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers a read, 503 when it does not."""
    try:
        await request.app[db_key].ping()
    except sqlite3.Error:
        return web.json_response({"status": "unavailable", "database": "error"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


def protocol_document(path: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The protocol description, linked from the old endpoints' Deprecation headers."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Content-Type": "text/markdown; charset=utf-8"})

    return handler
