"""Profile the server's hot path under load: `python -m bench.profile [--rate 1000] [--seconds 8]`.

Starts the real server under py-spy (pip install py-spy), drives it with the benchmark's
dashboards at a fixed action rate, and writes a flame graph to docs/profile.svg (or
--out). Use it before and after a change to the hot path; docs/benchmarks.md records what
it showed.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from .load import Fleet, percentile
from .servers import ROOT, Process, free_port, maitre, prepare


async def drive(server: Process, base: str, keys: list[str], table_ids: list[list[int]], rate: float,
                seconds: float, record: Callable[[], subprocess.Popen[bytes]]) -> None:
    """Connect the dashboards, then start recording (so the profile is of the load, not of the snapshots)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        fleet = Fleet(session, lambda r: f"{base}/admin/ws/dashboard?token={keys[r]}", 20, table_ids)
        await fleet.connect()
        recorder = record()
        await asyncio.sleep(1)  # py-spy attaching
        server_cpu, load_cpu, wall = server.cpu_seconds(), time.process_time(), time.perf_counter()
        outcome = await fleet.run(rate, seconds)
        wall = time.perf_counter() - wall
        server_cpu, load_cpu = server.cpu_seconds() - server_cpu, time.process_time() - load_cpu
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=30)
        await fleet.close()
    latencies = outcome.latencies_ms
    print(f"offered {rate:,.0f}/s: sent {outcome.sent:,}, refused {outcome.errors:,}, "
          f"acknowledged {outcome.rate:,.0f}/s, p50 {percentile(latencies, 50):.2f} ms, "
          f"p99 {percentile(latencies, 99):.2f} ms, max {max(latencies, default=float('nan')):.2f} ms; "
          f"CPU (share of one core): server {server_cpu / wall:.0%} (under the profiler), "
          f"load process {load_cpu / wall:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--restaurants", type=int, default=50, help="of 20 dashboards each (50: 1,000 sockets)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "profile.svg")
    parser.add_argument("--format", choices=("flamegraph", "raw", "speedscope"), default="flamegraph")
    parser.add_argument("--spy", default="", help="more py-spy record options in one string, e.g. '--gil --idle'")
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed: pip install py-spy")
    with tempfile.TemporaryDirectory(prefix="maitre-profile-") as tmp:
        db = Path(tmp) / "maitre.db"
        keys, table_ids = asyncio.run(prepare(db, args.restaurants, 20))
        port = free_port()
        server = maitre(db, port)
        command = [spy, "record", "--pid", str(server.process.pid), "--rate", "250", "--output", str(args.out),
                   "--format", args.format, "--nonblocking", *args.spy.split()]
        try:
            asyncio.run(drive(server, f"http://127.0.0.1:{port}", keys, table_ids, args.rate, args.seconds,
                              lambda: subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        finally:
            server.stop()
    print(f"flame graph: {args.out}")


if __name__ == "__main__":
    main()
