"""A 90-day report over 100,000 audit events: the service alone, and the page through a running server.

    python -m bench.reports            # builds the restaurant once (cached), measures, writes docs/benchmarks.md
    python -m bench.reports --quick    # 5,000 events over 5 days: checks the harness (tests/test_bench.py)

The restaurant is made through the real service layer, as the tablets would have made it, on a
clock set to each change's moment: 30 tables in three areas (Main room, Terrace, Bar), two
waiters with their sections, a lunch and a dinner every day (in Europe/Paris, so the period
has the day the clocks went back). Parties are seated (some without a guest count, set a
minute later), noted, joined to a free table and split, moved, closed (the late ones after
midnight) and now and then restored; guests call a waiter and ask for the bill from their
table's QR token, and the waiters claim and see to the calls. Each day has its share of the
events still to make, until the audit log holds 100,000 of the restaurant's events.

Building takes minutes, so the database is kept in the temporary directory under a name
that holds this file's BUILD version and the schema's version, and built again only when
either changes. Each measure runs on a copy of it:

- `ReportService.report(...)` for the whole period, in this process (one period, 30 runs);
- `GET /admin/reports?from=&to=` (the page), `GET /admin/api/reports` (JSON) and
  `GET /admin/reports.csv` (the parties' rows) from a real `run.py serve` on a loopback
  port, signed in with an admin key, each body read whole (30 runs each).

Each measure is run once first, unmeasured. The target is p95 < 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import json
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from app.auth import KeyService
from app.db import Database, format_time, latest_version
from app.services.core import Actor, Result
from app.services.floor import FloorService
from app.services.reports import ReportService
from app.services.restaurants import RestaurantService
from app.services.sections import SectionService
from app.services.tables import TableService
from app.services.waiters import WaiterService
from app.settings import Settings

from .load import percentile
from .servers import ROOT, free_port, maitre

BUILD = "3"  # the data's version: change it when the simulation changes, and the cache is built again
TIME_ZONE = "Europe/Paris"
SLUG = "reports"
AREAS = {"Main room": [2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 6, 6], "Terrace": [4] * 10, "Bar": [2] * 8}
WAITERS = {"Sam": ["Main room"], "Alex": ["Terrace", "Bar"]}
NOTES = ("Birthday: candle with dessert", "Nut allergy", "High chair", "Regulars, table by the window",
         "Gluten free", "In a hurry: theatre at 21:00")
LUNCH = ("11:45", "14:15")  # first and last seating, local time
DINNER = ("18:30", "22:30")
BATCH = 1024  # changes handed to the database at once (it commits them in groups)
TARGET_MS = 300


@dataclass(frozen=True)
class Scale:
    events: int
    first_day: date
    days: int
    runs: int


FULL = Scale(100_000, date(2026, 8, 1), 90, 30)  # to 29 October: 25 October is 25 hours long
QUICK = Scale(5_000, date(2026, 10, 23), 5, 5)


def cached(scale: Scale) -> Path:
    name = f"maitre-reports-b{BUILD}-s{latest_version()}-{scale.events}-{scale.first_day}-{scale.days}.db"
    return Path(tempfile.gettempdir()) / name


# --- the restaurant, through the services -------------------------------------------------------------------


@dataclass(eq=False)
class Party:
    table: int  # its own table now
    joined: list[int] = field(default_factory=list)
    seated: bool = True
    tables_at_close: list[int] = field(default_factory=list)
    calls: list[GuestCall] = field(default_factory=list)


@dataclass(eq=False)
class GuestCall:
    party: Party
    kind: str
    id: int | None = None
    over: bool = False  # seen to, or ended by the party leaving


class Restaurant:
    """The floor as the simulation knows it, and the changes it hands to the services, each on its own clock."""

    def __init__(self, db: Database, settings: Settings, scale: Scale, seed: int = 19) -> None:
        self.db, self.settings, self.scale = db, settings, scale
        self.zone = ZoneInfo(TIME_ZONE)
        self.random = random.Random(seed)
        self.admin = Actor(0, "manager", "admin")
        self.waiters: dict[str, Actor] = {}
        self.admin_key = ""
        self.area_of: dict[int, str] = {}
        self.seats: dict[int, int] = {}
        self.tokens: dict[int, str] = {}
        self.at_table: dict[int, Party] = {}  # every occupied table, joined ones too
        self.queue: list[tuple[datetime, int, Callable[..., Awaitable[None]], tuple[Any, ...]]] = []
        self.order = itertools.count()
        self.pending: list[tuple[Callable[[], Awaitable[Result]], GuestCall | None]] = []
        self.last_seating = self.now = datetime.now(UTC)
        self.limit = scale.events
        self.events = 0  # the restaurant's audit events, those handed to the database included
        self.refused: dict[str, int] = {}
        self.pace = 1.0  # guests' calls per party, against the first guess

    def services(self) -> tuple[TableService, WaiterService]:
        moment = format_time(self.now)

        def clock() -> str:
            return moment

        return TableService(self.db, self.settings, clock), WaiterService(self.db, self.settings, clock)

    def local(self, day: date, hh_mm: str) -> datetime:
        hours, minutes = map(int, hh_mm.split(":"))
        return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=self.zone).astimezone(UTC)

    async def open(self) -> None:
        """The restaurant, its tables in three areas, the waiters' keys and sections, on the first day's morning."""
        self.now = self.local(self.scale.first_day, "09:00")
        clock = self.services()[0].clock
        restaurant = await RestaurantService(self.db, self.settings, clock).add(
            SLUG, "Brasserie du Bench", tables=len(AREAS["Main room"]))
        self.admin = Actor(restaurant["id"], "manager", "admin")
        floor = FloorService(self.db, self.settings, clock)
        _, tables = await TableService(self.db, self.settings).list_tables(self.admin.restaurant_id)
        for table, seats in zip(tables, AREAS["Main room"], strict=True):
            if seats != table["seats"]:
                self.check(await floor.set_table(self.admin, table["id"], seats=seats))
        for area, prefix in (("Terrace", "T"), ("Bar", "B")):
            for number, seats in enumerate(AREAS[area], start=1):
                self.check(await floor.add_table(self.admin, f"{prefix}{number}", seats, area))
        _, tables = await TableService(self.db, self.settings).list_tables(self.admin.restaurant_id)
        self.area_of = {table["id"]: table["area"] for table in tables}
        self.seats = {table["id"]: table["seats"] for table in tables}
        self.tokens = await floor.qr_tokens(self.admin.restaurant_id)
        keys = KeyService(self.db, clock)
        _, self.admin_key = await keys.add(SLUG, "bench")
        for name, areas in WAITERS.items():
            record, _ = await keys.add(SLUG, f"{name}'s phone", "waiter", name=name)
            self.waiters[name] = Actor(self.admin.restaurant_id, f"{name}'s phone", "waiter", key_id=record["id"])
            self.check(await SectionService(self.db, self.settings, clock).set_section(self.admin, name, areas))
        self.events = await self.count()

    async def count(self) -> int:
        return await self.db.read(lambda conn: conn.execute(
            "SELECT count(*) FROM audit_event WHERE restaurant_id = ?", (self.admin.restaurant_id,)).fetchone()[0])

    def check(self, result: Result) -> None:
        if not result.ok:
            self.refused[str(result.code)] = self.refused.get(str(result.code), 0) + 1

    # the day, as a queue of moments

    def at(self, moment: datetime, step: Callable[..., Awaitable[None]], *args: Any) -> None:
        heapq.heappush(self.queue, (moment, next(self.order), step, args))

    def minutes(self, low: float, high: float) -> timedelta:
        return timedelta(minutes=self.random.uniform(low, high))

    async def build(self) -> None:
        """Every day of the scale, each with its share of the events still to make (guests call more or less
        often to make it), and not one event more than the scale's."""
        await self.open()
        for n in range(self.scale.days):
            share = (self.scale.events - self.events) / (self.scale.days - n) * 1.05  # the last day stops at it
            made = await self.day(self.scale.first_day + timedelta(days=n))
            self.pace *= min(2.0, max(0.5, (share / max(made, 1)) ** 2))

    async def day(self, day: date) -> int:
        """A lunch and a dinner, the late parties closed after midnight: the events made."""
        made = self.events
        for first, last in (LUNCH, DINNER):
            start, self.last_seating = self.local(day, first), self.local(day, last)
            for table in self.area_of:
                self.at(start + self.minutes(0, 50), self.arrive, table)
            while self.queue and self.events < self.limit:
                self.now, _, step, args = heapq.heappop(self.queue)
                await step(*args)
                if len(self.pending) >= BATCH:
                    await self.flush()
            self.queue.clear()
        await self.flush()
        return self.events - made

    def change(self, make: Callable[[], Awaitable[Result]], call: GuestCall | None = None) -> None:
        if self.events < self.limit:
            self.pending.append((make, call))
            self.events += 1

    async def flush(self) -> None:
        """Every change handed over so far, in order (the database commits them in groups of up to 128)."""
        batch, self.pending = self.pending, []
        results = await asyncio.gather(*(make() for make, _ in batch))
        for (_, call), result in zip(batch, results, strict=True):
            if not result.ok:
                self.events -= 1
            self.check(result)
            if call is not None and result.ok:
                call.id = result.announcements[0]["request"]["id"]

    def free(self, area: str | None = None) -> list[int]:
        return [table for table in self.area_of
                if table not in self.at_table and area in (None, self.area_of[table])]

    async def arrive(self, table: int) -> None:
        if self.now > self.last_seating:
            return
        if table in self.at_table:  # still taken (a party restored, moved or joined here): come back later
            self.at(self.now + self.minutes(5, 15), self.arrive, table)
            return
        tables, _ = self.services()
        guests = max(1, min(self.seats[table] + self.random.choice((-2, -1, 0, 0, 0, 1)), 99))
        known = self.random.random() < 0.6
        self.change(_call(tables.seat_table(self.admin, table, guests if known else None)))
        party = Party(table)
        self.at_table[table] = party
        lunch = self.now.astimezone(self.zone).hour < 17
        stay = self.minutes(45, 100) if lunch else self.minutes(70, 160)
        if not known:
            self.at(self.now + self.minutes(1, 4), self.set_guests, party, guests)
        if self.random.random() < 0.3:
            self.at(self.now + self.minutes(2, 15), self.note, party)
        if self.random.random() < 0.08:
            self.at(self.now + self.minutes(1, 6), self.join, party)
        if self.random.random() < 0.07:
            self.at(self.now + self.minutes(10, 40), self.move, party)
        for _ in range(3):
            if self.random.random() < 0.35 * self.pace:
                self.at(self.now + self.minutes(5, stay.total_seconds() / 60 - 10), self.request, party,
                        "call_waiter")
        if self.random.random() < min(1.0, 0.6 * self.pace):
            self.at(self.now + stay - self.minutes(3, 12), self.request, party, "ask_for_bill")
        self.at(self.now + stay, self.close, party)

    async def set_guests(self, party: Party, guests: int) -> None:
        if party.seated:
            tables, _ = self.services()
            self.change(_call(tables.set_guest_count(self.admin, party.table, guests)))

    async def note(self, party: Party) -> None:
        if party.seated:
            tables, _ = self.services()
            self.change(_call(tables.set_note(self.admin, party.table, self.random.choice(NOTES))))

    async def join(self, party: Party) -> None:
        free = self.free(self.area_of[party.table])
        if party.seated and free:
            other = self.random.choice(free)
            tables, _ = self.services()
            self.change(_call(tables.join_tables(self.admin, party.table, other)))
            party.joined.append(other)
            self.at_table[other] = party
            if self.random.random() < 0.5:
                self.at(self.now + self.minutes(20, 50), self.split, party)

    async def split(self, party: Party) -> None:
        if party.seated and party.joined:
            other = party.joined.pop()
            del self.at_table[other]
            tables, _ = self.services()
            self.change(_call(tables.split_table(self.admin, other)))

    async def move(self, party: Party) -> None:
        free = self.free(self.area_of[party.table]) or self.free()
        if party.seated and free:
            to = self.random.choice(free)
            tables, _ = self.services()
            self.change(_call(tables.move_table(self.admin, party.table, to)))
            for table in (party.table, *party.joined):
                del self.at_table[table]
            self.at(self.now + self.minutes(5, 20), self.arrive, party.table)
            party.table, party.joined = to, []
            self.at_table[to] = party

    async def request(self, party: Party, kind: str) -> None:
        if not party.seated or any(call.kind == kind and not call.over for call in party.calls):
            return
        call = GuestCall(party, kind)
        party.calls.append(call)
        _, waiters = self.services()
        token = self.tokens[party.table]
        self.change(lambda: waiters.request(token, kind), call)
        if self.random.random() < 0.9:
            section = next(name for name, areas in WAITERS.items() if self.area_of[party.table] in areas)
            other = next(name for name in WAITERS if name != section)
            waiter = section if self.random.random() < 0.85 else other
            self.at(self.now + timedelta(seconds=self.random.uniform(15, 300)), self.claim, call, waiter)

    async def claim(self, call: GuestCall, waiter: str) -> None:
        if call.over:
            return
        if call.id is None:
            await self.flush()  # the call was made in the batch not yet handed over: its id comes with it
            if call.id is None:
                return
        _, waiters = self.services()
        self.change(_call(waiters.claim(self.waiters[waiter], call.id)))
        if self.random.random() < 0.95:
            self.at(self.now + timedelta(seconds=self.random.uniform(30, 420)), self.resolve, call, waiter)

    async def resolve(self, call: GuestCall, waiter: str) -> None:
        if not call.over and call.id is not None:
            _, waiters = self.services()
            self.change(_call(waiters.resolve(self.waiters[waiter], call.id)))
            call.over = True

    async def close(self, party: Party) -> None:
        if not party.seated:
            return
        tables, _ = self.services()
        self.change(_call(tables.close_table(self.admin, party.table)))
        party.seated, party.tables_at_close = False, [party.table, *party.joined]
        for table in party.tables_at_close:
            del self.at_table[table]
        for call in party.calls:
            call.over = True
        if self.random.random() < 0.03:
            self.at(self.now + self.minutes(1, 4), self.restore, party)
        self.at(self.now + self.minutes(5, 20), self.arrive, party.table)

    async def restore(self, party: Party) -> None:
        if any(table in self.at_table for table in party.tables_at_close):
            return
        tables, _ = self.services()
        self.change(_call(tables.restore_table(self.admin, party.table)))
        party.seated, party.joined = True, party.tables_at_close[1:]
        for table in party.tables_at_close:
            self.at_table[table] = party
        self.at(self.now + self.minutes(5, 25), self.close, party)


