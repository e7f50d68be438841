"""Starting the servers under test as processes, and the data they serve."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from app.auth import KeyService
from app.db import Database
from app.services.restaurants import RestaurantService
from app.services.tables import TableService
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A server started as its own process, with its CPU time and memory read from /proc."""

    def __init__(self, args: list[str], ready: str) -> None:
        self.process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env={k: v for k, v in os.environ.items() if not k.startswith("MAITRE_")})
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        while ready:
            line = self.process.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"{args[2]} did not start")
            if ready in line:
                break

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.close()

    def close(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()


def maitre(db: Path, port: int, *flags: str) -> Process:
    """`python run.py serve` on this database and port: no demo, warnings only, and these flags."""
    return Process([sys.executable, str(ROOT / "run.py"), "serve", "--db", str(db), "--port", str(port), "--no-demo",
                    "--log-level", "WARNING", *flags], ready="Running on")


def start_server(db: Path, port: int, compression: bool, heartbeat: float) -> Process:
    return maitre(db, port, "--max-connections-per-restaurant", "100000", "--heartbeat-seconds", str(heartbeat),
                  "--ws-compression", "on" if compression else "off")


async def prepare(db_path: Path, restaurants: int, tables: int) -> tuple[list[str], list[list[int]]]:
    """Restaurants 0..N-1 with their tables, and an admin key for each, through the service layer."""
    settings = Settings.from_env(environ={}, db_path=str(db_path))
    db = await Database.open(str(db_path))
    try:
        keys, ids = [], []
        for n in range(restaurants):
            restaurant = await RestaurantService(db, settings).add(f"r{n}", f"Restaurant {n}", tables=tables)
            _, rows = await TableService(db, settings).list_tables(restaurant["id"])
            ids.append([row["id"] for row in rows])
            keys.append((await KeyService(db).add(f"r{n}", "bench"))[1])
        return keys, ids
    finally:
        await db.close()
