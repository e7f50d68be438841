"""Changes made outside this process, noticed within a second.

The command line (or a second server) writes to the same database file. Twice a
second this task compares each watched restaurant's version with the last update the
hub delivered and publishes what it missed, replayed from the audit log (which holds
every changed table as the dashboard shows it), and pushes the restaurants renamed or
given new idle windows since its last look (`configure_restaurant` events: they number
no table, so the log's event ids say what is new). It also closes the sockets of keys
that were revoked and of sign-ins that ended.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator

from aiohttp import web

from .auth import KeyService
from .db import Database
from .hub import Hub
from .protocol import CLOSE_UNAUTHORIZED, UNAUTHORIZED
from .render import Broadcast
from .services.audit import current_versions, last_event, restaurants_configured_after, updates_after
from .services.restaurants import restaurant_view
from .settings import Settings
from .typedefs import api_keys_key, broadcast_key, db_key, hub_key, settings_key

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.5


async def catch_up(db: Database, hub: Hub, broadcast: Broadcast) -> None:
    watched = hub.versions()
    if not watched:
        return
    stored = await db.read(current_versions, list(watched))
    for restaurant_id, version in stored.items():
        delivered = watched[restaurant_id]
        if delivered is None:
            hub.start_at(restaurant_id, version)
        elif version > delivered:
            broadcast.updates(restaurant_id, await db.read(updates_after, restaurant_id, delivered))


async def announce_configured(db: Database, broadcast: Broadcast, settings: Settings, after: int) -> int:
    """Push the restaurants configured since the event `after` to their dashboards; returns the newest event."""
    newest, configured = await db.read(restaurants_configured_after, after)
    for restaurant in configured:
        broadcast.restaurant(restaurant["id"], restaurant_view(restaurant, settings))
    return newest


async def end_revoked(keys: KeyService, hub: Hub) -> None:
    key_ids = {c.principal.key_id for c in hub.connections()}
    sign_in_ids = {c.principal.sign_in_id for c in hub.connections() if c.principal.sign_in_id is not None}
    if not key_ids:
        return
    revoked, ended = await keys.ended(key_ids, sign_in_ids)
    if revoked or ended:
        hub.close_where(
            lambda c: c.principal.key_id in revoked or c.principal.sign_in_id in ended, UNAUTHORIZED, CLOSE_UNAUTHORIZED
        )


def data_version(conn: sqlite3.Connection) -> int:
    """Changes whenever another connection (our writer, the command line) committed since the last look."""
    return conn.execute("PRAGMA data_version").fetchone()[0]


async def watch(app: web.Application) -> None:
    db, hub = app[db_key], app[hub_key]
    last_seen = None
    configured_up_to = await db.read(last_event)  # what was configured before the start is on the pages
    while True:
        await asyncio.sleep(WATCH_SECONDS)
        try:
            # sign-ins that ran out, by the key service's clock, which dated them (a test swaps it)
            hub.close_expired(app[api_keys_key].clock(), UNAUTHORIZED, CLOSE_UNAUTHORIZED)
            if not hub.versions():
                continue
            seen = await db.read(data_version)
            if seen == last_seen:
                continue  # nothing was written anywhere: an idle server stops here
            last_seen = seen
            await catch_up(db, hub, app[broadcast_key])
            configured_up_to = await announce_configured(db, app[broadcast_key], app[settings_key], configured_up_to)
            await end_revoked(app[api_keys_key], hub)
        except (sqlite3.Error, ValueError):
            log.exception("watching the database failed; trying again")


async def watch_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(watch(app))
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
