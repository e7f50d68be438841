"""The table operations: close, disable, enable, restore, move, open a session, record activity.

Every operation runs as one write transaction and returns a `Result`; a business
error rolls the transaction back and comes back as `Result.error(code, detail)`.
Every operation is scoped to the actor's restaurant: a table of another restaurant
is simply not found.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..db import Database, format_time, parse_time, utc_now
from ..settings import Settings
from .core import Actor, Result, ServiceError, record_change

TABLE_QUERY = """
SELECT t.id, t.label, t.seats, t.area, t.enabled, t.seated_at,
       s.id AS session_id, s.guest_count, s.opened_at, s.last_activity_at,
       last.id AS last_closed_id, last.closed_at AS last_closed_at,
       (SELECT json_group_array(json_object('id', r.id, 'kind', r.kind, 'since', r.created_at))
        FROM (SELECT id, kind, created_at FROM waiter_request
              WHERE table_id = t.id AND resolved_at IS NULL ORDER BY id) AS r) AS requests
FROM dining_table AS t
LEFT JOIN table_session AS s ON s.table_id = t.id AND s.state = 'active'
LEFT JOIN table_session AS last ON last.id = (
    SELECT id FROM table_session WHERE table_id = t.id AND state = 'closed'
    ORDER BY closed_at DESC, id DESC LIMIT 1)
WHERE t.restaurant_id = :restaurant_id {where}
ORDER BY t.sort_order, t.id
"""


DEFAULT_AREA = "Main room"


def new_qr_token() -> str:
    """An unguessable token for a table's guest page (144 bits)."""
    return secrets.token_urlsafe(18)


def insert_table(conn: sqlite3.Connection, restaurant_id: int, label: str, seats: int, area: str) -> int:
    """Add a table at the end of the restaurant's order; validates what a person typed."""
    label, area = label.strip(), area.strip()
    if not 1 <= len(label) <= 40:
        raise ServiceError("invalid_label", "A table label must be 1 to 40 characters long.")
    if not 1 <= len(area) <= 40:
        raise ServiceError("invalid_area", "An area name must be 1 to 40 characters long.")
    if not 1 <= seats <= 100:
        raise ServiceError("invalid_seats", "A table must have between 1 and 100 seats.")
    if conn.execute(
        "SELECT 1 FROM dining_table WHERE restaurant_id = ? AND label = ?", (restaurant_id, label)
    ).fetchone():
        raise ServiceError("label_taken", f"There is already a table {label}.")
    return conn.execute(
        "INSERT INTO dining_table (restaurant_id, label, seats, area, sort_order, qr_token)"
        " VALUES (?, ?, ?, ?, (SELECT coalesce(max(sort_order), 0) + 1 FROM dining_table WHERE restaurant_id = ?), ?)"
        " RETURNING id",
        (restaurant_id, label, seats, area, restaurant_id, new_qr_token()),
    ).fetchone()[0]


def table_status(row: sqlite3.Row) -> str:
    if not row["enabled"]:
        return "disabled"
    return "occupied" if row["session_id"] is not None else "free"


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


def table_dict(row: sqlite3.Row, window: RestoreWindow) -> dict[str, Any]:
    """A table as a dashboard shows it."""
    session = None
    if row["session_id"] is not None:
        session = {
            "id": row["session_id"],
            "opened_at": row["opened_at"],
            "last_active": row["last_activity_at"],
            "guest_count": row["guest_count"],
        }
    return {
        "id": row["id"],
        "number": row["label"],
        "seats": row["seats"],
        "area": row["area"],
        "status": table_status(row),
        "session": session,
        "restorable": (until := window.restorable_until(row)) is not None,
        "restorable_until": until,  # the page takes its Restore button away then
        "requests": json.loads(row["requests"]),  # pending waiter requests, oldest first
    }


def restore_window(conn: sqlite3.Connection, restaurant_id: int, default_window: int, now: str) -> RestoreWindow:
    """The restaurant's restore window (or the server's), as of `now`."""
    row = conn.execute(
        "SELECT coalesce(restore_window_minutes, ?) FROM restaurant WHERE id = ?", (default_window, restaurant_id)
    ).fetchone()
    window = row[0] if row else default_window
    return RestoreWindow(window, format_time(parse_time(now) - timedelta(minutes=window)))


def table_row(conn: sqlite3.Connection, restaurant_id: int, table_id: int) -> sqlite3.Row | None:
    """One table of the restaurant as `TABLE_QUERY` reads it; None if the restaurant has no such table."""
    return conn.execute(
        TABLE_QUERY.format(where="AND t.id = :table_id"), {"restaurant_id": restaurant_id, "table_id": table_id}
    ).fetchone()


