"""Reports (issue 19): every figure of a service built through the real services on a controlled clock, against
what a manager would count by hand; the edge cases (restored, moved, joined parties; services past midnight; a day
without guests; the clocks changing); periods; who sees what."""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.auth import KeyService
from app.db import Database, configure, format_time, latest_version, migrate
from app.db import milliseconds as ms
from app.services.core import Actor, ServiceError
from app.services.floor import FloorService
from app.services.reports import Period, ReportService
from app.services.restaurants import RestaurantService
from app.services.sections import SectionService
from app.services.tables import TableService
from app.services.waiters import WaiterService
from app.settings import Settings

PARIS = ZoneInfo("Europe/Paris")


class Clock:
    """The services' clock, set by hand: `at("2026-11-20 19:00")` (Paris time)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, tzinfo=UTC)

    def __call__(self) -> str:
        return format_time(self.now)

    def at(self, local: str) -> None:
        self.now = datetime.fromisoformat(local).replace(tzinfo=PARIS).astimezone(UTC)

    def at_utc(self, moment: str) -> None:
        self.now = datetime.fromisoformat(moment).replace(tzinfo=UTC)


@dataclass
class Shop:
    clock: Clock
    admin: Actor
    sam: Actor  # a waiter, whose section is the terrace
    viewer: Actor
    ids: dict[str, int]
    tables: TableService
    waiters: WaiterService
    reports: ReportService
    tokens: dict[int, str]

    async def ok(self, call) -> None:
        result = await call
        assert result.ok, result

    async def report(self, actor: Actor | None = None, **period: str):
        chosen = await self.reports.period(self.admin.restaurant_id, **period)
        return await self.reports.report(actor or self.admin, chosen)

    async def call(self, label: str, kind: str) -> int:
        result = await self.waiters.request(self.tokens[self.ids[label]], kind)
        assert result.ok, result
        return result.announcements[0]["request"]["id"]


@pytest.fixture
async def shop(db: Database, settings: Settings) -> Shop:
    """The bistro in Paris: tables 1 (2 seats) to 5 and 7 in the main room, T5 and T6 on the terrace, all of 4
    seats but table 1; Sam waits on the terrace."""
    clock = Clock()
    settings = dataclasses.replace(settings, time_zone="Europe/Paris")
    restaurant = await RestaurantService(db, settings, clock).add("bistro", "Bistro", tables=5)
    admin = Actor(restaurant["id"], "manager", "admin")
    floor = FloorService(db, settings, clock)
    for label, area in (("T5", "Terrace"), ("T6", "Terrace"), ("7", "Main room")):
        assert (await floor.add_table(admin, label, 4, area)).ok
    tables = TableService(db, settings, clock)
    _, listed = await tables.list_tables(restaurant["id"])
    ids = {table["number"]: table["id"] for table in listed}
    assert (await floor.set_table(admin, ids["1"], seats=2)).ok
    keys = KeyService(db)
    sam, _ = await keys.add("bistro", "Sam's phone", "waiter", name="Sam")
    viewer, _ = await keys.add("bistro", "Bar screen", "viewer")
    assert (await SectionService(db, settings, clock).set_section(admin, "Sam", ["Terrace"])).ok
    return Shop(clock, admin, Actor(restaurant["id"], "Sam's phone", "waiter", sam["id"]),
                Actor(restaurant["id"], "Bar screen", "viewer", viewer["id"]), ids, tables,
                WaiterService(db, settings, clock), ReportService(db, settings, clock),
                await floor.qr_tokens(restaurant["id"]))


async def friday(shop: Shop) -> None:
    """Friday 20 November 2026's dinner, the night running past midnight; and Saturday's first party.

    A (table 1, 2 guests) 19:00, closed 20:30 by mistake, restored 20:35, left 21:00: one party, 120 min.
    B (table 2, 4) 19:10, called a waiter 19:30 (Sam claimed 19:32, done 19:35), table 4 joined 20:00,
      left 00:30 (Saturday by the calendar, Friday's service): 320 min at 8 seats.
    C (T5 on the terrace, 3) 19:20, moved to table 3 at 19:40, asked for the bill 21:10 (nobody claimed it),
      left 21:20: 120 min, counted once, in the main room where it ended.
    D (T6, 2) 23:30, left 01:30: 120 min on the terrace.
    E (table 1, 2) Saturday 19:00, still seated at 20:00. Tables 5 and 7 are never used.
    """
    s, ids = shop, shop.ids
    s.clock.at("2026-11-20 19:00")
    await s.ok(s.tables.seat_table(s.admin, ids["1"], 2))
    s.clock.at("2026-11-20 19:10")
    await s.ok(s.tables.seat_table(s.admin, ids["2"], 4))
    s.clock.at("2026-11-20 19:20")
    await s.ok(s.tables.seat_table(s.admin, ids["T5"], 3))
    s.clock.at("2026-11-20 19:30")
    call = await s.call("2", "call_waiter")
    s.clock.at("2026-11-20 19:32")
    await s.ok(s.waiters.claim(s.sam, call))
    s.clock.at("2026-11-20 19:35")
    await s.ok(s.waiters.resolve(s.sam, call))
    s.clock.at("2026-11-20 19:40")
    await s.ok(s.tables.move_table(s.admin, ids["T5"], ids["3"]))
    s.clock.at("2026-11-20 20:00")
    await s.ok(s.tables.join_tables(s.admin, ids["2"], ids["4"]))
    s.clock.at("2026-11-20 20:30")
    await s.ok(s.tables.close_table(s.admin, ids["1"]))
    s.clock.at("2026-11-20 20:35")
    await s.ok(s.tables.restore_table(s.admin, ids["1"]))
    s.clock.at("2026-11-20 21:00")
    await s.ok(s.tables.close_table(s.admin, ids["1"]))
    s.clock.at("2026-11-20 21:10")
    await s.call("3", "ask_for_bill")
    s.clock.at("2026-11-20 21:20")
    await s.ok(s.tables.close_table(s.admin, ids["3"]))
    s.clock.at("2026-11-20 23:30")
    await s.ok(s.tables.seat_table(s.admin, ids["T6"], 2))
    s.clock.at("2026-11-21 00:30")
    await s.ok(s.tables.close_table(s.admin, ids["4"]))
    s.clock.at("2026-11-21 01:30")
    await s.ok(s.tables.close_table(s.admin, ids["T6"]))
    s.clock.at("2026-11-21 19:00")
    await s.ok(s.tables.seat_table(s.admin, ids["1"], 2))
    s.clock.at("2026-11-21 20:00")


async def test_a_night_counted_by_hand(shop):
    await friday(shop)
    report = await shop.report(day="2026-11-20")
    assert report["period"] == {
        "start": "2026-11-20T04:00:00+01:00", "end": "2026-11-21T04:00:00+01:00", "first_day": "2026-11-20",
        "last_day": "2026-11-20", "days": 1, "time_zone": "Europe/Paris", "day_starts_at": "04:00",
        "label": "Friday 20 November 2026"}
    assert report["waiter"] is None
    assert report["totals"] == {"parties": 4, "covers": 11, "unknown_size": 0, "tables_used": 6, "tables": 8,
                                "restores": 1, "calls": 2}
    assert report["hours"] == [
        {"hour": "19:00", "parties": 3, "covers": 9}, {"hour": "20:00", "parties": 0, "covers": 0},
        {"hour": "21:00", "parties": 0, "covers": 0}, {"hour": "22:00", "parties": 0, "covers": 0},
        {"hour": "23:00", "parties": 1, "covers": 2}]
    turns = report["turns"]
    assert turns["all"] == {"key": "All parties", "parties": 4, "median_minutes": 120.0, "p90_minutes": 320.0}
    assert turns["by_area"] == [
        {"key": "Main room", "parties": 3, "median_minutes": 120.0, "p90_minutes": 320.0},
        {"key": "Terrace", "parties": 1, "median_minutes": 120.0, "p90_minutes": 120.0}]
    assert turns["by_size"] == [
        {"key": "2 seats", "parties": 1, "median_minutes": 120.0, "p90_minutes": 120.0},
        {"key": "4 seats", "parties": 2, "median_minutes": 120.0, "p90_minutes": 120.0},
        {"key": "8 seats", "parties": 1, "median_minutes": 320.0, "p90_minutes": 320.0}]
    assert [bucket["parties"] for bucket in turns["distribution"]] == [0] * 8 + [3, 0, 0, 1]
    assert turns["distribution"][-1] == {"from_minutes": 165, "to_minutes": None, "parties": 1}
    assert report["calls"] == {
        "by_kind": [
            {"key": "Call a waiter", "calls": 1, "claimed": 1, "claim_median_seconds": 120.0,
             "claim_p90_seconds": 120.0, "resolved": 1, "resolve_median_seconds": 300.0, "resolve_p90_seconds": 300.0},
            {"key": "The bill", "calls": 1, "claimed": 0, "claim_median_seconds": None, "claim_p90_seconds": None,
             "resolved": 0, "resolve_median_seconds": None, "resolve_p90_seconds": None}],
        "by_waiter": [
            {"key": "Sam", "calls": 1, "claimed": 1, "claim_median_seconds": 120.0, "claim_p90_seconds": 120.0,
             "resolved": 1, "resolve_median_seconds": 300.0, "resolve_p90_seconds": 300.0}]}
    assert report["unused_tables"] == [{"id": shop.ids[label], "number": label, "area": "Main room", "seats": 4}
                                       for label in ("5", "7")]
    assert report["restores"] == [{"day": "2026-11-20", "restores": 1}]


async def test_occupancy_follows_moves_joins_and_a_restore_slot_by_slot(shop):
    await friday(shop)
    occupancy = (await shop.report(day="2026-11-20"))["occupancy"]
    assert occupancy["areas"] == ["Main room", "Terrace"] and occupancy["tables"] == {"Main room": 6, "Terrace": 2}
    assert occupancy["slot_minutes"] == 15
    slots = {slot["at"]: slot["areas"] for slot in occupancy["slots"]}
    assert occupancy["slots"][0]["at"] == "19:00" and occupancy["slots"][-1]["at"] == "01:45"  # whole hours
    assert slots["19:00"] == {"Main room": 1.33, "Terrace": 0.0}  # A all 15 min, B from 19:10: 5 of 15
    # C on the terrace until 19:40 (10 of 15 minutes), then at table 3 (5 of 15); A and B all along
    assert slots["19:30"] == {"Main room": 2.33, "Terrace": 0.67}
    # table 4 joined at 20:00; A's close at 20:30 was undone at 20:35: it never left
    assert slots["20:30"] == {"Main room": 4.0, "Terrace": 0.0}
    assert slots["21:15"] == {"Main room": 2.33, "Terrace": 0.0}  # C left at 21:20
    assert slots["00:15"] == {"Main room": 2.0, "Terrace": 1.0}  # B (tables 2 and 4) until 00:30, D
    assert slots["00:30"] == {"Main room": 0.0, "Terrace": 1.0}
    assert slots["01:45"] == {"Main room": 0.0, "Terrace": 0.0}


async def test_the_parties_rows_one_per_party_where_it_ended(shop):
    await friday(shop)
    rows = await shop.reports.parties(shop.admin, await shop.reports.period(shop.admin.restaurant_id,
                                                                             day="2026-11-20"))
    assert [(row["table"], row["tables"], row["area"], row["guests"]) for row in rows] == [
        ("1", "1", "Main room", 2), ("2", "2+4", "Main room", 4), ("3", "3", "Main room", 3),
        ("T6", "T6", "Terrace", 2)]
    a, b, c, d = rows
    assert (a["seated"], a["closed"], a["turn_minutes"], a["restores"]) == (
        "2026-11-20T19:00:00+01:00", "2026-11-20T21:00:00+01:00", 120.0, 1)
    assert (b["calls"], b["claim_wait_seconds"], b["resolve_wait_seconds"], b["closed"]) == (
        1, 120.0, 300.0, "2026-11-21T00:30:00+01:00")
    assert (c["seated"], c["calls"], c["claim_wait_seconds"], c["resolve_wait_seconds"]) == (
        "2026-11-20T19:20:00+01:00", 1, None, None)  # the bill: ended by the party leaving, not seen to
    assert (d["turn_minutes"], d["restores"]) == (120.0, 0)


async def test_the_default_is_the_service_so_far_and_a_party_still_seated_has_no_turn(shop):
    await friday(shop)
    report = await shop.report()
    assert report["period"]["first_day"] == "2026-11-21" and report["period"]["end"] == "2026-11-21T20:00:00+01:00"
    assert report["totals"]["parties"] == 1 and report["totals"]["covers"] == 2
    assert report["turns"]["all"] == {"key": "All parties", "parties": 0, "median_minutes": None, "p90_minutes": None}
    assert report["hours"] == [{"hour": "19:00", "parties": 1, "covers": 2}]
    assert {slot["at"]: slot["areas"]["Main room"] for slot in report["occupancy"]["slots"]}["19:45"] == 1.0
    both = await shop.report(**{"first": "2026-11-20", "last": "2026-11-21"})
    assert both["totals"]["parties"] == 5 and both["totals"]["covers"] == 13 and both["period"]["days"] == 2
    assert both["period"]["label"] == "20 – 21 November 2026"
    assert both["restores"] == [{"day": "2026-11-20", "restores": 1}, {"day": "2026-11-21", "restores": 0}]


async def test_a_day_without_guests(shop):
    await friday(shop)
    report = await shop.report(day="2026-11-19")
    assert report["totals"] == {"parties": 0, "covers": 0, "unknown_size": 0, "tables_used": 0, "tables": 8,
                                "restores": 0, "calls": 0}
    assert report["hours"] == [] and report["occupancy"]["slots"] == []
    assert report["turns"]["all"]["median_minutes"] is None and report["turns"]["by_area"] == []
    assert [row["calls"] for row in report["calls"]["by_kind"]] == [0, 0] and report["calls"]["by_waiter"] == []
    assert len(report["unused_tables"]) == 8


async def test_the_heat_map_counts_covers_by_the_service_days_weekday(shop):
    await friday(shop)
    heat = (await shop.report(day="2026-11-20"))["heat_map"]
    assert (heat["first_day"], heat["last_day"]) == ("2026-10-24", "2026-11-20")
    assert heat["hours"][0] == "04:00" and heat["hours"][-1] == "03:00"
    rows = {row["weekday"]: row["covers"] for row in heat["rows"]}
    friday_row = dict(zip(heat["hours"], rows["Fri"], strict=True))
    assert friday_row["19:00"] == 9 and friday_row["23:00"] == 2 and sum(rows["Fri"]) == 11
    assert sum(map(sum, rows.values())) == 11 and heat["max"] == 9  # Saturday's party is after the period
    later = (await shop.report(day="2026-11-21"))["heat_map"]
    assert {row["weekday"]: sum(row["covers"]) for row in later["rows"]} == {
        "Mon": 0, "Tue": 0, "Wed": 0, "Thu": 0, "Fri": 11, "Sat": 2, "Sun": 0}


async def test_a_waiter_sees_their_section_and_their_own_calls_and_a_viewer_nothing(shop):
    await friday(shop)
    mine = await shop.report(shop.sam, day="2026-11-20")
    assert mine["waiter"] == "Sam"
    assert mine["totals"] == {"parties": 1, "covers": 2, "unknown_size": 0, "tables_used": 2, "tables": 2,
                              "restores": 0, "calls": 0}  # D on the terrace; C moved off it
    assert mine["occupancy"]["areas"] == ["Terrace"]
    assert {slot["at"]: slot["areas"] for slot in mine["occupancy"]["slots"]}["19:30"] == {"Terrace": 0.67}
    assert mine["calls"]["by_waiter"] == []  # the call Sam took was in the main room
    assert [row["number"] for row in mine["unused_tables"]] == []
    with pytest.raises(ServiceError) as refused:
        await shop.report(shop.viewer, day="2026-11-20")
    assert refused.value.code == "forbidden"
    with pytest.raises(ServiceError):
        await shop.reports.parties(shop.viewer, await shop.reports.period(shop.admin.restaurant_id))


async def test_another_restaurants_parties_are_not_counted(shop, db, settings):
    await friday(shop)
    cafe = await RestaurantService(db, settings, shop.clock).add("cafe", "Café", tables=2)
    cafe_admin = Actor(cafe["id"], "cafe", "admin")
    _, listed = await shop.tables.list_tables(cafe["id"])
    shop.clock.at("2026-11-20 19:05")
    assert (await shop.tables.seat_table(cafe_admin, listed[0]["id"], 6)).ok
    shop.clock.at("2026-11-21 20:00")
    assert (await shop.report(day="2026-11-20"))["totals"]["covers"] == 11
    period = await shop.reports.period(cafe["id"], day="2026-11-20")
    assert (await shop.reports.report(cafe_admin, period))["totals"]["covers"] == 6


async def test_the_night_the_clocks_go_back_has_25_hours(shop):
    """Sunday 25 October 2026, 03:00 summer time is 02:00 winter time: the service day of the 24th is 25 hours
    long, and a party from the first 02:30 to the second is an hour, not nothing."""
    shop.clock.at_utc("2026-10-25T00:30:00")  # 02:30, summer time
    await shop.ok(shop.tables.seat_table(shop.admin, shop.ids["2"], 2))
    shop.clock.at_utc("2026-10-25T01:30:00")  # 02:30 again, winter time
    await shop.ok(shop.tables.close_table(shop.admin, shop.ids["2"]))
    shop.clock.at("2026-10-26 12:00")
    report = await shop.report(day="2026-10-24")
    assert (report["period"]["start"], report["period"]["end"]) == (
        "2026-10-24T04:00:00+02:00", "2026-10-25T04:00:00+01:00")
    assert report["turns"]["all"]["median_minutes"] == 60.0
    assert report["hours"] == [{"hour": "02:00", "parties": 1, "covers": 2}]
    slots = {slot["at"]: slot["areas"]["Main room"] for slot in report["occupancy"]["slots"]}
    # each of 02:00 … 02:45 came twice that night; the party sat through one of each
    assert slots == {"02:00": 0.5, "02:15": 0.5, "02:30": 0.5, "02:45": 0.5}


async def test_the_night_the_clocks_go_forward_has_23_hours(shop):
    shop.clock.at("2027-03-28 12:00")
    period = await shop.reports.period(shop.admin.restaurant_id, day="2027-03-27")
    assert period.end.timestamp() - period.start.timestamp() == 23 * 3600  # (aware times of one zone subtract
    # by their clocks)
    slots = (await shop.reports.report(shop.admin, period))["occupancy"]["slots"]
    assert slots == []


@pytest.mark.parametrize(("asked", "detail"), [
    ({"day": "2026-02-30"}, "'2026-02-30' is not a day such as 2026-11-26."),
    ({"day": "yesterday"}, "'yesterday' is not a day such as 2026-11-26."),
    ({"first": "2026-11-20", "last": "2026-11-10"}, "A range's first day must not come after its last."),
    ({"first": "2026-08-01", "last": "2026-11-20"}, "A report covers at most 90 days."),
    ({"day": "2026-11-22"}, "2026-11-22 has not begun yet."),
    ({"last": "2026-11-20"}, "A range needs its first day (from) as well as its last (to)."),
    ({"day": "2026-11-20", "first": "2026-11-19"}, "Ask for one day, or for a range from one day to another, "
                                                    "not both."),
])
async def test_a_period_that_cannot_be_is_refused_with_its_reason(shop, asked, detail):
    shop.clock.at("2026-11-21 20:00")
    with pytest.raises(ServiceError) as refused:
        await shop.reports.period(shop.admin.restaurant_id, **asked)
    assert (refused.value.code, refused.value.detail) == ("invalid_period", detail)


async def test_90_days_is_the_longest_range_and_a_restaurant_may_have_its_own_time_zone(shop, db, settings):
    shop.clock.at("2026-11-21 20:00")
    period: Period = await shop.reports.period(shop.admin.restaurant_id, first="2026-08-24", last="2026-11-21")
    assert (period.last_day - period.first_day).days + 1 == 90
    await RestaurantService(db, settings).configure("bistro", time_zone="America/New_York")
    period = await shop.reports.period(shop.admin.restaurant_id, day="2026-11-20")
    assert period.start.isoformat() == "2026-11-20T04:00:00-05:00"
    with pytest.raises(ServiceError) as refused:
        await RestaurantService(db, settings).configure("bistro", time_zone="Mars/Olympus")
    assert refused.value.code == "invalid_setting"


def test_migration_7_fills_in_the_stints_restores_and_calls_parties_of_what_came_before(tmp_path):
    conn = configure(sqlite3.connect(str(tmp_path / "at-6.db"), isolation_level=None))
    try:
        assert migrate(conn, target=6) == 6
        conn.executescript("""
            INSERT INTO restaurant (id, slug, name, version, created_at)
                VALUES (7, 'old', 'Old', 9, '2026-01-01T00:00:00.000Z');
            INSERT INTO dining_table (id, restaurant_id, label, qr_token) VALUES
                (11, 7, '1', 'token-one-xxxxxxxx'), (12, 7, '2', 'token-two-xxxxxxxx');
            INSERT INTO table_session (id, table_id, state, guest_count, opened_at, last_activity_at, closed_at,
                                       joined_to)
            VALUES (21, 11, 'closed', 3, '2026-01-02T19:00:00.000Z', '2026-01-02T19:00:00.000Z',
                    '2026-01-02T21:00:00.000Z', NULL),
                   (22, 12, 'closed', NULL, '2026-01-02T20:00:00.000Z', '2026-01-02T20:00:00.000Z',
                    '2026-01-02T21:00:00.000Z', 21),
                   (23, 11, 'active', 2, '2026-01-03T19:00:00.000Z', '2026-01-03T19:00:00.000Z', NULL, NULL);
            INSERT INTO audit_event (restaurant_id, version, action, table_ids, actor, at, before, after) VALUES
                (7, 5, 'restore_table', '[11, 12]', 'admin', '2026-01-02T20:40:00.000Z', '[]',
                 '[{"id": 11, "session": {"id": 21}}, {"id": 12, "session": {"id": 21}}]');
            INSERT INTO waiter_request (id, table_id, kind, created_at, claimed_at, claimed_by, resolved_at,
                                        resolved_by) VALUES
                (31, 11, 'call_waiter', '2026-01-02T19:30:00.000Z', '2026-01-02T19:31:30.500Z', 'Sam',
                 '2026-01-02T19:35:01.250Z', 'Sam''s phone'),
                (32, 11, 'ask_for_bill', '2026-01-03T19:05:00.000Z', NULL, NULL, '2026-01-03T19:20:00.000Z',
                 'table closed'),
                (33, 12, 'call_waiter', '2026-01-02T18:00:00.000Z', NULL, NULL, NULL, NULL);
        """)
        assert migrate(conn) == latest_version()
        assert [tuple(row) for row in conn.execute(
            "SELECT party_id, table_id, started_ms, ended_ms FROM stint ORDER BY id")] == [
            (21, 11, ms("2026-01-02T19:00:00.000Z"), ms("2026-01-02T21:00:00.000Z")),
            (21, 12, ms("2026-01-02T20:00:00.000Z"), ms("2026-01-02T21:00:00.000Z")),
            (23, 11, ms("2026-01-03T19:00:00.000Z"), None)]
        assert [tuple(row) for row in conn.execute("SELECT id, restores FROM table_session ORDER BY id")] == [
            (21, 1), (22, 0), (23, 0)]
        # each call to the party at its table then; one made when nobody sat there has none
        assert [tuple(row) for row in conn.execute("SELECT id, party_id FROM waiter_request ORDER BY id")] == [
            (31, 21), (32, 23), (33, None)]
        # the waits of calls seen to before, in milliseconds; one ended by its party leaving was not seen to
        assert [tuple(row) for row in conn.execute("SELECT id, claim_ms, resolve_ms FROM waiter_request ORDER BY id")
                ] == [(31, 90_500, 301_250), (32, None, None), (33, None, None)]
    finally:
        conn.close()
