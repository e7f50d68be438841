"""Restaurants: adding them (with their first tables), finding them, and the demo restaurant.

These are administration steps (the CLI's): they return plain values and raise
`ServiceError` for a bad request. The tables they create are recorded like any other
change (audit event, version), so live dashboards hear of them.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypedDict

from ..db import format_time, parse_time
from ..settings import Settings, valid_time_zone
from .audit import record_event
from .core import Actor, Service, ServiceError
from .floor import DEFAULT_AREA, insert_table
from .tables import seat

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
DEMO_SLUG = "demo"
# settings a restaurant may set for itself; NULL in the database means the server's setting
OVERRIDES = ("restore_window_minutes", "idle_warning_minutes", "idle_alert_minutes")


class RestaurantView(TypedDict):
    """A restaurant as its dashboards show it: the name, and the idle windows in force."""

    name: str
    idle_warning_minutes: int
    idle_alert_minutes: int


def restaurant_view(restaurant: Mapping[str, Any], settings: Settings) -> RestaurantView:
    """The restaurant's name and idle windows, its own or else the server's."""
    return {"name": restaurant["name"],
            "idle_warning_minutes": restaurant["idle_warning_minutes"] or settings.idle_warning_minutes,
            "idle_alert_minutes": restaurant["idle_alert_minutes"] or settings.idle_alert_minutes}


def _by_id(conn: sqlite3.Connection, restaurant_id: int) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM restaurant WHERE id = ?", (restaurant_id,)).fetchone()
    if row is None:
        raise LookupError(f"no restaurant with id {restaurant_id}")
    return dict(row)


def find_restaurant(conn: sqlite3.Connection, slug: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM restaurant WHERE slug = ?", (slug,)).fetchone()
    if row is None:
        raise ServiceError("restaurant_not_found", f"There is no restaurant {slug!r}.")
    return row


class RestaurantService(Service):
    """Adding and finding restaurants; the demo restaurant for a first start."""

    async def view(self, restaurant_id: int) -> RestaurantView:
        """The restaurant as its dashboards show it (name, idle windows in force)."""
        return restaurant_view(await self.db.read(_by_id, restaurant_id), self.settings)

    async def by_slug(self, slug: str) -> dict[str, Any]:
        return dict(await self.db.read(find_restaurant, slug))

    async def all(self) -> list[dict[str, Any]]:
        return await self.db.read(_list_restaurants)

    async def add(self, slug: str, name: str, tables: int = 0, actor: str = "cli") -> dict[str, Any]:
        """Add a restaurant with `tables` tables labelled 1..N in the main room."""
        return await self.db.write(self._add, slug, name, tables, actor)

    async def configure(self, slug: str, actor: str = "cli", **changes: Any) -> dict[str, Any]:
        """Rename a restaurant or set its own windows or time zone (None falls back to the server's setting)."""
        return await self.db.write(self._configure, slug, actor, changes)

    async def add_demo(self) -> dict[str, Any]:
        """The demo restaurant: twelve tables in two areas, a few occupied for a while, one disabled."""
        return await self.db.write(self._add_demo)

    def _add(self, conn: sqlite3.Connection, slug: str, name: str, tables: int, actor: str) -> dict[str, Any]:
        if not 0 <= tables <= 500:
            raise ServiceError("invalid_table_count", "A restaurant starts with between 0 and 500 tables.")
        restaurant_id = _insert_restaurant(conn, slug, name, self.clock())
        ids = [insert_table(conn, restaurant_id, str(n), 4, DEFAULT_AREA) for n in range(1, tables + 1)]
        if ids:
            self.unit(conn, Actor(restaurant_id, actor, "admin")).changed("add_restaurant", *ids)
        return dict(find_restaurant(conn, slug))

    def _configure(self, conn: sqlite3.Connection, slug: str, actor: str, changes: dict[str, Any]) -> dict[str, Any]:
        before = dict(find_restaurant(conn, slug))
        unknown = set(changes) - {"name", "time_zone", *OVERRIDES}
        if unknown:
            raise ServiceError("invalid_setting", f"A restaurant has no setting {sorted(unknown)[0]!r}.")
        if "name" in changes:
            changes["name"] = _valid_name(changes["name"])
        if changes.get("time_zone") is not None:
            try:
                changes["time_zone"] = valid_time_zone(changes["time_zone"])
            except ValueError as error:
                raise ServiceError("invalid_setting", str(error)) from None
        for name in OVERRIDES:
            if changes.get(name) is not None and not 1 <= changes[name] <= 24 * 60:
                raise ServiceError("invalid_setting", f"{name} must be between 1 and 1440 minutes.")
        windows = restaurant_view({**before, **changes}, self.settings)
        if windows["idle_warning_minutes"] >= windows["idle_alert_minutes"]:
            raise ServiceError("invalid_setting", "The idle warning must come before the idle alert.")
        for name, value in changes.items():
            conn.execute(f"UPDATE restaurant SET {name} = ? WHERE id = ?", (value, before["id"]))
        after = dict(find_restaurant(conn, slug))
        record_event(conn, Actor(before["id"], actor, "admin"), "configure_restaurant", self.clock(),
                     after["version"], [], before, after)
        return after

    def _add_demo(self, conn: sqlite3.Connection) -> dict[str, Any]:
        restaurant_id = _insert_restaurant(conn, DEMO_SLUG, "Demo Bistro", self.clock())
        layout = [(str(n), 2 if n in (1, 2) else 4, DEFAULT_AREA) for n in range(1, 9)]
        layout += [(f"T{n}", 4, "Terrace") for n in range(1, 5)]
        ids = {label: insert_table(conn, restaurant_id, label, seats, area) for label, seats, area in layout}
        unit = self.unit(conn, Actor(restaurant_id, "demo", "admin"))
        now = parse_time(unit.now)

        def ago(minutes: int) -> str:
            return format_time(now - timedelta(minutes=minutes))

        # (label, guests, seated minutes ago, minutes since last activity)
        for label, guests, seated, idle in [("1", 2, 55, 45), ("4", 3, 35, 25), ("6", 4, 12, 2), ("T2", 2, 6, 6)]:
            seat(unit, ids[label], guests, opened_at=ago(seated), last_active=ago(idle))
        conn.execute("UPDATE dining_table SET enabled = 0 WHERE id = ?", (ids["T4"],))
        unit.changed("add_restaurant", *ids.values())
        return dict(find_restaurant(conn, DEMO_SLUG))


def _list_restaurants(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT r.id, r.slug, r.name, r.version, count(t.id) AS tables,"
        " r.restore_window_minutes, r.idle_warning_minutes, r.idle_alert_minutes, r.time_zone"
        " FROM restaurant AS r LEFT JOIN dining_table AS t ON t.restaurant_id = r.id AND t.removed_at IS NULL"
        " GROUP BY r.id ORDER BY r.slug"
    )
    return [dict(row) for row in rows]


def _insert_restaurant(conn: sqlite3.Connection, slug: str, name: str, now: str) -> int:
    name = _valid_name(name)
    if not SLUG.fullmatch(slug):
        raise ServiceError(
            "invalid_slug", "A slug is 1 to 63 lowercase letters, digits and hyphens, starting with a letter or digit."
        )
    if conn.execute("SELECT 1 FROM restaurant WHERE slug = ?", (slug,)).fetchone():
        raise ServiceError("restaurant_exists", f"There is already a restaurant {slug!r}.")
    return conn.execute(
        "INSERT INTO restaurant (slug, name, created_at) VALUES (?, ?, ?) RETURNING id", (slug, name, now)
    ).fetchone()[0]


def _valid_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 80:
        raise ServiceError("invalid_name", "A restaurant name must be 1 to 80 characters long.")
    return name
