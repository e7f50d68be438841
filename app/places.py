"""The dashboards' places counted across workers, in Redis: the per-restaurant limit and the per-key cap.

Each worker's dashboards are entries in their restaurant's sorted set (`maitre:places:<id>`),
named `<epoch>|<n>|<key id>|<a or v>` and scored in the order they joined. An epoch is this
worker's id and a number, alive while its key `maitre:alive:<epoch>` is: renewed every beat,
it expires after three, so the entries of a worker that was killed stop counting within a beat
or two. One script decides a join (JOIN): it drops the entries of dead epochs, checks the key's
cap and the restaurant's limit, makes room for an admin by removing the newest viewer's entry
(returned, so that its worker closes it), and adds the newcomer.

Redis is trusted for speed only. When it does not answer, `take` says so (None) and the hub
counts this worker's own sockets, as with one worker; each beat tries again, and once Redis
answers the worker re-registers its sockets under a new epoch (Redis may have restarted empty,
or dropped this worker's entries while it was away) before counting there again. Which
connection an entry is, the hub knows (app/hub.py); this module knows only the names.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import NamedTuple, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .protocol import TOO_MANY_CONNECTIONS, Refusal, too_many_for_key

log = logging.getLogger(__name__)

PLACES = "maitre:places:"  # + restaurant id: a sorted set of entries
ALIVE = "maitre:alive:"  # + epoch: present while the epoch's worker is
ORDER = "maitre:places"  # a counter: the order in which dashboards joined, across workers
ANSWER_WITHIN = 0.5  # seconds Redis has to answer before this worker counts on its own
BEATS_TO_LIVE = 3

T = TypeVar("T")

# KEYS: the restaurant's set, the order counter. ARGV: the alive prefix, the entry, its key id, '1' if it may
# act, the restaurant's limit, the key's cap. Entries of dead epochs go first, so they never count.
JOIN = """
local alive, count, of_key, newest_viewer = {}, 0, 0, nil
for _, entry in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local epoch, key, role = string.match(entry, '^([^|]+)|[^|]+|([^|]+)|(%a)$')
  if alive[epoch] == nil then alive[epoch] = redis.call('EXISTS', ARGV[1] .. epoch) == 1 end
  if alive[epoch] then
    count = count + 1
    if key == ARGV[3] then of_key = of_key + 1 end
    if role == 'v' then newest_viewer = entry end
  else
    redis.call('ZREM', KEYS[1], entry)
  end
end
if of_key >= tonumber(ARGV[6]) then return {'key'} end
local made_room = nil
if count >= tonumber(ARGV[5]) then
  if ARGV[4] ~= '1' or newest_viewer == nil then return {'full'} end
  redis.call('ZREM', KEYS[1], newest_viewer)
  made_room = newest_viewer
