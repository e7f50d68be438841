"""A table as a dashboard shows it: the one query that reads tables, and the dict it becomes.

Every road reads tables through here: the dashboards' snapshot and pushes, the read API,
the guest's page, and each operation's "before" and "after" for the audit log. The dict's
shape is the wire format (docs/protocol.md): a seated party is `"session"` there.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from typing import TypedDict

from ..db import format_time, parse_time

# `seat` is the session at this table; `party` is the party it belongs to: the same session, or for a
# table joined to a party, the session of the party's own table (which holds the guests, note and times).
TABLE_QUERY = """
SELECT t.id, t.label, t.seats, t.area, t.sort_order, t.enabled, t.seated_at,
       party.id AS party_id, party.table_id AS party_table_id, party.guest_count, party.note,
       party.opened_at, party.last_activity_at,
       (SELECT json_group_array(json_object('id', j.id, 'number', j.label))
        FROM (SELECT pt.id, pt.label FROM table_session AS ps JOIN dining_table AS pt ON pt.id = ps.table_id
              WHERE ps.state = 'active' AND (ps.id = party.id OR ps.joined_to = party.id)
              ORDER BY ps.joined_to IS NOT NULL, ps.id) AS j) AS party_tables,
       last.id AS last_party_id, last.closed_at AS last_closed_at,
       (SELECT json_group_array(json_object('id', r.id, 'kind', r.kind, 'since', r.created_at,
                                            'claimed_by', r.claimed_by, 'claimed_at', r.claimed_at))
        FROM (SELECT id, kind, created_at, claimed_by, claimed_at FROM waiter_request
              WHERE table_id = t.id AND resolved_at IS NULL ORDER BY id) AS r) AS requests,
       coalesce((SELECT waiter FROM section WHERE table_id = t.id),
                (SELECT waiter FROM section WHERE restaurant_id = t.restaurant_id AND area = t.area)) AS waiter
FROM dining_table AS t
LEFT JOIN table_session AS seat ON seat.table_id = t.id AND seat.state = 'active'
LEFT JOIN table_session AS party ON party.id = coalesce(seat.joined_to, seat.id)
LEFT JOIN table_session AS last ON last.id = (
    SELECT id FROM table_session WHERE table_id = t.id AND state = 'closed'
    ORDER BY closed_at DESC, id DESC LIMIT 1)
WHERE t.restaurant_id = :restaurant_id AND t.removed_at IS NULL {where}
ORDER BY t.sort_order, t.id
"""
ONE_TABLE = TABLE_QUERY.format(where="AND t.id = :table_id")
ALL_TABLES = TABLE_QUERY.format(where="")


class TableRef(TypedDict):
    """A table named in another table's card: a joined party's tables."""

    id: int
    number: str


class Party(TypedDict):
    """The party seated at a table (`"session"` on the wire)."""

    id: int
    opened_at: str
    last_active: str
    guest_count: int | None
    note: str | None
    # every table the party sits at, its own first, then those joined to it in the order they were
    tables: list[TableRef]


class WaiterRequest(TypedDict):
    id: int
    kind: str  # call_waiter or ask_for_bill
    since: str
    claimed_by: str | None  # the name of the waiter on the way ("On my way"), None while nobody is
    claimed_at: str | None


class Table(TypedDict):
    """A table as every dashboard, the read API and the audit log see it."""

    id: int
    number: str
    seats: int
    area: str
    position: int  # the grid's order: tables sort by position (then id)
    status: str  # free, occupied or disabled
    session: Party | None
    restorable: bool
    restorable_until: str | None
    requests: list[WaiterRequest]
    waiter: str | None  # whose section the table is in (by the table itself, or its area); None: nobody's


class Removed(TypedDict):
    """A table that left the floor, as a change records it (the last thing said of it)."""

    id: int
    number: str
    removed: bool  # always true


def table_status(row: sqlite3.Row) -> str:
    if not row["enabled"]:
        return "disabled"
    return "occupied" if row["party_id"] is not None else "free"


@dataclass(frozen=True)
class RestoreWindow:
    """How long after a close a party can be restored, as it stands at one moment."""

    minutes: int
    cutoff: str  # the earliest close that can still be restored

    def restorable_until(self, row: sqlite3.Row) -> str | None:
        """When the table's Restore runs out; None if it cannot be restored now.

        Restorable: free and enabled, its last party left within the window, nobody seated since.
        """
        closed_at = row["last_closed_at"]
        if (
            table_status(row) == "free"
            and closed_at is not None
            and closed_at >= self.cutoff
            and (row["seated_at"] is None or row["seated_at"] <= closed_at)
        ):
            return format_time(parse_time(closed_at) + timedelta(minutes=self.minutes))
        return None


def restore_window(conn: sqlite3.Connection, restaurant_id: int, default_window: int, now: str) -> RestoreWindow:
    """The restaurant's restore window (or the server's), as of `now`."""
    row = conn.execute(
        "SELECT coalesce(restore_window_minutes, ?) FROM restaurant WHERE id = ?", (default_window, restaurant_id)
    ).fetchone()
    window = row[0] if row else default_window
    return RestoreWindow(window, format_time(parse_time(now) - timedelta(minutes=window)))


def table_dict(row: sqlite3.Row, window: RestoreWindow) -> Table:
    """A table as a dashboard shows it."""
    party: Party | None = None
    if row["party_id"] is not None:
        party = {
            "id": row["party_id"],
            "opened_at": row["opened_at"],
            "last_active": row["last_activity_at"],
            "guest_count": row["guest_count"],
            "note": row["note"],
            "tables": json.loads(row["party_tables"]),
        }
    until = window.restorable_until(row)
    return {
        "id": row["id"],
        "number": row["label"],
        "seats": row["seats"],
        "area": row["area"],
        "position": row["sort_order"],
        "status": table_status(row),
        "session": party,
        "restorable": until is not None,
        "restorable_until": until,  # the page takes its Restore button away then
        "requests": json.loads(row["requests"]),  # pending waiter requests, oldest first
        "waiter": row["waiter"],
    }


def table_row(conn: sqlite3.Connection, restaurant_id: int, table_id: int) -> sqlite3.Row | None:
    """One table of the restaurant as `TABLE_QUERY` reads it; None if the restaurant has no such table."""
    return conn.execute(
        ONE_TABLE, {"restaurant_id": restaurant_id, "table_id": table_id}
    ).fetchone()


def all_tables(conn: sqlite3.Connection, restaurant_id: int, window: RestoreWindow) -> list[Table]:
    """Every table of the restaurant, in the restaurant's order."""
    rows = conn.execute(ALL_TABLES, {"restaurant_id": restaurant_id})
    return [table_dict(row, window) for row in rows]
