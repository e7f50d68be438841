"""The hub: who is connected to which restaurant, and getting each message to them.

It knows connections, versions and messages as text; it knows nothing of SQL or HTML.
Each connection has a bounded outgoing queue and a task that writes it to the socket,
so a slow or stuck tablet never delays the others: one whose queue overflows is closed
(1013, try again later) and resynchronises when it reconnects.

Changes reach the hub through a `Publisher`. `LocalPublisher` delivers in this process;
a Redis pub/sub publisher can take its place for several worker processes without
touching the services or the handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from .auth import Principal

log = logging.getLogger(__name__)

QUEUE_SIZE = 256  # messages waiting for one dashboard before it counts as stuck
REPLAY_SIZE = 512  # recent updates kept per restaurant for `sync`

CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_GOING_AWAY = 1001


class Publisher(Protocol):
    def publish(self, restaurant_id: int, messages: list[tuple[int, str]]) -> None:
        """Deliver (version, text) table updates, in version order, to every dashboard of the restaurant."""


class Connection:
    """One dashboard socket: who it is, and the queue its sender task drains."""

    def __init__(self, ws: web.WebSocketResponse, principal: Principal, queue_size: int) -> None:
        self.ws = ws
        self.principal = principal
        self.queue: asyncio.Queue[tuple[int | None, str] | tuple[None, None, int]] = asyncio.Queue(queue_size)
        self.floor = 0  # updates at or below this version were in the snapshot the client got
        self.sender: asyncio.Task[Any] | None = None
        self.closing = False

    def start(self, floor: int) -> None:
        self.floor = floor
        self.sender = asyncio.create_task(self._send_all())

    def send(self, version: int | None, text: str) -> None:
        """Queue a message (a table update carries its version); a client that is not keeping up is closed."""
        if self.closing:
            return
        try:
            self.queue.put_nowait((version, text))
        except asyncio.QueueFull:
            log.info("closing a dashboard of restaurant %s that stopped reading", self.principal.restaurant_id)
            self.abort(CLOSE_TRY_AGAIN_LATER)

    def close_after(self, text: str, code: int) -> None:
        """Send `text` after what is queued, then close with `code`."""
        if not self.closing:
            self.closing = True
            self._force((None, text))
            self._force((None, None, code))
            if self.sender is None:
                self.start(self.floor)

    def abort(self, code: int) -> None:
        """Close now, dropping what is queued."""
        if self.closing and self.sender is None:
            return
        self.closing = True
        if self.sender is not None:
            self.sender.cancel()
        self.sender = asyncio.create_task(self.ws.close(code=code))

    def _force(self, item: tuple[None, str] | tuple[None, None, int]) -> None:
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()

    async def _send_all(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if len(item) == 3:
                    await self.ws.close(code=item[2])
                    return
                version, text = item
                if version is None or version > self.floor:
                    await self.ws.send_str(text)
        except (ConnectionError, RuntimeError) as error:
            log.debug("dashboard socket went away while sending: %s", error)


@dataclass
class Restaurant:
    connections: set[Connection] = field(default_factory=set)
    version: int | None = None  # the last update delivered; None until the first
    recent: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=REPLAY_SIZE))


class Hub:
    def __init__(self, max_per_restaurant: int, queue_size: int = QUEUE_SIZE) -> None:
        self.max_per_restaurant = max_per_restaurant
        self.queue_size = queue_size
        self.restaurants: dict[int, Restaurant] = {}

    def join(self, principal: Principal, ws: web.WebSocketResponse) -> Connection | None:
        """A new dashboard of the principal's restaurant, or None when the restaurant has its fill."""
        restaurant = self.restaurants.setdefault(principal.restaurant_id, Restaurant())
        if len(restaurant.connections) >= self.max_per_restaurant:
            return None
        connection = Connection(ws, principal, self.queue_size)
        restaurant.connections.add(connection)
        return connection

    def leave(self, connection: Connection) -> None:
        restaurant = self.restaurants.get(connection.principal.restaurant_id)
        if restaurant is not None:
            restaurant.connections.discard(connection)
        if connection.sender is not None and not connection.closing:
            connection.sender.cancel()

    def connections(self) -> Iterable[Connection]:
        for restaurant in self.restaurants.values():
            yield from restaurant.connections

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
        restaurant.recent.append((version, text))
        for connection in list(restaurant.connections):
            connection.send(version, text)
            if connection.closing:
                restaurant.connections.discard(connection)

    def replay(self, restaurant_id: int, since: int) -> list[str] | None:
        """The updates after `since`, if all of them are still held; None means: send a snapshot."""
        restaurant = self.restaurants.get(restaurant_id)
        if restaurant is None or restaurant.version is None or since > restaurant.version:
            return None
        if since == restaurant.version:
            return []
        if not restaurant.recent or restaurant.recent[0][0] > since + 1:
            return None
        return [text for version, text in restaurant.recent if version > since]

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
