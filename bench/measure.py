"""What every server of `python -m bench` goes through, the same way: Maître, the floor and the peer.

Each is driven by the same load (bench/load.py, a Fleet speaking its protocol): the fan-out
run at a steady rate, then the throughput ladder, then more idle sockets up to each count
of the memory measurement, its RSS read from /proc.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp

from .load import Fleet, Outcome, percentile
from .stalls import Stalls

if TYPE_CHECKING:
    from .servers import Process

@dataclass
class Scale:
    restaurants: int = 50
    dashboards: int = 20
    tables: int = 20
    memory_connections: tuple[int, ...] = (1000, 5000)
    background_rate: float = 100.0
    seconds: float = 10.0
    # the ladder: each server goes up it until a rung is not sustained (the peer's first fell at 500/s)
    rates: tuple[float, ...] = (100, 250, 500, 750, 1000, 1250, 1500, 2000, 3000, 4000, 5000)
    idle_seconds: float = 60.0
    commits: int = 3000
    client_updates: int = 30
    client_tables: tuple[int, ...] = (40, 120)
    end_of_service_repetitions: int = 30
    extra: dict[str, str] = field(default_factory=dict)


QUICK = Scale(restaurants=10, dashboards=20, memory_connections=(200, 400), background_rate=50, seconds=3,
              rates=(250, 1000), idle_seconds=3, commits=500, client_updates=10, client_tables=(40,),
              end_of_service_repetitions=5)


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
    cpu: list[tuple[float, float]] = field(default_factory=list)  # each rung: the server's, the load's share of a core

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


async def load(fleet: Fleet, measured: Measured, scale: Scale, cpu: Callable[[], float]) -> None:
    """The fan-out run at the scale's background rate, then the ladder: each offered rate in turn until one is
    not sustained. `cpu` is the server's CPU seconds so far: each rung notes the server's and the load's share."""
    with Stalls() as measured.stalls:
        measured.fanout = await fleet.run(scale.background_rate, scale.seconds)
    for offered in scale.rates:
        server, load, wall = cpu(), time.process_time(), time.perf_counter()
        outcome = await fleet.run(offered, scale.seconds)
        wall = time.perf_counter() - wall
        measured.cpu.append(((cpu() - server) / wall, (time.process_time() - load) / wall))
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


async def measure_other(server: Process, kind: type[Fleet], url_of: Callable[[int], str], table_ids: list[list[int]],
                        scale: Scale, measured: Measured) -> None:
    """A reference server (the floor, the peer) through what Maître went through, then stopped."""
    try:
        await asyncio.sleep(1.5)
        measured.rss_empty = server.rss_kib()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            fleet = kind(session, url_of, scale.dashboards, table_ids[: scale.restaurants])
            await fleet.connect()
            await asyncio.sleep(2)
            measured.rss[scale.restaurants * scale.dashboards] = server.rss_kib()
            await load(fleet, measured, scale, server.cpu_seconds)
            await memory(fleet, table_ids, scale.memory_connections, server.rss_kib, measured)
            await fleet.close()
    finally:
        server.stop()
