"""Soak: many dashboards reconnecting all the time, for a long while; memory and file descriptors stay flat.

    python -m bench.soak [--sockets 1000] [--minutes 10] [--churn 20]

Connects the sockets (50 restaurants x 20 at the default), then for the whole run closes
and reopens `--churn` of them a second, chosen at random, while a few actions a second
keep the dashboards busy. RSS and open file descriptors are read from /proc after a first
full round of connections (the baseline) and again at the end, with the same number of
sockets connected.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from .load import Fleet
from .servers import ROOT, Process, free_port, prepare


@dataclass
class Soak:
    seconds: float
    reconnects: int
    rss_start: int
    rss_end: int
    fds_start: int
    fds_end: int

    def __str__(self) -> str:
        growth = (self.rss_end - self.rss_start) / self.rss_start
        return (f"{self.reconnects:,} reconnects in {self.seconds:.0f} s: "
                f"RSS {self.rss_start:,} -> {self.rss_end:,} KiB ({growth:+.1%}), "
                f"open files {self.fds_start} -> {self.fds_end}")


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def run(directory: Path, sockets: int, seconds: float, churn: float) -> Soak:
    restaurants = max(1, sockets // 20)
    keys, table_ids = await prepare(directory / "maitre.db", restaurants, 10)
    port = free_port()
    server = Process([sys.executable, str(ROOT / "run.py"), "serve", "--db", str(directory / "maitre.db"), "--port",
                      str(port), "--no-demo", "--log-level", "WARNING", "--max-connections-per-restaurant", "40"],
                     ready="Running on")
    pid = server.process.pid
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            fleet = Fleet(session, lambda r: f"http://127.0.0.1:{port}/admin/ws/dashboard?token={keys[r]}",
                          sockets // restaurants, table_ids)
            await fleet.connect()
            await asyncio.sleep(2)
            rss_start, fds_start = server.rss_kib(), open_files(pid)
            reconnects = 0
            started = time.monotonic()
            actions = asyncio.create_task(fleet.run(rate=5, seconds=seconds))
            while time.monotonic() - started < seconds:
                restaurant = random.choice(fleet.restaurants)
                if restaurant.sockets:
                    ws = restaurant.sockets.pop(random.randrange(len(restaurant.sockets)))
                    await ws.close()
                    await fleet.connect_restaurants([restaurant], batch=1, each=1)  # the tablet comes back
                    reconnects += 1
                await asyncio.sleep(1 / churn)
            await actions
            await asyncio.sleep(3)
            rss_end, fds_end = server.rss_kib(), open_files(pid)
            await fleet.close()
    finally:
        server.stop()
    return Soak(seconds, reconnects, rss_start, rss_end, fds_start, fds_end)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--churn", type=float, default=20, help="reconnects a second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="maitre-soak-") as tmp:
        print(asyncio.run(run(Path(tmp), args.sockets, args.minutes * 60, args.churn)))


if __name__ == "__main__":
    main()
