"""Guests at their table's page: calling a waiter, asking for the bill; staff claiming and resolving those calls.

A guest is known only by the table's QR token. The first guest action seats a party at a
free table (or joins the one there), and every guest action counts as activity. A second
pending request of the same kind at the same table is refused, not counted twice.

A waiter claims a call ("On my way": everyone sees who), then resolves it ("Done"). When
each call was made, claimed and resolved, and by which key, is kept for the reports.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

from ..db import milliseconds, parse_time
from .core import Actor, Call, Result, Service, ServiceError, UnitOfWork
from .table_view import Table, table_dict, table_row
from .tables import seat

KINDS = {"call_waiter": "call a waiter", "ask_for_bill": "ask for the bill"}
GUEST = "guest"


@dataclass(frozen=True)
class GuestTable:
    """What a guest's page shows: where they are, and how their last call stands."""

    restaurant: str
    table: Table
    pending: tuple[str, ...]  # kinds still waiting for the staff
    answered: bool  # a call of this party's has been seen to by the staff


class WaiterService(Service):
    async def guest_table(self, token: str) -> GuestTable | None:
        return await self.db.read(self._guest_table, token)

    async def request(self, token: str, kind: str) -> Result:
        """A guest's call: `call_waiter` or `ask_for_bill`. Unknown tokens are `table_not_found`."""
        return await self.attempt(self._request, token, kind)

    async def calls_waiting(self) -> int:
        """Guests' calls not yet seen to, in every restaurant (the metrics' gauge)."""
        return await self.db.read(_calls_waiting)

    async def waited(self, request_id: int) -> tuple[float | None, float | None]:
        """Seconds from a call to its claim, and to its resolution (None: not yet, or no such call)."""
        return await self.db.read(_waited, request_id)

    def claim(self, actor: Actor, request_id: int) -> Call:
        """A waiter is on the way to a call ("On my way"); a call already claimed is `request_already_claimed`."""
        return self.call(actor, _claim, request_id)

    def resolve(self, actor: Actor, request_id: int) -> Call:
        """Staff have seen to a request. Another restaurant's request is `request_not_found`."""
        return self.call(actor, _resolve, request_id)

    def _guest_table(self, conn: sqlite3.Connection, token: str) -> GuestTable | None:
        found = _table_of(conn, token)
        if found is None:
            return None
        table_id, restaurant_id, name = found
        row = table_row(conn, restaurant_id, table_id)
        assert row is not None  # found by its token just above, in the same read
        table = table_dict(row, self.restore_window(conn, restaurant_id))
        answered = False
        if table["session"] is not None:
            answered = conn.execute(
                "SELECT 1 FROM waiter_request WHERE table_id = ? AND created_at >= ? AND resolved_at IS NOT NULL"
                " AND resolved_by != 'table closed'",
                (table_id, table["session"]["opened_at"]),
            ).fetchone() is not None
        return GuestTable(name, table, tuple(r["kind"] for r in table["requests"]), answered)

    def _request(self, conn: sqlite3.Connection, token: str, kind: str) -> Result:
        if kind not in KINDS:
            raise ServiceError("invalid_kind", "A request is to call a waiter or to ask for the bill.")
        found = _table_of(conn, token)
        if found is None:
            raise ServiceError("table_not_found", "This table's code is not known here.")
        table_id, restaurant_id, _ = found
        tx = self.unit(conn, Actor(restaurant_id, GUEST, "guest"))
        row = tx.row(table_id)
        if not row["enabled"]:
            raise ServiceError("table_disabled", "This table is not available right now.")
        if row["party_id"] is None:
            party_id = seat(tx, table_id, None)
            party = []
        else:  # the party's activity: every card it sits at shows it
            conn.execute("UPDATE table_session SET last_activity_at = ? WHERE id = ?", (tx.now, row["party_id"]))
            party = tx.party(row)
            party_id = row["party_id"]
        if conn.execute("SELECT 1 FROM waiter_request WHERE table_id = ? AND kind = ? AND resolved_at IS NULL",
                        (table_id, kind)).fetchone():
            raise ServiceError("request_already_pending", "The staff already have your request; they are coming.")
        request_id = conn.execute(
            "INSERT INTO waiter_request (table_id, kind, created_at, party_id) VALUES (?, ?, ?, ?) RETURNING id",
            (table_id, kind, tx.now, party_id),
        ).fetchone()[0]
        result = tx.changed(kind, table_id, *party)
        table = result.tables[0]
        announcement = {"type": "waiter_request",
                        "request": {"id": request_id, "kind": kind, "since": tx.now, "table_id": table_id,
                                    "table": table["number"], "claimed_by": None}}
        return replace(result, announcements=(announcement,))


