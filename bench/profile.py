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
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

from .load import Fleet, percentile
from .servers import ROOT, free_port, maitre, prepare


async def drive(base: str, keys: list[str], table_ids: list[list[int]], rate: float, seconds: float) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        fleet = Fleet(session, lambda r: f"{base}/admin/ws/dashboard?token={keys[r]}", 20, table_ids)
        await fleet.connect()
        outcome = await fleet.run(rate, seconds)
        await fleet.close()
    print(f"offered {rate:,.0f}/s: sent {outcome.sent:,}, refused {outcome.errors:,}, "
          f"acknowledged {outcome.rate:,.0f}/s, "
          f"p50 {percentile(outcome.latencies_ms, 50):.2f} ms, p99 {percentile(outcome.latencies_ms, 99):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--restaurants", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "profile.svg")
    parser.add_argument("--format", choices=("flamegraph", "raw", "speedscope"), default="flamegraph")
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed: pip install py-spy")
    with tempfile.TemporaryDirectory(prefix="maitre-profile-") as tmp:
        db = Path(tmp) / "maitre.db"
        keys, table_ids = asyncio.run(prepare(db, args.restaurants, 20))
        port = free_port()
        server = maitre(db, port)
        recorder = subprocess.Popen([spy, "record", "--pid", str(server.process.pid), "--rate", "250",
                                     "--output", str(args.out), "--format", args.format, "--nonblocking"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            asyncio.run(drive(f"http://127.0.0.1:{port}", keys, table_ids, args.rate, args.seconds))
        finally:
            recorder.send_signal(2)
            recorder.wait(timeout=30)
            server.stop()
    print(f"flame graph: {args.out}")


if __name__ == "__main__":
    main()
