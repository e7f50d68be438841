"""What the Prometheus metrics cost: `python -m bench.metrics_cost [--quick] [--rounds 3]`.

The fan-out and throughput rows of `python -m bench`, measured in one run on the same data with
the metrics on (the default) and off (`--metrics off`: nothing is counted), the two servers
taking turns round after round, so that whatever else the machine does falls on both. Each
server: 50 restaurants x 20 dashboards (1,000 sockets), 100 actions a second for 10 s (the
fan-out row), then 250 and 500 a second (the throughput row: 500/s was sustained in the
latest run of `python -m bench`). Also the server's CPU time per action, the figure least
moved by the machine's other work.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from .load import Fleet, Outcome, percentile
from .servers import ROOT, environment, free_port, maitre, prepare


@dataclass
class Scale:
    restaurants: int = 50
    dashboards: int = 20
    background_rate: float = 100.0
    rates: tuple[float, ...] = (250, 500)
    seconds: float = 10.0


QUICK = Scale(restaurants=10, background_rate=50, rates=(250,), seconds=3)


@dataclass
class Runs:
    """One setting's runs, every round's together."""
    fanout: list[float] = field(default_factory=list)  # latencies in ms
    round_p50s: list[float] = field(default_factory=list)
    cpu_per_action: list[float] = field(default_factory=list)  # server CPU µs, one per round
    refused: int = 0
    ladder: dict[float, list[Outcome]] = field(default_factory=dict)
    ladder_cpu: dict[float, list[float]] = field(default_factory=dict)  # server CPU µs per action, by rate


async def measure(seed: Path, keys: list[str], table_ids: list[list[int]], scale: Scale, metrics: str,
                  runs: Runs) -> None:
    db = seed.with_name(f"metrics-{metrics}.db")  # every table free again, as the fleet expects
    shutil.copyfile(seed, db)
    port = free_port()
    server = maitre(db, port, "--max-connections-per-restaurant", "100000", "--metrics", metrics)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == (200 if metrics == "on" else 404), response.status
            fleet = Fleet(session, lambda r: f"http://127.0.0.1:{port}/admin/ws/dashboard?token={keys[r]}",
                          scale.dashboards, table_ids[: scale.restaurants])
            await fleet.connect()
            await asyncio.sleep(2)
            before = server.cpu_seconds()
            outcome = await fleet.run(scale.background_rate, scale.seconds)
            runs.cpu_per_action.append(per_action(server.cpu_seconds() - before, outcome))
            runs.fanout += outcome.latencies_ms
            runs.round_p50s.append(percentile(outcome.latencies_ms, 50))
            runs.refused += outcome.errors
            for rate in scale.rates:
                before = server.cpu_seconds()
                outcome = await fleet.run(rate, scale.seconds)
                runs.ladder_cpu.setdefault(rate, []).append(per_action(server.cpu_seconds() - before, outcome))
                runs.ladder.setdefault(rate, []).append(outcome)
                runs.refused += outcome.errors
            await fleet.close()
    finally:
        server.stop()


def instrumentation_us(frames: int, repeat: int = 20_000) -> float:
    """The CPU µs the metric calls of one action take, timed in this process: app/web/actions.py counts the
    action and times it to its commit, app/db.py observes its batch and commit, app/render.py times its
    fan-out, and app/sockets.py counts each of `frames` frames written (the update to every dashboard and
    the sender's ack). With PROMETHEUS_MULTIPROC_DIR set, as in a worker, the values go to its files."""
    from app import metrics  # imported here: the library reads PROMETHEUS_MULTIPROC_DIR as it is

    start = time.process_time()
    for _ in range(repeat):
        started = time.perf_counter()
        metrics.ACTIONS.labels("disable_table", "ok").inc()
        metrics.ACTION_COMMIT_SECONDS.labels("disable_table").observe(time.perf_counter() - started)
        metrics.DB_COMMIT_BATCH_SIZE.observe(1)
        metrics.DB_COMMIT_SECONDS.observe(time.perf_counter() - started)
        with metrics.ACTION_FANOUT_SECONDS.time():
            for _ in range(frames):
                metrics.MESSAGES_SENT.inc()
                metrics.SENT_BYTES.inc(700)
    return (time.process_time() - start) / repeat * 1e6


def instrumentation_in_a_worker_us(frames: int) -> float:
    """instrumentation_us in a process of its own, in multiprocess mode (several workers)."""
    with tempfile.TemporaryDirectory(prefix="maitre-metrics-") as directory:
        run = subprocess.run([sys.executable, "-c", f"from bench.metrics_cost import instrumentation_us; "
                              f"print(instrumentation_us({frames}))"], cwd=ROOT, capture_output=True, text=True,
                             check=True, env=environment() | {"PROMETHEUS_MULTIPROC_DIR": directory})
    return float(run.stdout)


def per_action(cpu_seconds: float, outcome: Outcome) -> float:
    """The server's CPU time per acknowledged action, in µs."""
    return cpu_seconds / max(outcome.acked, 1) * 1e6


def ratio(on: float, off: float) -> str:
    return f"{on / off:.3f}x ({(on / off - 1) * 100:+.1f}%)" if off else "n/a"


def ms(values: list[float], p: float) -> float:
    return percentile(values, p)


def report(on: Runs, off: Runs, scale: Scale, rounds: int) -> list[str]:
    sockets = scale.restaurants * scale.dashboards
    lines = ["| Measure | Metrics on (default) | Metrics off | On / off |", "|---|---|---|---|"]
    for p in (50, 99):
        lines.append(f"| Fan-out p{p}, {sockets:,} sockets, {scale.background_rate:,.0f} actions/s "
                     f"| {ms(on.fanout, p):.2f} ms | {ms(off.fanout, p):.2f} ms "
                     f"| {ratio(ms(on.fanout, p), ms(off.fanout, p))} |")
    fanout_cpu_on, fanout_cpu_off = percentile(on.cpu_per_action, 50), percentile(off.cpu_per_action, 50)
    lines.append(f"| Server CPU per action at {scale.background_rate:,.0f}/s (median of {rounds} rounds) "
                 f"| {fanout_cpu_on:,.0f} µs | {fanout_cpu_off:,.0f} µs | {ratio(fanout_cpu_on, fanout_cpu_off)} |")
    for rate in scale.rates:
        both = []
        for runs in (on, off):
            outcomes = runs.ladder[rate]
            latencies = [value for outcome in outcomes for value in outcome.latencies_ms]
            acked = sum(outcome.acked for outcome in outcomes) / sum(outcome.seconds for outcome in outcomes)
            both.append((acked, ms(latencies, 50), ms(latencies, 99), percentile(runs.ladder_cpu[rate], 50)))
        (acked_on, p50_on, p99_on, cpu_on), (acked_off, p50_off, p99_off, cpu_off) = both
        lines.append(f"| Throughput at {rate:,.0f}/s offered: acknowledged, p50, p99, server CPU per action "
                     f"| {acked_on:,.0f}/s, {p50_on:.2f} ms, {p99_on:.2f} ms, {cpu_on:,.0f} µs "
                     f"| {acked_off:,.0f}/s, {p50_off:.2f} ms, {p99_off:.2f} ms, {cpu_off:,.0f} µs "
                     f"| p50 {ratio(p50_on, p50_off)}, CPU {ratio(cpu_on, cpu_off)} |")
    frames = scale.dashboards + 1
    alone, in_a_worker = instrumentation_us(frames), instrumentation_in_a_worker_us(frames)
    lines.append(f"| The metric calls of one action ({frames} frames), timed alone: one process; a worker of several "
                 f"| {alone:,.1f} µs; {in_a_worker:,.1f} µs "
                 f"| server CPU per action at {scale.background_rate:,.0f}/s, metrics off: {fanout_cpu_off:,.0f} µs "
                 f"| {alone / fanout_cpu_off:.1%}; {in_a_worker / fanout_cpu_off:.1%} |")
    lines.append("")
    for name, runs in (("on", on), ("off", off)):
        lines.append(f"Metrics {name}, each round's fan-out p50: "
                     + ", ".join(f"{p50:.2f} ms" for p50 in runs.round_p50s) + ".")
    lines += [f"{rounds} rounds, each server on and off in turn; "
              f"{len(on.fanout):,} and {len(off.fanout):,} fan-out actions; {on.refused} and {off.refused} refused."]
    return lines


async def main(scale: Scale, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="maitre-metrics-cost-") as tmp:
        seed = Path(tmp) / "seed.db"
        keys, table_ids = await prepare(seed, scale.restaurants, 20)
        on, off = Runs(), Runs()
        for round_ in range(rounds):
            # which goes first alternates, so neither always meets a warmer disk cache or a busier machine
            order = [("on", on), ("off", off)] if round_ % 2 == 0 else [("off", off), ("on", on)]
            for setting, runs in order:
                await measure(seed, keys, table_ids, scale, setting, runs)
        print("\n".join(report(on, off, scale, rounds)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run, under a minute, to check the harness")
    parser.add_argument("--rounds", type=int, default=3, help="times each server is measured, in turn (3)")
    arguments = parser.parse_args()
    asyncio.run(main(QUICK if arguments.quick else Scale(), 1 if arguments.quick else arguments.rounds))
