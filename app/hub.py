"""The hub's registry: who is connected to which restaurant, at which version.

Only this module knows restaurants. It keeps each restaurant's dashboards, the last
update delivered to them and the recent updates `sync` can replay, and fans each
message out to those dashboards; writing to a socket, bounding and closing it is
app/sockets.py's business. Changes arrive through the bus (app/bus.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .auth import Principal
from .places import Places
from .protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_TOO_MANY_CONNECTIONS,
    MADE_ROOM,
    SHUTTING_DOWN,
    TOO_MANY_CONNECTIONS,
    Refusal,
    too_many_for_key,
)
from .sockets import Connection, frame

REPLAY_SIZE = 512  # recent updates kept per restaurant for `sync`


@dataclass
class Restaurant:
    connections: dict[Connection, None] = field(default_factory=dict)  # a set, in the order they joined
    version: int | None = None  # the last update delivered; None until the first
    recent: deque[tuple[int, bytes]] = field(default_factory=lambda: deque(maxlen=REPLAY_SIZE))

    def send(self, version: int | None, data: bytes) -> None:
        """Write a frame to every dashboard; one closed for not keeping up leaves the restaurant."""
        for connection in list(self.connections):
            connection.send(version, data)
            if connection.closing:
                self.connections.pop(connection, None)


class Hub:
    def __init__(self, max_per_restaurant: int, max_per_key: int) -> None:
        self.max_per_restaurant = max_per_restaurant
        self.max_per_key = max_per_key
        self.next_expiry: str | None = None  # the earliest end of a connected sign-in
        self.restaurants: dict[int, Restaurant] = {}
        self.shutting_down = False
        self.places: Places | None = None  # counts dashboards across workers (Redis); None: here only
        self.place_of: dict[Connection, str] = {}  # with places: each dashboard's place

    async def join(self, connection: Connection) -> Refusal | None:
        """Count a new dashboard in its restaurant, or say why it is turned away.

        One key holds at most `max_per_key` of its restaurant's dashboards, so a screen
        opened over and over cannot take every place. When the restaurant has its fill, an
        admin still gets in: the viewer that joined last is closed to make room; a viewer
        is turned away. Once the server is shutting down (`close_all`), everyone is.

        With `places` (Redis), the dashboards of every worker count; while Redis is away, and
        without it, this worker's own.
        """
        if self.shutting_down:
            return SHUTTING_DOWN
        principal = connection.principal
        taken = None
        if self.places is not None:
            name = self.places.name(principal.key_id, principal.may_act)
            taken = await self.places.take(principal.restaurant_id, name, principal.key_id, principal.may_act,
                                           self.max_per_restaurant, self.max_per_key)
            if self.shutting_down:  # closed every socket while Redis answered
                self.places.give_back(name)
                return SHUTTING_DOWN
        restaurant = self.restaurants.setdefault(principal.restaurant_id, Restaurant())
        refusal = self._count_here(restaurant, principal) if taken is None else taken.refusal
        if refusal is not None:
            return refusal
        if taken is not None and taken.closes is not None:
            self.close_place(taken.closes)
        if self.places is not None:
            self.place_of[connection] = name
        restaurant.connections[connection] = None
        if principal.expires_at is not None:
            self.next_expiry = min(self.next_expiry or principal.expires_at, principal.expires_at)
        return None

    def _count_here(self, restaurant: Restaurant, principal: Principal) -> Refusal | None:
        """The limits over this worker's dashboards; room made for an admin here."""
        if sum(c.principal.key_id == principal.key_id for c in restaurant.connections) >= self.max_per_key:
            return too_many_for_key(self.max_per_key)
        if len(restaurant.connections) >= self.max_per_restaurant:
            viewers = [c for c in restaurant.connections if not c.principal.may_act]
            if not principal.may_act or not viewers:
                return TOO_MANY_CONNECTIONS
            self._let_go(viewers[-1])
            viewers[-1].close_after(MADE_ROOM, CLOSE_TOO_MANY_CONNECTIONS)
        return None

    def close_place(self, name: str) -> None:
        """Close the dashboard of that place, whose entry another join removed to make room for an admin."""
        for connection, held in self.place_of.items():
            if held == name:
                self._let_go(connection)
                connection.close_after(MADE_ROOM, CLOSE_TOO_MANY_CONNECTIONS)
                return

    def count_in(self, places: Places) -> None:
        """From now on, count dashboards across workers (app/places.py), which asks this registry what it holds."""
        self.places = places
        places.held = self.held
        places.close = self.close_place

    def held(self) -> list[tuple[int, str]]:
        """This worker's dashboards as places: (restaurant id, name)."""
        return [(connection.principal.restaurant_id, name) for connection, name in self.place_of.items()]

    def leave(self, connection: Connection) -> None:
        self._let_go(connection)
        connection.release()

    def _let_go(self, connection: Connection) -> None:
        """The connection no longer counts: out of its restaurant, and its place given back."""
        restaurant = self.restaurants.get(connection.principal.restaurant_id)
        if restaurant is not None:
            restaurant.connections.pop(connection, None)
        name = self.place_of.pop(connection, None)
        if name is not None and self.places is not None:
            self.places.give_back(name)

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
        restaurant.send(version, data)

    def announce(self, restaurant_id: int, text: str) -> None:
        restaurant = self.restaurants.get(restaurant_id)
        if restaurant is not None:
            restaurant.send(None, frame(text))

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
            self._let_go(connection)
            connection.close_after(text, code)
        return len(matching)

    async def close_all(self, code: int = CLOSE_GOING_AWAY) -> None:
        """Close every socket, and from now on turn newcomers away as they were closed.

        On shutdown (1001, clients reconnect to the next server) aiohttp runs this after it
        stopped listening and stopped reading every connection, but a handshake already under
        way still reaches `join` afterwards: let in, it would get its snapshot and wait, unheard,
        until the heartbeat dropped it with 1006 (issue 12).
        """
        self.shutting_down = True
        closing = []
        for connection in list(self.connections()):
            self.leave(connection)
            closing.append(connection.going_away(code))
        with contextlib.suppress(Exception):
            await asyncio.gather(*closing, return_exceptions=True)

