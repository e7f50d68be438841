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
import functools
import gc
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

UPDATE_START = '{"type":"table_update","version":'


@dataclass
class Restaurant:
    index: int
    table_ids: list[int]
    disabled: set[int] = field(default_factory=set)
    busy: set[int] = field(default_factory=set)
    sent: int = 0
    sockets: list[Any] = field(default_factory=list)  # a Socket each (aiohttp's client when compressing)
    senders: list[Any] = field(default_factory=list)  # if any, they send, not `sockets`
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
        url = url or self.url_of(restaurant.index)
        ws: Socket | aiohttp.ClientWebSocketResponse
        if self.compress:  # permessage-deflate: aiohttp's client (only the memory run asks for it)
            ws = await self.session.ws_connect(url, compress=15, max_msg_size=0, heartbeat=None)
        else:
            ws = await Socket.open(url)
        await self.opened(ws)
        (restaurant.senders if sender else restaurant.sockets).append(ws)
        handle = functools.partial(self._answer if sender else self._update, restaurant, ws)
        if isinstance(ws, Socket):
            ws.hand_to(handle)
        else:
            self.readers.append(asyncio.create_task(self._read(ws, handle)))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, handle: Callable[[str], None]) -> None:
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                handle(message.data)

    # The protocol, as the server under test speaks it; a peer's fleet (another library) overrides these three.

    async def opened(self, ws: Any) -> None:
        """What a socket does between connecting and being counted: here, wait for the snapshot."""
        first = await ws.receive(timeout=30)
        assert first.type is aiohttp.WSMsgType.TEXT and '"tables_snapshot"' in first.data[:40], first

    def decode(self, ws: Any, text: str) -> dict | None:
        """A message received as a dict with at least "type" (or None to ignore it).

        An update is most of what arrives (20 copies of each change) and only its version counts: it is read
        from the message's start (app/render.py writes "type", then "version"), not parsed whole with its card.
        """
        if text.startswith(UPDATE_START):
            return {"type": "table_update", "version": int(text[len(UPDATE_START):text.index(",", len(UPDATE_START))])}
        return json.loads(text)

    def encode(self, action: dict) -> str:
        return json.dumps(action)

    def _update(self, restaurant: Restaurant, ws: Any, text: str) -> None:
        """A dashboard's message: an update counts towards its version's arrival at every dashboard."""
        now = time.perf_counter()
        data = self.decode(ws, text)
        if data is None:
            return
        kind = data.get("type")
        if kind == "table_update":
            seen = restaurant.arrivals.setdefault(data["version"], [0, 0.0])
            seen[0] += 1
            seen[1] = now
            if seen[0] == self.dashboards:
                self._complete(restaurant, data["version"])
        elif kind in ("ack", "error") and "ref" in data:
            self._answered(data, now)

    def _answer(self, restaurant: Restaurant, ws: Any, text: str) -> None:
        """A sender's message: only the answers to its actions count (its own copies of updates do not)."""
        if '"ref"' in text:
            now = time.perf_counter()
            data = self.decode(ws, text)
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


class Socket(asyncio.Protocol):
    """A client WebSocket on a bare asyncio connection: the load process's dashboards.

    aiohttp's client wakes a task for every message. At 1,000 actions a second the load process
    receives 20,000 messages a second, and those wake-ups made it the largest user of the CPU the
    server shares with it. Here frames are cut out of the bytes as they arrive and each text
    message goes straight to its handler (`hand_to`); until one is set, they wait for `receive`
    (the opening exchange, as aiohttp's `receive` answers it). It speaks what the benchmark needs:
    unfragmented text frames (aiohttp's server sends no others), ping and close. A client's
    frames must be masked; its key is zero, so the payload goes as it is (the server unmasks it
    whatever the key).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.inbox: asyncio.Queue[aiohttp.WSMessage] = asyncio.Queue()
        self.handle: Callable[[str], None] | None = None
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, url: str) -> Socket:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        _, socket = await asyncio.get_running_loop().create_connection(cls, host, port)
        assert socket.transport is not None
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        socket.transport.write(upgrade_request(host, port, path=path))
        await asyncio.wait_for(socket.upgraded, 30)
        return socket

    def hand_to(self, handle: Callable[[str], None]) -> None:
        """From now on each text message goes to `handle` as it arrives (what waited, first)."""
        self.handle = handle
        while not self.inbox.empty():
            message = self.inbox.get_nowait()
            if message.type is aiohttp.WSMsgType.TEXT:
                handle(message.data)

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def send_str(self, text: str) -> None:
        self._send(0x1, text.encode())

    async def close(self) -> None:
        """Send a close frame and wait (a few seconds at most) for the server's, then hang up."""
        if self.transport is not None and not self.transport.is_closing():
            self._send(0x8, (1000).to_bytes(2, "big"))
            try:
                await asyncio.wait_for(asyncio.shield(self.gone), 5)
            except TimeoutError:
                pass
            self.transport.close()

    def _send(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        size = len(payload)
        if size < 126:
            header = bytes((0x80 | opcode, 0x80 | size))
        elif size < 1 << 16:
            header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
        self.transport.write(header + ZERO_MASK + payload)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(exc or ConnectionError("closed before the upgrade"))
        if not self.gone.done():
            self.gone.set_result(None)
        self.inbox.put_nowait(aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None))

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded.done():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[:buffer.find(b"\r\n")])
            del buffer[:end + 4]
            if not status.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(ConnectionError(f"the upgrade was refused: {status.decode()}"))
                return
            self.upgraded.set_result(None)
        start, size = 0, len(buffer)
        while size - start >= 2:
            first, length = buffer[start], buffer[start + 1] & 0x7F
            at = start + 2
            if length == 126:
                if size - at < 2:
                    break
                length, at = int.from_bytes(buffer[at:at + 2], "big"), at + 2
            elif length == 127:
                if size - at < 8:
                    break
                length, at = int.from_bytes(buffer[at:at + 8], "big"), at + 8
            if size - at < length:
                break
            payload, start = bytes(buffer[at:at + length]), at + length
            opcode = first & 0x0F
            if opcode == 0x1:
                assert first & 0x80, "a fragmented message: not sent by the servers measured here"
                text = payload.decode()
                if self.handle is not None:
                    self.handle(text)
                else:
                    self.inbox.put_nowait(aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, text, None))
            elif opcode == 0x9:  # ping: pong with its payload
                self._send(0xA, payload)
            elif opcode == 0x8:  # close: answer it; the server hangs up
                if not self.gone.done():
                    self._send(0x8, payload[:2])
                    self.gone.set_result(None)
        del buffer[:start]


ZERO_MASK = bytes(4)


def upgrade_request(host: str, port: int, key: str = "", path: str = "") -> bytes:
    """The opening handshake a raw client sends: for the dashboard socket with an API key, or for `path`."""
    nonce = base64.b64encode(os.urandom(16)).decode()
    path = path or f"/admin/ws/dashboard?token={key}"
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
