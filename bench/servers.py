"""Starting the servers under test as processes (the benchmarks and the tests alike), and the data they serve."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from app.auth import KeyService
from app.db import Database
from app.services.restaurants import RestaurantService
from app.services.tables import TableService
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RUN_PY = ROOT / "run.py"
START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment() -> dict[str, str]:
    """This process's environment without any MAITRE_* setting, so only the flags passed count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MAITRE_")} | {"PYTHONUNBUFFERED": "1"}


class Process:
    """A server started as its own process, ready once it prints `ready` (at once if `ready` is empty).

    Its output is drained into `output` line by line, as long as it runs: a full pipe would block a
    chatty server mid-request. Its CPU time and memory are read from /proc.
    """

    def __init__(self, args: list[str], ready: str = "Running on", cwd: Path = ROOT) -> None:
        self.output: list[str] = []
        self.process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=environment())
        listening = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line.rstrip("\n"))
                if ready in line:
                    listening.set()
            listening.set()

        self.reader = threading.Thread(target=read, name="server-output", daemon=True)
        self.reader.start()
        if ready and not (listening.wait(START_SECONDS) and any(ready in line for line in self.output)):
            self.process.kill()
            self.process.wait()
            self.close()
            raise RuntimeError(f"{' '.join(args[1:3])} did not start:\n" + "\n".join(self.output))

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, how: signal.Signals = signal.SIGINT) -> int:
        """SIGINT, as Ctrl+C does (or SIGTERM, as systemd does), then SIGKILL if it still runs 30 s later;
        returns its exit status."""
        self.process.send_signal(how)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.close()
        return self.process.returncode

    def close(self) -> None:
        """Once the process has ended: the rest of its output read, its pipe closed."""
        self.reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def maitre(db: Path, port: int, *flags: str) -> Process:
    """`python run.py serve` on this database and port: no demo, warnings only, and these flags.

    The harness's tablets of a restaurant all share its one key (`prepare`), so a key may hold them all.
    """
    return Process([sys.executable, str(RUN_PY), "serve", "--db", str(db), "--port", str(port), "--no-demo",
                    "--log-level", "WARNING", "--max-connections-per-key", "100000", *flags], ready="Running on")


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