class Tx:
    """One operation's transaction: the connection, the actor, the time, and the tables read before."""

    def __init__(self, conn: sqlite3.Connection, actor: Actor, now: str, default_window: int) -> None:
        self.conn = conn
        self.actor = actor
        self.now = now
        self.window = restore_window(conn, actor.restaurant_id, default_window, now)
        self.before: dict[int, dict[str, Any]] = {}

    def row(self, table_id: int, missing: str = "table_not_found") -> sqlite3.Row:
        """The table's current row; first reads are kept as the audit's 'before'."""
        row = table_row(self.conn, self.actor.restaurant_id, table_id)
        if row is None:
            raise ServiceError(missing, f"There is no table {table_id}.")
        self.before.setdefault(table_id, table_dict(row, self.window))
        return row

    def changed(self, action: str, *table_ids: int) -> Result:
        before = [self.before.get(table_id) for table_id in table_ids]
        after = [table_dict(self.row(table_id), self.window) for table_id in table_ids]
        return record_change(self.conn, self.actor, action, self.now, before, after)


class TableService:
    """The only code that changes tables. Knows nothing of HTTP, sockets or HTML."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def list_tables(self, restaurant_id: int) -> tuple[int, list[dict[str, Any]]]:
        """The restaurant's version and all its tables, read in one snapshot."""
        return await self.db.read(self._list, restaurant_id)

    def _list(self, conn: sqlite3.Connection, restaurant_id: int) -> tuple[int, list[dict[str, Any]]]:
        found = conn.execute("SELECT version FROM restaurant WHERE id = ?", (restaurant_id,)).fetchone()
        if found is None:
            raise LookupError(f"no restaurant with id {restaurant_id}")
        window = restore_window(conn, restaurant_id, self.settings.restore_window_minutes, utc_now())
        rows = conn.execute(TABLE_QUERY.format(where=""), {"restaurant_id": restaurant_id})
        return found["version"], [table_dict(row, window) for row in rows]

    async def qr_tokens(self, restaurant_id: int) -> dict[int, str]:
        """Each table's guest-page token, by table id (for the printed codes and the command line)."""
        return await self.db.read(_qr_tokens, restaurant_id)

    async def add_table(self, actor: Actor, label: str, seats: int = 4, area: str = DEFAULT_AREA) -> Result:
        return await self._run(actor, _add_table, label, seats, area)

    async def rotate_qr(self, actor: Actor, table_id: int) -> Result:
        """A new guest-page token for the table: printed codes of the old one stop working."""
        return await self._run(actor, _rotate_qr, table_id)

    async def close_table(self, actor: Actor, table_id: int) -> Result:
        return await self._run(actor, _close, table_id)

    async def disable_table(self, actor: Actor, table_id: int) -> Result:
        return await self._run(actor, _disable, table_id)

    async def enable_table(self, actor: Actor, table_id: int) -> Result:
        return await self._run(actor, _enable, table_id)

    async def restore_table(self, actor: Actor, table_id: int) -> Result:
        return await self._run(actor, _restore, table_id)

    async def move_table(self, actor: Actor, from_table_id: int, to_table_id: int) -> Result:
        return await self._run(actor, _move, from_table_id, to_table_id)

    async def open_session(self, actor: Actor, table_id: int, guest_count: int | None = None) -> Result:
        return await self._run(actor, _open_session, table_id, guest_count)

    async def record_activity(self, actor: Actor, table_id: int) -> Result:
        return await self._run(actor, _record_activity, table_id)

    async def _run(self, actor: Actor, operation: Callable[..., Result], *args: Any) -> Result:
        try:
            return await self.db.write(self._transaction, actor, operation, *args)
        except ServiceError as error:
            return Result.error(error.code, error.detail)

    def _transaction(
        self, conn: sqlite3.Connection, actor: Actor, operation: Callable[..., Result], *args: Any
    ) -> Result:
        return operation(Tx(conn, actor, utc_now(), self.settings.restore_window_minutes), *args)


def _qr_tokens(conn: sqlite3.Connection, restaurant_id: int) -> dict[int, str]:
    rows = conn.execute("SELECT id, qr_token FROM dining_table WHERE restaurant_id = ?", (restaurant_id,))
    return dict(rows.fetchall())


def _add_table(tx: Tx, label: str, seats: int, area: str) -> Result:
    table_id = insert_table(tx.conn, tx.actor.restaurant_id, label, seats, area)
    return tx.changed("add_table", table_id)


def _rotate_qr(tx: Tx, table_id: int) -> Result:
    tx.row(table_id)
    tx.conn.execute("UPDATE dining_table SET qr_token = ? WHERE id = ?", (new_qr_token(), table_id))
    return tx.changed("rotate_qr", table_id)


