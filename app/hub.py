"""The hub: who is connected to which restaurant, and getting each message to them.

It knows connections, versions and messages as text; it knows nothing of SQL or HTML.
A change's message is framed once and the same bytes written to every socket; a slow or
stuck tablet never delays the others: one whose outgoing buffer overflows is closed
(1013, try again later) and resynchronises when it reconnects.

Changes reach the hub through a `Publisher`. `LocalPublisher` delivers in this process;
a Redis pub/sub publisher can take its place for several worker processes without
touching the services or the handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import WSCloseCode, web

from .auth import Principal

log = logging.getLogger(__name__)

BUFFER_LIMIT = 256 * 1024  # bytes waiting for one dashboard before it counts as stuck
EARLY_AT_MOST = 256  # messages held while the snapshot goes out
REPLAY_SIZE = 512  # recent updates kept per restaurant for `sync`
CLOSE_GRACE = 5.0  # seconds a dashboard being closed has to take its close frame before it is cut off

CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_GOING_AWAY = 1001


class Publisher(Protocol):
    def publish(self, restaurant_id: int, messages: list[tuple[int, str]]) -> None:
        """Deliver (version, text) table updates, in version order, to every dashboard of the restaurant."""

    def announce(self, restaurant_id: int, text: str) -> None:
        """Deliver a message that is not a table update (not numbered, not replayed) to those dashboards."""


def frame(text: str) -> bytes:
    """A whole WebSocket text frame, built once and written as it is to every socket that gets it.

    Server frames are never masked, and these are never compressed (an uncompressed message is
    valid with permessage-deflate too), so the bytes are the same for every connection.
    """
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class Connection:
    """One dashboard socket: who it is, and its transport, written to directly.

    The transport's own write buffer is the connection's outgoing queue: a client that
    lets it grow past `limit` bytes has stopped reading and is closed (1013), so it never
    holds the others up nor pins the server's memory.
    """

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, principal: Principal,
                 limit: int) -> None:
        self.ws = ws
        self.transport = transport
        self.principal = principal
        self.limit = limit
        self.floor = 0  # updates at or below this version were in the snapshot the client got
        self.early: list[tuple[int | None, bytes]] | None = []  # what came before the snapshot was sent
        self.closing = False
        self.closer: asyncio.Task[None] | None = None

    def start(self, floor: int) -> None:
        """The snapshot at version `floor` is sent: from now on, messages go straight out."""
        early, self.early, self.floor = self.early or [], None, floor
        for version, data in early:
            self.send(version, data)

    def send(self, version: int | None, data: bytes) -> None:
        """Write a frame (a table update carries its version); a client that is not keeping up is closed."""
        if self.closing or version is not None and version <= self.floor:
            return
        if self.early is not None:
            self.early.append((version, data))
            if len(self.early) > EARLY_AT_MOST:
                self.abort(CLOSE_TRY_AGAIN_LATER)
            return
        if self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() > self.limit:
            log.info("closing a dashboard of restaurant %s that stopped reading", self.principal.restaurant_id)
            self.abort(CLOSE_TRY_AGAIN_LATER)
            return
        self.transport.write(data)

    def close_after(self, text: str, code: int) -> None:
        """Send `text`, then close with `code`."""
        if self.early is not None:
            self.start(self.floor)
        self.send(None, frame(text))
        self.abort(code)

    def abort(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            self.closer = asyncio.create_task(self._close(code))

    async def _close(self, code: int) -> None:
        """Send the close frame; a client that has not taken it within CLOSE_GRACE is cut off.

        Closing waits for the outgoing buffer to drain, and a client that stopped reading
        never drains it: without the cut, its socket and the bytes waiting for it would
        stay until it read again, however long that took.
        """
        try:
            await asyncio.wait_for(self.ws.close(code=code), CLOSE_GRACE)
        except TimeoutError:
            self.cut()
        else:
            if self.transport.get_write_buffer_size():  # it was already closed (a missed pong): nothing drains
                self.cut()

    def release(self) -> None:
        """Its handler is done with it. If its peer vanished (a pong went unanswered), reset it.

        aiohttp then closes the transport, and a close waits for the buffer to drain: bytes
        still waiting would hold the socket until TCP gave up, a quarter of an hour later.
        A close the client asked for, or one under way (see `abort`), ends as it would.
        """
        self.closing = True
        if self.closer is None and self.ws.close_code == WSCloseCode.ABNORMAL_CLOSURE:
            self.cut()

    def cut(self) -> None:
        """Reset the connection: nothing more is sent, here or by the kernel, and the client sees a reset.

        A plain close would leave what the kernel already holds (up to a few MB) to be
        retried to a client that does not take it; a zero linger time discards it now.
        """
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


def give_up_after(transport: asyncio.Transport, seconds: float) -> None:
    """Have the kernel drop the connection once what it sent has gone unacknowledged this long.

    This is TCP_USER_TIMEOUT. It covers a peer that vanished, even after its socket was
    closed: the kernel would otherwise keep retrying that orphaned socket for minutes. A
    peer that is alive but not reading still acknowledges, so this does not end it.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, min(int(seconds * 1000), 2**31 - 1))


