"""Every route, named, in one place."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from . import home


def setup(app: web.Application, static_dir: Path) -> None:
    app.router.add_get("/", home.index, name="index")
    app.router.add_get("/healthz", home.healthz, name="healthz")
    app.router.add_static("/static/", static_dir, name="static")