end
redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[2])
if made_room then return {'in', made_room} end
return {'in'}
"""

# KEYS: the restaurant's set, the order counter. ARGV: entries this worker already holds (after a return).
HOLD = """
for _, entry in ipairs(ARGV) do redis.call('ZADD', KEYS[1], 'NX', redis.call('INCR', KEYS[2]), entry) end
"""


def beat_of(heartbeat_seconds: float) -> float:
    """How often a worker renews its liveness: twice a heartbeat, at least every 2 s, so that a killed
    worker's places are free (three beats) well within two heartbeats, as its tablets' sockets are."""
    return min(2.0, heartbeat_seconds / 2)


class Taken(NamedTuple):
    """A join as Redis decided it: refused, or in, having made room by closing `closes` (the name of this
    worker's dashboard to close; another worker's is told over the bus)."""

    refusal: Refusal | None
    closes: str | None = None


class Unanswered(Exception):
    """Redis did not answer in time, or answered with an error."""


class Places:
    """This worker's side of the count: its epoch, its beat, and the joins and leaves of its dashboards.

    `held` lists the dashboards this worker holds as (restaurant id, name) (the hub's registry); `tell` asks
    every worker to close a dashboard by its entry (the bus's control channel); `close` closes one of this
    worker's by name.
    """

    def __init__(self, redis: Redis, worker: str, beat: float) -> None:
        self.redis = redis
        self.worker = worker
        self.beat = beat
        self.epochs = itertools.count()
        self.epoch = f"{worker}.{next(self.epochs)}"
        self.counting = False  # True while Redis counts this worker's dashboards
        self.away = False  # Redis stopped answering (logged once), and has not answered since
        self.registered: dict[str, int] = {}  # names in Redis under this epoch -> their restaurant
        self.numbers = itertools.count(1)
        self.join = redis.register_script(JOIN)
        self.hold = redis.register_script(HOLD)
        self.held: Callable[[], Iterable[tuple[int, str]]] = lambda: ()
        self.tell: Callable[[str], Awaitable[object]] | None = None
        self.close: Callable[[str], None] = lambda name: None
        self.beating: asyncio.Task[None] | None = None
        self.leaving: set[asyncio.Task[None]] = set()

    def name(self, key_id: int, may_act: bool) -> str:
        """A new dashboard's name, this worker's for good (its entry in Redis adds the epoch)."""
        return f"{next(self.numbers)}|{key_id}|{'a' if may_act else 'v'}"

    async def start(self) -> None:
        """Register this worker (if Redis answers) and renew its liveness every beat from now on."""
        await self.renew()
        self.beating = asyncio.create_task(self.beat_on())

    async def stop(self) -> None:
        """A clean stop: this worker's entries and its liveness go at once."""
        if self.beating is not None:
            self.beating.cancel()
        counting, self.counting = self.counting, False
        if counting:
            with contextlib.suppress(Unanswered):
                await self.ask(self.forget(self.epoch, self.registered))

    async def take(self, restaurant_id: int, name: str, key_id: int, may_act: bool,
                   max_per_restaurant: int, max_per_key: int) -> Taken | None:
        """Count a dashboard in its restaurant across workers; None: Redis is away, count it here."""
        while self.counting:
            epoch = self.epoch
            try:
                answer = await self.ask(self.join(
                    keys=[f"{PLACES}{restaurant_id}", ORDER],
                    args=[ALIVE, f"{epoch}|{name}", key_id, int(may_act), max_per_restaurant, max_per_key]))
            except Unanswered:
                return None
            if epoch == self.epoch:
                break
            # Redis came back meanwhile and counts from a new epoch: the entry just added died with the old one
        else:
            return None
        verdict = text(answer[0])
        if verdict == "key":
            return Taken(too_many_for_key(max_per_key))
        if verdict == "full":
            return Taken(TOO_MANY_CONNECTIONS)
        self.registered[name] = restaurant_id
        if len(answer) == 1:
            return Taken(None)
        closes = text(answer[1])
        if self.ours(closes):
            return Taken(None, closes.split("|", 1)[1])
        await self.tell_to_close(closes)
        return Taken(None)

    def give_back(self, name: str) -> None:
        """The dashboard left: its entry goes (in the background; a leave never waits for Redis)."""
        restaurant_id = self.registered.pop(name, None)
        if restaurant_id is not None:
            task = asyncio.create_task(self.remove(restaurant_id, f"{self.epoch}|{name}"))
            self.leaving.add(task)
            task.add_done_callback(self.leaving.discard)

    async def remove(self, restaurant_id: int, entry: str) -> None:
        with contextlib.suppress(Unanswered):
            await self.ask(self.redis.zrem(f"{PLACES}{restaurant_id}", entry))

    def told(self, entry: str) -> None:
        """A worker made room by removing `entry`: if it is one of this worker's dashboards, close it."""
        if self.ours(entry):
            name = entry.split("|", 1)[1]
            self.registered.pop(name, None)
            self.close(name)

    def ours(self, entry: str) -> bool:
        return entry.startswith(f"{self.worker}.")

    async def tell_to_close(self, entry: str) -> None:
        if self.tell is not None:
            try:
                await asyncio.wait_for(self.tell(entry), ANSWER_WITHIN)
            except (RedisError, OSError, TimeoutError):
                log.warning("could not tell another worker to close a dashboard: it stays open, uncounted")

    async def beat_on(self) -> None:
        while True:
            await asyncio.sleep(self.beat)
            await self.renew()

    async def renew(self) -> None:
        """Renew this epoch's liveness; if Redis lost it (a restart, a long stall) or was away, start a new one."""
        try:
            kept = await self.ask(self.redis.set(f"{ALIVE}{self.epoch}", 1, px=self.ttl_ms, get=True))
            if kept is None or not self.counting:
                await self.register()
        except Unanswered:
            pass

    @property
    def ttl_ms(self) -> int:
        return int(BEATS_TO_LIVE * self.beat * 1000)

    async def register(self) -> None:
        """Count this worker's dashboards in Redis again, under a new epoch (the old one's entries die with it)."""
        self.counting = False
        old, old_names = self.epoch, self.registered
        self.epoch, self.registered = f"{self.worker}.{next(self.epochs)}", {}
        await self.ask(self.forget(old, old_names))
        await self.ask(self.redis.set(f"{ALIVE}{self.epoch}", 1, px=self.ttl_ms))
        while True:  # dashboards may join or leave while the entries are written: until they match
            held = {name: rid for rid, name in self.held()}
            missing = {name: rid for name, rid in held.items() if name not in self.registered}
            if not missing:
                break
            await self.ask(self.add(missing))
            self.registered.update(missing)
        for name in [name for name in self.registered if name not in held]:
            self.give_back(name)
        self.counting = True
        if self.away:
            self.away = False
            log.warning("Redis answers again: dashboards are counted across workers")

    async def add(self, names: dict[str, int]) -> None:
        by_restaurant: dict[int, list[str]] = {}
        for name, rid in names.items():
            by_restaurant.setdefault(rid, []).append(f"{self.epoch}|{name}")
        for rid, entries in by_restaurant.items():
            await self.hold(keys=[f"{PLACES}{rid}", ORDER], args=entries)

    async def forget(self, epoch: str, names: dict[str, int]) -> None:
        """An epoch's liveness and entries, gone (a worker's end, or the start of its next epoch)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(f"{ALIVE}{epoch}")
            for name, rid in names.items():
                pipe.zrem(f"{PLACES}{rid}", f"{epoch}|{name}")
            await pipe.execute()

    async def ask(self, command: Awaitable[T]) -> T:
        """Redis's answer; Unanswered if it gives none in time (logged once: this worker then counts alone)."""
        try:
            return await asyncio.wait_for(command, ANSWER_WITHIN)
        except (RedisError, OSError, TimeoutError) as error:
            self.counting = False
            if not self.away:
                self.away = True
                log.warning("Redis does not answer (%s): each worker counts its own dashboards until it does",
                            type(error).__name__)
            raise Unanswered from error


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
