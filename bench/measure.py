"""What every server of `python -m bench` goes through, the same way: Maître, the floor and the peer.

Each is driven by the same load (bench/load.py, a Fleet speaking its protocol): the fan-out
run at a steady rate, then the throughput ladder, then more idle sockets up to each count
of the memory measurement, its RSS read from /proc.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from .load import Fleet, Outcome, percentile
from .stalls import Stalls

P99_AT_MOST_MS = 50.0  # a rung of the ladder is sustained while its p99 fan-out stays under this
ACKED_AT_LEAST = 0.8  # ... and at least this share of the offered rate is acknowledged


@dataclass
class Measured:
    """One server's figures."""

    name: str
    fanout: Outcome | None = None
    ladder: list[tuple[float, Outcome]] = field(default_factory=list)  # (offered rate, outcome)
    rss_empty: int = 0  # KiB
    rss: dict[int, int] = field(default_factory=dict)  # sockets connected -> KiB
    stalls: Stalls = field(default_factory=Stalls)  # the box's own pauses during the fan-out run

    def sustained(self) -> tuple[float, float]:
        """The highest acknowledged rate whose p99 fan-out stayed under 50 ms, and that p99."""
        best = (0.0, float("nan"))
        for _, outcome in self.ladder:
            p99 = percentile(outcome.latencies_ms, 99)
            if p99 < P99_AT_MOST_MS and outcome.rate > best[0]:
                best = (outcome.rate, p99)
        return best

    def per_socket(self) -> dict[int, float]:
        """KiB of RSS per idle socket at each count: the growth over the empty server, divided by the count."""
        return {count: (kib - self.rss_empty) / count for count, kib in sorted(self.rss.items())}


async def load(fleet: Fleet, measured: Measured, rate: float, seconds: float, rates: tuple[float, ...]) -> None:
    """The fan-out run at `rate`, then the ladder: each offered rate in turn until one is not sustained."""
    with Stalls() as measured.stalls:
        measured.fanout = await fleet.run(rate, seconds)
    for offered in rates:
        outcome = await fleet.run(offered, seconds)
        measured.ladder.append((offered, outcome))
        if percentile(outcome.latencies_ms, 99) > P99_AT_MOST_MS or outcome.rate < offered * ACKED_AT_LEAST:
            break


async def memory(fleet: Fleet, table_ids: list[list[int]], counts: tuple[int, ...], rss: Callable[[], int],
                 measured: Measured, settle: float = 2.0) -> None:
    """Idle sockets of more restaurants (past the fleet's own, of the same protocol) up to each count in all; the
    server's RSS at each. They are closed again at the end."""
    idle = type(fleet)(fleet.session, fleet.url_of, fleet.dashboards, table_ids)
    waiting = idle.restaurants[len(fleet.restaurants):]
    idle.restaurants = []
    try:
        for count in counts:
            more = max(0, count // fleet.dashboards - len(fleet.restaurants) - len(idle.restaurants))
            batch, waiting = waiting[:more], waiting[more:]
            idle.restaurants += batch
            await idle.connect_restaurants(batch)
            await asyncio.sleep(settle)
            measured.rss[count] = rss()
    finally:
        await idle.close()
