"""The bus: carries "restaurant R changed, versions a..b" from where a change is published to the hubs.

`LocalPublisher` is the in-process bus: it delivers synchronously into this process's hub,
so updates keep the order the database gave them, and needs nothing installed.

`RedisBus` is for several worker processes (MAITRE_REDIS_URL): it delivers into this
process's hub at once, as the local one does, and publishes the same messages once on a
Redis pub/sub channel, from which every other worker delivers them to its own dashboards.
What travels is the message as rendered here (the card's HTML inside): a receiving worker
renders nothing, and its dashboards get the very bytes this one's got.

Redis is trusted for speed, never for delivery. Pub/sub is at-most-once: a message
published while a worker's subscription is down is lost to it. So the hub holds versions
in order and fills any gap from the audit log; on every (re)subscription each watched
restaurant is read from the log once; and while Redis is away the database watcher
(app/watch.py) delivers other workers' changes within half a second, as for a single
process with the command line beside it. The change of mode is logged once each way.
Announcements (a guest's call, a restaurant renamed) are not numbered: one lost with
Redis away is not replayed, but what it announces is on the cards (a renamed restaurant
is pushed again by the watcher).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from . import metrics
from .hub import Hub

log = logging.getLogger(__name__)

CHANNEL = b"maitre:bus"
RECONNECT_AT_MOST = 2.0  # seconds between attempts to reach Redis again (from 0.1, doubling)
SILENT_AT_MOST = 3.0  # a subscription that answers nothing, not even a ping, this long is taken for lost
PING_EVERY = 1.0
OUTBOX_AT_MOST = 10_000  # messages waiting for Redis; past that the oldest are dropped (the log has them)


class Publisher(Protocol):
    worker: str  # this process's name on the bus
    live: bool  # whether other workers' changes reach this process through the bus within milliseconds

    def publish(self, restaurant_id: int, messages: list[tuple[int, str]]) -> None:
        """Deliver (version, text) table updates, in version order, to every dashboard of the restaurant."""

    def announce(self, restaurant_id: int, text: str, after: int | None = None, here_only: bool = False) -> None:
        """Deliver a message that is not a table update (not numbered, not replayed) to those dashboards, after
        the update numbered `after` (the change it comes with); `here_only`: to this worker's alone (what every
        worker's watcher finds in the log for itself)."""

    async def start(self) -> None:
        """Begin carrying messages between workers (once the hub can fill gaps from the log)."""

    async def close(self) -> None:
        """Stop, sending what is still waiting."""


def worker_name() -> str:
    return secrets.token_hex(4)


class LocalPublisher:
    """Delivers in this process, synchronously, so updates keep the order the database gave them."""

    live = False  # another process's changes (the command line's) come through the database watcher

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.worker = worker_name()

    def publish(self, restaurant_id: int, messages: list[tuple[int, str]]) -> None:
        for version, text in messages:
            self.hub.deliver(restaurant_id, version, text)

    def announce(self, restaurant_id: int, text: str, after: int | None = None, here_only: bool = False) -> None:
        self.hub.announce(restaurant_id, text, after)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


def where(url: str) -> str:
    """A Redis URL as the log may show it: host and port (or socket path), never a password."""
    parts = urlsplit(url)
    return parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"


# A message on the channel: one header line, then the body. <sent> is when it was published (Unix time, seconds):
# the receiver's clock minus it is the bus's lag (maitre_bus_lag_seconds; the workers share one machine's clock).
#   U <worker> <sent> <restaurant> <v1>,<v2>,...\n<text1>\n<text2>...   table updates (a text never holds a raw
#                                                                          newline: it is compact JSON, protocol.dumps)
#   A <worker> <sent> <restaurant> [<version>]\n<text>                    an announcement (after that version's update)
#   C <worker> <sent> <kind>\n<text>                                      a control message, for every worker


def encode_updates(worker: str, restaurant_id: int, messages: list[tuple[int, str]]) -> bytes:
    versions = ",".join(str(version) for version, _ in messages)
    return (f"U {worker} {sent_now()} {restaurant_id} {versions}\n".encode()
            + "\n".join(text for _, text in messages).encode())


def sent_now() -> str:
    return f"{time.time():.6f}"


