"""Maître: a live table dashboard for small restaurants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp.web import Application

from .auth import KeyService
from .bus import LocalPublisher, Publisher, RedisBus
from .collect import collector_ctx
from .db import Database
from .hub import Hub
from .limits import GuestTaps, PerAddress, SharedLimits
from .places import Places, beat_of
from .render import Broadcast, Renderer, setup_filters
from .services.bulk import BulkService
from .services.floor import FloorService
from .services.reports import ReportService
from .services.restaurants import RestaurantService
from .services.sections import SectionService
from .services.tables import TableService
from .services.waiters import WaiterService
from .settings import Settings
from .typedefs import (
    api_keys_key,
    broadcast_key,
    bulk_key,
    bus_key,
    db_key,
    floor_key,
    guest_taps_key,
    hub_key,
    limits_key,
    renderer_key,
    reports_key,
    request_limiter_key,
    restaurants_key,
    sections_key,
    settings_key,
    sign_in_failures_key,
    tables_key,
    waiters_key,
)
from .watch import missed_updates, watch_ctx
from .web import routes  # the subpackage app.web; aiohttp's web is not imported by that name here
from .web.dashboard import carry_notice
from .web.forwarded import client_from_proxies
from .web.security import security_headers

PROJECT_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PROJECT_DIR / "templates"
STATIC_DIR = PROJECT_DIR / "static"

FAILED_SIGN_INS_PER_MINUTE = 10  # per client address
HTTP_CHANGES_PER_SECOND = 10
GUEST_CALLS_PER_MINUTE = 4  # per phone at a table (limits.GuestTaps)


def create_app(settings: Settings) -> Application:
    # who the client is comes first: every later step sees the address a trusted proxy named
    app = Application(middlewares=[client_from_proxies(settings.trusted_proxies), security_headers, carry_notice])
    app[settings_key] = settings
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    setup_filters(env)
    app[hub_key] = Hub(settings.max_connections_per_restaurant, settings.max_connections_per_key)
    app[renderer_key] = Renderer(env)
    app[bus_key] = bus_of(app[hub_key], settings)
    app[broadcast_key] = Broadcast(app[renderer_key], app[bus_key])
    app[sign_in_failures_key] = PerAddress("sign-in", rate=FAILED_SIGN_INS_PER_MINUTE / 60,
                                           burst=FAILED_SIGN_INS_PER_MINUTE)
    app[request_limiter_key] = PerAddress("changes", rate=HTTP_CHANGES_PER_SECOND, burst=2 * HTTP_CHANGES_PER_SECOND)
    app[guest_taps_key] = GuestTaps(GUEST_CALLS_PER_MINUTE)
    app[limits_key] = SharedLimits(bus.redis if isinstance(bus := app[bus_key], RedisBus) else None)
    # the watcher reads the database, so it starts after it and stops before it closes
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(collector_ctx)
    app.cleanup_ctx.append(bus_ctx)
    app.cleanup_ctx.append(places_ctx)  # stops before the bus closes its Redis client
    app.cleanup_ctx.append(watch_ctx)
    app.on_shutdown.append(close_sockets)
    routes.setup(app, STATIC_DIR, PROJECT_DIR / "docs")
    return app


async def database_ctx(app: Application) -> AsyncIterator[None]:
    """Open (and migrate) the database and the services built on it; close it on shutdown."""
    db = await Database.open(app[settings_key].db_path)
    add_services(app, db, app[settings_key])
    yield
    await db.close()


def bus_of(hub: Hub, settings: Settings) -> Publisher:
    """In-process, or Redis between several workers (MAITRE_REDIS_URL)."""
    return RedisBus(hub, settings.redis_url) if settings.redis_url else LocalPublisher(hub)


async def bus_ctx(app: Application) -> AsyncIterator[None]:
    """The hub reads what it missed from the audit log; then the bus starts carrying other workers' changes."""
    app[hub_key].fill = missed_updates(app[db_key], app[renderer_key])
    await app[bus_key].start()
    yield
    await app[bus_key].close()


async def places_ctx(app: Application) -> AsyncIterator[None]:
    """With Redis, dashboards count across workers (app/places.py); a clean stop gives this worker's places back."""
    bus = app[bus_key]
    if not isinstance(bus, RedisBus):
        yield
        return
    places = Places(bus.redis, bus.worker, beat_of(app[settings_key].heartbeat_seconds))
    app[hub_key].count_in(places)
    places.tell = lambda entry: bus.control("evict", entry)
    bus.on_control["evict"] = places.told
    bus.on_connected.append(places.renew)
    await places.start()
    yield
    await places.stop()


def add_services(app: Application, db: Database, settings: Settings) -> None:
    """The database and every service on it, under their keys (the server's, and the command line's for a bulk)."""
    app[db_key] = db
    app[tables_key] = TableService(db, settings)
    app[floor_key] = FloorService(db, settings)
    app[bulk_key] = BulkService(db, settings)
    app[restaurants_key] = RestaurantService(db, settings)
    app[api_keys_key] = KeyService(db)
    app[waiters_key] = WaiterService(db, settings)
    app[sections_key] = SectionService(db, settings)
    app[reports_key] = ReportService(db, settings)


async def close_sockets(app: Application) -> None:
    await app[hub_key].close_all()
