"""The hub's registry: who is connected to which restaurant, at which version.

Only this module knows restaurants. It keeps each restaurant's dashboards, the last
update delivered to them and the recent updates `sync` can replay, and fans each
message out to those dashboards; writing to a socket, bounding and closing it is
app/sockets.py's business. Changes arrive through the bus (app/bus.py).

Dashboards see every version once and in order, whichever process made the change and
whatever order the bus brought it in: an update that comes before the ones below it is
held, and the missing ones are read from the audit log (`fill`, the one way back to the
durable record), then all go out in order. A restaurant nobody here watches is not
followed at all: the first dashboard to join starts it at its snapshot's version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from . import metrics
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

log = logging.getLogger(__name__)

REPLAY_SIZE = 512  # recent updates kept per restaurant for `sync`
HELD_AT_MOST = REPLAY_SIZE  # updates held while a gap below them is filled; past that they are read again from the log

FILL_TRIES = 3  # fills in a row that find nothing before what is held is sent without the gap (cannot happen)
FILL_AGAIN_SECONDS = 0.2

# reads a restaurant's table updates numbered above a version from the audit log: [(version, message text)]
Fill = Callable[[int, int], Awaitable[list[tuple[int, str]]]]


@dataclass
class Restaurant:
    connections: dict[Connection, None] = field(default_factory=dict)  # a set, in the order they joined
    version: int | None = None  # the last update delivered; None until its first dashboard's snapshot is read
    recent: deque[tuple[int, bytes]] = field(default_factory=lambda: deque(maxlen=REPLAY_SIZE))
    held: dict[int, str] = field(default_factory=dict)  # updates that came before a version below them
    known: int = 0  # the highest version known to exist (held, or seen in the database)
    filling: asyncio.Task[None] | None = None
    tries: int = 0  # fills in a row that found nothing new
    look: bool = False  # read the log once even though no version is known to be missing (the bus was away)
    # acks (to their connection) and announcements (None: to every dashboard) waiting for a held version
    replies: list[tuple[int, Connection | None, bytes]] = field(default_factory=list)

    def send(self, version: int | None, data: bytes) -> None:
        """Write a frame to every dashboard; one closed for not keeping up leaves the restaurant."""
        written = 0
        for connection in list(self.connections):
            written += connection.write(version, data)
            if connection.closing:
                self.connections.pop(connection, None)
        if written:  # counted once for the lot: two counters per frame cost 2% of a change's CPU
            metrics.MESSAGES_SENT.inc(written)
            metrics.SENT_BYTES.inc(written * len(data))


class Hub:
    def __init__(self, max_per_restaurant: int, max_per_key: int) -> None:
        self.max_per_restaurant = max_per_restaurant
        self.max_per_key = max_per_key
        self.next_expiry: str | None = None  # the earliest end of a connected sign-in
        self.restaurants: dict[int, Restaurant] = {}
        self.shutting_down = False
        self.places: Places | None = None  # counts dashboards across workers (Redis); None: here only
        self.place_of: dict[Connection, str] = {}  # with places: each dashboard's place
        self.fill: Fill | None = None  # set once the database is open; without it a gap waits for the watcher

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
        connection.opened()
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
            viewers[-1].close_after(MADE_ROOM, CLOSE_TOO_MANY_CONNECTIONS, "made_room")
        return None

    def close_place(self, name: str) -> None:
        """Close the dashboard of that place, whose entry another join removed to make room for an admin."""
        for connection, held in self.place_of.items():
            if held == name:
                self._let_go(connection)
                connection.close_after(MADE_ROOM, CLOSE_TOO_MANY_CONNECTIONS, "made_room")
                return

    def count_in(self, places: Places) -> None:
        """From now on, count dashboards across workers (app/places.py), which asks this registry what it holds."""
        self.places = places
        places.held = self.places_held
        places.close = self.close_place

    def places_held(self) -> list[tuple[int, str]]:
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
        """Where numbering stands when nothing has been delivered since the restaurant's first dashboard joined."""
        restaurant = self.restaurants.get(restaurant_id)
        if restaurant is not None and restaurant.version is None:
            restaurant.version = version
            self._advance(restaurant_id, restaurant)

    def deliver(self, restaurant_id: int, version: int, text: str) -> None:
        """Fan one table update out to every dashboard of the restaurant, in version order.

        An old version is dropped. One that comes before a version below it is held while the
        missing ones are read from the audit log; a restaurant nobody here watches is forgotten.
        """
        restaurant = self.restaurants.get(restaurant_id)
        if restaurant is None:
            return
        if not restaurant.connections:
            self._forget(restaurant_id, restaurant)
            return
        if restaurant.version is not None and version <= restaurant.version:
            return
        restaurant.known = max(restaurant.known, version)
        if restaurant.version is not None and version == restaurant.version + 1:
            self._send_update(restaurant, version, text)
        elif len(restaurant.held) < HELD_AT_MOST:
            restaurant.held[version] = text
        self._advance(restaurant_id, restaurant)

    def catch_up(self, restaurant_id: int, stored: int | None = None) -> None:
        """The database holds versions up to `stored` (None: may hold some not delivered here): fill from the log."""
        restaurant = self.restaurants.get(restaurant_id)
        if restaurant is None or restaurant.version is None:
            return
        if stored is None:
            restaurant.look = True
        else:
            restaurant.known = max(restaurant.known, stored)
        self._advance(restaurant_id, restaurant)

    def reply(self, connection: Connection, version: int | None, data: bytes) -> None:
        """An action's reply, after the updates up to its `version` (which may be held behind a gap) are sent."""
        restaurant = self.restaurants.get(connection.principal.restaurant_id)
        if version is None or restaurant is None or restaurant.version is None or version <= restaurant.version:
            connection.send(None, data)
        else:
            restaurant.replies.append((version, connection, data))

    def _send_replies(self, restaurant: Restaurant, up_to: int) -> None:
        waiting, restaurant.replies = restaurant.replies, []
        for version, connection, data in waiting:
            if version > up_to:
                restaurant.replies.append((version, connection, data))
            elif connection is None:  # an announcement, to every dashboard
                restaurant.send(None, data)
            else:
                connection.send(None, data)

    def _send_update(self, restaurant: Restaurant, version: int, text: str) -> None:
        restaurant.version = version
        data = frame(text)
        restaurant.recent.append((version, data))
        restaurant.send(version, data)
        if restaurant.replies:
            self._send_replies(restaurant, version)

    def _advance(self, restaurant_id: int, restaurant: Restaurant) -> None:
        """Send the held updates that now follow on; if a gap remains below a known version, fill it."""
        if restaurant.version is None or self.restaurants.get(restaurant_id) is not restaurant:
            return
        for version in sorted(restaurant.held):
            text = restaurant.held.pop(version)
            if version == restaurant.version + 1:
                self._send_update(restaurant, version, text)
            elif version > restaurant.version:
                restaurant.held[version] = text
                break
        behind = restaurant.known > restaurant.version or restaurant.look
        if behind and restaurant.filling is None and self.fill is not None:
            restaurant.look = False
            restaurant.filling = asyncio.ensure_future(self._fill(restaurant_id, restaurant))

    async def _fill(self, restaurant_id: int, restaurant: Restaurant) -> None:
        """Read what is missing from the audit log, and send it (with what was held) in order."""
        assert self.fill is not None and restaurant.version is not None
        before = restaurant.version
        metrics.GAP_FILLS.inc()
        try:
            missed = await self.fill(restaurant_id, before)
        except Exception:
            log.exception("reading restaurant %s's missed updates from the log failed", restaurant_id)
            missed = []
        finally:
            restaurant.filling = None
        if self.restaurants.get(restaurant_id) is not restaurant:
            return  # forgotten meanwhile: its next dashboard starts afresh
        for version, text in missed:
            if version == restaurant.version + 1:
                restaurant.held.pop(version, None)
                self._send_update(restaurant, version, text)
        if restaurant.version != before:
            restaurant.tries = 0
            self._advance(restaurant_id, restaurant)
        elif restaurant.known <= restaurant.version:
            pass  # a look that found nothing new
        elif restaurant.tries < FILL_TRIES:  # the log had nothing new (or could not be read): look again soon
            restaurant.tries += 1
            asyncio.get_running_loop().call_later(FILL_AGAIN_SECONDS, self._advance, restaurant_id, restaurant)
        else:  # what is known to exist is not in the log: go on from what is held; a dashboard that sees the
            log.warning("restaurant %s: versions %s..%s are not in the log; skipping them",  # gap asks for a snapshot
                        restaurant_id, before + 1, min(restaurant.held, default=restaurant.known) - 1)
            restaurant.tries = 0
            restaurant.recent.clear()  # replays must never skip a version
            if restaurant.held:
                restaurant.version = min(restaurant.held) - 1
            else:
                restaurant.known = restaurant.version
            self._advance(restaurant_id, restaurant)
            self._send_replies(restaurant, restaurant.known)  # an ack whose update was skipped waits no longer

    def _forget(self, restaurant_id: int, restaurant: Restaurant) -> None:
        if self.restaurants.get(restaurant_id) is restaurant and not restaurant.connections:
            del self.restaurants[restaurant_id]
            if restaurant.filling is not None:
                restaurant.filling.cancel()

    def announce(self, restaurant_id: int, text: str, after: int | None = None) -> None:
        """A message that is not a table update, to every dashboard; after the update `after`, if that is held."""
        restaurant = self.restaurants.get(restaurant_id)
        if restaurant is None:
            return
        if after is None or restaurant.version is None or after <= restaurant.version:
            restaurant.send(None, frame(text))
        else:
            restaurant.replies.append((after, None, frame(text)))

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
        """Say `text` to the matching connections (a key revoked, a sign-in ended) and close them with `code`;
        returns how many."""
        matching = [connection for connection in self.connections() if condition(connection)]
        for connection in matching:
            self._let_go(connection)
            connection.close_after(text, code, "revoked")
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
            connection.reason = "shutdown"
            self.leave(connection)
            closing.append(connection.going_away(code))
        with contextlib.suppress(Exception):
            await asyncio.gather(*closing, return_exceptions=True)

