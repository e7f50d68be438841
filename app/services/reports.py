"""Reports: what happened on the floor over a service day or a range of them.

Read from what every change already keeps, in the same transaction as the change:
- parties (`table_session`, one row per party at its own table, and one per table joined to it):
  a party restored after a close is the same row opened again, so it is one party; a party that
  moved is the same row at its new table, so it is counted once, where it ended;
- stints (`stint`, migration 0007): when each party sat at each table, written by the unit of work
  from each change's before and after (core.py), so a move or a join shows on the floor it left;
- guests' calls (`waiter_request`), each with its party (migration 0007), claim and resolution;
- restores, from the audit log (`restore_table` events, and bulks' restore items).

A service day starts at MAITRE_DAY_STARTS_AT (04:00) in the restaurant's time zone (its own, or
MAITRE_TIME_ZONE): a service that runs past midnight belongs to the day it began. A day is
read with the zone's rules, so a day in which the clocks change is 23 or 25 hours long.

Every figure is plain data (`Report`): the page draws it, the JSON API returns it as it is,
the CSV export writes the parties' rows, and `run.py report` prints its summary.
"""

from __future__ import annotations

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
    """Reports over service days. Admins see the whole restaurant; a waiter sees the tables of their section and
    their own calls; nobody else sees reports (`forbidden`)."""

    async def period(self, restaurant_id: int, day: str | None = None, first: str | None = None,
                     last: str | None = None) -> Period:
        """The period asked for: one `day` (YYYY-MM-DD), or `first` to `last` (both included, at most 90 days;
        `first` alone runs to today); by default the last service (since the latest day start). `invalid_period`
        for anything else."""
        zone_name = await self.db.read(_time_zone, restaurant_id)
        return service_days(ZoneInfo(zone_name or self.settings.time_zone), self.settings.day_starts_at,
                            parse_time(self.clock()), day, first, last)

    async def report(self, actor: Actor, period: Period) -> Report:
        return await self.db.read(self._report, actor, period)

    async def parties(self, actor: Actor, period: Period) -> list[PartyRow]:
        """Every party seated in the period, oldest first (the CSV export's rows)."""
        return await self.db.read(self._parties, actor, period)

    def _report(self, conn: sqlite3.Connection, actor: Actor, period: Period) -> Report:
        floor = Floor.read(conn, actor, period)
        heat_first = period.last_day - timedelta(days=7 * HEAT_MAP_WEEKS - 1)
        heat_start = day_start(heat_first, period)
        if heat_start.timestamp() < period.start.timestamp():  # the four weeks begin before the period: read them
            heat_parties = floor.parties_of(conn, period, heat_start)
            parties = [party for party in heat_parties if party.opened >= period.start.timestamp()]
        else:
            parties = floor.parties_of(conn, period, period.start)
            heat_parties = [party for party in parties if party.opened >= heat_start.timestamp()]
        calls = _calls(conn, floor, parties, period)
        restaurant = conn.execute("SELECT slug, name FROM restaurant WHERE id = ?", (actor.restaurant_id,)).fetchone()
        stints = floor.stints(conn, period)
        used = {stint[0] for stint in stints}
        return {
            "restaurant": {"slug": restaurant["slug"], "name": restaurant["name"]},
            "waiter": floor.waiter,
            "period": describe(period),
            "totals": {
                "parties": len(parties),
                "covers": sum(party.guests or 0 for party in parties),
                "unknown_size": sum(party.guests is None for party in parties),
                "tables_used": len(used & set(floor.on_floor)),
                "tables": len(floor.on_floor),
                "restores": sum(party.restores for party in parties),
                "calls": len(calls),
            },
            "hours": hour_bars(parties, period),
            "occupancy": occupancy(floor, stints, period),
            "turns": turns(floor, parties),
            "calls": call_rows(calls, floor.waiter),
            "heat_map": heat_map(heat_parties, heat_first, period),
            "unused_tables": [{"id": table.id, "number": table.label, "area": table.area, "seats": table.seats}
                              for table in floor.on_floor.values() if table.id not in used],
            "restores": restores_by_day(parties, period),
        }

    def _parties(self, conn: sqlite3.Connection, actor: Actor, period: Period) -> list[PartyRow]:
        floor = Floor.read(conn, actor, period)
        parties = floor.parties_of(conn, period, period.start)
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
    order: tuple[int, int]


