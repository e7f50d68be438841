"""The bus between workers (app/bus.py): two instances of the app on separate ports, one database file, one
real redis-server. Which instance a dashboard is on is known by its port.

The in-process bus is what every other test module runs on (one process, no Redis).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from app import create_app
from app.bus import RedisBus
from app.db import Database
from app.hub import Hub
from app.services.floor import FloorService
from app.services.restaurants import RestaurantService
from app.services.tables import TableService
from app.settings import Settings
from app.typedefs import bus_key

from .support import Place, RedisServer, audit_events, dashboard, eventually, receive

WAIT = 10  # seconds: generous for a loaded machine; the tests wait on conditions, not on this


@pytest.fixture
async def workers(redis_server: RedisServer, aiohttp_client, settings: Settings) -> tuple[TestClient, TestClient]:
    """Two instances of the app (A and B), each with its own database connections and its own bus, on its own port."""
    over_redis = dataclasses.replace(settings, redis_url=redis_server.url)
    a = await aiohttp_client(create_app(over_redis))
    b = await aiohttp_client(create_app(over_redis))
    await eventually(lambda: bus(a).live and bus(b).live, timeout=WAIT)
    return a, b


def bus(client: TestClient) -> RedisBus:
    found = client.app[bus_key]
    assert isinstance(found, RedisBus)
    return found


async def act(ws: aiohttp.ClientWebSocketResponse, **request: Any) -> list[dict[str, Any]]:
    """Send an action; every message up to its ack (the ack last)."""
    await ws.send_json({"ref": "r", **request})
    messages = []
    while not messages or messages[-1].get("ref") != "r":
        messages.append(await receive(ws, timeout=WAIT))
    assert messages[-1]["type"] == "ack", messages[-1]
    return messages


async def updates(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    return [await receive(ws, timeout=WAIT) for _ in range(count)]


async def test_a_change_on_one_worker_reaches_the_dashboards_on_the_other_in_order(workers, bistro_place: Place):
    a, b = workers
    on_a, snapshot = await dashboard(a, bistro_place.admin)
    on_b = [(await dashboard(b, bistro_place.viewer))[0] for _ in range(3)]
    start = snapshot["version"]
    ids = bistro_place.ids

    await act(on_a, action="seat_table", table_id=ids["1"], guests=2)
    await act(on_a, action="move_table", from_table_id=ids["1"], to_table_id=ids["2"])  # two tables: two versions
    for ws in on_b:
        got = await updates(ws, 3)
        assert [m["version"] for m in got] == [start + 1, start + 2, start + 3]
        assert [m["table"]["status"] for m in got] == ["occupied", "free", "occupied"]
    assert bus(b).received >= 2, "B heard of A's changes through Redis"


async def test_an_announcement_travels_only_by_the_bus(workers, bistro_place: Place, db: Database,
                                                       settings: Settings):
    """A guest's call is announced, not numbered: the database watcher never carries it, so B's dashboard
    hearing it proves the bus did."""
    a, b = workers
    on_b, _ = await dashboard(b, bistro_place.viewer)
    token = (await FloorService(db, settings).qr_tokens(bistro_place.actor.restaurant_id))[bistro_place.ids["3"]]
    response = await a.post(f"/t/{token}/call_waiter", data={}, allow_redirects=False)
    assert response.status in (200, 303), await response.text()
    kinds = [(await receive(on_b, timeout=WAIT))["type"] for _ in range(2)]
    assert sorted(kinds) == ["table_update", "waiter_request"]


async def test_a_restaurant_configured_elsewhere_reaches_each_dashboard_once(workers, bistro_place: Place,
                                                                            db: Database, settings: Settings):
    """Every worker's watcher finds the change in the log itself: none publishes it again on the bus, or the
    other workers' dashboards would hear it once per worker."""
    a, b = workers
    on_a, _ = await dashboard(a, bistro_place.admin)
    on_b, _ = await dashboard(b, bistro_place.viewer)
    sent = []
    bus(a)._send = bus(b)._send = sent.append  # what either would put on the bus  # type: ignore[method-assign]
    await RestaurantService(db, settings).configure("bistro", name="Le Bistro")  # as the command line does
    for ws in (on_a, on_b):
        assert (await receive(ws, timeout=WAIT))["restaurant"]["name"] == "Le Bistro"
    assert sent == [], "each worker told its own dashboards, and published nothing"