@dataclass
class Restaurant:
    connections: set[Connection] = field(default_factory=set)
    version: int | None = None  # the last update delivered; None until the first
    recent: deque[tuple[int, bytes]] = field(default_factory=lambda: deque(maxlen=REPLAY_SIZE))


class Hub:
    def __init__(self, max_per_restaurant: int, buffer_limit: int = BUFFER_LIMIT) -> None:
        self.max_per_restaurant = max_per_restaurant
        self.buffer_limit = buffer_limit
        self.next_expiry: str | None = None  # the earliest end of a connected sign-in
        self.restaurants: dict[int, Restaurant] = {}

    def join(self, principal: Principal, ws: web.WebSocketResponse, transport: asyncio.Transport) -> Connection | None:
        """A new dashboard of the principal's restaurant, or None when the restaurant has its fill."""
        restaurant = self.restaurants.setdefault(principal.restaurant_id, Restaurant())
        if len(restaurant.connections) >= self.max_per_restaurant:
            return None
        connection = Connection(ws, transport, principal, self.buffer_limit)
        restaurant.connections.add(connection)
        if principal.expires_at is not None:
            self.next_expiry = min(self.next_expiry or principal.expires_at, principal.expires_at)
        return connection

    def leave(self, connection: Connection) -> None:
        restaurant = self.restaurants.get(connection.principal.restaurant_id)
        if restaurant is not None:
            restaurant.connections.discard(connection)
        connection.release()

    def connections(self) -> Iterable[Connection]:
        for restaurant in self.restaurants.values():
            yield from restaurant.connections

    def close_expired(self, now: str, text: str, code: int) -> None:
        """Close the sockets of sign-ins that ended by `now`; looks only once one may have."""
        if self.next_expiry is None or now < self.next_expiry:
            return
        self.close_where(lambda c: c.principal.expires_at is not None and c.principal.expires_at <= now, text, code)
        ends = [c.principal.expires_at for c in self.connections() if c.principal.expires_at is not None]
        self.next_expiry = min(ends, default=None)

    def count(self, restaurant_id: int) -> int:
        restaurant = self.restaurants.get(restaurant_id)
        return len(restaurant.connections) if restaurant else 0

    def versions(self) -> dict[int, int | None]:
        """The last delivered version of every restaurant that has dashboards."""
        return {rid: r.version for rid, r in self.restaurants.items() if r.connections}

    def start_at(self, restaurant_id: int, version: int) -> None:
        """Where numbering stands when nothing has been delivered since start-up."""
        restaurant = self.restaurants.get(restaurant_id)
        if restaurant is not None and restaurant.version is None:
            restaurant.version = version

    def deliver(self, restaurant_id: int, version: int, text: str) -> None:
        """Fan one table update out to every dashboard of the restaurant; an old version is dropped."""
        restaurant = self.restaurants.setdefault(restaurant_id, Restaurant())
        if restaurant.version is not None and version <= restaurant.version:
            return
        if restaurant.version is not None and version != restaurant.version + 1:
            restaurant.recent.clear()  # replays must never skip a version
        restaurant.version = version
        data = frame(text)
        restaurant.recent.append((version, data))
        for connection in list(restaurant.connections):
            connection.send(version, data)
            if connection.closing:
                restaurant.connections.discard(connection)

    def announce(self, restaurant_id: int, text: str) -> None:
        restaurant = self.restaurants.get(restaurant_id)
        if restaurant is None:
            return
        data = frame(text)
        for connection in list(restaurant.connections):
            connection.send(None, data)

    def replay(self, restaurant_id: int, since: int) -> list[bytes] | None:
        """The updates after `since`, if all of them are still held; None means: send a snapshot."""
        restaurant = self.restaurants.get(restaurant_id)
        if restaurant is None or restaurant.version is None or since > restaurant.version:
            return None
        if since == restaurant.version:
            return []
        if not restaurant.recent or restaurant.recent[0][0] > since + 1:
            return None
        return [data for version, data in restaurant.recent if version > since]

    def close_where(self, condition: Callable[[Connection], bool], text: str, code: int) -> int:
        """Say `text` to the matching connections and close them with `code`; returns how many."""
        matching = [connection for connection in self.connections() if condition(connection)]
        for connection in matching:
            self.restaurants[connection.principal.restaurant_id].connections.discard(connection)
            connection.close_after(text, code)
        return len(matching)

    async def close_all(self, code: int = CLOSE_GOING_AWAY) -> None:
        """Close every socket (on shutdown: 1001, clients reconnect to the next server)."""
        closing = []
        for connection in list(self.connections()):
            self.leave(connection)
            closing.append(connection.ws.close(code=code, message=b"server shutting down"))
        with contextlib.suppress(Exception):
            await asyncio.gather(*closing, return_exceptions=True)


class LocalPublisher:
    """Delivers in this process, synchronously, so updates keep the order the database gave them."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def publish(self, restaurant_id: int, messages: list[tuple[int, str]]) -> None:
        for version, text in messages:
            self.hub.deliver(restaurant_id, version, text)

    def announce(self, restaurant_id: int, text: str) -> None:
        self.hub.announce(restaurant_id, text)
