"""Soak: many dashboards reconnecting all the time, for a long while; memory and file descriptors stay flat.

    python -m bench.soak [--sockets 1000] [--minutes 10] [--churn 20] [--sample 30]

Connects the sockets (50 restaurants x 20 at the default), then warms up: enough actions
to fill every restaurant's replay buffer to its bound (`REPLAY_SIZE` updates), and a first
round of reconnects. RSS and open file descriptors are read from /proc at the end of the
warm-up (the baseline), every `--sample` seconds while, for the whole run, `--churn`
dashboards a second are closed and reopened at random and a few actions a second keep
the dashboards busy, and again at the end, with the same number of sockets connected.

Without the warm-up, a ten-minute run measures the replay buffers filling up (at five
actions a second over 50 restaurants that takes over an hour), not a leak.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from app.hub import REPLAY_SIZE

from .load import Fleet
from .servers import free_port, maitre, prepare


@dataclass
class Soak:
    seconds: float
    reconnects: int
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (seconds in, RSS KiB, open files)

    @property
    def rss_start(self) -> int:
        return self.samples[0][1]

    @property
    def rss_end(self) -> int:
        return self.samples[-1][1]

    @property
    def fds_start(self) -> int:
        return self.samples[0][2]

    @property
    def fds_end(self) -> int:
        return self.samples[-1][2]

    def growth(self, since: float = 0.0) -> float:
        """RSS growth from the first sample at or after `since` seconds to the end."""
        first = next(rss for at, rss, _ in self.samples if at >= since)
        return (self.rss_end - first) / first

    def __str__(self) -> str:
        half = self.seconds / 2
        return (f"{self.reconnects:,} reconnects in {self.seconds:.0f} s: "
                f"RSS {self.rss_start:,} -> {self.rss_end:,} KiB ({self.growth():+.1%}; "
                f"{self.growth(half):+.1%} over the second half), "
                f"open files {self.fds_start} -> {self.fds_end}")


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def churn(fleet: Fleet, seconds: float, rate: float) -> int:
    """Close and reopen `rate` dashboards a second, chosen at random; the number reopened."""
    reconnects = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        restaurant = random.choice(fleet.restaurants)
        if restaurant.sockets:
            ws = restaurant.sockets.pop(random.randrange(len(restaurant.sockets)))
            await ws.close()
            await fleet.connect_restaurants([restaurant], batch=1, each=1)  # the tablet comes back
            reconnects += 1
        await asyncio.sleep(1 / rate)
    return reconnects


async def run(directory: Path, sockets: int, seconds: float, rate: float, sample: float = 30.0,
              warmup: bool = True, report=print) -> Soak:
    restaurants = max(1, sockets // 20)
    keys, table_ids = await prepare(directory / "maitre.db", restaurants, 10)
    port = free_port()
    server = maitre(directory / "maitre.db", port, "--max-connections-per-restaurant", "40")
    pid = server.process.pid
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            fleet = Fleet(session, lambda r: f"http://127.0.0.1:{port}/admin/ws/dashboard?token={keys[r]}",
                          sockets // restaurants, table_ids)
            await fleet.connect()
            if warmup:
                actions = restaurants * (REPLAY_SIZE + 16)
                warmed = await fleet.run(rate=400, seconds=actions / 400)
                report(f"warm-up: {warmed.acked:,} actions acknowledged (replay buffers full)")
                report(f"warm-up: {await churn(fleet, min(60.0, seconds / 5), rate):,} reconnects")
            await asyncio.sleep(2)
            soak = Soak(seconds, 0)

            def look(at: float) -> None:
                soak.samples.append((at, server.rss_kib(), open_files(pid)))
                report(f"{at:6.0f} s  RSS {soak.samples[-1][1]:,} KiB  open files {soak.samples[-1][2]}")

            look(0.0)
            started = time.monotonic()
            actions_task = asyncio.create_task(fleet.run(rate=5, seconds=seconds))

            async def sampling() -> None:
                while True:
                    await asyncio.sleep(sample)
                    look(time.monotonic() - started)

            sampler = asyncio.create_task(sampling())
            soak.reconnects = await churn(fleet, seconds, rate)
            await actions_task
            sampler.cancel()
            await asyncio.sleep(3)
            look(time.monotonic() - started)
            await fleet.close()
    finally:
        server.stop()
    return soak


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--churn", type=float, default=20, help="reconnects a second")
    parser.add_argument("--sample", type=float, default=30, help="seconds between readings of RSS and open files")
    parser.add_argument("--no-warmup", action="store_true", help="measure from a cold start (buffers still filling)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="maitre-soak-") as tmp:
        print(asyncio.run(run(Path(tmp), args.sockets, args.minutes * 60, args.churn, args.sample,
                              warmup=not args.no_warmup)))


if __name__ == "__main__":
    main()
