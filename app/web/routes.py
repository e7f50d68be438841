"""Every route, named, in one place."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from . import dashboard, home, socket


def setup(app: web.Application, static_dir: Path) -> None:
    app.router.add_get("/", home.index, name="index")
    app.router.add_get("/healthz", home.healthz, name="healthz")
    app.router.add_get("/admin/login", dashboard.login_page, name="login")
    app.router.add_post("/admin/login", dashboard.login, name="login_submit")
    app.router.add_post("/admin/logout", dashboard.logout, name="logout")
    app.router.add_get("/admin/dashboard", dashboard.dashboard, name="dashboard")
    app.router.add_get("/admin/ws/dashboard", socket.dashboard_socket, name="dashboard_socket")
    app.router.add_static("/static/", static_dir, name="static", append_version=True)
