"""Changes written by another process (the command line), noticed by the watcher and pushed to the dashboards."""

from __future__ import annotations

from app import create_app
from app.services.restaurants import RestaurantService
from app.services.tables import TableService

from .support import dashboard, receive

WAIT = 10  # seconds, generous: the watcher looks twice a second, but a loaded machine may be slow


def restaurant_update(name: str, warning: int, alert: int) -> dict[str, object]:
    return {"type": "restaurant_update",
            "restaurant": {"name": name, "idle_warning_minutes": warning, "idle_alert_minutes": alert}}


async def test_a_restaurant_configured_elsewhere_reaches_its_dashboards(
        client, bistro_place, cafe_place, restaurants: RestaurantService):
    """`restaurants` writes through a connection of its own, as the command line does."""
    bistro, _ = await dashboard(client, bistro_place.admin)
    wall, _ = await dashboard(client, bistro_place.viewer)
    cafe, _ = await dashboard(client, cafe_place.admin)

    await restaurants.configure("bistro", name="Le Bistro", idle_warning_minutes=5, idle_alert_minutes=10)
    assert await receive(bistro, timeout=WAIT) == restaurant_update("Le Bistro", 5, 10)
    assert await receive(wall) == restaurant_update("Le Bistro", 5, 10)

    # the café's dashboards hear of the café only; a window set back to default is the server's again
    await restaurants.configure("cafe", name="Café du Port")
    assert await receive(cafe, timeout=WAIT) == restaurant_update("Café du Port", 20, 40)
    await restaurants.configure("bistro", idle_warning_minutes=None, idle_alert_minutes=None)
    assert await receive(bistro, timeout=WAIT) == restaurant_update("Le Bistro", 20, 40)  # nothing of the café's first


async def test_what_was_configured_before_the_start_is_not_pushed_again(
        aiohttp_client, settings, bistro_place, restaurants: RestaurantService, tables: TableService):
    await restaurants.configure("bistro", name="Old News")
    client = await aiohttp_client(create_app(settings))
    ws, _ = await dashboard(client, bistro_place.admin)
    await tables.seat_table(bistro_place.actor, bistro_place.ids["1"], 2)  # the watcher looks at the log again
    assert (await receive(ws, timeout=WAIT))["type"] == "table_update"
    await restaurants.configure("bistro", name="Fresh")
    assert await receive(ws, timeout=WAIT) == restaurant_update("Fresh", 20, 40)  # and not "Old News" before it
