"""Maître's benchmark: fan-out latency, throughput, memory per connection, idle cost, end of service, client cost.

    python -m bench            # the full run: a few minutes on two cores
    python -m bench --quick    # under a minute: checks that the harness works

It starts the real server (run.py) as a separate process on a temporary database, makes
the restaurants, tables and keys through the service layer, and drives the server from
this process with real WebSocket clients. Every figure is measured in the same run as its
reference (a bare aiohttp broadcast server, raw SQLite commits, polling) and reported with
the ratio to it. Results go to stdout and docs/benchmarks.md; the latency plot to
docs/benchmarks.png when matplotlib is installed (pip install -e '.[bench]').
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from .bulk import measure_end_of_service
from .client_cost import measure_client
from .load import Fleet
from .measure import QUICK, Scale, load, measure_other, memory
from .report import Report
from .servers import Process, free_port, prepare, start_server

ROOT = Path(__file__).resolve().parent.parent


def raw_commit_rate(path: Path, commits: int) -> float:
    """The same durability as Maître (WAL, synchronous=FULL), one UPDATE per transaction, nothing else."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)")
    conn.execute("INSERT INTO t VALUES (1, 0)")
    start = time.perf_counter()
    for _ in range(commits):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE t SET n = n + 1 WHERE id = 1")
        conn.execute("COMMIT")
    rate = commits / (time.perf_counter() - start)
    conn.close()
    return rate


async def idle_cpu(server: Process, seconds: float) -> float:
    before = server.cpu_seconds()
    await asyncio.sleep(seconds)
    return server.cpu_seconds() - before


async def polling_cpu(server: Process, base: str, keys: list[str], pollers: int, interval: float,
                      seconds: float) -> tuple[float, int]:
    """`pollers` clients fetching the grid fragment every `interval` seconds: server CPU seconds used, requests made."""
    done = 0

    async def poll(session: aiohttp.ClientSession, key: str, offset: float) -> None:
        nonlocal done
        await asyncio.sleep(offset)
        end = time.monotonic() + seconds - offset
        while time.monotonic() < end:
            async with session.get(f"{base}/admin/tables", headers={"Authorization": f"Bearer {key}"}) as response:
                await response.read()
                done += 1
            await asyncio.sleep(interval)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        before = server.cpu_seconds()
        await asyncio.gather(*(poll(session, keys[n % len(keys)], interval * n / pollers) for n in range(pollers)))
        return server.cpu_seconds() - before, done