async def test_sync_after_a_reconnect_to_the_other_worker_replays_from_the_log(workers, bistro_place: Place,
                                                                              db_path: str):
    a, b = workers
    on_a, snapshot = await dashboard(a, bistro_place.admin)
    seen = snapshot["version"]
    await on_a.close()
    writer, _ = await dashboard(a, bistro_place.admin)
    for label in "1234":
        await act(writer, action="seat_table", table_id=bistro_place.ids[label], guests=2)
    await act(writer, action="close_table", table_id=bistro_place.ids["1"])

    # the tablet comes back on B, which never followed the bistro before: its replay can only come from the log
    again, fresh = await dashboard(b, bistro_place.admin)
    assert fresh["version"] == seen + 5
    replay = await act(again, action="sync", since=seen)
    assert [m["version"] for m in replay[:-1]] == list(range(seen + 1, seen + 6))
    assert replay[-1]["version"] == seen + 5
    logged = [event for event in audit_events(db_path) if event["version"] > seen]
    assert [m["table"]["id"] for m in replay[:-1]] == [bistro_place.ids[label] for label in "12341"]
    assert len(logged) == 5
    # a version ahead of the log (a tablet of another database) gets a snapshot, never an empty replay
    ahead = await act(again, action="sync", since=seen + 50)
    assert [m["type"] for m in ahead] == ["tables_snapshot", "ack"] and ahead[-1]["version"] == seen + 5


async def test_a_version_the_bus_did_not_bring_is_read_from_the_log_and_sent_in_order(
        workers, bistro_place: Place, db: Database, settings: Settings):
    """A change written without any bus (as the command line writes), then one on A: B gets A's first, sees the
    gap, holds it, reads the missing version from the audit log, and its dashboards see both in order."""
    a, b = workers
    on_b, snapshot = await dashboard(b, bistro_place.viewer)
    on_a, _ = await dashboard(a, bistro_place.admin)
    start = snapshot["version"]
    await TableService(db, settings).seat_table(bistro_place.actor, bistro_place.ids["5"], 4)  # no bus hears it
    await act(on_a, action="disable_table", table_id=bistro_place.ids["6"])
    got = await updates(on_b, 2)
    assert [(m["version"], m["table"]["id"]) for m in got] == [
        (start + 1, bistro_place.ids["5"]), (start + 2, bistro_place.ids["6"])]


async def test_without_redis_the_watcher_delivers_and_the_bus_comes_back(
        workers, bistro_place: Place, redis_server: RedisServer, caplog):
    a, b = workers
    caplog.set_level(logging.INFO, logger="app.bus")
    on_a, snapshot = await dashboard(a, bistro_place.admin)
    on_b, _ = await dashboard(b, bistro_place.viewer)
    version = snapshot["version"]
    for round in range(2):
        redis_server.kill()
        await eventually(lambda: not bus(a).live and not bus(b).live, timeout=WAIT)
        await act(on_a, action="seat_table" if round == 0 else "close_table", table_id=bistro_place.ids["1"],
                  **({"guests": 2} if round == 0 else {}))
        version += 1
        assert (await receive(on_b, timeout=WAIT))["version"] == version, "the watcher brought it"
        redis_server.start()
        await eventually(lambda: bus(a).live and bus(b).live, timeout=WAIT)
        heard = bus(b).received
        await act(on_a, action="disable_table" if round == 0 else "enable_table", table_id=bistro_place.ids["2"])
        version += 1
        assert (await receive(on_b, timeout=WAIT))["version"] == version
        await eventually(lambda heard=heard: bus(b).received > heard, timeout=WAIT)  # through Redis again
    # a restart with nothing published meanwhile: A's first publish after it is not lost on a pooled connection
    # from before it (one retry on a new one), so it comes through Redis, not the watcher
    def returns() -> int:
        return sum("on Redis at" in r.getMessage() for r in caplog.records)

    back_before = returns()
    redis_server.kill()
    redis_server.start()
    await eventually(lambda: returns() == back_before + 2, timeout=WAIT)  # both subscribed again
    heard = bus(b).received
    await act(on_a, action="seat_table", table_id=bistro_place.ids["3"], guests=2)
    assert (await receive(on_b, timeout=WAIT))["version"] == version + 1
    await eventually(lambda: bus(b).received > heard, timeout=WAIT)
    away = [r for r in caplog.records if "unreachable" in r.getMessage()]
    back = [r for r in caplog.records if "on Redis at" in r.getMessage()]
    # each worker says it once per outage (not once per failed attempt), and once per return (and at start)
    assert len(away) == 6 and len(back) >= 6, [r.getMessage() for r in caplog.records]
    assert all(redis_server.url.split("/")[2] in r.getMessage() for r in away)


async def test_a_command_after_a_redis_restart_is_not_failed_on_a_connection_from_before_it(redis_server: RedisServer):
    """Publishing, and the places' and limits' commands, share the bus's client: after a restart its pooled
    connection is dead, and the first command on it must be retried on a new one, not lost."""
    bus = RedisBus(Hub(1, 1), redis_server.url)
    try:
        assert await bus.redis.ping()
        redis_server.kill()
        redis_server.start()
        assert await bus.redis.publish(b"maitre:test", b"hello") == 0
    finally:
        await bus.close()
