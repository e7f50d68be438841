"""Every route, named, in one place."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..typedefs import settings_key
from . import api, dashboard, guest, home, metrics, openapi, reports, sections, socket, waiter
from .actions import ACTIONS


def setup(app: web.Application, static_dir: Path, docs_dir: Path) -> None:
    app.router.add_get("/", home.index, name="index")
    app.router.add_get("/healthz", home.healthz, name="healthz")
    app.router.add_get("/readyz", home.readyz, name="readyz")
    if app[settings_key].metrics:  # off (MAITRE_METRICS=off): nothing is counted, and /metrics is not found
        app.router.add_get("/metrics", metrics.scrape, name="metrics")
    app.router.add_get("/admin/login", dashboard.login_page, name="login")
    app.router.add_post("/admin/login", dashboard.login, name="login_submit")
    app.router.add_post("/admin/logout", dashboard.logout, name="logout")
    app.router.add_get("/admin/dashboard", dashboard.dashboard, name="dashboard")
    app.router.add_get("/admin/waiter", waiter.waiter_page, name="waiter")
    app.router.add_get("/waiter", waiter.short_address, name="waiter_short")
    app.router.add_get("/admin/ws/dashboard", socket.dashboard_socket, name="dashboard_socket")
    app.router.add_get("/admin/tables", dashboard.grid, name="grid")
    app.router.add_get("/admin/tables/qr", dashboard.qr_codes, name="qr_codes")
    app.router.add_get("/t/{token}", guest.page, name="guest")
    app.router.add_post("/t/{token}/{kind}", guest.call, name="guest_call")
    app.router.add_get("/admin/floor", dashboard.floor, name="floor")
    app.router.add_get("/admin/sections", sections.sections_page, name="sections")
    app.router.add_post("/admin/sections", sections.set_section, name="set_section")
    app.router.add_get("/admin/reports", reports.reports_page, name="reports")
    app.router.add_get("/admin/reports.csv", reports.parties_csv, name="reports_csv")
    # the no-script move and join pages list the free tables, each a form posting to the change's URL
    app.router.add_get("/admin/tables/{id}/move", dashboard.pick_page("move_table"), name="move_page")
    app.router.add_get("/admin/tables/{id}/join", dashboard.pick_page("join_tables"), name="join_page")
    for action in ACTIONS.values():
        app.router.add_post(action.path, api.action_handler(action), name=action.name)
    # the old HTMX dashboard's endpoints: the same, deprecated but kept working for old clients
    for action in ACTIONS.values():
        if action.legacy_verb:
            app.router.add_post(f"/admin/table/{{id}}/{action.legacy_verb}",
                                api.action_handler(action, deprecated=True), name=f"legacy_{action.legacy_verb}")
    # the move page's old address: bookmarks and old pages' links still find it
    app.router.add_get("/admin/table/{id}/move", dashboard.pick_page("move_table"), name="legacy_move_page")
    app.router.add_post("/admin/api/bulk", api.bulk, name="bulk")
    app.router.add_get("/admin/api/tables", api.tables, name="api_tables")
    app.router.add_get("/admin/api/events", api.events, name="api_events")
    app.router.add_get("/admin/api/reports", reports.api_report, name="api_reports")
    app.router.add_get("/admin/api/openapi.json", openapi.document, name="openapi")
    app.router.add_get("/docs/protocol.md", home.protocol_document(docs_dir / "protocol.md"), name="protocol")
    app.router.add_static("/static/", static_dir, name="static", append_version=True)
