"""Restaurants: adding them (with their first tables), finding them, and the demo restaurant.

These are administration steps (the CLI's): they return plain values and raise
`ServiceError` for a bad request. The tables they create are recorded like any other
change (audit event, version), so live dashboards hear of them.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from typing import Any

from ..db import Database, format_time, parse_time, utc_now
from ..settings import Settings
from .core import Actor, ServiceError
from .tables import DEFAULT_AREA, Tx, insert_table

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
DEMO_SLUG = "demo"


def find_restaurant(conn: sqlite3.Connection, slug: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM restaurant WHERE slug = ?", (slug,)).fetchone()
    if row is None:
        raise ServiceError("restaurant_not_found", f"There is no restaurant {slug!r}.")
    return row


class RestaurantService:
    """Adding and finding restaurants; the demo restaurant for a first start."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def by_slug(self, slug: str) -> dict[str, Any]:
        return dict(await self.db.read(find_restaurant, slug))

    async def all(self) -> list[dict[str, Any]]:
        return await self.db.read(_list_restaurants)

    async def add(self, slug: str, name: str, tables: int = 0, actor: str = "cli") -> dict[str, Any]:
        """Add a restaurant with `tables` tables labelled 1..N in the main room."""
        return await self.db.write(self._add, slug, name, tables, actor)

    async def add_demo(self) -> dict[str, Any]:
        """The demo restaurant: twelve tables in two areas, a few occupied for a while, one disabled."""
        return await self.db.write(self._add_demo)

    def _add(self, conn: sqlite3.Connection, slug: str, name: str, tables: int, actor: str) -> dict[str, Any]:
        if not 0 <= tables <= 500:
            raise ServiceError("invalid_table_count", "A restaurant starts with between 0 and 500 tables.")
        restaurant_id = _insert_restaurant(conn, slug, name)
        ids = [insert_table(conn, restaurant_id, str(n), 4, DEFAULT_AREA) for n in range(1, tables + 1)]
        if ids:
            self._tx(conn, Actor(restaurant_id, actor)).changed("add_restaurant", *ids)
        return dict(find_restaurant(conn, slug))

    def _add_demo(self, conn: sqlite3.Connection) -> dict[str, Any]:
        restaurant_id = _insert_restaurant(conn, DEMO_SLUG, "Demo Bistro")
        layout = [(str(n), 2 if n in (1, 2) else 4, DEFAULT_AREA) for n in range(1, 9)]
        layout += [(f"T{n}", 4, "Terrace") for n in range(1, 5)]
        ids = {label: insert_table(conn, restaurant_id, label, seats, area) for label, seats, area in layout}
        now = parse_time(utc_now())
        # (label, guests, seated minutes ago, minutes since last activity)
        for label, guests, seated, idle in [("1", 2, 55, 45), ("4", 3, 35, 25), ("6", 4, 12, 2), ("T2", 2, 6, 6)]:
            opened = format_time(now - timedelta(minutes=seated))
            conn.execute(
                "INSERT INTO table_session (table_id, state, guest_count, opened_at, last_activity_at)"
                " VALUES (?, 'active', ?, ?, ?)",
                (ids[label], guests, opened, format_time(now - timedelta(minutes=idle))),
            )
            conn.execute("UPDATE dining_table SET seated_at = ? WHERE id = ?", (opened, ids[label]))
        conn.execute("UPDATE dining_table SET enabled = 0 WHERE id = ?", (ids["T4"],))
        self._tx(conn, Actor(restaurant_id, "demo")).changed("add_restaurant", *ids.values())
        return dict(find_restaurant(conn, DEMO_SLUG))

    def _tx(self, conn: sqlite3.Connection, actor: Actor) -> Tx:
        return Tx(conn, actor, utc_now(), self.settings.restore_window_minutes)


def _list_restaurants(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT r.id, r.slug, r.name, r.version, count(t.id) AS tables"
        " FROM restaurant AS r LEFT JOIN dining_table AS t ON t.restaurant_id = r.id"
        " GROUP BY r.id ORDER BY r.slug"
    )
    return [dict(row) for row in rows]


def _insert_restaurant(conn: sqlite3.Connection, slug: str, name: str) -> int:
    name = name.strip()
    if not SLUG.fullmatch(slug):
        raise ServiceError(
            "invalid_slug", "A slug is 1 to 63 lowercase letters, digits and hyphens, starting with a letter or digit."
        )
    if not 1 <= len(name) <= 80:
        raise ServiceError("invalid_name", "A restaurant name must be 1 to 80 characters long.")
    if conn.execute("SELECT 1 FROM restaurant WHERE slug = ?", (slug,)).fetchone():
        raise ServiceError("restaurant_exists", f"There is already a restaurant {slug!r}.")
    return conn.execute(
        "INSERT INTO restaurant (slug, name, created_at) VALUES (?, ?, ?) RETURNING id", (slug, name, utc_now())
    ).fetchone()[0]