class PartyRecord(NamedTuple):  # (tuples: a report makes tens of thousands, and a frozen dataclass costs 4x)
    id: int
    table_id: int  # where it ended (or sits)
    tables: tuple[int, ...]  # every table it sat at as it left (or sits at), its own first
    guests: int | None
    opened: float  # seconds since 1970
    closed: float | None
    restores: int
    day: date  # the service day it sat down in
    hour: int  # the hour of the clock it sat down in, in the restaurant's zone

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
    def read(cls, conn: sqlite3.Connection, actor: Actor, period: Period) -> Floor:
        if actor.role not in ("admin", "waiter"):
            raise ServiceError("forbidden", "Only admins and waiters see reports.")
        waiter = None
        if actor.role == "waiter":
            row = conn.execute("SELECT name FROM api_key WHERE id = ?", (actor.key_id,)).fetchone()
            waiter = row["name"] if row else actor.name
        rows = conn.execute(
            "SELECT t.id, t.label, t.area, t.seats, t.sort_order, t.removed_at,"
            " coalesce((SELECT waiter FROM section WHERE table_id = t.id),"
            "          (SELECT waiter FROM section WHERE restaurant_id = t.restaurant_id AND area = t.area)) AS waiter"
            " FROM dining_table AS t WHERE t.restaurant_id = ? ORDER BY t.sort_order, t.id", (actor.restaurant_id,))
        tables, on_floor = {}, {}
        for row in rows:
            table = TableRecord(row["id"], row["label"], row["area"], row["seats"], (row["sort_order"], row["id"]))
            tables[table.id] = table
            if row["removed_at"] is None and (waiter is None or row["waiter"] == waiter):
                on_floor[table.id] = table
        return cls(actor.restaurant_id, tables, on_floor, waiter)

    def areas(self) -> list[str]:
        return list(dict.fromkeys(table.area for table in self.on_floor.values()))

    def parties_of(self, conn: sqlite3.Connection, period: Period, start: datetime) -> list[PartyRecord]:
        """The parties (in scope) that sat down from `start` to the period's end, oldest first, each with every table
        it sat at as it left (or sits at now)."""
        end = format_time(period.end)
        joined: dict[int, list[int]] = defaultdict(list)
        for party, table in tuples(conn,
                "SELECT j.joined_to, j.table_id FROM table_session AS p JOIN dining_table AS t ON t.id = p.table_id"
                " JOIN table_session AS j ON j.joined_to = p.id"
                " WHERE t.restaurant_id = ? AND p.joined_to IS NULL AND p.opened_at >= ? AND p.opened_at < ?"
                " AND (j.closed_at = p.closed_at OR (p.closed_at IS NULL AND j.state = 'active')) ORDER BY j.id",
                (self.restaurant_id, format_time(start), end)):
            joined[party].append(table)
        rows = tuples(conn,
            "SELECT p.id, p.table_id, p.guest_count, p.restores, p.opened_at, p.closed_at"
            " FROM table_session AS p JOIN dining_table AS t ON t.id = p.table_id"
            " WHERE t.restaurant_id = ? AND p.joined_to IS NULL AND p.opened_at >= ? AND p.opened_at < ?"
            " ORDER BY p.opened_at, p.id",
            (self.restaurant_id, format_time(start), end))
        parties = []
        for party, table, guests, restores, opened_at, closed_at in rows:
            if self.waiter is not None and table not in self.on_floor:
                continue
            opened = seconds(opened_at)
            moment = datetime.fromtimestamp(opened, period.zone)
            parties.append(PartyRecord(party, table, (table, *joined.get(party, ())), guests, opened,
                                       seconds(closed_at) if closed_at else None, restores,
                                       service_day_of(moment, period.day_starts), moment.hour))
        return parties

    def stints(self, conn: sqlite3.Connection, period: Period) -> list[tuple[int, float, float]]:
        """(table, from, to) of every stint in scope within the period, clipped to it (one still going ends now)."""
        start, end = period.start.timestamp(), period.end.timestamp()
        rows = tuples(conn, "SELECT table_id, started_at, ended_at FROM stint"
                            " WHERE restaurant_id = ? AND started_at < ? AND (ended_at IS NULL OR ended_at > ?)",
                      (self.restaurant_id, format_time(period.end), format_time(period.start)))
        return [(table, max(seconds(began), start), min(seconds(ended), end) if ended else end)
                for table, began, ended in rows if self.waiter is None or table in self.on_floor]


def tuples(conn: sqlite3.Connection, sql: str, parameters: tuple[Any, ...]) -> sqlite3.Cursor:
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
        "SELECT r.party_id, r.kind, r.claimed_by, k.name, r.resolved_by, r.created_at, r.claimed_at, r.resolved_at"
        " FROM table_session AS p JOIN dining_table AS t ON t.id = p.table_id"
        " JOIN waiter_request AS r ON r.party_id = p.id LEFT JOIN api_key AS k ON k.id = r.resolved_by_key"
        " WHERE t.restaurant_id = ? AND p.joined_to IS NULL AND p.opened_at >= ? AND p.opened_at < ? ORDER BY r.id",
        (floor.restaurant_id, format_time(period.start), format_time(period.end)))
    calls: list[CallRecord] = []
    for party, kind, claimed_by, resolver_name, resolved_by, created_at, claimed_at, resolved_at in rows:
        if party not in ids:
            continue
        made = seconds(created_at)
        seen_to = resolved_at is not None and resolved_by != RESOLVED_BY_CLOSING
        resolver = (resolver_name or resolved_by) if seen_to else None
        calls.append(CallRecord(party, kind, claimed_by or resolver, resolver,
                                seconds(claimed_at) - made if claimed_at else None,
                                seconds(resolved_at) - made if seen_to else None))
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


