"""Rate limits: a token bucket, one bucket per client, the guests' taps, and the same buckets shared in Redis.

With several workers, a client's budget must not be one per worker: `SharedLimits` keeps
the per-client buckets in Redis (one script takes from them atomically, on Redis's clock),
so every worker spends from one budget. While Redis does not answer, each worker's own
buckets stand in; a request is never refused, nor held up long, because Redis is away.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from ipaddress import IPv6Address, IPv6Network, ip_address

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def client_key(address: str | None) -> str:
    """What a client is limited by: its address, or for IPv6 its /64.

    A home or mobile network hands each device a whole /64, and a device can take a new
    address in it at will; counting each address apart would let one phone be many.
    """
    try:
        parsed = ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if isinstance(parsed, IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class TokenBucket:
    """Allows `burst` events at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.updated = clock()

    def take(self) -> bool:
        if not self.allows():
            return False
        self.tokens -= 1
        return True

    def allows(self) -> bool:
        """Whether an event would be allowed now (nothing is spent)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return self.tokens >= 1

    def give_back(self) -> None:
        """Return a token taken for an event that turned out not to count."""
        self.tokens = min(self.burst, self.tokens + 1)


class PerAddress:
    """A bucket per client address, forgetting the least recently seen beyond `remember` addresses.

    `name` tells its buckets apart from other limits' in Redis (SharedLimits).
    """

    def __init__(self, name: str, rate: float, burst: float, remember: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.rate = rate
        self.burst = burst
        self.remember = remember
        self.clock = clock
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, address: str) -> bool:
        return self._bucket(address).take()

    def allows(self, address: str) -> bool:
        """Whether the address may go on now (nothing is spent, and no bucket is made for it)."""
        bucket = self.buckets.get(address)
        return bucket is None or bucket.allows()

    def knows(self, address: str) -> bool:
        """Whether the address has spent anything that is still remembered."""
        return address in self.buckets

    def give_back(self, address: str) -> None:
        bucket = self.buckets.get(address)
        if bucket is not None:
            bucket.give_back()

    def _bucket(self, address: str) -> TokenBucket:
        bucket = self.buckets.pop(address, None) or TokenBucket(self.rate, self.burst, self.clock)
        self.buckets[address] = bucket
        if len(self.buckets) > self.remember:
            self.buckets.popitem(last=False)
        return bucket


class GuestTaps:
    """Guests' calls from their table's page, limited so that no single phone can lock a table's guests out.

    Per phone at a table `per_phone` a minute; per phone `3 * per_phone` a minute across tables; per
    table a ceiling of `5 * per_phone` a minute, more than one phone can spend there. A phone that only
    knows an old printed address has no more than any other single phone. A tap counts against all
    three or none.
    """

    def __init__(self, per_phone: int, clock: Callable[[], float] = time.monotonic) -> None:
        def per_minute(name: str, n: int) -> PerAddress:
            return PerAddress(name, rate=n / 60, burst=n, clock=clock)

        self.at_table = per_minute("guest at table", per_phone)
        self.phone = per_minute("guest", 3 * per_phone)
        self.table = per_minute("table", 5 * per_phone)

    def buckets(self, table: str, phone: str) -> Buckets:
        return [(self.at_table, f"{table} {phone}"), (self.phone, phone), (self.table, table)]

    def take(self, table: str, phone: str) -> bool:
        return take_all(self.buckets(table, phone))


Buckets = Sequence[tuple[PerAddress, str]]  # (limit, client): one bucket each


def take_all(buckets: Buckets) -> bool:
    """One token from every bucket, or (if one has none) from none of them."""
    if not all(limiter.allows(key) for limiter, key in buckets):
        return False
    for limiter, key in buckets:
        limiter.take(key)
    return True


# KEYS: the buckets. ARGV[1]: 'take' (a token from every bucket, if each has one), 'allows' (whether each has one;
# nothing spent), 'take known' (a token from the one bucket, if it exists) or 'give back' (a token back to it, if
# it exists); then each bucket's rate (tokens a second) and burst. A bucket is a hash (tokens, when), gone once
# full again. Returns 1 (taken, allowed, given) or 0.
BUCKETS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local what, levels, found, allowed = ARGV[1], {}, {}, 1
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local saved = redis.call('HMGET', key, 'tokens', 'when')
  found[i] = saved[1] ~= false
  levels[i] = burst
  if found[i] then levels[i] = math.min(burst, tonumber(saved[1]) + math.max(0, now - tonumber(saved[2])) * rate) end
  if levels[i] < 1 then allowed = 0 end
end
if what == 'allows' then return allowed end
if what ~= 'take' and not found[1] then return 0 end
if what ~= 'give back' and allowed == 0 then return 0 end
local change = -1
if what == 'give back' then change = 1 end
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local level = math.min(burst, levels[i] + change)
  redis.call('HSET', key, 'tokens', string.format('%.6f', level), 'when', string.format('%.6f', now))
  redis.call('PEXPIRE', key, math.ceil((burst - level) / rate * 1000) + 1)
end
return 1
"""
PREFIX = "maitre:limit:"  # + the limit's name + the client, hashed (a guest's bucket is named by its table's QR token)
ANSWER_WITHIN = 0.5  # seconds Redis has to answer before this worker's own buckets decide
ASK_AGAIN_AFTER = 1.0  # seconds this worker's own buckets decide alone after Redis did not answer


