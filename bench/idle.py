"""Idle cost, taken apart: `python -m bench.idle [--seconds 60]`.

The server's CPU time over a minute with 1,000 idle dashboards (50 restaurants x 20),
once with the default 30 s heartbeat and once with the heartbeat pushed out of the
window, so the heartbeat's share and the rest (the watcher, the event loop) show apart.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import aiohttp

from .load import Fleet
from .servers import free_port, maitre, prepare


async def idle_cpu(db: Path, keys: list[str], table_ids: list[list[int]], heartbeat: float, seconds: float) -> float:
    port = free_port()
    server = maitre(db, port, "--heartbeat-seconds", str(heartbeat))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            fleet = Fleet(session, lambda r: f"http://127.0.0.1:{port}/admin/ws/dashboard?token={keys[r]}", 20,
                          table_ids)
            await fleet.connect()
            await asyncio.sleep(3)
            before = server.cpu_seconds()
            await asyncio.sleep(seconds)
            used = server.cpu_seconds() - before
            await fleet.close()
            return used
    finally:
        server.stop()


async def main(seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="maitre-idle-") as tmp:
        db = Path(tmp) / "maitre.db"
        keys, table_ids = await prepare(db, 50, 20)
        for heartbeat, name in [(30, "heartbeat every 30 s (the default)"), (1e6, "no heartbeat in the window")]:
            used = await idle_cpu(db, keys, table_ids, heartbeat, seconds)
            per_hour = used / 1000 / seconds * 3600 * 1000
            print(f"{name}: {used:.3f} CPU s in {seconds:.0f} s for 1,000 idle dashboards, "
                  f"{per_hour:.2f} ms per dashboard-hour", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    asyncio.run(main(parser.parse_args().seconds))
