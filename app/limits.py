"""Rate limits: a token bucket, and one bucket per client address."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBucket:
    """Allows `burst` events at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


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
        bucket = self.buckets.pop(address, None) or TokenBucket(self.rate, self.burst, self.clock)
        self.buckets[address] = bucket
        if len(self.buckets) > self.remember:
            self.buckets.popitem(last=False)
        return bucket.take()