def _close(tx: Tx, table_id: int) -> Result:
    row = tx.row(table_id)
    if row["session_id"] is None:
        raise ServiceError("no_active_session", f"Table {row['label']} has no guests to close.")
    tx.conn.execute(
        "UPDATE table_session SET state = 'closed', closed_at = ? WHERE id = ?", (tx.now, row["session_id"])
    )
    tx.conn.execute(
        "UPDATE waiter_request SET resolved_at = ?, resolved_by = 'table closed'"
        " WHERE table_id = ? AND resolved_at IS NULL",
        (tx.now, table_id),
    )
    return tx.changed("close_table", table_id)


def _disable(tx: Tx, table_id: int) -> Result:
    row = tx.row(table_id)
    if not row["enabled"]:
        raise ServiceError("already_disabled", f"Table {row['label']} is already disabled.")
    if row["session_id"] is not None:
        raise ServiceError("table_occupied", f"Table {row['label']} has guests; close it before disabling it.")
    tx.conn.execute("UPDATE dining_table SET enabled = 0 WHERE id = ?", (table_id,))
    return tx.changed("disable_table", table_id)


def _enable(tx: Tx, table_id: int) -> Result:
    row = tx.row(table_id)
    if row["enabled"]:
        raise ServiceError("not_disabled", f"Table {row['label']} is not disabled.")
    tx.conn.execute("UPDATE dining_table SET enabled = 1 WHERE id = ?", (table_id,))
    return tx.changed("enable_table", table_id)


def _restore(tx: Tx, table_id: int) -> Result:
    row = tx.row(table_id)
    if row["session_id"] is not None:
        raise ServiceError("table_occupied", f"Table {row['label']} already has guests.")
    if not row["enabled"]:
        raise ServiceError("table_disabled", f"Table {row['label']} is disabled.")
    if tx.window.restorable_until(row) is None:
        raise ServiceError("no_session_to_restore", f"Table {row['label']} has no recently closed party to restore.")
    tx.conn.execute(
        "UPDATE table_session SET state = 'active', closed_at = NULL, last_activity_at = ? WHERE id = ?",
        (tx.now, row["last_closed_id"]),
    )
    return tx.changed("restore_table", table_id)


def _move(tx: Tx, from_table_id: int, to_table_id: int) -> Result:
    if from_table_id == to_table_id:
        raise ServiceError("same_table", "A party cannot move to the table it is already at.")
    source = tx.row(from_table_id, missing="source_table_not_found")
    target = tx.row(to_table_id, missing="target_table_not_found")
    if source["session_id"] is None:
        raise ServiceError("no_session_to_move", f"Table {source['label']} has no guests to move.")
    if table_status(target) != "free":
        raise ServiceError("target_unavailable", f"Table {target['label']} is {table_status(target)}.")
    tx.conn.execute("UPDATE table_session SET table_id = ? WHERE id = ?", (to_table_id, source["session_id"]))
    tx.conn.execute(  # the party's calls go with it
        "UPDATE waiter_request SET table_id = ? WHERE table_id = ? AND resolved_at IS NULL",
        (to_table_id, from_table_id),
    )
    tx.conn.execute("UPDATE dining_table SET seated_at = ? WHERE id = ?", (tx.now, to_table_id))
    return tx.changed("move_table", from_table_id, to_table_id)


def _open_session(tx: Tx, table_id: int, guest_count: int | None) -> Result:
    if guest_count is not None and not 1 <= guest_count <= 100:
        raise ServiceError("invalid_guest_count", "The number of guests must be between 1 and 100.")
    row = tx.row(table_id)
    if not row["enabled"]:
        raise ServiceError("table_disabled", f"Table {row['label']} is disabled.")
    if row["session_id"] is not None:
        raise ServiceError("table_occupied", f"Table {row['label']} already has guests.")
    seat(tx, table_id, guest_count)
    return tx.changed("open_session", table_id)


def seat(tx: Tx, table_id: int, guest_count: int | None) -> None:
    """A party sits down at a free table."""
    tx.conn.execute(
        "INSERT INTO table_session (table_id, state, guest_count, opened_at, last_activity_at)"
        " VALUES (?, 'active', ?, ?, ?)",
        (table_id, guest_count, tx.now, tx.now),
    )
    tx.conn.execute("UPDATE dining_table SET seated_at = ? WHERE id = ?", (tx.now, table_id))


def _record_activity(tx: Tx, table_id: int) -> Result:
    row = tx.row(table_id)
    if not row["enabled"]:
        raise ServiceError("table_disabled", f"Table {row['label']} is disabled.")
    if row["session_id"] is None:
        raise ServiceError("no_active_session", f"Table {row['label']} has no guests.")
    tx.conn.execute("UPDATE table_session SET last_activity_at = ? WHERE id = ?", (tx.now, row["session_id"]))
    return tx.changed("record_activity", table_id)
