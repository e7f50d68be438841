from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_network
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from app import create_app
from app.auth import KeyService
from app.db import Database
from app.services.core import Actor
from app.services.floor import FloorService
from app.services.restaurants import RestaurantService
from app.services.tables import TableService
from app.settings import Settings

from .support import Place, RedisServer, make_place


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "maitre.db")


@pytest.fixture
def settings(db_path: str) -> Settings:
    return Settings.from_env(environ={}, db_path=db_path)


@pytest.fixture
async def db(db_path: str) -> AsyncIterator[Database]:
    database = await Database.open(db_path)
    yield database
    await database.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server of its own, on a loopback port, persistence off; stopped after the test."""
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def tables(db: Database, settings: Settings) -> TableService:
    return TableService(db, settings)


@pytest.fixture
def floor(db: Database, settings: Settings) -> FloorService:
    return FloorService(db, settings)


@pytest.fixture
def restaurants(db: Database, settings: Settings) -> RestaurantService:
    return RestaurantService(db, settings)


@pytest.fixture
def keys(db: Database) -> KeyService:
    return KeyService(db)


@pytest.fixture
async def bistro(restaurants: RestaurantService) -> Actor:
    """A restaurant with tables 1..6 in the main room, acting as its admin."""
    restaurant = await restaurants.add("bistro", "Bistro", tables=6)
    return Actor(restaurant["id"], "test admin", "admin")


@pytest.fixture
async def cafe(restaurants: RestaurantService) -> Actor:
    """A second restaurant on the same server."""
    restaurant = await restaurants.add("cafe", "Café", tables=3)
    return Actor(restaurant["id"], "cafe admin", "admin")


@pytest.fixture
async def bistro_place(db: Database, settings: Settings) -> Place:
    """The bistro (tables 1..6) with its ids and keys, for the tests that speak to the app over HTTP or sockets."""
    return await make_place(db, settings, "bistro", 6)


@pytest.fixture
async def cafe_place(db: Database, settings: Settings) -> Place:
    """The café (tables 1..3) with its ids and keys."""
    return await make_place(db, settings, "cafe", 3)


@pytest.fixture
async def terrace(db: Database, settings: Settings, bistro_place: Place, keys: KeyService) -> Place:
    """The bistro with tables 5 and 6 moved to the terrace (1..4 stay in the main room), and waiter keys for Sam
    and Alex."""
    floor = FloorService(db, settings)
    for label in "56":
        assert (await floor.set_table(bistro_place.actor, bistro_place.ids[label], area="Terrace")).ok
    for name in ("Sam", "Alex"):
        await keys.add("bistro", f"{name}'s phone", "waiter", name=name)
    return bistro_place


@pytest.fixture
async def client(aiohttp_client, settings: Settings) -> TestClient:
    """The app on a test server, with a client to it."""
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def proxied(aiohttp_client, settings: Settings) -> TestClient:
    """The app trusting a proxy at 127.0.0.1: the test client plays it, its forwarded headers name the client."""
    trusted = dataclasses.replace(settings, trusted_proxies=(ip_network("127.0.0.1"),))
    return await aiohttp_client(create_app(trusted))
