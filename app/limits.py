"""Rate limits: a token bucket, one bucket per client, and the guests' taps."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network, ip_address


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
    """A bucket per client address, forgetting the least recently seen beyond `remember` addresses."""

    def __init__(self, rate: float, burst: float, remember: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
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
        def per_minute(n: int) -> PerAddress:
            return PerAddress(rate=n / 60, burst=n, clock=clock)

        self.at_table = per_minute(per_phone)
        self.phone = per_minute(3 * per_phone)
        self.table = per_minute(5 * per_phone)

    def take(self, table: str, phone: str) -> bool:
        buckets = [(self.at_table, f"{table} {phone}"), (self.phone, phone), (self.table, table)]
        if not all(limiter.allows(key) for limiter, key in buckets):
            return False
        for limiter, key in buckets:
            limiter.take(key)
        return True
