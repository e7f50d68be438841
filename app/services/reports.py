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

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypedDict
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
        """The period asked for: one `day` (YYYY-MM-DD), or `first` to `last` (both included, at most 90 days);
        by default the last service (since the latest day start). `invalid_period` for anything else."""
        raise NotImplementedError

    async def report(self, actor: Actor, period: Period) -> Report:
        raise NotImplementedError

    async def parties(self, actor: Actor, period: Period) -> list[PartyRow]:
        """Every party seated in the period, oldest first (the CSV export's rows)."""
        raise NotImplementedError
