"""Dashboards counted across workers (app/places.py), over a real redis-server.

Two workers are two hubs in this process, each with its own Places (its own worker id and
Redis client) over one Redis. What the bus does between them, telling a worker to close the
dashboard another made room for, is a direct call here (tests/test_bus.py proves the bus).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from redis.asyncio import Redis

from app.hub import Hub
from app.places import PLACES, Places
from app.protocol import MADE_ROOM, TOO_MANY_CONNECTIONS
from app.sockets import Connection, frame

from .support import SOCKET, RecordingTransport, RedisServer, Server, StandInSocket, eventually, receive
from .test_hub import dashboard

BISTRO = 1
BEAT = 0.2


class Worker:
    def __init__(self, url: str, worker: str) -> None:
        self.redis = Redis.from_url(url)
        self.places = Places(self.redis, worker, BEAT)
        self.hub = Hub(max_per_restaurant=20, max_per_key=5)
        self.hub.count_in(self.places)

    async def join(self, key_id: int, role: str = "admin") -> Connection | None:
        """A dashboard of the bistro joining here: the connection if it got in, None if it was refused."""
        connection, _ = dashboard(BISTRO, key_id, role=role)
        refusal = await self.hub.join(connection)
        if refusal is not None:
            assert refusal == TOO_MANY_CONNECTIONS or "This key already has" in (refusal.text or ""), refusal
            return None
        connection.start(floor=0)
        return connection


@pytest.fixture
async def workers(redis_server: RedisServer) -> AsyncIterator[tuple[Worker, Worker]]:
    a, b = Worker(redis_server.url, "worker-a"), Worker(redis_server.url, "worker-b")
    for here, there in ((a, b), (b, a)):
        async def tell(entry: str, everyone: tuple[Places, ...] = (here.places, there.places)) -> None:
            for places in everyone:  # as the bus's control channel does: every worker hears it
                places.told(entry)
        here.places.tell = tell
        await here.places.start()
    yield a, b
    for worker in (a, b):
        await worker.places.stop()
        await worker.redis.aclose()


async def entries(redis_server: RedisServer) -> list[bytes]:
    redis = Redis.from_url(redis_server.url)
    try:
        return await redis.zrange(f"{PLACES}{BISTRO}", 0, -1)
    finally:
        await redis.aclose()


async def fill(a: Worker, b: Worker, role: str = "admin") -> list[Connection]:
    """Twenty dashboards, ten on each worker, four per key, every other one on the other worker."""
    joined = []
    for n in range(20):
        connection = await (a if n % 2 == 0 else b).join(key_id=100 + n // 4, role=role)
        assert connection is not None, n
        joined.append(connection)
    return joined


async def test_twenty_dashboards_over_two_workers_fill_the_restaurant(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    joined = await fill(a, b)
    assert (a.hub.count(BISTRO), b.hub.count(BISTRO)) == (10, 10)
    assert await a.join(key_id=1) is None and await b.join(key_id=2) is None, "the 21st, on either worker"
    a.hub.leave(joined[0])
    await eventually(lambda: not a.places.leaving)
    assert await b.join(key_id=2) is not None, "a place left on A is taken on B"
    assert await a.join(key_id=3) is None


async def test_one_keys_cap_holds_across_workers(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    for worker in (a, b, a, b, a):
        assert await worker.join(key_id=7) is not None
    assert await a.join(key_id=7) is None and await b.join(key_id=7) is None
    assert await b.join(key_id=8) is not None, "another key counts its own"


async def test_an_admin_makes_room_by_closing_the_newest_viewer_on_another_worker(
        workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    viewers = await fill(a, b, role="viewer")
    newest = viewers[-1]  # joined on B
    assert await a.join(key_id=1, role="viewer") is None, "a viewer is turned away"
    assert await a.join(key_id=1) is not None, "an admin gets in"
    assert newest.closing and b.hub.count(BISTRO) == 9 and a.hub.count(BISTRO) == 11
    assert newest.closer is not None
    await newest.closer
    assert cast(StandInSocket, newest.ws).closed_with == [4429]
    assert len(await entries_of(a)) == 20
    assert await b.join(key_id=2) is not None, "the next admin, on B, closes the newest viewer left: on A"
    assert viewers[-2].closing and a.hub.count(BISTRO) == 10 and b.hub.count(BISTRO) == 10
    assert not any(viewer.closing for viewer in viewers[:-2])


async def entries_of(worker: Worker) -> list[bytes]:
    return await worker.redis.zrange(f"{PLACES}{BISTRO}", 0, -1)


async def test_the_made_room_message_is_sent_before_the_close(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    viewers = await fill(a, b, role="viewer")
    await a.join(key_id=1)
    assert cast(RecordingTransport, viewers[-1].transport).written[-1] == frame(MADE_ROOM)


async def test_a_killed_workers_places_free_once_its_liveness_expires(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    await fill(a, b)
    assert b.places.beating is not None
    b.places.beating.cancel()  # as SIGKILL would: nothing renews B's liveness, nothing removes its entries
    killed = time.monotonic()
    while await a.join(key_id=1) is None:
        await asyncio.sleep(BEAT / 10)
    freed = time.monotonic() - killed
    assert freed <= 3 * BEAT + BEAT / 2, f"B's places were freed {freed:.2f} s after it stopped, beat {BEAT} s"
    assert [await a.join(key_id=2) is not None for _ in range(5)] == [True] * 5
    assert len(await entries_of(a)) == 16, "B's ten entries are gone: A's ten and six new"


async def test_without_redis_each_worker_counts_its_own_then_redis_counts_them_again(
        workers: tuple[Worker, Worker], redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    a, b = workers
    caplog.set_level(logging.WARNING, logger="app.places")
    await fill(a, b)
    redis_server.kill()
    for n in range(10):  # each worker holds ten: ten more each, its own limit of twenty
        assert await a.join(key_id=200 + n // 4) is not None
    assert await a.join(key_id=300) is None, "twenty here: A's own limit"
    await eventually(lambda: not b.places.counting)  # B's beat found Redis away
    await asyncio.sleep(0)
    away = [r for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(away) == 2, "once per worker, not per join nor per beat"

    redis_server.start()  # empty, as a restart without persistence is
    await eventually(lambda: a.places.counting and b.places.counting)
    assert len(await entries(redis_server)) == 30, "every dashboard of both workers, registered again"
    assert await b.join(key_id=301) is None, "counted across workers again: thirty over twenty"
    back = [r for r in caplog.records if "answers again" in r.getMessage()]
    assert len(back) == 2


async def test_a_clean_stop_frees_its_places_at_once(workers: tuple[Worker, Worker],
                                                    redis_server: RedisServer) -> None:
    a, b = workers
    await fill(a, b)
    await b.places.stop()
    assert len(await entries(redis_server)) == 10
    assert await a.join(key_id=1) is not None


async def test_two_servers_over_one_redis_share_the_restaurants_twenty_places(
        tmp_path: Path, redis_server: RedisServer) -> None:
    """Two `run.py serve` on separate ports over one database and one Redis, heartbeat 1 s: twenty dashboards
    spread over both fill the restaurant; once one server is SIGKILLed, its places are free within two
    heartbeats."""
    db = tmp_path / "maitre.db"
    args = ("--db", str(db), "--redis-url", redis_server.url, "--heartbeat-seconds", "1",
            "--max-connections-per-key", "25")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Server(tmp_path / "a", *args)
    b = Server(tmp_path / "b", *args)
    try:
        key = a.admin_key()
        async with aiohttp.ClientSession() as session:
            async def connect(server: Server) -> aiohttp.ClientWebSocketResponse | None:
                """A dashboard on `server`: open with its snapshot, or None once refused with 4429."""
                ws = await session.ws_connect(f"{server.url.replace('http', 'ws')}{SOCKET}?token={key}")
                first = await receive(ws)
                if first["type"] == "tables_snapshot":
                    return ws
                assert first["code"] == "too_many_connections", first
                assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE and ws.close_code == 4429
                return None

            held = [await connect(a if n % 2 == 0 else b) for n in range(20)]
            assert all(held)
            assert await connect(a) is None and await connect(b) is None, "the 21st, on either server"
            b.process.kill()  # SIGKILL: nothing gives B's ten places back but their expiry
            killed = time.monotonic()
            while (ws := await connect(a)) is None:
                assert time.monotonic() - killed < 10, "B's places never came free"
            freed = time.monotonic() - killed
            assert freed <= 2.0, f"B's places were free {freed:.2f} s after it was killed: more than two heartbeats"
            await ws.close()
            for open_ws in held:
                assert open_ws is not None
                await open_ws.close()
    finally:
        b.stop()
        a.stop()