class RedisBus:
    """Delivers here at once and publishes once to every other worker through Redis pub/sub."""

    def __init__(self, hub: Hub, url: str, worker: str | None = None) -> None:
        self.hub = hub
        self.url = url
        self.worker = worker or worker_name()
        # commands (publishing, and app/places.py's) fail fast while Redis is away, rather than hold a request;
        # once it is back, a pooled connection from before its restart is replaced at once (one retry), not failed
        self.redis = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0,
                                          retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError])
        # the subscription's own client never retries: a dropped subscription must be seen (and the log read),
        # not quietly made again after the messages published meanwhile were lost
        self.listener = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.live = False
        self.on_connected: list[Callable[[], Awaitable[None]]] = []  # run on each (re)subscription
        self.on_control: dict[str, Callable[[str], None]] = {}
        self.received = 0  # other workers' messages delivered here (the tests and the benchmark read it)
        self.outbox: list[bytes] = []
        self.sending: asyncio.Task[None] | None = None
        self.listening: asyncio.Task[None] | None = None
        self.away_since_logged = False
        self.publishing_failed = False

    # -- publishing ----------------------------------------------------------------------------------------------

    def publish(self, restaurant_id: int, messages: list[tuple[int, str]]) -> None:
        for version, text in messages:
            self.hub.deliver(restaurant_id, version, text)
        if messages:
            self._send(encode_updates(self.worker, restaurant_id, messages))

    def announce(self, restaurant_id: int, text: str, after: int | None = None, here_only: bool = False) -> None:
        self.hub.announce(restaurant_id, text, after)
        if not here_only:
            numbered = "" if after is None else after
            self._send(f"A {self.worker} {sent_now()} {restaurant_id} {numbered}\n{text}".encode())

    async def control(self, kind: str, text: str) -> None:
        """Tell every worker, this one included (`on_control[kind](text)`)."""
        handler = self.on_control.get(kind)
        if handler is not None:
            handler(text)
        self._send(f"C {self.worker} {sent_now()} {kind}\n{text}".encode())

    def _send(self, message: bytes) -> None:
        """Queue a message; the messages of one loop turn go to Redis in one round trip, in order."""
        self.outbox.append(message)
        if len(self.outbox) > OUTBOX_AT_MOST:
            del self.outbox[: len(self.outbox) - OUTBOX_AT_MOST]
        if self.sending is None:
            self.sending = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        try:
            while self.outbox:
                batch, self.outbox = self.outbox, []
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for message in batch:
                            pipe.publish(CHANNEL, message)
                        await pipe.execute()
                    metrics.BUS_PUBLISHED.inc(len(batch))
                except (RedisError, OSError) as error:
                    # lost to the other workers' buses: their watchers read these changes from the log
                    if not self.publishing_failed:
                        log.warning("publishing to Redis at %s failed (%s); other workers read these changes "
                                    "from the database", where(self.url), type(error).__name__)
                    self.publishing_failed = True
                else:
                    self.publishing_failed = False
        finally:
            self.sending = None

    # -- receiving -----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.listening = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.listener.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                await self._subscribed()
                delay = 0.1
                await self._read(pubsub)
            except (RedisError, OSError, TimeoutError) as error:
                self._away(error)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(2 * delay, RECONNECT_AT_MOST)

    async def _subscribed(self) -> None:
        """On Redis (again): say so once, re-register, and read from the log what went by meanwhile."""
        if not self.live:
            log.info("on Redis at %s; other workers' changes arrive through it", where(self.url))
        self.live = True
        metrics.BUS_ON_REDIS.set(1)
        self.away_since_logged = False
        for hook in self.on_connected:
            await hook()
        for restaurant_id in list(self.hub.versions()):
            self.hub.catch_up(restaurant_id)

    async def _read(self, pubsub: redis.client.PubSub) -> None:
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=PING_EVERY)
            now = loop.time()
            if message is not None:
                heard = now
                if message["type"] == "message":
                    self._receive(message["data"])
                continue
            if now - heard > SILENT_AT_MOST:
                raise TimeoutError(f"Redis said nothing for {SILENT_AT_MOST} s")
            await pubsub.ping()  # its answer is a message: silence past SILENT_AT_MOST means the link is gone

    def _receive(self, data: bytes) -> None:
        head, _, body = data.partition(b"\n")
        try:
            kind, worker, sent, rest = head.decode().split(" ", 3)
            if worker == self.worker:
                return  # ours, delivered (or handled) here when it was sent
            lag = time.time() - float(sent)
            metrics.BUS_RECEIVED.inc()
            metrics.BUS_LAG_SECONDS.observe(max(0.0, lag))
            if kind == "C":
                handler = self.on_control.get(rest)
                if handler is not None:
                    handler(body.decode())
                return
            self.received += 1
            if kind == "U":
                restaurant, _, versions = rest.partition(" ")
                texts = body.decode().split("\n")
                numbers = [int(v) for v in versions.split(",")]
                if len(numbers) != len(texts):
                    raise ValueError("as many versions as texts")
                for version, text in zip(numbers, texts, strict=True):
                    self.hub.deliver(int(restaurant), version, text)
            elif kind == "A":
                restaurant, _, after = rest.partition(" ")
                self.hub.announce(int(restaurant), body.decode(), int(after) if after else None)
        except (ValueError, UnicodeDecodeError):
            log.warning("a message that is not ours on %s was ignored", CHANNEL.decode())

    def _away(self, error: BaseException) -> None:
        """Redis cannot be reached: say so once; the watcher delivers other workers' changes meanwhile."""
        self.live = False
        metrics.BUS_ON_REDIS.set(0)
        if not self.away_since_logged:
            self.away_since_logged = True
            log.warning("Redis at %s is unreachable (%s); other workers' changes come through the database "
                        "watcher (within half a second) until it is back", where(self.url), type(error).__name__)

    async def close(self) -> None:
        if self.listening is not None:
            self.listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.listening
        if self.sending is not None:
            with contextlib.suppress(Exception):
                await self.sending
        await self.redis.aclose()
        await self.listener.aclose()