def _call(call: Awaitable[Result]) -> Callable[[], Awaitable[Result]]:
    return lambda: call


# --- building it once ---------------------------------------------------------------------------------------


@dataclass
class Built:
    path: Path
    restaurant_id: int
    admin_key: str
    events: int
    parties: int
    calls: int
    restores: int
    build_seconds: float
    refused: dict[str, int]


async def build(scale: Scale, path: Path) -> Built:
    """The restaurant's whole history, through the services, into `path` (made whole, then renamed)."""
    building = path.with_name(path.name + ".building")
    for leftover in (building, Path(f"{building}-wal"), Path(f"{building}-shm")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    settings = Settings.from_env(environ={}, db_path=str(building), time_zone=TIME_ZONE)
    db = await Database.open(str(building))
    try:
        restaurant = Restaurant(db, settings, scale)
        await restaurant.build()
        events = await restaurant.count()
    finally:
        await db.close()
    built = Built(path, restaurant.admin.restaurant_id, restaurant.admin_key, events, *history(building),
                  time.perf_counter() - started, restaurant.refused)
    path.with_suffix(".json").write_text(json.dumps(built.__dict__, default=str), encoding="utf-8")
    building.rename(path)
    return built


def history(path: Path) -> tuple[int, int, int]:
    """The parties, guests' calls and restores the database holds."""
    conn = sqlite3.connect(path)
    try:
        parties, calls, restores = (conn.execute(query).fetchone()[0] for query in (
            "SELECT count(*) FROM table_session WHERE joined_to IS NULL",
            "SELECT count(*) FROM waiter_request",
            "SELECT count(*) FROM audit_event WHERE action = 'restore_table'"))
        return parties, calls, restores
    finally:
        conn.close()


async def built(scale: Scale) -> tuple[Built, bool]:
    """The scale's database from the cache, or built now; and whether it was built now."""
    path = cached(scale)
    if path.exists() and path.with_suffix(".json").exists():
        data = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        return Built(**(data | {"path": path})), False
    return await build(scale, path), True


# --- measuring ----------------------------------------------------------------------------------------------


def period_query(scale: Scale) -> str:
    last = scale.first_day + timedelta(days=scale.days - 1)
    return f"from={scale.first_day}&to={last}"


async def time_service(data: Built, path: Path, scale: Scale) -> list[float]:
    """Milliseconds of `ReportService.report` over the whole period, `scale.runs` times after one unmeasured."""
    settings = Settings.from_env(environ={}, db_path=str(path), time_zone=TIME_ZONE)
    db = await Database.open(str(path))
    try:
        reports = ReportService(db, settings)
        last = scale.first_day + timedelta(days=scale.days - 1)
        period = await reports.period(data.restaurant_id, first=str(scale.first_day), last=str(last))
        actor = Actor(data.restaurant_id, "bench", "admin")
        report = await reports.report(actor, period)
        assert report["totals"]["parties"] > 0, report["totals"]
        return [await timed(reports.report(actor, period)) for _ in range(scale.runs)]
    finally:
        await db.close()


async def timed(work: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await work
    return (time.perf_counter() - started) * 1000


ADDRESSES = {"GET /admin/reports (the page)": "/admin/reports",
             "GET /admin/api/reports (JSON)": "/admin/api/reports",
             "GET /admin/reports.csv (the parties)": "/admin/reports.csv"}


async def time_server(data: Built, path: Path, scale: Scale) -> dict[str, list[float] | str]:
    """Milliseconds to each address's whole body from a real server (or why not), `scale.runs` times after one."""
    port = free_port()
    server = maitre(path, port, "--time-zone", TIME_ZONE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            headers = await signed_in(session, base, data.admin_key, f"{base}/admin/reports?{period_query(scale)}")
            timings: dict[str, list[float] | str] = {}
            for name, address in ADDRESSES.items():
                url = f"{base}{address}?{period_query(scale)}"

                async def fetch(url: str = url) -> int:
                    async with session.get(url, headers=headers, allow_redirects=False) as response:
                        await response.read()
                        return response.status

                status = await fetch()
                if status != 200:
                    timings[name] = f"answered {status}"
                    continue
                timings[name] = [await timed(fetch()) for _ in range(scale.runs)]
            return timings
    finally:
        server.stop()


async def signed_in(session: aiohttp.ClientSession, base: str, key: str, page: str) -> dict[str, str]:
    """The headers that sign a request in: the key as a Bearer if the page takes one, else none (the sign-in
    form's cookie, now in the session's jar)."""
    bearer = {"Authorization": f"Bearer {key}"}
    async with session.get(page, headers=bearer, allow_redirects=False) as response:
        await response.read()
        if response.status == 200:
            return bearer
    async with session.post(f"{base}/admin/login", data={"key": key}, headers={"Origin": base},
                            allow_redirects=False) as response:
        assert response.status == 303, f"signing in answered {response.status}"
    return {}


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def row(name: str, timings: list[float] | str, runs: int) -> str:
    if isinstance(timings, str):
        return f"| {name} | {timings} | | | |"
    p50, p95, most = (percentile(timings, p) for p in (50, 95, 100))
    return f"| {name} | {p50:.1f} ms | {p95:.1f} ms | {most:.1f} ms | {runs} |"


async def run(scale: Scale) -> str:
    """The markdown the run prints: what was measured on, the timings, and whether they meet the target."""
    started_load = load_average()
    data, new = await built(scale)
    how = (f"built through the services in {data.build_seconds:.0f} s" + ("" if new else ", cached") +
           (f"; refused along the way: {data.refused}" if data.refused else ""))
    with tempfile.TemporaryDirectory(prefix="maitre-reports-") as directory:
        path = Path(directory) / "maitre.db"
        shutil.copyfile(data.path, path)
        service = await time_service(data, path, scale)
        pages = await time_server(data, path, scale)
    days = f"{scale.days} days"
    lines = [
        f"{len(sum(AREAS.values(), []))} tables in {len(AREAS)} areas, {scale.days} days from {scale.first_day} "
        f"({TIME_ZONE}): {data.events:,} audit events, {data.parties:,} parties, {data.calls:,} guests' calls, "
        f"{data.restores:,} restores; {how}. Load average {started_load} before, {load_average()} after.",
        "",
        f"| Report over {days}, {data.events:,} audit events | p50 | p95 | max | runs |",
        "|---|---|---|---|---|",
        row(f"ReportService.report ({days}, {data.events:,} events)", service, scale.runs),
        *(row(name, timings, scale.runs) for name, timings in pages.items()),
    ]
    met = percentile(service, 95) < TARGET_MS
    page = pages[next(iter(ADDRESSES))]
    if not isinstance(page, str):
        met = met and percentile(page, 95) < TARGET_MS
    lines += ["", f"Target: p95 < {TARGET_MS} ms for the service and the page: {'met' if met else 'NOT met'}."]
    return "\n".join(lines)


SECTION = ": reports (issue 19)"


def write(text: str, when: date) -> None:
    """docs/benchmarks.md with this run's section in place of an earlier run's (whose notes, under their own
    ### headings, stay), else before the Notes."""
    document = ROOT / "docs" / "benchmarks.md"
    head, *sections = document.read_text(encoding="utf-8").split("\n## ")
    earlier = [section for section in sections if SECTION in section.split("\n", 1)[0]]
    notes = earlier[0].partition("\n### ")[1:] if earlier else ("", "")
    sections = [section for section in sections if section not in earlier]
    at = next((n for n, section in enumerate(sections) if section.startswith("Notes\n")), len(sections))
    sections.insert(at, f"{when}{SECTION}\n\n`python -m bench.reports` (bench/reports.py): the 90-day report "
                    f"of a restaurant built through the service layer, in the service and from a running server.\n\n"
                    f"{text}\n" + "".join(notes))
    document.write_text("\n## ".join([head, *sections]), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK.events:,} events over {QUICK.days} days, {QUICK.runs} runs: checks the harness "
                        "(never written to docs/benchmarks.md)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md as it is")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    text = asyncio.run(run(scale))
    print(text)
    if not args.quick and not args.no_write:
        write(text, datetime.now(UTC).date())


if __name__ == "__main__":
    main()
