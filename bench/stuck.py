"""One stuck tablet among twenty: what the other nineteen see, as latency percentiles.

    python -m bench.stuck [--rate 150] [--seconds 90]

One restaurant, twenty dashboards of the real server. Nineteen are a load `Fleet`: they
take turns sending actions at `--rate` a second and time each one until its update has
reached all nineteen. The twentieth is, in the first run, a dashboard that reads like the
others; in the second, a frozen tablet: a raw client with a 16 KiB receive buffer that
shakes hands and never reads again. The server closes it (1013) once 256 KiB wait for it,
and cuts it off when it has not taken the close frame within five seconds. The second
run's latencies are also split at the moment it was cut off (read from the frozen
socket's own TCP state), so "while it was stuck" and "after" can be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from .load import Fleet, Outcome, percentile, upgrade_request
from .servers import free_port, maitre, prepare

SOCKET = "/admin/ws/dashboard"
TCP_ESTABLISHED = 1


@dataclass
class Stuck:
    rate: float
    reading: Outcome
    stuck: Outcome
    while_stuck: list[float]  # latencies of the actions sent before the frozen tablet was cut off
    after: list[float]
    reading_before: list[float]  # the first run, split at the same moment, for a like-for-like comparison
    reading_after: list[float]
    cut_after: float | None  # seconds from the start of the second run
    rss: tuple[int, int, int]  # KiB: before the runs, after the first, after the second

    def lines(self) -> list[str]:
        def row(name: str, values: list[float]) -> str:
            cells = "  ".join(f"{percentile(values, p):7.2f}" for p in (50, 95, 99, 100))
            return f"{name:<34}{len(values):>7}  {cells}"

        cut = f"{self.cut_after:.1f} s in" if self.cut_after is not None else "never"
        return [
            f"{self.rate:.0f} actions/s; the frozen tablet was cut off {cut}; "
            f"errors {self.reading.errors} and {self.stuck.errors}; "
            f"server RSS {self.rss[0]:,} -> {self.rss[1]:,} -> {self.rss[2]:,} KiB",
            f"{'latency to all 19 others, ms':<34}{'n':>7}  {'p50':>7}  {'p95':>7}  {'p99':>7}  {'max':>7}",
            row("the 20th reads: the whole run", self.reading.latencies_ms),
            row("  the same stretch as 'connected'", self.reading_before),
            row("  the same stretch as 'cut off'", self.reading_after),
            row("the 20th frozen: the whole run", self.stuck.latencies_ms),
            row("  while it was connected", self.while_stuck),
            row("  after it was cut off", self.after),
        ]


def tcp_state(sock: socket.socket) -> int:
    return struct.unpack("B", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1))[0]


async def frozen_tablet(port: int, key: str, host: str = "127.0.0.1") -> socket.socket:
    """A raw client with a 16 KiB receive buffer: it shakes hands, reads the 101 and nothing after it, ever."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, port))
    await loop.sock_sendall(sock, upgrade_request(host, port, key))
    assert (await loop.sock_recv(sock, 12)) == b"HTTP/1.1 101"
    return sock


async def run(directory: Path, rate: float, seconds: float) -> Stuck:
    keys, table_ids = await prepare(directory / "maitre.db", 1, 10)
    port = free_port()
    server = maitre(directory / "maitre.db", port)
    url = f"http://127.0.0.1:{port}{SOCKET}?token={keys[0]}"
    try:
        async with aiohttp.ClientSession() as session:
            fleet = Fleet(session, lambda _: url, 19, table_ids)
            await fleet.connect()
            rss_start = server.rss_kib()

            twentieth = await session.ws_connect(url)
            draining = asyncio.create_task(drain(twentieth))
            started = time.perf_counter()
            reading = await fleet.run(rate, seconds)
            reading_timeline = [(sent - started, ms) for sent, ms in fleet.timeline]
            draining.cancel()
            await twentieth.close()
            rss_reading = server.rss_kib()

            frozen = await frozen_tablet(port, keys[0])
            started = time.perf_counter()
            cut: list[float] = []

            async def watch() -> None:
                while tcp_state(frozen) == TCP_ESTABLISHED:
                    await asyncio.sleep(0.02)
                cut.append(time.perf_counter())

            watching = asyncio.create_task(watch())
            stuck = await fleet.run(rate, seconds)
            watching.cancel()
            rss_stuck = server.rss_kib()
            frozen.close()
            await fleet.close()
    finally:
        server.stop()
    cut_after = cut[0] - started if cut else seconds
    stuck_timeline = [(sent - started, ms) for sent, ms in fleet.timeline]

    def split(timeline: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
        return [ms for at, ms in timeline if at < cut_after], [ms for at, ms in timeline if at >= cut_after]

    return Stuck(rate, reading, stuck, *split(stuck_timeline), *split(reading_timeline),
                 cut_after if cut else None, (rss_start, rss_reading, rss_stuck))


async def drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stuck", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=150, help="actions a second (at most 10 per dashboard)")
    parser.add_argument("--seconds", type=float, default=90,
                        help="length of each of the two runs; at 150 a second, the kernel's send buffer (about "
                             "4 MB) holds what the frozen tablet does not read for some 40 s before the "
                             "server's own 256 KiB queue fills")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="maitre-stuck-") as tmp:
        print("\n".join(asyncio.run(run(Path(tmp), args.rate, args.seconds)).lines()))


if __name__ == "__main__":
    main()
