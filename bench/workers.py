"""Several workers over Redis: fan-out across workers, sustained actions/s, and what Redis costs per change.

    python -m bench.workers            # about six minutes on two cores
    python -m bench.workers --quick    # well under a minute: checks that the harness works

Every server is a real `run.py serve` process on a port of its own, so the load knows
which dashboard is on which worker; two of them share one database file and, when said,
one real `redis-server` (loopback, persistence off). Nothing is written to the docs: the
markdown table printed at the end is what docs/benchmarks.md's "Several workers" section
holds, by hand.

1. Fan-out latency, from sending an action until its update has reached all D dashboards
   of its restaurant: the actions come from a sender socket per restaurant on worker A;
   the D dashboards are on A (same worker), on B with Redis (across workers), or on B
   without Redis (the database watcher, twice a second). The same again on one process
   without Redis, today's setup. Same load as `python -m bench`'s fan-out row.
2. Sustained actions/s with p99 fan-out under 50 ms: the throughput ladder of `python -m
   bench` on one process, and on two processes + Redis with each restaurant's dashboards
   split over both (half on A, half on B; they take turns sending, so the load is split
   too); then on the same sockets with only A's dashboards sending, so that one process
   writes to the database and the other only delivers. The CPU time of every process is
   read from /proc for each rung, the load generator's (this process) and the rest of the
   box's as well: on a two-core box they compete with the servers.
3. Redis's cost per change: one process at a fixed rate, without Redis and then with
   `--redis-url` (it publishes each change once and hears its own message back): the
   server's CPU time per change beyond its idle cost, and redis-server's. And app/bus.py's
   RedisBus alone: two buses in this process, one publishing, one receiving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.queues
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import redis.asyncio as redis

from app.bus import RedisBus
from app.db import BUSY_TIMEOUT_MS
from app.hub import Hub

from .__main__ import raw_commit_rate
from .load import Fleet, Outcome, percentile
from .servers import Process, free_port, maitre, prepare

SOCKET = "/admin/ws/dashboard"
CHANNEL = "maitre:bus"  # app/bus.py's
P99_AT_MOST = 50.0
UPDATE_BYTES = 1522  # a free table's table_update (docs/benchmarks.md)


@dataclass
class Scale:
    restaurants: int = 50
    dashboards: int = 20
    tables: int = 20
    rate: float = 100.0  # actions/s for the latency runs, as `python -m bench`'s fan-out row
    latency_seconds: float = 30.0  # long enough that each latency run meets the servers' full garbage collections
    seconds: float = 10.0  # each rung of the ladders, and the runs measuring CPU
    rates: tuple[float, ...] = (250, 500, 750, 1000, 1250, 1500, 2000)
    overhead_rate: float = 250.0
    commits: int = 3000
    bus_changes: int = 5000
    writer_seconds: float = 5.0


QUICK = Scale(restaurants=5, dashboards=20, rate=20, latency_seconds=2, seconds=2, rates=(50, 100), overhead_rate=50,
              commits=300, bus_changes=200, writer_seconds=1)


@dataclass
class Run:
    """One measured run: its outcome, the wall time including the wait for the last updates, and CPU seconds
    by process ("A", "B", "redis", and "load" for this process)."""

    outcome: Outcome
    wall: float
    cpu: dict[str, float]
    idle: dict[str, float] = field(default_factory=dict)  # CPU seconds a second with the same sockets and no actions

    def p(self, percent: float) -> float:
        return percentile(self.outcome.latencies_ms, percent)

    def per_change_us(self, name: str) -> float:
        return self.cpu[name] / self.outcome.acked * 1e6 if self.outcome.acked else float("nan")

    def marginal_us(self, name: str) -> float:
        """CPU per change beyond what the process spends idle with the same sockets (heartbeats, the watcher,
        Redis's pings and liveness beats)."""
        return (self.cpu[name] - self.idle[name] * self.wall) / self.outcome.acked * 1e6

    def share(self, name: str) -> float:
        """Of one core, over the run."""
        return self.cpu[name] / self.wall


@dataclass
class Report:
    scale: Scale
    commit_rate: float = 0.0
    one: Run | None = None  # one process, no Redis, dashboards and senders on it
    same: Run | None = None  # A and B on Redis; dashboards on A, senders on A
    across: Run | None = None  # dashboards on B, senders on A, through Redis
    watcher: Run | None = None  # dashboards on B, senders on A, no Redis
    ladder_one: list[tuple[float, Run]] = field(default_factory=list)
    ladder_two: list[tuple[float, Run]] = field(default_factory=list)
    ladder_two_one_writer: list[tuple[float, Run]] = field(default_factory=list)  # the same, actions through A only
    plain: Run | None = None  # one process at the fixed rate, no Redis
    with_redis: Run | None = None  # the same with --redis-url
    bus: BusCost | None = None
    writers: list[Writers] = field(default_factory=list)  # one writer process, then two

    def markdown(self, command: str, when: datetime) -> str:
        assert self.one and self.same and self.across and self.watcher and self.plain and self.with_redis and self.bus
        s = self.scale
        sockets = s.restaurants * s.dashboards
        one_rate, one_run = sustained(self.ladder_one)
        two_rate, two_run = sustained(self.ladder_two)
        writer_rate, writer_run = sustained(self.ladder_two_one_writer)

        def lat(run: Run) -> str:
            return f"p50 {run.p(50):.2f} ms, p99 {run.p(99):.2f} ms"

        def ratios(run: Run, reference: Run) -> str:
            return f"{run.p(50) / reference.p(50):.2f}x, {run.p(99) / reference.p(99):.2f}x"

        def at(rate: float, run: Run | None) -> str:
            return f"{rate:,.0f}/s (p99 {run.p(99):.2f} ms)" if run else f"under {s.rates[0]:,.0f}/s"

        def times(rate: float, reference: float) -> str:
            return f"{rate / reference:.2f}x" if rate and reference else "n/a"

        with_redis, plain = self.with_redis.marginal_us("A"), self.plain.marginal_us("A")
        lines = [
            f"Measured {when:%Y-%m-%d %H:%M} UTC with `{command}`: Python {platform.python_version()}, "
            f"aiohttp {aiohttp.__version__}, redis-server {redis_version()}, {os.cpu_count()} CPUs.",
            "",
            "| Measure | Value | Reference | Ratio |",
            "|---|---|---|---|",
            f"| Fan-out across workers: change on A, all {s.dashboards} dashboards on B, Redis | {lat(self.across)} | "
            f"same worker (dashboards on A): {lat(self.same)} | {ratios(self.across, self.same)} |",
            f"| Fan-out across workers without Redis (B's database watcher) | {lat(self.watcher)} | "
            f"through Redis: {lat(self.across)} | {ratios(self.watcher, self.across)} |",
            f"| Fan-out on one process, no Redis (today) | {lat(self.one)} | "
            f"same worker of two on Redis: {lat(self.same)} | {ratios(self.one, self.same)} |",
            f"| Sustained durable actions/s, p99 fan-out < {P99_AT_MOST:.0f} ms, {sockets:,} sockets | "
            f"2 processes + Redis: {at(two_rate, two_run)} | 1 process: {at(one_rate, one_run)} | "
            f"{times(two_rate, one_rate)} |",
            f"| The same, every action sent to A's dashboards (one process writes to the database) | "
            f"2 processes + Redis: {at(writer_rate, writer_run)} | 1 process: {at(one_rate, one_run)} | "
            f"{times(writer_rate, one_rate)} |",
            f"| Server CPU per change beyond idle, one process, {s.dashboards} dashboards a restaurant, "
            f"{s.overhead_rate:.0f}/s | with Redis: {with_redis:.0f} µs (+ redis-server "
            f"{self.with_redis.marginal_us('redis'):.0f} µs) | without: {plain:.0f} µs | "
            f"{with_redis - plain:+.0f} µs ({with_redis / plain:.2f}x) |",
            f"| CPU per change for RedisBus alone, publishing bus + receiving bus | {self.bus.cpu_us:.0f} µs "
            f"(+ redis-server {self.bus.redis_us:.0f} µs) | | |",
            f"| Raw SQLite commits/s (WAL, synchronous=FULL, one UPDATE each) | {self.commit_rate:,.0f}/s | | |",
            f"| Raw SQLite commits/s, two writer processes on one file, flat out | {self.writers[1].summary()} | "
            f"one writer process: {self.writers[0].summary()} | "
            f"{sum(self.writers[1].commits) / sum(self.writers[0].commits):.2f}x |",
            "",
            f"Latency runs: {s.rate:.0f} actions/s for {s.latency_seconds:.0f} s over {s.restaurants} restaurants x "
            f"{s.dashboards} dashboards, from one sender socket per restaurant on A: "
            + "; ".join(f"{name}: {run.outcome.acked} acked, {run.outcome.errors} refused, "
                        f"{len(run.outcome.latencies_ms)} timed, other processes {run.share('others'):.0%} of a core"
                        for name, run in (("one process", self.one), ("same worker", self.same),
                                          ("across", self.across), ("watcher", self.watcher))) + ".",
            "Across workers through Redis, CPU per change: A "
            f"{self.across.per_change_us('A'):.0f} µs (commits, renders, publishes), B "
            f"{self.across.per_change_us('B'):.0f} µs (receives, writes to {s.dashboards} sockets), redis-server "
            f"{self.across.per_change_us('redis'):.0f} µs; same worker: A {self.same.per_change_us('A'):.0f} µs, "
            f"B {self.same.per_change_us('B'):.0f} µs.",
            "",
            "Throughput ladder (offered: acknowledged, refused, p50, p99; CPU as a share of one core: servers, "
            "redis-server, this load generator, and every other process on the box):",
            ladder_line("1 process", self.ladder_one, ("A",)),
            ladder_line("2 processes + Redis", self.ladder_two, ("A", "B")),
            ladder_line("2 processes + Redis, every action sent to A (one process writes)", self.ladder_two_one_writer,
                        ("A", "B")),
            "",
            f"Redis cost at {s.overhead_rate:.0f}/s on one process ({sockets:,} sockets), without and with Redis: "
            f"{self.plain.outcome.acked} and {self.with_redis.outcome.acked} changes in {s.seconds:.0f} s; server "
            f"CPU {self.plain.cpu['A']:.2f} s and {self.with_redis.cpu['A']:.2f} s, idle "
            f"{self.plain.idle['A'] * 1000:.1f} and {self.with_redis.idle['A'] * 1000:.1f} ms a second; "
            f"redis-server {self.with_redis.cpu['redis']:.2f} s (idle {self.with_redis.idle['redis'] * 1000:.1f} ms "
            f"a second); fan-out p99 {self.plain.p(99):.2f} and {self.with_redis.p(99):.2f} ms; other processes "
            f"{self.plain.share('others'):.0%} and {self.with_redis.share('others'):.0%} of a core.",
            self.bus.line(),
            "",
            "Raw SQLite writers on one file, each its own process, flat out (raw commits' transactions, each timed "
            "from BEGIN IMMEDIATE to COMMIT): " + "; ".join(writers.line() for writers in self.writers) + ".",
        ]
        return "\n".join(lines)


def ladder_line(name: str, ladder: list[tuple[float, Run]], servers: tuple[str, ...]) -> str:
    def rung(rate: float, run: Run) -> str:
        cpu = " + ".join(f"{run.share(s):.0%}" for s in servers)
        redis_cpu = f", {run.share('redis'):.0%}" if "redis" in run.cpu else ""
        return (f"{rate:,.0f}/s: {run.outcome.rate:,.0f}/s, {run.outcome.errors} refused, {run.p(50):.2f} ms, "
                f"{run.p(99):.2f} ms "
                f"(CPU {cpu}{redis_cpu}, load {run.share('load'):.0%}, others {run.share('others'):.0%})")

    return f"- {name}: " + "; ".join(rung(rate, run) for rate, run in ladder) + "."


def sustained(ladder: list[tuple[float, Run]]) -> tuple[float, Run | None]:
    """The highest acknowledged rate whose p99 fan-out stayed under the bound, and its run."""
    best: tuple[float, Run | None] = (0.0, None)
    for _, run in ladder:
        if run.p(99) < P99_AT_MOST and run.outcome.rate > best[0]:
            best = (run.outcome.rate, run)
    return best


def redis_program() -> str:
    found = shutil.which("redis-server") or "/usr/sbin/redis-server"
    if not os.access(found, os.X_OK):
        sys.exit("redis-server is not installed: apt install redis-server")
    return found


def redis_version() -> str:
    text = subprocess.run([redis_program(), "--version"], capture_output=True, text=True).stdout
    return next((part[2:] for part in text.split() if part.startswith("v=")), "?")


def start_redis(directory: Path) -> tuple[Process, str]:
    """Debian's redis-server on a free loopback port, persistence off, as the tests start it."""
    port = free_port()
    server = Process([redis_program(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                      "no", "--dir", str(directory), "--daemonize", "no"], ready="Ready to accept connections")
    return server, f"redis://127.0.0.1:{port}/0"


def start_maitre(db: Path, redis_url: str | None) -> tuple[Process, str]:
    """The server as `python -m bench` starts it (1,000 sockets allowed per restaurant), on Redis if given."""
    port = free_port()
    flags = ["--max-connections-per-restaurant", "100000", "--heartbeat-seconds", "30", "--ws-compression", "off"]
    return maitre(db, port, *flags, *(["--redis-url", redis_url] if redis_url else [])), f"http://127.0.0.1:{port}"


async def subscribed(url: str, workers: int) -> None:
    """Until every worker's bus listens on the channel (a change published before would reach it by the watcher)."""
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 30
        while dict(await client.pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers} workers did not subscribe to {CHANNEL} within 30 s")
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


@dataclass
class Writers:
    """Raw SQLite writers on one file, each its own process, flat out: how the write lock is shared."""

    seconds: float
    commits: list[int]  # by writer
    latencies_ms: list[float]  # of every transaction, BEGIN IMMEDIATE to COMMIT, waiting for the lock included

    def summary(self) -> str:
        return (f"{sum(self.commits) / self.seconds:,.0f}/s, the slowest transaction "
                f"{max(self.latencies_ms):,.1f} ms")

    def line(self) -> str:
        return (f"{len(self.commits)} writer{'s' if len(self.commits) > 1 else ''}: "
                f"{sum(self.commits) / self.seconds:,.0f} commits/s "
                f"({' + '.join(f'{n / self.seconds:,.0f}' for n in self.commits)}), p50 "
                f"{percentile(self.latencies_ms, 50):.2f} ms, p99 {percentile(self.latencies_ms, 99):.2f} ms, "
                f"max {max(self.latencies_ms):,.1f} ms")


def commit_loop(path: str, seconds: float, results: multiprocessing.queues.Queue) -> None:
    """One writer process: raw_commit_rate's transactions, back to back, each timed."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    latencies = []
    end = time.perf_counter() + seconds
    while (start := time.perf_counter()) < end:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE t SET n = n + 1 WHERE id = 1")
        conn.execute("COMMIT")
        latencies.append((time.perf_counter() - start) * 1000)
    conn.close()
    results.put(latencies)


def raw_writers(path: Path, writers: int, seconds: float) -> Writers:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, n INTEGER)")
    conn.execute("INSERT OR IGNORE INTO t VALUES (1, 0)")
    conn.close()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=commit_loop, args=(str(path), seconds, results)) for _ in range(writers)]
    for process in processes:
        process.start()
    each = [results.get(timeout=seconds + 60) for _ in processes]
    for process in processes:
        process.join()
    return Writers(seconds, sorted((len(latencies) for latencies in each), reverse=True),
                   [ms for latencies in each for ms in latencies])


@dataclass
class BusCost:
    """app/bus.py's RedisBus on its own: CPU per change for the whole trip between two workers' buses."""

    changes: int
    text_bytes: int
    cpu_us: float  # both buses (publishing, hearing its own echo; receiving), one process
    redis_us: float

    def line(self) -> str:
        return (f"RedisBus alone: two buses in one process on the same redis-server, {self.changes:,} changes of "
                f"{self.text_bytes:,}-byte updates, one after the other: {self.cpu_us:.0f} µs of CPU per change for "
                f"the publishing bus (a pipeline of one PUBLISH, then its own echo read and dropped) and the receiving "
                f"one (read, parsed, handed to a hub nobody watches), redis-server {self.redis_us:.0f} µs.")


async def bus_cost(redis_url: str, redis_server: Process, changes: int, text_bytes: int) -> BusCost:
    here, there = RedisBus(Hub(1, 1), redis_url), RedisBus(Hub(1, 1), redis_url)
    await here.start()
    await there.start()
    try:
        await subscribed(redis_url, 2)
        text = json.dumps({"type": "table_update", "version": 1, "html": "x" * text_bytes})[:text_bytes]
        before, redis_before = time.process_time(), redis_server.cpu_seconds()
        for version in range(1, changes + 1):
            here.publish(1, [(version, text)])
            if here.sending is not None:
                await here.sending  # on, one change at a time, as a server at a few hundred changes a second
        deadline = time.monotonic() + 30
        while there.received < changes and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        if there.received < changes:
            raise RuntimeError(f"the receiving bus heard {there.received} of {changes} changes")
        cpu, redis_cpu = time.process_time() - before, redis_server.cpu_seconds() - redis_before
    finally:
        await here.close()
        await there.close()
    return BusCost(changes, len(text), cpu / changes * 1e6, redis_cpu / changes * 1e6)


class Bench:
    """The data of a run: keys, tables, and which tables are disabled now, carried from one fleet to the next."""

    def __init__(self, session: aiohttp.ClientSession, keys: list[str], table_ids: list[list[int]],
                 scale: Scale) -> None:
        self.session, self.keys, self.table_ids, self.scale = session, keys, table_ids, scale
        self.disabled: list[set[int]] = [set() for _ in table_ids]

    async def fleet(self, bases: list[str]) -> Fleet:
        """Each restaurant's dashboards split evenly over the servers at `bases`: the first base's come first in
        its `sockets`, then the next's."""
        fleet = Fleet(self.session, lambda r: "", self.scale.dashboards, self.table_ids[: self.scale.restaurants])
        for restaurant in fleet.restaurants:
            restaurant.disabled = self.disabled[restaurant.index]  # the same set: the fleet keeps it up to date
        for base in bases:
            fleet.url_of = lambda r, base=base: f"{base}{SOCKET}?token={self.keys[r]}"
            await fleet.connect_restaurants(fleet.restaurants, each=self.scale.dashboards // len(bases))
        return fleet

    async def close(self, fleet: Fleet) -> None:
        await fleet.close()

    async def fan_out(self, dashboards_on: str, senders_on: str, processes: dict[str, Process]) -> Run:
        fleet = await self.fleet([dashboards_on])
        try:
            await fleet.connect_senders(lambda r: f"{senders_on}{SOCKET}?token={self.keys[r]}")
            await asyncio.sleep(1)
            return await measured(fleet, self.scale.rate, self.scale.latency_seconds, processes)
        finally:
            await self.close(fleet)

    async def ladders(self, bases: list[str], processes: dict[str, Process],
                      first_only_too: bool = False) -> tuple[list[tuple[float, Run]], list[tuple[float, Run]]]:
        """The ladder with every dashboard sending in turn; then, if asked, with only those on the first server
        sending (so one process writes to the database), on the same sockets."""
        fleet = await self.fleet(bases)
        try:
            await asyncio.sleep(1)
            every = await self.ladder(fleet, processes)
            if not first_only_too:
                return every, []
            for restaurant in fleet.restaurants:
                restaurant.senders = restaurant.sockets[: self.scale.dashboards // len(bases)]
            return every, await self.ladder(fleet, processes)
        finally:
            await self.close(fleet)

    async def ladder(self, fleet: Fleet, processes: dict[str, Process]) -> list[tuple[float, Run]]:
        """Rates stepped up until p50 reaches 50 ms or the server acknowledges under 80% of what is offered.

        Not until p99 does, as `python -m bench` stops: one full garbage collection of a server with 1,000
        sockets holds its loop for about 120 ms (docs/benchmarks.md), so a rung's p99 says whether one fell in
        its 10 s more than how the servers keep up. The sustained rate is still the highest with p99 < 50 ms."""
        runs = []
        for rate in self.scale.rates:
            run = await measured(fleet, rate, self.scale.seconds, processes)
            runs.append((rate, run))
            if run.p(50) >= P99_AT_MOST or run.outcome.rate < rate * 0.8:
                break
        return runs

    async def steady(self, base: str, processes: dict[str, Process]) -> Run:
        """At the fixed rate, after as long idle with the same sockets (what the server spends without changes)."""
        fleet = await self.fleet([base])
        try:
            await asyncio.sleep(1)
            before = {name: process.cpu_seconds() for name, process in processes.items()}
            await asyncio.sleep(self.scale.seconds)
            idle = {name: (process.cpu_seconds() - before[name]) / self.scale.seconds
                    for name, process in processes.items()}
            run = await measured(fleet, self.scale.overhead_rate, self.scale.seconds, processes)
            run.idle = idle
            return run
        finally:
            await self.close(fleet)



def box_cpu_seconds() -> float:
    """CPU time every process on the box has used (all cores), from /proc/stat: busy, not idle or waiting."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


async def measured(fleet: Fleet, rate: float, seconds: float, processes: dict[str, Process]) -> Run:
    """The run, with the CPU of each process, this one's ("load"), and what the rest of the box used ("others")."""
    before = {name: process.cpu_seconds() for name, process in processes.items()}
    load_before, box_before, start = time.process_time(), box_cpu_seconds(), time.perf_counter()
    outcome = await fleet.run(rate, seconds)
    wall = time.perf_counter() - start
    cpu = {name: process.cpu_seconds() - before[name] for name, process in processes.items()}
    cpu["load"] = time.process_time() - load_before
    cpu["others"] = max(0.0, box_cpu_seconds() - box_before - sum(cpu.values()))
    return Run(outcome, wall, cpu)


async def run(scale: Scale) -> Report:
    report = Report(scale)
    with tempfile.TemporaryDirectory(prefix="maitre-workers-") as tmp:
        directory = Path(tmp)
        db = directory / "maitre.db"
        keys, table_ids = await prepare(db, scale.restaurants, scale.tables)
        report.commit_rate = raw_commit_rate(directory / "raw.db", scale.commits)
        report.writers = [raw_writers(directory / f"writers-{n}.db", n, scale.writer_seconds) for n in (1, 2)]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            bench = Bench(session, keys, table_ids, scale)

            redis_server, redis_url = start_redis(directory)
            try:
                report.bus = await bus_cost(redis_url, redis_server, scale.bus_changes, UPDATE_BYTES)
                (a, base_a), (b, base_b) = start_maitre(db, redis_url), start_maitre(db, redis_url)
                try:
                    await subscribed(redis_url, 2)
                    both = {"A": a, "B": b, "redis": redis_server}
                    report.same = await bench.fan_out(base_a, base_a, both)
                    report.across = await bench.fan_out(base_b, base_a, both)
                    report.ladder_two, report.ladder_two_one_writer = await bench.ladders([base_a, base_b], both, True)
                finally:
                    a.stop()
                    b.stop()

                a, base = start_maitre(db, redis_url)
                try:
                    await subscribed(redis_url, 1)
                    report.with_redis = await bench.steady(base, {"A": a, "redis": redis_server})
                finally:
                    a.stop()
            finally:
                redis_server.stop()

            (a, base_a), (b, base_b) = start_maitre(db, None), start_maitre(db, None)
            try:
                report.watcher = await bench.fan_out(base_b, base_a, {"A": a, "B": b})
            finally:
                a.stop()
                b.stop()

            a, base = start_maitre(db, None)
            try:
                alone = {"A": a}
                report.one = await bench.fan_out(base, base, alone)
                report.plain = await bench.steady(base, alone)
                report.ladder_one, _ = await bench.ladders([base], alone)
            finally:
                a.stop()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run, to check the harness")
    parser.add_argument("--restaurants", type=int, help="restaurants connected (50)")
    parser.add_argument("--dashboards", type=int, help="dashboards per restaurant (20)")
    parser.add_argument("--seconds", type=float, help="length of each measured run (10)")
    args = parser.parse_args()
    scale = QUICK if args.quick else Scale()
    for name in ("restaurants", "dashboards", "seconds"):
        if getattr(args, name) is not None:
            setattr(scale, name, getattr(args, name))
    command = " ".join(["python -m bench.workers", *sys.argv[1:]])
    print(asyncio.run(run(scale)).markdown(command, datetime.now(UTC)))


if __name__ == "__main__":
    main()
