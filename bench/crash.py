"""Crash durability: kill the server with SIGKILL during a stream of actions, again and again; lose nothing.

    python -m bench.crash [--kills 20]

Each round starts the real server on the same database, sends actions over the dashboard
socket from several tablets at once, and kills the server at a random moment. After each
restart every action that was acknowledged must be in the database (its audit event, with
the version the ack gave), and `PRAGMA integrity_check` must say ok.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sqlite3
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from .servers import free_port, maitre, prepare


@dataclass
class Tally:
    kills: int = 0
    acknowledged: list[tuple[int, str]] = field(default_factory=list)  # (version, action)
    lost: list[tuple[int, str]] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)


async def stream(url: str, table_ids: list[int], tally: Tally, tablets: int) -> None:
    """Tablets toggling their own tables as fast as acks come back, until the server dies under them."""

    async def tablet(n: int, session: aiohttp.ClientSession) -> None:
        mine = table_ids[n::tablets]
        disabled: set[int] = set()
        try:
            async with session.ws_connect(url) as ws:
                await ws.receive()
                for step in range(100_000):
                    table = mine[step % len(mine)]
                    action = "enable_table" if table in disabled else "disable_table"
                    await ws.send_str(json.dumps({"action": action, "table_id": table, "ref": step}))
                    while True:
                        reply = json.loads((await ws.receive()).data)
                        if reply.get("ref") == step:
                            break
                    if reply["type"] == "ack":
                        tally.acknowledged.append((reply["version"], action))
                        disabled ^= {table}
                    await asyncio.sleep(0.02)  # ten messages a second: the socket's rate limit
        except (TimeoutError, aiohttp.ClientError, TypeError, ConnectionError):
            return  # the server was killed

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(tablet(n, session) for n in range(tablets)))


def check(db: Path, tally: Tally, since: int) -> None:
    conn = sqlite3.connect(db)
    try:
        tally.integrity.append(conn.execute("PRAGMA integrity_check").fetchone()[0])
        stored = dict(conn.execute("SELECT version, action FROM audit_event WHERE table_ids != '[]'").fetchall())
    finally:
        conn.close()
    for version, action in tally.acknowledged[since:]:
        if stored.get(version) != action:
            tally.lost.append((version, action))


async def run(kills: int, directory: Path, tablets: int = 4) -> Tally:
    db = directory / "maitre.db"
    keys, table_ids = await prepare(db, 1, 16)
    tally = Tally()
    for _ in range(kills):
        port = free_port()
        server = maitre(db, port)
        before = len(tally.acknowledged)
        feeding = asyncio.create_task(stream(f"http://127.0.0.1:{port}/admin/ws/dashboard?token={keys[0]}",
                                             table_ids[0], tally, tablets))
        await asyncio.sleep(random.uniform(0.5, 1.5))
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        server.close()
        await feeding
        tally.kills += 1
        check(db, tally, before)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="maitre-crash-") as tmp:
        tally = asyncio.run(run(args.kills, Path(tmp)))
    print(f"{tally.kills} kills with SIGKILL, {len(tally.acknowledged):,} actions acknowledged, "
          f"{len(tally.lost)} lost, integrity checks: {', '.join(sorted(set(tally.integrity)))}")
    sys.exit(1 if tally.lost or set(tally.integrity) != {"ok"} else 0)


if __name__ == "__main__":
    main()