async def run(scale: Scale, quick: bool) -> Report:
    report = Report(quick=quick)
    with tempfile.TemporaryDirectory(prefix="maitre-bench-") as tmp:
        tmpdir = Path(tmp)
        most = max(scale.memory_connections) // scale.dashboards
        keys, table_ids = await prepare(tmpdir / "maitre.db", max(scale.restaurants, most), scale.tables)
        report.commit_rate = raw_commit_rate(tmpdir / "raw.db", scale.commits)
        heartbeat = 30.0  # the default
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        maitre = report.maitre
        server = start_server(tmpdir / "maitre.db", port, compression=False, heartbeat=heartbeat)
        connector = aiohttp.TCPConnector(limit=0)
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.get(f"{base}/healthz") as response:
                    assert response.status == 200
                await asyncio.sleep(1)
                maitre.rss_empty = server.rss_kib()
                report.update_bytes = await sample_update_size(session, base, keys[0], table_ids[0][0])

                fleet = Fleet(session, lambda r: f"{base}/admin/ws/dashboard?token={keys[r]}", scale.dashboards,
                              table_ids[: scale.restaurants])
                await fleet.connect()
                sockets = scale.restaurants * scale.dashboards
                report.sockets, report.dashboards = sockets, scale.dashboards
                await asyncio.sleep(2)
                maitre.rss[sockets] = server.rss_kib()

                report.idle_cpu = await idle_cpu(server, scale.idle_seconds)
                report.idle_dashboards, report.idle_seconds, report.heartbeat = sockets, scale.idle_seconds, heartbeat

                await load(fleet, maitre, scale, server.cpu_seconds)
                await memory(fleet, table_ids, scale.memory_connections, server.rss_kib, maitre)
                await fleet.close()

                pollers, interval = sockets, 3.0
                report.poll_cpu, report.polls = await polling_cpu(server, base, keys[: scale.restaurants], pollers,
                                                                  interval, scale.idle_seconds)
                report.poll_interval, report.pollers = interval, pollers
        finally:
            server.stop()

        server = start_server(tmpdir / "maitre.db", port, compression=True, heartbeat=heartbeat)
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                await asyncio.sleep(1)
                report.rss_empty_compressed = server.rss_kib()
                for count in scale.memory_connections:
                    fleet = Fleet(session, lambda r: f"{base}/admin/ws/dashboard?token={keys[r]}", scale.dashboards,
                                  table_ids[: count // scale.dashboards], compress=True)
                    await fleet.connect()
                    await asyncio.sleep(2)
                    report.rss_compressed[count] = server.rss_kib()
                    await fleet.close()
                    await asyncio.sleep(1)
        finally:
            server.stop()

        # the floor and the peer: the same load, the same ladder, the same idle sockets
        floor_port = free_port()
        floor = Process([sys.executable, "-m", "bench.floor", "--port", str(floor_port), "--html-bytes",
                         str(report.update_bytes)], ready="")
        await measure_other(floor, Fleet, lambda r: f"http://127.0.0.1:{floor_port}/ws?group={r}", table_ids, scale,
                            report.floor)
        if peer_installed():
            from .peer import SocketIOFleet, peer_url, start_peer

            peer_port = free_port()
            await measure_other(start_peer(peer_port, report.update_bytes), SocketIOFleet,
                                lambda r: peer_url(peer_port, r), table_ids, scale, report.peer)

        report.end_of_service = await measure_end_of_service(tmpdir, scale.dashboards,
                                                             scale.end_of_service_repetitions)
        for tables in scale.client_tables:
            report.clients.append(await measure_client(tmpdir, scale.client_updates, tables, trace=True))
    return report


def peer_installed() -> bool:
    """python-socketio comes with the bench extra; without it the peer's column says how to get it."""
    return importlib.util.find_spec("socketio") is not None


async def sample_update_size(session: aiohttp.ClientSession, base: str, key: str, table_id: int) -> int:
    """The length of a real table_update, so the floor sends messages of the same size."""
    size = 0
    async with session.ws_connect(f"{base}/admin/ws/dashboard?token={key}") as ws:
        await ws.receive(timeout=10)
        for action in ("disable_table", "enable_table"):
            await ws.send_json({"action": action, "table_id": table_id, "ref": action})
            while True:
                text = (await ws.receive(timeout=10)).data
                message = json.loads(text)
                if message["type"] == "table_update":
                    size = len(text)
                if message.get("ref") == action:
                    break
    return size


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run, under a minute, to check the harness")
    parser.add_argument("--restaurants", type=int, help="restaurants connected for latency and throughput (50)")
    parser.add_argument("--dashboards", type=int, help="dashboards per restaurant (20)")
    parser.add_argument("--tables", type=int, help="tables per restaurant (20)")
    parser.add_argument("--rate", type=float, help="background actions per second during the latency run (100)")
    parser.add_argument("--seconds", type=float, help="length of each measured run (15)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md as it is")
    args = parser.parse_args()
    scale = QUICK if args.quick else Scale()
    for name, attribute in [("restaurants", "restaurants"), ("dashboards", "dashboards"), ("tables", "tables"),
                            ("rate", "background_rate"), ("seconds", "seconds")]:
        if getattr(args, name) is not None:
            setattr(scale, attribute, getattr(args, name))
    command = "python -m bench " + " ".join(sys.argv[1:])
    report = asyncio.run(run(scale, args.quick))
    text = report.markdown(command.strip(), datetime.now(UTC), platform.python_version(), aiohttp.__version__,
                           os.cpu_count() or 0)
    print(text)
    if not args.no_write:
        (ROOT / "docs" / "benchmarks.md").write_text(report.document(text), encoding="utf-8")
        report.plot(ROOT / "docs" / "benchmarks.png")


if __name__ == "__main__":
    main()
