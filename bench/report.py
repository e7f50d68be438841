"""The benchmark's figures, as a markdown table (stdout and docs/benchmarks.md) and a latency plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .bulk import EndOfService
from .client_cost import ClientCost, describe
from .load import percentile
from .measure import Measured

HOUR = 3600


def ms(value: float) -> str:
    return f"{value:.2f} ms" if value == value else "n/a"


def p50_p90(values: list[float]) -> str:
    return f"p50 {ms(percentile(values, 50))}, p90 {ms(percentile(values, 90))}"


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference and value == value and reference == reference else "n/a"


@dataclass
class Report:
    quick: bool
    commit_rate: float = 0.0
    maitre: Measured = field(default_factory=lambda: Measured("Maître"))
    floor: Measured = field(default_factory=lambda: Measured("bare aiohttp broadcast (floor)"))
    peer: Measured = field(default_factory=lambda: Measured("python-socketio (peer)"))
    rss_empty_compressed: int = 0
    rss_compressed: dict[int, int] = field(default_factory=dict)
    sockets: int = 0
    dashboards: int = 20
    update_bytes: int = 0
    idle_cpu: float = 0.0
    idle_dashboards: int = 0
    idle_seconds: float = 0.0
    heartbeat: float = 0.0
    poll_cpu: float = 0.0
    polls: int = 0
    pollers: int = 0
    poll_interval: float = 0.0
    end_of_service: EndOfService | None = None
    clients: list[ClientCost] = field(default_factory=list)

    def markdown(self, command: str, when: datetime, python: str, aiohttp_version: str, cpus: int) -> str:
        fan, floor = self.maitre.fanout, self.floor.fanout
        assert fan is not None and floor is not None
        lat = {p: percentile(fan.latencies_ms, p) for p in (50, 95, 99, 100)}
        ref = {p: percentile(floor.latencies_ms, p) for p in (50, 95, 99, 100)}
        rate, p99_at_rate = self.maitre.sustained()
        floor_rate, floor_p99 = self.floor.sustained()
        ws_cpu_hour = self.idle_cpu / self.idle_dashboards / self.idle_seconds * HOUR
        # polling measured every `poll_interval` s; the old dashboards poll every 30 s
        poll_cpu_hour = self.poll_cpu / self.pollers / self.idle_seconds * HOUR * (self.poll_interval / 30)
        lines = [
            f"Measured {when:%Y-%m-%d %H:%M} UTC with `{command}`: Python {python}, aiohttp {aiohttp_version}, "
            f"{cpus} CPUs{' (quick run: small scale, short windows)' if self.quick else ''}.",
            "",
            "| Measure | Maître | Reference | Ratio | Target |",
            "|---|---|---|---|---|",
        ]
        for p, name in [(50, "p50"), (95, "p95"), (99, "p99"), (100, "max")]:
            target = {50: "within 3x of the floor", 99: "under 10 ms", 100: "within 3x of the floor's max"}.get(p, "")
            lines.append(f"| Fan-out latency {name} ({self.sockets:,} sockets; to all {self.dashboards} "
                         f"dashboards of a restaurant) | {ms(lat[p])} | {ms(ref[p])} (bare aiohttp broadcast) | "
                         f"{ratio(lat[p], ref[p])} | {target} |")
        lines.append(f"| Sustained actions/s, each committed before its ack, p99 fan-out < 50 ms, {self.sockets:,} "
                     f"sockets | {rate:,.0f}/s (p99 {ms(p99_at_rate)}) | the floor on the same ladder: "
                     f"{floor_rate:,.0f}/s (p99 {ms(floor_p99)}) | {ratio(rate, floor_rate)} | 1,000/s |")
        lines.append(f"| The same, against raw SQLite | {rate:,.0f}/s | {self.commit_rate:,.0f} raw SQLite commits/s "
                     f"(one UPDATE each, same durability) | {ratio(rate, self.commit_rate)} | |")
        squeezed = self.per_connection(self.rss_compressed, self.rss_empty_compressed)
        for count, kib in self.maitre.per_socket().items():
            other = squeezed.get(count, float("nan"))
            lines.append(f"| Server memory per idle dashboard at {count:,} connections, compression off (default) | "
                         f"{kib:.1f} KiB | {other:.1f} KiB with compression on | {ratio(kib, other)} | under 40 KiB |")
        lines.append(f"| Idle server CPU per dashboard-hour (heartbeats only) | {ws_cpu_hour * 1000:.2f} ms | "
                     f"{poll_cpu_hour * 1000:.1f} ms polling the grid every 30 s | "
                     f"{ratio(poll_cpu_hour, ws_cpu_hour).replace('x', '')}x less | at least 100x less |")
        lines.append(f"| Staleness of a change | p50 {ms(lat[50])} | polling: up to 30 s, 15 s on average | "
                     f"{ratio(15000, lat[50])} fresher | |")
        if self.end_of_service:
            end = self.end_of_service
            lines.append(f"| End of service, {end.tables} tables: until all {end.dashboards} dashboards show every "
                         f"table closed | one bulk: {p50_p90(end.bulk_ms)} | {end.tables} single close_table: "
                         f"{p50_p90(end.singles_ms)} | "
                         f"{ratio(percentile(end.bulk_ms, 50), percentile(end.singles_ms, 50))} | |")
        for c in self.clients:
            if c.throttled_ms:
                lines.append(f"| Tablet main-thread time per table_update, {c.tables}-table grid, 6x CPU throttling | "
                             f"p50 {ms(percentile(c.throttled_ms, 50))}, p95 {ms(percentile(c.throttled_ms, 95))} | "
                             f"p50 {ms(percentile(c.unthrottled_ms, 50))} unthrottled | "
                             f"{ratio(percentile(c.throttled_ms, 50), percentile(c.unthrottled_ms, 50))} | "
                             f"under 4 ms (p95 under 6 ms) |")
        if self.clients:
            scripts = self.clients[0].scripts
            lines.append(f"| Client script, gzipped: each page's, and every script together | dashboard "
                         f"{scripts['dashboard']:,} bytes, waiter's page {scripts['waiter']:,} bytes | together "
                         f"{scripts['together']:,} bytes of 6,144 | {ratio(scripts['together'], 6144)} | "
                         f"under 4 KiB a file, 6 KiB together |")
            for c in self.clients:
                if c.note:
                    lines.append(f"| Tablet main-thread time | {c.note} | | | |")
        lines += ["", *self.beside(), "", *self.details()]
        return "\n".join(lines)

    def beside(self) -> list[str]:
        """Maître, the peer a Python developer would pick instead, and the floor, under the same load."""
        servers = [self.maitre, self.peer, self.floor]
        lines = ["Beside the peer and the floor (the same load, the same ladder, the same idle sockets; the peer and "
                 "the floor store nothing):", "",
                 "| Measure | " + " | ".join(m.name for m in servers) + " |", "|---|---|---|---|"]
        if self.peer.fanout is None:
            lines[0] += " the peer was not measured: pip install -e '.[bench]' for python-socketio."
        for p, name in [(50, "p50"), (99, "p99"), (100, "max")]:
            lines.append(f"| Fan-out latency {name} ({self.sockets:,} sockets) | " + " | ".join(
                ms(percentile(m.fanout.latencies_ms, p)) if m.fanout else "n/a" for m in servers) + " |")
        lines.append("| Sustained actions/s, p99 fan-out < 50 ms | " + " | ".join(
            f"{rate:,.0f}/s" if (rate := m.sustained()[0]) else ("n/a" if not m.ladder else "under the first rung")
            for m in servers) + " |")
        for count in sorted(self.maitre.rss):
            lines.append(f"| Memory per idle socket at {count:,} | " + " | ".join(
                f"{m.per_socket()[count]:.1f} KiB" if count in m.rss else "n/a" for m in servers) + " |")
        return lines

    def details(self) -> list[str]:
        fan = self.maitre.fanout
        assert fan is not None
        lines = [
            f"Fan-out: {fan.acked:,} actions at {fan.acked / fan.seconds:,.0f}/s across "
            f"{self.sockets // self.dashboards} restaurants, {fan.errors} refused; the floor and the peer ran the same "
            f"load. Messages of {self.update_bytes:,} bytes.",
        ]
        lines.append("The box's own pauses during each fan-out run (bench/stalls.py, a process that only naps): "
                     + "; ".join(f"{m.name}: {m.stalls.summary()}" for m in (self.maitre, self.peer, self.floor)
                                 if m.fanout) + ".")
        for measured in (self.maitre, self.floor, self.peer):
            if measured.ladder:
                lines.append(f"Throughput ladder, {measured.name} (offered rate: acknowledged rate, p99, max; CPU as a "
                             f"share of one core: the server, the load process): " + "; ".join(
                                 f"{r:,.0f}/s: {o.rate:,.0f}/s, {ms(percentile(o.latencies_ms, 99))}, "
                                 f"{ms(max(o.latencies_ms, default=float('nan')))} ({server:.0%}, load {load:.0%})"
                                 for (r, o), (server, load) in zip(measured.ladder, measured.cpu, strict=True)) + ".")
        lines += [
            f"Idle: {self.idle_dashboards:,} sockets for {self.idle_seconds:.0f} s with the server's pings every "
            f"{self.heartbeat:.0f} s: {self.idle_cpu:.2f} CPU s in all. "
            f"Polling: {self.pollers:,} clients every {self.poll_interval:.0f} s "
            f"({self.polls:,} requests, {self.poll_cpu:.2f} CPU s), scaled to one request per 30 s.",
            *self.end_of_service_note(),
            *(f"Tablet, {describe(c)}" for c in self.clients if c.throttled_ms),
            f"Memory: empty server {self.maitre.rss_empty:,} KiB RSS ({self.rss_empty_compressed:,} KiB for the "
            f"compressed run); " + ", ".join(f"{n:,} sockets {kib:,} KiB" for n, kib in sorted(self.maitre.rss.items()))
            + ".",
        ]
        return lines

    @staticmethod
    def per_connection(rss: dict[int, int], empty: int) -> dict[int, float]:
        return {count: (kib - empty) / count for count, kib in sorted(rss.items())}

    def end_of_service_note(self) -> list[str]:
        if not self.end_of_service:
            return []
        end = self.end_of_service
        return [f"End of service: {len(end.bulk_ms)} repetitions of each, alternating, on a server of its own; "
                f"the {end.tables} singles sent back to back from the {end.dashboards} dashboards in turn "
                "(one tablet may send only 20 at once)."]

    def document(self, table: str) -> str:
        """docs/benchmarks.md with its "Latest run" section replaced by `table`; every later section is kept."""
        previous = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
        rest = "\n## Notes\n"
        if previous.exists() and "\n## Latest run\n" in (text := previous.read_text(encoding="utf-8")):
            after = text.split("\n## Latest run\n", 1)[1]
            rest = "\n## " + after.split("\n## ", 1)[1] if "\n## " in after else rest
        return f"# Benchmarks\n\n## Latest run\n\n{table}\n\n![Fan-out latency](benchmarks.png)\n{rest}"

    def plot(self, path: Path) -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("(no plot: pip install -e '.[bench]' for matplotlib)")
            return
        figure, axis = plt.subplots(figsize=(8, 4.5))
        for measured in (self.maitre, self.peer, self.floor):
            if measured.fanout is None:
                continue
            values = sorted(measured.fanout.latencies_ms)
            label = measured.name
            if values:
                axis.plot(values, [n / len(values) for n in range(1, len(values) + 1)], label=label)
        for rate, outcome in self.maitre.ladder:
            values = sorted(outcome.latencies_ms)
            if values:
                axis.plot(values, [n / len(values) for n in range(1, len(values) + 1)], linestyle=":",
                          label=f"Maître at {rate:,.0f} actions/s offered")
        axis.set_xscale("log")
        axis.set_xlabel(f"fan-out latency to all {self.dashboards} dashboards of a restaurant (ms, log scale)")
        axis.set_ylabel("fraction of actions")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(path, dpi=110)
