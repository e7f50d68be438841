from __future__ import annotations

import pytest

from app.db import Database
from app.services.audit import last_event, restaurants_configured_after
from app.services.core import Actor, ServiceError
from app.services.restaurants import RestaurantService, restaurant_view
from app.services.tables import TableService
from app.settings import Settings


async def test_add_restaurant_with_tables(restaurants: RestaurantService, tables: TableService):
    added = await restaurants.add("la-mer", "La Mer", tables=4)
    assert (added["slug"], added["name"], added["version"]) == ("la-mer", "La Mer", 4)
    version, rows = await tables.list_tables(added["id"])
    assert version == 4
    assert [(r["number"], r["area"], r["status"]) for r in rows] == [(str(n), "Main room", "free") for n in range(1, 5)]


@pytest.mark.parametrize(("slug", "name", "count", "code"), [
    ("Upper", "X", 0, "invalid_slug"),
    ("-dash", "X", 0, "invalid_slug"),
    ("a b", "X", 0, "invalid_slug"),
    ("", "X", 0, "invalid_slug"),
    ("ok", "  ", 0, "invalid_name"),
    ("ok", "X", -1, "invalid_table_count"),
    ("ok", "X", 501, "invalid_table_count"),
])
async def test_add_restaurant_refuses_bad_input(restaurants: RestaurantService, slug, name, count, code):
    with pytest.raises(ServiceError) as refused:
        await restaurants.add(slug, name, count)
    assert refused.value.code == code
    assert await restaurants.all() == []


async def test_slugs_are_unique(restaurants: RestaurantService):
    await restaurants.add("same", "First")
    with pytest.raises(ServiceError) as refused:
        await restaurants.add("same", "Second")
    assert refused.value.code == "restaurant_exists"


async def test_the_demo_restaurant(restaurants: RestaurantService, tables: TableService):
    demo = await restaurants.add_demo()
    version, rows = await tables.list_tables(demo["id"])
    assert len(rows) == 12 and version == 12
    assert {r["area"] for r in rows} == {"Main room", "Terrace"}
    statuses = [r["status"] for r in rows]
    assert statuses.count("occupied") == 4 and statuses.count("disabled") == 1
    occupied = [r for r in rows if r["status"] == "occupied"]
    assert len({r["session"]["last_active"] for r in occupied}) == 4  # idle for different lengths of time
    # the demo works like any restaurant
    actor = Actor(demo["id"], "test", "admin")
    assert (await tables.close_table(actor, occupied[0]["id"])).ok


async def test_list_restaurants(restaurants: RestaurantService):
    await restaurants.add("b", "B", tables=2)
    await restaurants.add("a", "A")
    assert [(r["slug"], r["tables"]) for r in await restaurants.all()] == [("a", 0), ("b", 2)]


async def test_a_restaurant_sets_its_own_windows(restaurants: RestaurantService):
    await restaurants.add("own", "Own Ways")
    changed = await restaurants.configure("own", name="Own Ways Bistro", restore_window_minutes=90,
                                          idle_warning_minutes=10, idle_alert_minutes=15)
    assert (changed["name"], changed["restore_window_minutes"], changed["idle_warning_minutes"],
            changed["idle_alert_minutes"]) == ("Own Ways Bistro", 90, 10, 15)
    back = await restaurants.configure("own", restore_window_minutes=None)
    assert back["restore_window_minutes"] is None and back["idle_alert_minutes"] == 15


@pytest.mark.parametrize("changes", [
    {"restore_window_minutes": 0},
    {"idle_alert_minutes": 5000},
    {"idle_warning_minutes": 45},  # after the server's alert (40)
    {"idle_warning_minutes": 10, "idle_alert_minutes": 10},
    {"name": ""},
    {"version": 99},
])
async def test_bad_restaurant_settings_are_refused(restaurants: RestaurantService, changes):
    await restaurants.add("own", "Own")
    with pytest.raises(ServiceError) as refused:
        await restaurants.configure("own", **changes)
    assert refused.value.code in ("invalid_setting", "invalid_name")
    assert (await restaurants.by_slug("own"))["version"] == 0
    assert (await restaurants.by_slug("own"))["restore_window_minutes"] is None


async def test_the_log_says_which_restaurants_were_configured_since_an_event(
        restaurants: RestaurantService, floor, db: Database, settings: Settings):
    own = await restaurants.add("own", "Own Ways", tables=1)
    other = await restaurants.add("other", "Other")
    start = await db.read(last_event)
    assert await db.read(restaurants_configured_after, start) == (start, [])
    await restaurants.configure("own", name="Own Ways Bistro")
    await floor.add_table(Actor(own["id"], "cli", "admin"), "2", 4, "Main room")  # a table change is no configuration
    await restaurants.configure("other", idle_warning_minutes=5, idle_alert_minutes=10)
    await restaurants.configure("own", idle_alert_minutes=60)
    newest, configured = await db.read(restaurants_configured_after, start)
    assert newest == await db.read(last_event) == start + 4
    assert [(r["id"], r["name"], r["idle_alert_minutes"]) for r in configured] == [
        (own["id"], "Own Ways Bistro", None), (other["id"], "Other", 10), (own["id"], "Own Ways Bistro", 60)]
    assert await db.read(restaurants_configured_after, newest) == (newest, [])
    # as the dashboards show it: the restaurant's own thresholds, else the server's
    assert restaurant_view(configured[0], settings) == {
        "name": "Own Ways Bistro", "idle_warning_minutes": 20, "idle_alert_minutes": 40}
    assert restaurant_view(configured[2], settings) == {
        "name": "Own Ways Bistro", "idle_warning_minutes": 20, "idle_alert_minutes": 60}
