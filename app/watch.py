"""What this process did not hear of through the bus, caught up from the database.

The command line (or another worker) writes to the same database file. Twice a second
this task compares each watched restaurant's version in the database with the last
update the hub delivered, and has the hub read what it missed from the audit log (which
holds every changed table as the dashboard shows it). While the bus carries other
workers' changes (Redis, connected) it leaves them a look's time to arrive and catches up
only what was already stored at the previous look: a message Redis lost, or one published
while Redis was away. It also pushes the restaurants renamed or given new idle windows
since its last look (`configure_restaurant` events: they number no table, so the log's
event ids say what is new), and closes the sockets of keys that were revoked and of
sign-ins that ended.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator

from aiohttp import web

from .auth import KeyService
from .db import Database
from .hub import Fill, Hub
from .protocol import CLOSE_UNAUTHORIZED, UNAUTHORIZED
from .render import Broadcast, Renderer
from .services.audit import current_versions, last_event, restaurants_configured_after, updates_after
from .services.restaurants import restaurant_view
from .settings import Settings
from .typedefs import api_keys_key, broadcast_key, bus_key, db_key, hub_key, settings_key

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.5


async def catch_up(db: Database, hub: Hub, previous: dict[int, int], bus_live: bool) -> dict[int, int]:
    """Have the hub fill what it has not delivered; returns the versions stored now (the next look's `previous`).

    With the bus live, only what was stored at the previous look: newer changes are still on their way.
    """
    watched = {rid: version for rid, version in hub.versions().items() if version is not None}
    if not watched:
        return {}
    stored = await db.read(current_versions, list(watched))
    for restaurant_id, version in stored.items():
        target = previous.get(restaurant_id) if bus_live else version
        if target is not None and target > watched[restaurant_id]:
            hub.catch_up(restaurant_id, target)
    return stored


def missed_updates(db: Database, renderer: Renderer) -> Fill:
    """How the hub reads a restaurant's updates after a version from the audit log, rendered as they are sent."""

    async def fill(restaurant_id: int, after: int) -> list[tuple[int, str]]:
        updates = await db.read(updates_after, restaurant_id, after)
        return [(update.version, renderer.update(update)) for update in updates]

    return fill


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
    db, hub, bus = app[db_key], app[hub_key], app[bus_key]
    last_seen = None
    stored: dict[int, int] = {}
    configured_up_to = await db.read(last_event)  # what was configured before the start is on the pages
    while True:
        await asyncio.sleep(WATCH_SECONDS)
        try:
            # sign-ins that ran out, by the key service's clock, which dated them (a test swaps it)
            hub.close_expired(app[api_keys_key].clock(), UNAUTHORIZED, CLOSE_UNAUTHORIZED)
            delivered = hub.versions()
            if not delivered:
                continue
            seen = await db.read(data_version)
            waiting = any(version > (delivered.get(rid) or version) for rid, version in stored.items())
            if seen == last_seen and not waiting:
                continue  # nothing was written anywhere, nothing is missing: an idle server stops here
            last_seen = seen
            stored = await catch_up(db, hub, stored, bus.live)
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