def hour_bars(parties: list[PartyRecord], period: Period) -> list[HourBar]:
    """Parties and covers by the hour they sat down, summed over the period's days: every hour from the first
    one anybody sat down in to the last (none if nobody did)."""
    bars = {label: {"parties": 0, "covers": 0} for label in clock_labels(period)}
    for party in parties:
        bar = bars[f"{party.hour:02d}:00"]
        bar["parties"] += 1
        bar["covers"] += party.guests or 0
    labels = [label for label, bar in bars.items() if bar["parties"]]
    if not labels:
        return []
    ordered = list(bars)
    shown = ordered[ordered.index(labels[0]):ordered.index(labels[-1]) + 1]
    return [{"hour": label, "parties": bars[label]["parties"], "covers": bars[label]["covers"]} for label in shown]


OCCUPANCY_SLOT_MINUTES = 15


def occupancy(floor: Floor, stints: list[tuple[int, float, float]], period: Period) -> Occupancy:
    """Tables occupied in each area over the service day, in 15-minute slots: the time-weighted mean over each slot,
    and over the period's days (a slot of the clock, such as 20:15, on every day it has: through a change of the
    clocks a day has four slots fewer or more). Only the slots from the first hour anybody sat to the last.

    Every day lasts a whole number of slots (23, 24 or 25 hours), so the period's slots are one even grid from its
    start: a stint adds its whole slots through a running sum, and its partial first and last slot by hand.
    """
    areas = floor.areas()
    area_of = {table.id: table.area for table in floor.tables.values()}
    step = OCCUPANCY_SLOT_MINUTES * 60
    start = period.start.timestamp()
    count = max(0, math.ceil((period.end.timestamp() - start) / step))
    # per area: `full[i]` counts the stints covering slot i whole (as differences), `part[i]` the seconds of the rest
    full: dict[str, list[int]] = {}
    part: dict[str, list[float]] = {}
    for table, began, ended in stints:
        area = area_of[table]
        if area not in full:
            full[area], part[area] = [0] * (count + 1), [0.0] * (count + 1)
            if area not in areas:
                areas.append(area)  # a table since removed, or moved to another area
        first, last = int((began - start) // step), int((ended - start) // step)
        if first == last:
            part[area][first] += ended - began
            continue
        part[area][first] += start + (first + 1) * step - began
        if last < count:
            part[area][last] += ended - (start + last * step)
        full[area][first + 1] += 1
        full[area][last] -= 1
    labels = slot_labels(period, count)
    occupied: dict[tuple[str, str], float] = defaultdict(float)  # (clock label, area): table-seconds
    seen: dict[str, int] = defaultdict(int)  # clock label: on how many days
    for label in labels:
        seen[label] += 1
    for area in full:
        covering = 0
        for index, label in enumerate(labels):
            covering += full[area][index]
            if covering or part[area][index]:
                occupied[label, area] += covering * step + part[area][index]
    day_minutes = period.day_starts.hour * 60 + period.day_starts.minute
    ordered = sorted(seen, key=lambda label: (int(label[:2]) * 60 + int(label[3:]) - day_minutes) % (24 * 60))
    busy = [label for label in ordered if any(occupied.get((label, area)) for area in areas)]
    shown: list[str] = []
    if busy:
        hours = [label[:2] for label in ordered]
        first_shown = hours.index(busy[0][:2])
        last_shown = len(hours) - 1 - hours[::-1].index(busy[-1][:2])
        shown = ordered[first_shown:last_shown + 1]
    return {
        "slot_minutes": OCCUPANCY_SLOT_MINUTES,
        "areas": areas,
        "tables": {area: sum(table.area == area for table in floor.on_floor.values()) for area in areas},
        "slots": [{"at": label, "areas": {area: round(occupied.get((label, area), 0.0) / (step * seen[label]), 2)
                                          for area in areas}} for label in shown],
    }


def slot_labels(period: Period, count: int) -> list[str]:
    """The clock time ("20:15") at which each of the period's `count` slots starts: by adding minutes on a day
    whose clock runs evenly, through the zone's rules on a day the clocks change."""
    step = OCCUPANCY_SLOT_MINUTES * 60
    labels: list[str] = []
    for day in days_of(period):
        begins, ends = day_start(day, period), day_start(day + timedelta(days=1), period)
        slots = round((ends.timestamp() - begins.timestamp()) / step)
        if begins.utcoffset() == ends.utcoffset():
            minutes = begins.hour * 60 + begins.minute
            labels += [f"{(minutes + n * OCCUPANCY_SLOT_MINUTES) // 60 % 24:02d}:"
                       f"{(minutes + n * OCCUPANCY_SLOT_MINUTES) % 60:02d}" for n in range(slots)]
        else:
            labels += [datetime.fromtimestamp(begins.timestamp() + n * step, period.zone).strftime("%H:%M")
                       for n in range(slots)]
    return labels[:count]


def turns(floor: Floor, parties: list[PartyRecord]) -> Turns:
    """Turn times (sat down to left) of the parties that left: where they ended; by the seats of every table they
    sat at as they left."""
    closed = [party for party in parties if party.turn is not None]
    by_area: dict[str, list[float]] = defaultdict(list)
    by_size: dict[int, list[float]] = defaultdict(list)
    for party in closed:
        minutes = (party.turn or 0) / 60
        by_area[floor.tables[party.table_id].area].append(minutes)
        by_size[sum(floor.tables[table].seats for table in party.tables)].append(minutes)
    areas = [area for area in floor.areas() if area in by_area] + sorted(set(by_area) - set(floor.areas()))
    buckets = [0] * TURN_BUCKETS
    for party in closed:
        buckets[min(int((party.turn or 0) // (TURN_BUCKET_MINUTES * 60)), TURN_BUCKETS - 1)] += 1
    return {
        "all": turn_row("All parties", [(party.turn or 0) / 60 for party in closed]),
        "by_area": [turn_row(area, by_area[area]) for area in areas],
        "by_size": [turn_row(f"{seats} seats", by_size[seats]) for seats in sorted(by_size)],
        "distribution": [{"from_minutes": n * TURN_BUCKET_MINUTES,
                          "to_minutes": (n + 1) * TURN_BUCKET_MINUTES if n < TURN_BUCKETS - 1 else None,
                          "parties": count} for n, count in enumerate(buckets)],
    }


def turn_row(key: str, minutes: list[float]) -> TurnRow:
    return {"key": key, "parties": len(minutes), "median_minutes": _rounded(median(minutes)),
            "p90_minutes": _rounded(p90(minutes))}


def call_rows(calls: list[CallRecord], waiter: str | None) -> Calls:
    """Calls by kind, and by the waiter who took each (a waiter's own report: theirs only)."""
    by_waiter: dict[str, list[CallRecord]] = defaultdict(list)
    for call in calls:
        if call.waiter is not None and (waiter is None or call.waiter == waiter):
            by_waiter[call.waiter].append(call)
    return {
        "by_kind": [call_row(label, [call for call in calls if call.kind == kind])
                    for kind, label in CALL_KINDS.items()],
        "by_waiter": [call_row(name, by_waiter[name]) for name in sorted(by_waiter, key=str.casefold)],
    }


def call_row(key: str, calls: list[CallRecord]) -> CallRow:
    claims = [call.to_claim for call in calls if call.to_claim is not None]
    resolutions = [call.to_resolve for call in calls if call.to_resolve is not None]
    return {"key": key, "calls": len(calls), "claimed": len(claims), "claim_median_seconds": _rounded(median(claims)),
            "claim_p90_seconds": _rounded(p90(claims)), "resolved": len(resolutions),
            "resolve_median_seconds": _rounded(median(resolutions)), "resolve_p90_seconds": _rounded(p90(resolutions))}


def heat_map(parties: list[PartyRecord], first: date, period: Period) -> HeatMap:
    """Covers by weekday of the service day and hour sat down, over the four weeks that end with the period."""
    hours = clock_labels(period)
    column = {label: n for n, label in enumerate(hours)}
    cells = [[0] * 24 for _ in WEEKDAYS]
    for party in parties:
        cells[party.day.weekday()][column[f"{party.hour:02d}:00"]] += party.guests or 0
    return {"first_day": first.isoformat(), "last_day": period.last_day.isoformat(), "hours": hours,
            "rows": [{"weekday": name, "covers": row} for name, row in zip(WEEKDAYS, cells, strict=True)],
            "max": max(max(row) for row in cells)}


def restores_by_day(parties: list[PartyRecord], period: Period) -> list[DayRestores]:
    """Closes undone, by the service day of the party's seating: every day of the period."""
    counts = {day: 0 for day in days_of(period)}
    for party in parties:
        if party.day in counts:
            counts[party.day] += party.restores
    return [{"day": day.isoformat(), "restores": count} for day, count in counts.items()]
