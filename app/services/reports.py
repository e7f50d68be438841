"""Reports: what happened on the floor over a service day or a range of them.

Read from what every change already keeps, in the same transaction as the change:
- parties (`table_session`, one row per party at its own table, and one per table joined to it):
  a party restored after a close is the same row opened again, so it is one party; a party that
  moved is the same row at its new table, so it is counted once, where it ended;
- stints (`stint`, migration 0007): when each party sat at each table, written by the unit of work
  from each change's before and after (core.py), so a move or a join shows on the floor it left;
- guests' calls (`waiter_request`), each with its party, and its waits to be claimed and seen to, in
  milliseconds (migration 0007);
- restores: each party counts its own (`table_session.restores`), however it was restored (alone or
  in a bulk).

The figures are added up by SQLite (see "in SQL" below): a report over 90 busy days reads tens of
thousands of rows, and only their sums and lists come back to Python.

A service day starts at MAITRE_DAY_STARTS_AT (04:00) in the restaurant's time zone (its own, or
MAITRE_TIME_ZONE): a service that runs past midnight belongs to the day it began. A day is
read with the zone's rules, so a day in which the clocks change is 23 or 25 hours long.

Every figure is plain data (`Report`): the page draws it, the JSON API returns it as it is,
the CSV export writes the parties' rows, and `run.py report` prints its summary.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple, TypedDict
from zoneinfo import ZoneInfo

from ..db import format_time, parse_time
from .core import Actor, Service, ServiceError

DAYS_AT_MOST = 90  # a range's length
HEAT_MAP_WEEKS = 4
TURN_BUCKET_MINUTES = 15  # the turn times' distribution: a bar per quarter of an hour
TURN_BUCKETS = 12  # ... the last one "3 h and more"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
CALL_KINDS = {"call_waiter": "Call a waiter", "ask_for_bill": "The bill"}
RESOLVED_BY_CLOSING = "table closed"  # a call ended because its party left, not seen to by anyone


class ReportPeriod(TypedDict):
    start: str  # ISO 8601 with the zone's offset: the first service day's start
    end: str  # the last day's end, or now if that is sooner (the day so far)
    first_day: str  # YYYY-MM-DD
    last_day: str
    days: int
    time_zone: str
    day_starts_at: str  # HH:MM
    label: str  # "Thursday 26 November 2026" or "1 – 26 November 2026"


class Totals(TypedDict):
    parties: int
    covers: int  # guests seated (parties of unknown size count none)
    unknown_size: int  # parties seated without a guest count (a guest's call at a free table)
    tables_used: int
    tables: int  # on the floor now (or in the waiter's section)
    restores: int
    calls: int


class HourBar(TypedDict):
    hour: str  # "18:00": covers and parties seated from then to the next hour, summed over the period's days
    parties: int
    covers: int


class OccupancySlot(TypedDict):
    at: str  # "18:00": a slot of the service day
    areas: dict[str, float]  # tables occupied in each area, on average over the slot (and the period's days)


class Occupancy(TypedDict):
    slot_minutes: int
    areas: list[str]  # in the floor's order
    tables: dict[str, int]  # each area's tables on the floor
    slots: list[OccupancySlot]  # from the day's start to its end


class TurnRow(TypedDict):
    key: str  # the area's name, or the seats ("4 seats")
    parties: int
    median_minutes: float | None
    p90_minutes: float | None


class TurnBucket(TypedDict):
    from_minutes: int
    to_minutes: int | None  # None: and more
    parties: int


class Turns(TypedDict):
    all: TurnRow
    by_area: list[TurnRow]
    by_size: list[TurnRow]  # by the seats of every table the party sat at when it left
    distribution: list[TurnBucket]


class CallRow(TypedDict):
    key: str  # a kind's label, or a waiter's name
    calls: int
    claimed: int
    claim_median_seconds: float | None
    claim_p90_seconds: float | None
    resolved: int  # seen to by staff (not ended by the party leaving)
    resolve_median_seconds: float | None
    resolve_p90_seconds: float | None


class Calls(TypedDict):
    by_kind: list[CallRow]
    by_waiter: list[CallRow]  # by who claimed each call (a waiter sees only their own)


class HeatMap(TypedDict):
    first_day: str
    last_day: str
    hours: list[str]  # "04:00" … "03:00": the columns, in the service day's order
    rows: list[dict[str, Any]]  # {"weekday": "Mon", "covers": [24 ints]}
    max: int


class DayRestores(TypedDict):
    day: str
    restores: int


class UnusedTable(TypedDict):
    id: int
    number: str
    area: str
    seats: int


class Report(TypedDict):
    restaurant: dict[str, str]  # slug, name
    waiter: str | None  # a waiter's own report: whose
    period: ReportPeriod
    totals: Totals
    hours: list[HourBar]
    occupancy: Occupancy
    turns: Turns
    calls: Calls
    heat_map: HeatMap
    unused_tables: list[UnusedTable]
    restores: list[DayRestores]


class PartyRow(TypedDict):
    """One party, as the CSV export writes it (times in the restaurant's zone)."""

    party: int
    table: str  # where it ended
    area: str
    tables: str  # every table it sat at when it left, its own first ("4+5")
    seated: str
    closed: str | None  # None: still seated
    turn_minutes: float | None
    guests: int | None
    calls: int
    claim_wait_seconds: float | None  # the longest wait for a claim among its calls
    resolve_wait_seconds: float | None
    restores: int


@dataclass(frozen=True)
class Period:
    """Service days `first_day` .. `last_day` of a restaurant, in its zone: from the first day's start to the
    last day's end, or to `now` if the period is still running."""

    zone: ZoneInfo
    day_starts: time
    first_day: date
    last_day: date
    start: datetime  # aware, in `zone`
    end: datetime  # aware, in `zone`


class ReportService(Service):
    """Reports over service days. Admins see the whole restaurant; a waiter sees the tables of their section (and
    of the calls by waiter, their own line); nobody else sees reports (`forbidden`)."""

    async def period(self, restaurant_id: int, day: str | None = None, first: str | None = None,
                     last: str | None = None) -> Period:
        """The period asked for: one `day` (YYYY-MM-DD), or `first` to `last` (both included, at most 90 days;
        `first` alone runs to today); by default the last service (since the latest day start). `invalid_period`
        for anything else."""
        zone_name = await self.db.read(_time_zone, restaurant_id)
        return service_days(ZoneInfo(zone_name or self.settings.time_zone), self.settings.day_starts_at,
                            parse_time(self.clock()), day, first, last)

    async def report(self, actor: Actor, period: Period) -> Report:
        """The period's report. Its three parts (the guests and their turns, the calls, the floor's occupancy) are
        read at once, each on a connection of its own (Database.read_aside): a report over months takes no longer
        than its longest part, and holds up none of the dashboards' reads. (Each part reads its own snapshot: a
        change committed while they run may show in one part and not yet in another.)"""
        floor, restaurant = await self.db.read(_floor_of, actor)
        heat_first = period.last_day - timedelta(days=7 * HEAT_MAP_WEEKS - 1)
        since = min(day_start(heat_first, period), period.start, key=datetime.timestamp)
        (counts, turned), calls, (starts, ends, used, stretches) = await asyncio.gather(
            self.db.read_aside(_guests_part, floor, period, since),
            self.db.read_aside(_calls_part, floor, period, since),
            self.db.read_aside(_floor_part, floor, period, since))
        totals, hours, heat, restores = guests(counts, period, heat_first)
        call_rows, called = calls_of(calls, floor.waiter)
        totals["tables_used"], totals["tables"] = len(used & set(floor.on_floor)), len(floor.on_floor)
        totals["calls"] = called
        return {
            "restaurant": restaurant,
            "waiter": floor.waiter,
            "period": describe(period),
            "totals": totals,
            "hours": hours,
            "occupancy": occupancy_of(starts, ends, floor, period, stretches),
            "turns": turns_of(turned, floor),
            "calls": call_rows,
            "heat_map": heat,
            "unused_tables": [{"id": table.id, "number": table.label, "area": table.area, "seats": table.seats}
                              for table in floor.on_floor.values() if table.id not in used],
            "restores": restores,
        }

    async def parties(self, actor: Actor, period: Period) -> list[PartyRow]:
        """Every party seated in the period, oldest first (the CSV export's rows)."""
        return await self.db.read_aside(self._parties, actor, period)  # a long read: apart from the dashboards

    def _parties(self, conn: sqlite3.Connection, actor: Actor, period: Period) -> list[PartyRow]:
        floor = Floor.read(conn, actor)
        parties = floor.parties_of(conn, period)
        by_party: dict[int, list[CallRecord]] = defaultdict(list)
        for call in _calls(conn, floor, parties, period):
            by_party[call.party_id].append(call)
        rows: list[PartyRow] = []
        for party in parties:
            table = floor.tables[party.table_id]
            waits = by_party[party.id]
            rows.append({
                "party": party.id,
                "table": table.label,
                "area": table.area,
                "tables": "+".join(floor.tables[table_id].label for table_id in party.tables),
                "seated": local(party.opened, period.zone),
                "closed": local(party.closed, period.zone) if party.closed is not None else None,
                "turn_minutes": round(party.turn / 60, 1) if party.turn is not None else None,
                "guests": party.guests,
                "calls": len(waits),
                "claim_wait_seconds": longest(call.to_claim for call in waits),
                "resolve_wait_seconds": longest(call.to_resolve for call in waits),
                "restores": party.restores,
            })
        return rows


# -- periods -----------------------------------------------------------------------------------------------------


def service_days(zone: ZoneInfo, day_starts_at: str, now: datetime, day: str | None, first: str | None,
                 last: str | None) -> Period:
    """The service days asked for, in `zone`, days starting at `day_starts_at` (HH:MM); see ReportService.period."""
    hours, minutes = map(int, day_starts_at.split(":"))
    starts = time(hours, minutes)
    now = now.astimezone(zone)
    today = service_day_of(now, starts)
    if day is not None and (first is not None or last is not None):
        raise ServiceError("invalid_period", "Ask for one day, or for a range from one day to another, not both.")
    if day is not None:
        first_day = last_day = _day(day)
    elif first is not None:
        first_day, last_day = _day(first), _day(last) if last is not None else today
    elif last is not None:
        raise ServiceError("invalid_period", "A range needs its first day (from) as well as its last (to).")
    else:
        first_day = last_day = today
    if last_day < first_day:
        raise ServiceError("invalid_period", "A range's first day must not come after its last.")
    if (last_day - first_day).days + 1 > DAYS_AT_MOST:
        raise ServiceError("invalid_period", f"A report covers at most {DAYS_AT_MOST} days.")
    if first_day > today:
        raise ServiceError("invalid_period", f"{first_day.isoformat()} has not begun yet.")
    end = min(_start(last_day + timedelta(days=1), starts, zone), now, key=datetime.timestamp)  # not by the clock
    return Period(zone, starts, first_day, last_day, _start(first_day, starts, zone), end)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ServiceError("invalid_period", f"{str(text)[:40]!r} is not a day such as 2026-11-26.") from None


def _start(day: date, starts: time, zone: ZoneInfo) -> datetime:
    """When a service day starts: its clock time that day, as the zone's rules have it (through a gap in the
    clock, an hour later)."""
    return datetime.combine(day, starts, tzinfo=zone).astimezone(UTC).astimezone(zone)


def day_start(day: date, period: Period) -> datetime:
    return _start(day, period.day_starts, period.zone)


def service_day_of(moment: datetime, starts: time) -> date:
    """The service day a moment (in the restaurant's zone) belongs to: before the day's start, the day before."""
    return moment.date() if moment.time() >= starts else moment.date() - timedelta(days=1)


def offset(moment: datetime) -> float:
    """A local time's offset from UTC, in seconds."""
    return (moment.utcoffset() or timedelta()).total_seconds()


def days_of(period: Period) -> list[date]:
    return [period.first_day + timedelta(days=n) for n in range((period.last_day - period.first_day).days + 1)]


def describe(period: Period) -> ReportPeriod:
    first, last = period.first_day, period.last_day
    if first == last:
        label = f"{first:%A} {first.day} {first:%B %Y}"
    elif (first.year, first.month) == (last.year, last.month):
        label = f"{first.day} – {last.day} {last:%B %Y}"
    elif first.year == last.year:
        label = f"{first.day} {first:%B} – {last.day} {last:%B %Y}"
    else:
        label = f"{first.day} {first:%B %Y} – {last.day} {last:%B %Y}"
    return {"start": period.start.isoformat(timespec="seconds"), "end": period.end.isoformat(timespec="seconds"),
            "first_day": first.isoformat(), "last_day": last.isoformat(), "days": (last - first).days + 1,
            "time_zone": str(period.zone.key), "day_starts_at": period.day_starts.strftime("%H:%M"), "label": label}


def local(moment: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(moment, zone).isoformat(timespec="seconds")


def _time_zone(conn: sqlite3.Connection, restaurant_id: int) -> str | None:
    row = conn.execute("SELECT time_zone FROM restaurant WHERE id = ?", (restaurant_id,)).fetchone()
    if row is None:
        raise LookupError(f"no restaurant with id {restaurant_id}")
    return row[0]


# -- what is read --------------------------------------------------------------------------------------------------



@dataclass(frozen=True)
class TableRecord:
    id: int
    label: str
    area: str
    seats: int


class PartyRecord(NamedTuple):  # (a CSV of 90 days makes tens of thousands; a frozen dataclass costs 4x)
    id: int
    table_id: int  # where it ended (or sits)
    tables: tuple[int, ...]  # every table it sat at as it left (or sits at), its own first
    guests: int | None
    opened: float  # seconds since 1970
    closed: float | None
    restores: int

    @property
    def turn(self) -> float | None:
        return self.closed - self.opened if self.closed is not None else None


class CallRecord(NamedTuple):
    party_id: int
    kind: str
    waiter: str | None  # who claimed it, else who saw to it; None if nobody did
    resolver: str | None
    to_claim: float | None  # seconds
    to_resolve: float | None  # seconds, when staff saw to it (not when its party left)


@dataclass
class Floor:
    """The restaurant's tables (those removed included: history points at them), and the part of them a report
    covers: all of them for an admin, a waiter's section for a waiter."""

    restaurant_id: int
    tables: dict[int, TableRecord]
    on_floor: dict[int, TableRecord]  # in the report's scope, in the floor's order
    waiter: str | None  # a waiter's own report: whose

    @classmethod
    def read(cls, conn: sqlite3.Connection, actor: Actor) -> Floor:
        if actor.role not in ("admin", "waiter"):
            raise ServiceError("forbidden", "Only admins and waiters see reports.")
        waiter = None
        if actor.role == "waiter":
            row = conn.execute("SELECT name FROM api_key WHERE id = ?", (actor.key_id,)).fetchone()
            waiter = row["name"] if row else actor.name
        rows = conn.execute(
            "SELECT t.id, t.label, t.area, t.seats, t.removed_at,"
            " coalesce((SELECT waiter FROM section WHERE table_id = t.id),"
            "          (SELECT waiter FROM section WHERE restaurant_id = t.restaurant_id AND area = t.area)) AS waiter"
            " FROM dining_table AS t WHERE t.restaurant_id = ? ORDER BY t.sort_order, t.id", (actor.restaurant_id,))
        tables, on_floor = {}, {}
        for row in rows:
            table = TableRecord(row["id"], row["label"], row["area"], row["seats"])
            tables[table.id] = table
            if row["removed_at"] is None and (waiter is None or row["waiter"] == waiter):
                on_floor[table.id] = table
        return cls(actor.restaurant_id, tables, on_floor, waiter)

    def areas(self) -> list[str]:
        return list(dict.fromkeys(table.area for table in self.on_floor.values()))

    def parties_of(self, conn: sqlite3.Connection, period: Period) -> list[PartyRecord]:
        """The parties (in scope) that sat down in the period, oldest first, each with every table it sat at as it
        left (or sits at now)."""
        start, end = format_time(period.start), format_time(period.end)
        joined: dict[int, list[int]] = defaultdict(list)
        for party, table in tuples(conn,
                "SELECT j.joined_to, j.table_id FROM table_session AS p JOIN dining_table AS t ON t.id = p.table_id"
                " JOIN table_session AS j ON j.joined_to = p.id"
                " WHERE t.restaurant_id = ? AND p.joined_to IS NULL AND p.opened_at >= ? AND p.opened_at < ?"
                " AND (j.closed_at = p.closed_at OR (p.closed_at IS NULL AND j.state = 'active')) ORDER BY j.id",
                (self.restaurant_id, start, end)):
            joined[party].append(table)
        rows = tuples(conn,
            "SELECT p.id, p.table_id, p.guest_count, p.restores, p.opened_at, p.closed_at"
            " FROM table_session AS p JOIN dining_table AS t ON t.id = p.table_id"
            " WHERE t.restaurant_id = ? AND p.joined_to IS NULL AND p.opened_at >= ? AND p.opened_at < ?"
            " ORDER BY p.opened_at, p.id",
            (self.restaurant_id, start, end))
        parties = []
        for party, table, guests, restores, opened_at, closed_at in rows:
            if self.waiter is not None and table not in self.on_floor:
                continue
            parties.append(PartyRecord(party, table, (table, *joined.get(party, ())), guests, seconds(opened_at),
                                       seconds(closed_at) if closed_at else None, restores))
        return parties


def tuples(conn: sqlite3.Connection, sql: str, parameters: Any) -> sqlite3.Cursor:
    """The rows as plain tuples: a report reads tens of thousands, and sqlite3.Row costs more to read by name."""
    cursor = conn.cursor()
    cursor.row_factory = None
    return cursor.execute(sql, parameters)


def seconds(stored: str) -> float:
    """A stored time as seconds since 1970 (format_time's text; fromisoformat is cheaper than SQL's julianday)."""
    return datetime.fromisoformat(stored).timestamp()


def _calls(conn: sqlite3.Connection, floor: Floor, parties: list[PartyRecord], period: Period) -> list[CallRecord]:
    """The guests' calls of these parties (seated in the period)."""
    ids = {party.id for party in parties}
    rows = tuples(conn,
        "SELECT r.party_id, r.kind, r.claimed_by, k.name, r.resolved_by, r.claim_ms, r.resolve_ms"
        " FROM table_session AS p JOIN dining_table AS t ON t.id = p.table_id"
        " JOIN waiter_request AS r ON r.party_id = p.id LEFT JOIN api_key AS k ON k.id = r.resolved_by_key"
        " WHERE t.restaurant_id = ? AND p.joined_to IS NULL AND p.opened_at >= ? AND p.opened_at < ? ORDER BY r.id",
        (floor.restaurant_id, format_time(period.start), format_time(period.end)))
    calls: list[CallRecord] = []
    for party, kind, claimed_by, resolver_name, resolved_by, claim_ms, resolve_ms in rows:
        if party not in ids:
            continue
        resolver = (resolver_name or resolved_by) if resolve_ms is not None else None
        calls.append(CallRecord(party, kind, claimed_by or resolver, resolver,
                                claim_ms / 1000 if claim_ms is not None else None,
                                resolve_ms / 1000 if resolve_ms is not None else None))
    return calls


# -- figures -------------------------------------------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    """The middle value (the mean of the two middle ones for an even count); None for none."""
    if not values:
        return None
    ordered, middle = sorted(values), len(values) // 2
    return ordered[middle] if len(values) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def p90(values: list[float]) -> float | None:
    """The 90th percentile by nearest rank: the smallest value at least 90% of them do not exceed."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]


def longest(values: Iterable[float | None]) -> float | None:
    known = [round(value, 1) for value in values if value is not None]
    return max(known) if known else None


def _rounded(value: float | None, scale: float = 1.0) -> float | None:
    return round(value / scale, 1) if value is not None else None


def clock_labels(period: Period) -> list[str]:
    """The hours of a service day, "04:00" … "03:00", from the day's start."""
    first = period.day_starts.hour
    return [f"{(first + n) % 24:02d}:00" for n in range(24)]


OCCUPANCY_SLOT_MINUTES = 15


def turn_row(key: str, minutes: list[float]) -> TurnRow:
    return {"key": key, "parties": len(minutes), "median_minutes": _rounded(median(minutes)),
            "p90_minutes": _rounded(p90(minutes))}


# -- in SQL: what the report page reads ----------------------------------------------------------------------------
#
# A report over 90 busy days reads tens of thousands of parties, stints and calls; fetching them into Python costs
# some microseconds a row, so the figures are added up, ranked and counted by SQLite, and only the sums come back.
# The restaurant's clock enters through `report_segment`, a temporary table of the stretches of time in which the
# offset from UTC stays the same (a service day, or the two parts of one in which the clocks change), each with
# its service day and the clock time the day started at; `report_scope` holds the ids of the tables in the report.

SECONDS_OF = "round((julianday({0}) - 2440587.5) * 86400.0, 3)"  # a stored time as seconds since 1970, to the ms
SEGMENT_OF = "(SELECT max(s) FROM report_segment WHERE s {1} {0})"  # the stretch a moment is in
SLOT = OCCUPANCY_SLOT_MINUTES * 60


def prepare(conn: sqlite3.Connection, floor: Floor, period: Period, since: datetime) -> list[
        tuple[float, float, float, float, str, int]]:
    """Fill the temporary tables for a report of the period (reading parties from `since`); returns the stretches."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS report_segment (s REAL PRIMARY KEY, e REAL NOT NULL,"
                 " off REAL NOT NULL, wall REAL NOT NULL, day TEXT NOT NULL, weekday INTEGER NOT NULL) WITHOUT ROWID")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS report_scope (table_id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM report_segment")
    conn.execute("DELETE FROM report_scope")
    stretches = segments(period, since)
    conn.executemany("INSERT INTO report_segment VALUES (?, ?, ?, ?, ?, ?)", stretches)
    in_scope = floor.on_floor if floor.waiter is not None else floor.tables
    conn.executemany("INSERT INTO report_scope VALUES (?)", [(table,) for table in in_scope])
    return stretches


def segments(period: Period, since: datetime) -> list[tuple[float, float, float, float, str, int]]:
    """(start, end, offset, the day's start on the clock, day, weekday) of each stretch of constant offset, service
    day by service day, from `since`'s day to the period's last."""
    found = []
    day = service_day_of(since.astimezone(period.zone), period.day_starts)
    while day <= period.last_day:
        begins, ends = day_start(day, period), day_start(day + timedelta(days=1), period)
        wall = begins.timestamp() + offset(begins)
        cuts = [begins.timestamp()]
        if offset(begins) != offset(ends):  # find where the clocks change, to the quarter hour
            step = OCCUPANCY_SLOT_MINUTES * 60
            moment, previous = begins.timestamp(), offset(begins)
            while moment < ends.timestamp():
                now = offset(datetime.fromtimestamp(moment, period.zone))
                if now != previous:
                    cuts.append(moment)
                    previous = now
                moment += step
        cuts.append(ends.timestamp())
        for start, end in itertools.pairwise(cuts):
            found.append((start, end, offset(datetime.fromtimestamp(start, period.zone)), wall, day.isoformat(),
                          day.weekday()))
        day += timedelta(days=1)
    return found


def party_counts(conn: sqlite3.Connection, since: datetime, period: Period) -> list[tuple[Any, ...]]:
    """(day, weekday, hour, parties, covers, of unknown size, restores) of the parties seated from `since` to the
    period's end, by service day and hour of the clock."""
    opened = SECONDS_OF.format("p.opened_at")
    return list(tuples(conn,
        f"SELECT g.day, g.weekday, CAST((p.opened + g.off) / 3600 AS INTEGER) % 24 AS hour, count(*),"
        f" sum(coalesce(p.guests, 0)), sum(p.guests IS NULL), sum(p.restores)"
        f" FROM (SELECT p.guest_count AS guests, p.restores, {opened} AS opened FROM table_session AS p"
        f"       JOIN report_scope AS scope ON scope.table_id = p.table_id"
        f"       WHERE p.joined_to IS NULL AND p.opened_at >= ? AND p.opened_at < ?) AS p"
        f" JOIN report_segment AS g ON g.s = {SEGMENT_OF.format('p.opened', '<=')}"
        f" GROUP BY g.day, hour", (format_time(since), format_time(period.end))))


def values(listed: str | None, scale: float = 1) -> list[float]:
    """The numbers of a group_concat (a group's values come back as one text: far cheaper than a row each), divided
    by `scale`."""
    return [int(value) / scale for value in listed.split(",")] if listed else []


def turn_figures(conn: sqlite3.Connection, period: Period) -> list[tuple[str, int, list[float]]]:
    """(area, seats, turn times in minutes) of the parties seated in the period that have left, by the area they
    ended in and the seats they had as they left (their own table's and those joined to it)."""
    rows = tuples(conn,
        "SELECT area, seats, group_concat(ms) FROM ("
        "  SELECT t.area, t.seats + coalesce((SELECT sum(jt.seats) FROM table_session AS j"
        "         JOIN dining_table AS jt ON jt.id = j.table_id WHERE j.joined_to = p.id"
        "         AND j.closed_at = p.closed_at), 0) AS seats,"
        "         CAST(round((julianday(p.closed_at) - julianday(p.opened_at)) * 86400000.0) AS INTEGER) AS ms"
        "  FROM table_session AS p JOIN report_scope AS scope ON scope.table_id = p.table_id"
        "  JOIN dining_table AS t ON t.id = p.table_id"
        "  WHERE p.joined_to IS NULL AND p.opened_at >= ? AND p.opened_at < ? AND p.closed_at IS NOT NULL)"
        " GROUP BY area, seats", (format_time(period.start), format_time(period.end)))
    return [(area, seats, values(listed, 60_000)) for area, seats, listed in rows]


def call_figures(conn: sqlite3.Connection, period: Period) -> list[tuple[str, str | None, int, list[float],
                                                                          list[float]]]:
    """(kind, who took them, how many, seconds to claim, seconds to see to) of the calls of the parties seated in
    the period, by kind and waiter (a call ended by its party leaving was not seen to)."""
    rows = tuples(conn,
        "SELECT kind, waiter, count(*), group_concat(claim_ms), group_concat(resolve_ms) FROM ("
        "  SELECT r.kind, coalesce(r.claimed_by, CASE WHEN r.resolve_ms IS NOT NULL"
        "         THEN coalesce(k.name, r.resolved_by) END) AS waiter, r.claim_ms, r.resolve_ms"
        "  FROM table_session AS p JOIN report_scope AS scope ON scope.table_id = p.table_id"
        "  JOIN waiter_request AS r ON r.party_id = p.id LEFT JOIN api_key AS k ON k.id = r.resolved_by_key"
        "  WHERE p.joined_to IS NULL AND p.opened_at >= ? AND p.opened_at < ?)"
        " GROUP BY kind, waiter", (format_time(period.start), format_time(period.end)))
    return [(kind, waiter, count, values(claims, 1000), values(resolutions, 1000))
            for kind, waiter, count, claims, resolutions in rows]


def occupancy_sums(conn: sqlite3.Connection, floor: Floor, period: Period,
                   stretches: list[tuple[float, float, float, float, str, int]]) -> tuple[Sums, Sums, set[int]]:
    """For each area, the stints' starts and ends on the service day's clock (seconds since the day began), as a
    count and a sum per 15-minute slot; and the tables used in the period."""
    start, end = period.start.timestamp(), period.end.timestamp()
    rows = tuples(conn,
        f"WITH piece AS MATERIALIZED ("
        f"  SELECT t.area, st.table_id, st.b, st.e, gb.s AS first, ge.s AS last, gb.off - gb.wall AS shift"
        f"  FROM (SELECT stint.table_id, max(started_ms / 1000.0, :start) AS b,"
        f"               min(coalesce(ended_ms / 1000.0, :end), :end) AS e"
        f"        FROM stint JOIN report_scope AS scope ON scope.table_id = stint.table_id"
        f"        WHERE restaurant_id = :restaurant AND started_ms < :end_ms"
        f"        AND (ended_ms IS NULL OR ended_ms > :start_ms)) AS st"
        f"  JOIN dining_table AS t ON t.id = st.table_id"
        f"  JOIN report_segment AS gb ON gb.s = {SEGMENT_OF.format('st.b', '<=')}"
        f"  JOIN report_segment AS ge ON ge.s = {SEGMENT_OF.format('st.e', '<')})"
        f" SELECT 0, area, CAST((b + shift) / {SLOT} AS INTEGER) AS slot, count(*), sum(b + shift) FROM piece"
        f"  WHERE first = last GROUP BY area, slot"
        f" UNION ALL SELECT 1, area, CAST((e + shift) / {SLOT} AS INTEGER) AS slot, count(*), sum(e + shift)"
        f"  FROM piece WHERE first = last GROUP BY area, slot"
        f" UNION ALL SELECT 2, area, b, e, NULL FROM piece WHERE first != last"  # across stretches: split below
        f" UNION ALL SELECT DISTINCT 3, table_id, NULL, NULL, NULL FROM piece",
        {"start": start, "end": end, "start_ms": round(start * 1000), "end_ms": round(end * 1000),
         "restaurant": floor.restaurant_id})
    starts: Sums = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))
    ends: Sums = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))
    used: set[int] = set()
    for kind, key, first, second, total in rows:
        if kind in (0, 1):
            sums = (starts if kind == 0 else ends)[key][first]
            sums[0] += second
            sums[1] += total
        elif kind == 2:  # a stint across a change of day or of the clocks: its part in each stretch
            for begins, finishes, shift in pieces(first, second, stretches):
                for which, at in ((starts, begins + shift), (ends, finishes + shift)):
                    slot = which[key][int(at // SLOT)]
                    slot[0] += 1
                    slot[1] += at
        else:
            used.add(key)
    return starts, ends, used


Sums = dict[str, dict[int, list[Any]]]  # area: slot: [how many, their sum in seconds]


def pieces(begins: float, ends: float, stretches: list[tuple[float, float, float, float, str, int]]) -> list[
        tuple[float, float, float]]:
    """The parts of [begins, ends) in each stretch of constant offset: (from, to, what turns them into seconds on
    the service day's clock)."""
    return [(max(begins, start), min(ends, end), off - wall) for start, end, off, wall, _, _ in stretches
            if start < ends and end > begins]


def _floor_of(conn: sqlite3.Connection, actor: Actor) -> tuple[Floor, dict[str, str]]:
    restaurant = conn.execute("SELECT slug, name FROM restaurant WHERE id = ?", (actor.restaurant_id,)).fetchone()
    return Floor.read(conn, actor), {"slug": restaurant["slug"], "name": restaurant["name"]}


def _guests_part(conn: sqlite3.Connection, floor: Floor, period: Period, since: datetime) -> tuple[
        list[tuple[Any, ...]], list[tuple[str, int, list[float]]]]:
    prepare(conn, floor, period, since)
    return party_counts(conn, since, period), turn_figures(conn, period)


def _calls_part(conn: sqlite3.Connection, floor: Floor, period: Period, since: datetime) -> list[
        tuple[str, str | None, int, list[float], list[float]]]:
    prepare(conn, floor, period, since)
    return call_figures(conn, period)


def _floor_part(conn: sqlite3.Connection, floor: Floor, period: Period, since: datetime) -> tuple[
        Sums, Sums, set[int], list[tuple[float, float, float, float, str, int]]]:
    stretches = prepare(conn, floor, period, since)
    return (*occupancy_sums(conn, floor, period, stretches), stretches)


# -- the figures, from what SQL added up ------------------------------------------------------------------------------


def guests(counts: list[tuple[Any, ...]], period: Period, heat_first: date) -> tuple[
        Totals, list[HourBar], HeatMap, list[DayRestores]]:
    """Totals (but tables and calls), covers and parties by hour, the heat map and restores by day, from
    party_counts' rows (which may begin before the period, for the heat map's four weeks)."""
    hours = clock_labels(period)
    column = {int(label[:2]): n for n, label in enumerate(hours)}
    first, last = period.first_day.isoformat(), period.last_day.isoformat()
    bars = [[0, 0] for _ in hours]
    cells = [[0] * 24 for _ in WEEKDAYS]
    restores = {day.isoformat(): 0 for day in days_of(period)}
    totals = {"parties": 0, "covers": 0, "unknown_size": 0, "restores": 0}
    for day, weekday, hour, parties, covers, unknown, restored in counts:
        if day >= heat_first.isoformat():
            cells[weekday][column[hour]] += covers
        if first <= day <= last:
            bars[column[hour]][0] += parties
            bars[column[hour]][1] += covers
            restores[day] += restored
            totals["parties"] += parties
            totals["covers"] += covers
            totals["unknown_size"] += unknown
            totals["restores"] += restored
    busy = [n for n, (parties, _) in enumerate(bars) if parties]
    shown = range(busy[0], busy[-1] + 1) if busy else range(0)
    return (
        {**totals, "tables_used": 0, "tables": 0, "calls": 0},  # type: ignore[typeddict-item]
        [{"hour": hours[n], "parties": bars[n][0], "covers": bars[n][1]} for n in shown],
        {"first_day": heat_first.isoformat(), "last_day": last, "hours": hours,
         "rows": [{"weekday": name, "covers": row} for name, row in zip(WEEKDAYS, cells, strict=True)],
         "max": max(max(row) for row in cells)},
        [{"day": day, "restores": count} for day, count in restores.items()],
    )


def turns_of(rows: list[tuple[str, int, list[float]]], floor: Floor) -> Turns:
    """Turn times from turn_figures' rows: areas in the floor's order (then those no longer on it), sizes by seats."""
    by_area: dict[str, list[float]] = defaultdict(list)
    by_size: dict[int, list[float]] = defaultdict(list)
    for area, seats, group in rows:
        by_area[area] += group
        by_size[seats] += group
    every = [minutes for _, _, group in rows for minutes in group]
    buckets = [0] * TURN_BUCKETS
    for minutes in every:
        buckets[min(int(minutes // TURN_BUCKET_MINUTES), TURN_BUCKETS - 1)] += 1
    areas = [area for area in floor.areas() if area in by_area] + sorted(set(by_area) - set(floor.areas()))
    return {
        "all": turn_row("All parties", every),
        "by_area": [turn_row(area, by_area[area]) for area in areas],
        "by_size": [turn_row(f"{seats} seats", by_size[seats]) for seats in sorted(by_size)],
        "distribution": [{"from_minutes": n * TURN_BUCKET_MINUTES,
                          "to_minutes": (n + 1) * TURN_BUCKET_MINUTES if n < TURN_BUCKETS - 1 else None,
                          "parties": count} for n, count in enumerate(buckets)],
    }


def calls_of(rows: list[tuple[str, str | None, int, list[float], list[float]]], waiter: str | None) -> tuple[
        Calls, int]:
    """Calls by kind and by who took them (a waiter's own report: theirs only), and how many there were."""
    kinds: dict[str, list[Any]] = defaultdict(lambda: [0, [], []])
    waiters: dict[str, list[Any]] = defaultdict(lambda: [0, [], []])
    for kind, name, count, claims, resolutions in rows:
        for group in [kinds[kind]] + ([waiters[name]] if name is not None and waiter in (None, name) else []):
            group[0] += count
            group[1] += claims
            group[2] += resolutions

    def row(label: str, count: int, claims: list[float], resolutions: list[float]) -> CallRow:
        return {"key": label, "calls": count, "claimed": len(claims),
                "claim_median_seconds": _rounded(median(claims)), "claim_p90_seconds": _rounded(p90(claims)),
                "resolved": len(resolutions), "resolve_median_seconds": _rounded(median(resolutions)),
                "resolve_p90_seconds": _rounded(p90(resolutions))}

    return ({"by_kind": [row(label, *kinds[kind]) for kind, label in CALL_KINDS.items()],
             "by_waiter": [row(name, *waiters[name]) for name in sorted(waiters, key=str.casefold)]},
            sum(group[0] for group in kinds.values()))


def occupancy_of(starts: Sums, ends: Sums, floor: Floor, period: Period,
                 stretches: list[tuple[float, float, float, float, str, int]]) -> Occupancy:
    """Tables occupied in each area over the service day, in 15-minute slots of its clock: the time-weighted mean
    over each slot and over the days that have it (through a change of the clocks a day has four slots fewer or
    more). Only the slots from the first hour anybody sat to the last.

    A stint's share of the clock up to x is min(x, its end) - min(x, its start), and the sum of min(x, s) over many
    s is the sum of those below x plus x for each of the others: the per-slot counts and sums say both, exactly.
    """
    slots = 24 * 60 // OCCUPANCY_SLOT_MINUTES + 1  # a stint may end at the day's very end
    start, end = period.start.timestamp(), period.end.timestamp()
    seen = [0] * slots  # on how many days each slot of the clock came (the running day: the slots begun)
    for first, last, off, wall, _, _ in stretches:
        if last > start and first < end:
            begins, finishes = max(first, start) + off - wall, min(last, end) + off - wall
            for slot in range(int(begins // SLOT), min(math.ceil(finishes / SLOT), slots)):
                seen[slot] += 1

    def below(sums: dict[int, list[Any]], boundary: int) -> float:
        """The sum of min(x, s) over the stints' times s, at the slot boundary x."""
        x = boundary * SLOT
        return sum(total if slot < boundary else x * count for slot, (count, total) in sums.items())

    areas = floor.areas() + sorted(set(starts) - set(floor.areas()))
    occupied: dict[str, list[float]] = {}
    for area in areas:
        if area not in starts:
            occupied[area] = [0.0] * slots
            continue
        up_to = [below(ends[area], k) - below(starts[area], k) for k in range(slots + 1)]
        occupied[area] = [up_to[k + 1] - up_to[k] for k in range(slots)]
    day_minutes = period.day_starts.hour * 60 + period.day_starts.minute

    def label(slot: int) -> str:
        minutes = (day_minutes + slot * OCCUPANCY_SLOT_MINUTES) % (24 * 60)
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    busy = [slot for slot in range(slots - 1) if any(occupied[area][slot] > 0.5 for area in areas)]
    shown: list[int] = []
    if busy:
        per_hour = 60 // OCCUPANCY_SLOT_MINUTES
        first = busy[0] - (day_minutes // OCCUPANCY_SLOT_MINUTES + busy[0]) % per_hour
        last = busy[-1] + per_hour - 1 - (day_minutes // OCCUPANCY_SLOT_MINUTES + busy[-1]) % per_hour
        shown = [slot for slot in range(max(first, 0), min(last, slots - 2) + 1) if seen[slot]]
    return {
        "slot_minutes": OCCUPANCY_SLOT_MINUTES,
        "areas": areas,
        "tables": {area: sum(table.area == area for table in floor.on_floor.values()) for area in areas},
        "slots": [{"at": label(slot), "areas": {area: round(occupied[area][slot] / (SLOT * seen[slot]), 2)
                                                for area in areas}} for slot in shown],
    }