def hidden(client: str) -> str:
    """A client as Redis names its bucket: a hash, so that no QR token or address is readable there."""
    return hashlib.blake2b(client.encode(), digest_size=12).hexdigest()


class SharedLimits:
    """PerAddress's questions, answered for every worker at once by the buckets in Redis (`redis`).

    Without Redis (None), and for ASK_AGAIN_AFTER seconds after it failed to answer (logged once
    until it answers again), each limit's own buckets in this worker answer, as with one worker.
    """

    def __init__(self, redis: Redis | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.clock = clock
        self.script = redis.register_script(BUCKETS) if redis is not None else None
        self.away_until: float | None = None  # Redis failed to answer: this worker's buckets decide until then

    async def take(self, buckets: Buckets) -> bool:
        """A token from every bucket (a client's, under each limit), or from none if one has none."""
        shared = await self.ask("take", buckets)
        return take_all(buckets) if shared is None else shared

    async def allows(self, limiter: PerAddress, client: str) -> bool:
        shared = await self.ask("allows", [(limiter, client)])
        return limiter.allows(client) if shared is None else shared

    async def take_known(self, limiter: PerAddress, client: str) -> bool:
        """A token, only from a client that has already spent one not yet refilled (PerAddress.knows)."""
        shared = await self.ask("take known", [(limiter, client)])
        return (limiter.knows(client) and limiter.take(client)) if shared is None else shared

    async def give_back(self, limiter: PerAddress, client: str) -> None:
        if await self.ask("give back", [(limiter, client)]) is None:
            limiter.give_back(client)

    async def ask(self, what: str, buckets: Buckets) -> bool | None:
        """Redis's answer, or None: this worker's buckets answer."""
        if self.script is None or self.away_until is not None and self.clock() < self.away_until:
            return None
        args: list[str | float] = [what]
        for limiter, _ in buckets:
            args += [limiter.rate, limiter.burst]
        keys = [f"{PREFIX}{limiter.name}:{hidden(client)}" for limiter, client in buckets]
        try:
            answer = await asyncio.wait_for(self.script(keys=keys, args=args), ANSWER_WITHIN)
        except (RedisError, OSError, TimeoutError) as error:
            if self.away_until is None:
                log.warning("Redis does not answer (%s): each worker keeps its own rate limits until it does",
                            type(error).__name__)
            self.away_until = self.clock() + ASK_AGAIN_AFTER
            return None
        if self.away_until is not None:
            self.away_until = None
            log.warning("Redis answers again: rate limits are shared by every worker")
        return bool(answer)