def pending_request(tx: UnitOfWork, request_id: int) -> sqlite3.Row:
    """A call of the actor's restaurant still waiting to be seen to; `request_not_found` otherwise."""
    found = tx.conn.execute(
        "SELECT r.table_id, r.claimed_by, r.created_at"
        " FROM waiter_request AS r JOIN dining_table AS t ON t.id = r.table_id"
        " WHERE r.id = ? AND t.restaurant_id = ? AND r.resolved_at IS NULL",
        (request_id, tx.actor.restaurant_id),
    ).fetchone()
    if found is None:
        raise ServiceError("request_not_found", "That request was already seen to, or does not exist.")
    tx.row(found["table_id"])
    return found


def _claim(tx: UnitOfWork, request_id: int) -> Result:
    found = pending_request(tx, request_id)
    if found["claimed_by"] is not None:
        raise ServiceError("request_already_claimed", f"{found['claimed_by']} is already on it.")
    name = shown_name(tx)
    tx.conn.execute("UPDATE waiter_request SET claimed_at = ?, claimed_by = ?, claimed_by_key = ?, claim_ms = ?"
                    " WHERE id = ?",
                    (tx.now, name, tx.actor.key_id, waited(found, tx.now), request_id))
    result = tx.changed("claim_waiter_request", found["table_id"])
    announcement = {"type": "waiter_request_claimed", "request_id": request_id, "table_id": found["table_id"],
                    "claimed_by": name}
    return replace(result, announcements=(announcement,))


def waited(call: sqlite3.Row, now: str) -> int:
    """Milliseconds from the call to now (kept with the call for reports: reports.py)."""
    return milliseconds(now) - milliseconds(call["created_at"])


def shown_name(tx: UnitOfWork) -> str:
    """The actor as staff know it: its key's name (the command line, which has none, by its own)."""
    row = tx.conn.execute("SELECT name FROM api_key WHERE id = ?", (tx.actor.key_id,)).fetchone()
    return row["name"] if row else tx.actor.name


def _resolve(tx: UnitOfWork, request_id: int) -> Result:
    found = pending_request(tx, request_id)
    tx.conn.execute("UPDATE waiter_request SET resolved_at = ?, resolved_by = ?, resolved_by_key = ?, resolve_ms = ?"
                    " WHERE id = ?",
                    (tx.now, tx.actor.name, tx.actor.key_id, waited(found, tx.now), request_id))
    result = tx.changed("resolve_waiter_request", found["table_id"])
    announcement = {"type": "waiter_request_resolved", "request_id": request_id, "table_id": found["table_id"]}
    return replace(result, announcements=(announcement,))


def _calls_waiting(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM waiter_request WHERE resolved_at IS NULL").fetchone()[0]


def _waited(conn: sqlite3.Connection, request_id: int) -> tuple[float | None, float | None]:
    row = conn.execute("SELECT created_at, claimed_at, resolved_at FROM waiter_request WHERE id = ?",
                       (request_id,)).fetchone()
    if row is None:
        return None, None
    made = parse_time(row["created_at"])

    def since_made(at: str | None) -> float | None:
        return (parse_time(at) - made).total_seconds() if at else None

    return since_made(row["claimed_at"]), since_made(row["resolved_at"])


def _table_of(conn: sqlite3.Connection, token: str) -> tuple[int, int, str] | None:
    if not 10 <= len(token) <= 64:
        return None
    row = conn.execute(
        "SELECT t.id, t.restaurant_id, r.name FROM dining_table AS t JOIN restaurant AS r ON r.id = t.restaurant_id"
        " WHERE t.qr_token = ? AND t.removed_at IS NULL",
        (token,),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None
