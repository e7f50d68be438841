"""The load side: many real WebSocket dashboards on one event loop, and actions sent at a set rate.

A `Fleet` holds R restaurants x D dashboards. The dashboards of each restaurant take turns
sending the actions (disable, then enable, each table in turn); every dashboard counts the
`table_update`s it receives by version. An action's fan-out latency is the time from
sending it to the moment its update has reached all D dashboards of its restaurant.

A restaurant may instead have senders of its own (`connect_senders`): sockets, perhaps on
another server, that send its actions in turn and are not among the D it waits for.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

UPDATE_START = '{"type":"table_update","version":'


@dataclass
class Restaurant:
    index: int
    table_ids: list[int]
    disabled: set[int] = field(default_factory=set)
    busy: set[int] = field(default_factory=set)
    sent: int = 0
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)
    senders: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)  # if any, they send, not `sockets`
    arrivals: dict[int, list[float]] = field(default_factory=dict)  # version -> [count, time of the last]


@dataclass
class Outcome:
    sent: int
    acked: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0


class Fleet:
    def __init__(self, session: aiohttp.ClientSession, url_of: Callable[[int], str], dashboards: int,
                 table_ids: list[list[int]], compress: bool = False) -> None:
        self.session = session
        self.url_of = url_of
        self.dashboards = dashboards
        self.restaurants = [Restaurant(index, ids) for index, ids in enumerate(table_ids)]
        self.compress = compress
        self.readers: list[asyncio.Task[None]] = []
        self.waiting: dict[tuple[int, int], float] = {}  # (restaurant, version) -> sent at, until all arrived
        self.refs: dict[int, tuple[Restaurant, int, float]] = {}
        self.latencies: list[float] = []
        self.timeline: list[tuple[float, float]] = []  # (sent at, latency in ms), for looking at a stretch of a run
        self.acked = 0
        self.errors = 0
        self.counter = itertools.count(1)

    async def connect(self, batch: int = 50) -> None:
        await self.connect_restaurants(self.restaurants, batch)

    async def connect_restaurants(self, restaurants: list[Restaurant], batch: int = 50,
                                  each: int | None = None) -> None:
        """`each` dashboards (all of them by default) for each of these restaurants."""
        jobs = [(r, d) for r in restaurants for d in range(self.dashboards if each is None else each)]
        for start in range(0, len(jobs), batch):
            await asyncio.gather(*(self._connect_one(r) for r, _ in jobs[start:start + batch]))

    async def connect_senders(self, url_of: Callable[[int], str], each: int = 1, batch: int = 50) -> None:
        """`each` sockets per restaurant at `url_of(index)` that send its actions from now on."""
        jobs = [r for r in self.restaurants for _ in range(each)]
        for start in range(0, len(jobs), batch):
            await asyncio.gather(*(self._connect_one(r, url_of(r.index), sender=True)
                                   for r in jobs[start:start + batch]))

    async def _connect_one(self, restaurant: Restaurant, url: str | None = None, sender: bool = False) -> None:
        ws = await self.session.ws_connect(url or self.url_of(restaurant.index), compress=15 if self.compress else 0,
                                           max_msg_size=0, heartbeat=None)
        await self.opened(ws)
        (restaurant.senders if sender else restaurant.sockets).append(ws)
        self.readers.append(asyncio.create_task(self._read_answers(ws) if sender else self._read(restaurant, ws)))

    # The protocol, as the server under test speaks it; a peer's fleet (another library) overrides these three.

    async def opened(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """What a socket does between connecting and being counted: here, wait for the snapshot."""
        first = await ws.receive(timeout=30)
        assert first.type is aiohttp.WSMsgType.TEXT and '"tables_snapshot"' in first.data[:40], first

    def decode(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> dict | None:
        """A message received as a dict with at least "type" (or None to ignore it).

        An update is most of what arrives (20 copies of each change) and only its version counts: it is read
        from the message's start (app/render.py writes "type", then "version"), not parsed whole with its card.
        """
        if text.startswith(UPDATE_START):
            return {"type": "table_update", "version": int(text[len(UPDATE_START):text.index(",", len(UPDATE_START))])}
        return json.loads(text)

    def encode(self, action: dict) -> str:
        return json.dumps(action)

    async def _read(self, restaurant: Restaurant, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            now = time.perf_counter()
            data = self.decode(ws, message.data)
            if data is None:
                continue
            kind = data.get("type")
            if kind == "table_update":
                seen = restaurant.arrivals.setdefault(data["version"], [0, 0.0])
                seen[0] += 1
                seen[1] = now
                if seen[0] == self.dashboards:
                    self._complete(restaurant, data["version"])
            elif kind in ("ack", "error") and "ref" in data:
                self._answered(data, now)

    async def _read_answers(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """A sender's socket: only the answers to its actions count (its own copies of updates do not)."""
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT and '"ref"' in message.data:
                now = time.perf_counter()
                data = self.decode(ws, message.data)
                if data is not None and data.get("type") in ("ack", "error"):
                    self._answered(data, now)

    def _answered(self, data: dict, now: float) -> None:
        restaurant, table_id, sent_at = self.refs.pop(data["ref"])
        restaurant.busy.discard(table_id)
        if data["type"] == "error":
            self.errors += 1
            return
        self.acked += 1
        restaurant.disabled ^= {table_id}
        version = data["version"]
        seen = restaurant.arrivals.get(version)
        if seen and seen[0] == self.dashboards:
            self._latency(sent_at, seen[1])
            del restaurant.arrivals[version]
        else:
            self.waiting[(restaurant.index, version)] = sent_at

    def _complete(self, restaurant: Restaurant, version: int) -> None:
        sent_at = self.waiting.pop((restaurant.index, version), None)
        if sent_at is not None:
            self._latency(sent_at, restaurant.arrivals.pop(version)[1])

    def _latency(self, sent_at: float, arrived_at: float) -> None:
        self.latencies.append((arrived_at - sent_at) * 1000)
        self.timeline.append((sent_at, self.latencies[-1]))

    def send_one(self, restaurant: Restaurant) -> bool:
        free = [t for t in restaurant.table_ids if t not in restaurant.busy]
        senders = restaurant.senders or restaurant.sockets
        if not free or not senders:
            return False
        ref = next(self.counter)
        restaurant.sent += 1
        table_id = free[restaurant.sent % len(free)]
        action = "enable_table" if table_id in restaurant.disabled else "disable_table"
        restaurant.busy.add(table_id)
        self.refs[ref] = (restaurant, table_id, time.perf_counter())
        # each tablet may send 10 messages a second: the actions come from all of the restaurant's dashboards
        sender = senders[restaurant.sent % len(senders)]
        asyncio.ensure_future(sender.send_str(self.encode({"action": action, "table_id": table_id, "ref": ref})))
        return True

    async def run(self, rate: float, seconds: float) -> Outcome:
        """Send actions at `rate` a second, spread over the restaurants, for `seconds`; then let them finish."""
        self.latencies, self.timeline, self.acked, self.errors = [], [], 0, 0
        # this process's own full collections (about 75 ms with 1,000 sockets) would be timed as fan-out: the
        # server's way (app/collect.py) keeps them short, and the one walk of everything comes before the clock
        from app import collect  # here: a peer's server process imports this module, and should not hold the app

        collect.start()
        gc.collect()
        try:
            return await self._run(rate, seconds)
        finally:
            collect.stop()

    async def _run(self, rate: float, seconds: float) -> Outcome:
        start = time.perf_counter()
        sent = 0
        cycle = itertools.cycle(self.restaurants)
        while (now := time.perf_counter()) - start < seconds:
            due = int((now - start) * rate) - sent
            for _ in range(due):
                sent += self.send_one(next(cycle))
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - start
        deadline = time.perf_counter() + 10
        while (self.refs or self.waiting) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        return Outcome(sent, self.acked, self.errors, elapsed, list(self.latencies))

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*(ws.close() for r in self.restaurants for ws in r.sockets + r.senders),
                             return_exceptions=True)


def upgrade_request(host: str, port: int, key: str) -> bytes:
    """The opening handshake a raw client sends for the dashboard socket, with an API key."""
    nonce = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /admin/ws/dashboard?token={key} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
