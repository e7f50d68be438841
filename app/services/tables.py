"""The table operations: seat a party, close, disable, enable, restore, move; adding tables and their QR codes.

Each operation is a function of a `UnitOfWork` (see core.py): one write transaction that
returns a `Result`; a business error rolls it back and comes back as `Result.error(code,
detail)`. Every operation is scoped to the actor's restaurant: a table of another
restaurant is simply not found.
"""

from __future__ import annotations

import secrets
import sqlite3

from .audit import Event, events_after
from .core import Actor, Result, Service, ServiceError, UnitOfWork
from .table_view import Table, all_tables, table_status

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


class TableService(Service):
    """The only code that changes tables. Knows nothing of HTTP, sockets or HTML."""

    async def list_tables(self, restaurant_id: int) -> tuple[int, list[Table]]:
        """The restaurant's version and all its tables, read in one snapshot."""
        return await self.db.read(self._list, restaurant_id)

    def _list(self, conn: sqlite3.Connection, restaurant_id: int) -> tuple[int, list[Table]]:
        found = conn.execute("SELECT version FROM restaurant WHERE id = ?", (restaurant_id,)).fetchone()
        if found is None:
            raise LookupError(f"no restaurant with id {restaurant_id}")
        return found["version"], all_tables(conn, restaurant_id, self.restore_window(conn, restaurant_id))

    async def events_after(self, restaurant_id: int, since: int) -> tuple[int, list[Event]]:
        """The restaurant's version and its table changes after `since`, oldest first, a page at a time."""
        return await self.db.read(events_after, restaurant_id, since)

    async def qr_tokens(self, restaurant_id: int) -> dict[int, str]:
        """Each table's guest-page token, by table id (for the printed codes and the command line)."""
        return await self.db.read(_qr_tokens, restaurant_id)

    async def add_table(self, actor: Actor, label: str, seats: int = 4, area: str = DEFAULT_AREA) -> Result:
        return await self.run(actor, _add_table, label, seats, area)

    async def rotate_qr(self, actor: Actor, table_id: int) -> Result:
        """A new guest-page token for the table: printed codes of the old one stop working."""
        return await self.run(actor, _rotate_qr, table_id)

    async def seat_party(self, actor: Actor, table_id: int, guest_count: int | None = None) -> Result:
        return await self.run(actor, _seat_party, table_id, guest_count)

    async def close_table(self, actor: Actor, table_id: int) -> Result:
        return await self.run(actor, _close, table_id)

    async def disable_table(self, actor: Actor, table_id: int) -> Result:
        return await self.run(actor, _disable, table_id)

    async def enable_table(self, actor: Actor, table_id: int) -> Result:
        return await self.run(actor, _enable, table_id)

    async def restore_table(self, actor: Actor, table_id: int) -> Result:
        return await self.run(actor, _restore, table_id)

    async def move_table(self, actor: Actor, from_table_id: int, to_table_id: int) -> Result:
        return await self.run(actor, _move, from_table_id, to_table_id)


def _qr_tokens(conn: sqlite3.Connection, restaurant_id: int) -> dict[int, str]:
    rows = conn.execute("SELECT id, qr_token FROM dining_table WHERE restaurant_id = ?", (restaurant_id,))
    return dict(rows.fetchall())


def _add_table(tx: UnitOfWork, label: str, seats: int, area: str) -> Result:
    table_id = insert_table(tx.conn, tx.actor.restaurant_id, label, seats, area)
    return tx.changed("add_table", table_id)


def _rotate_qr(tx: UnitOfWork, table_id: int) -> Result:
    tx.row(table_id)
    tx.conn.execute("UPDATE dining_table SET qr_token = ? WHERE id = ?", (new_qr_token(), table_id))
    return tx.changed("rotate_qr", table_id)


def _close(tx: UnitOfWork, table_id: int) -> Result:
    row = tx.row(table_id)
    if row["party_id"] is None:
        raise ServiceError("no_active_session", f"Table {row['label']} has no guests to close.")
    tx.conn.execute(
        "UPDATE table_session SET state = 'closed', closed_at = ? WHERE id = ?", (tx.now, row["party_id"])
    )
    tx.conn.execute(
        "UPDATE waiter_request SET resolved_at = ?, resolved_by = 'table closed'"
        " WHERE table_id = ? AND resolved_at IS NULL",
        (tx.now, table_id),
    )
    return tx.changed("close_table", table_id)


def _disable(tx: UnitOfWork, table_id: int) -> Result:
    row = tx.row(table_id)
    if not row["enabled"]:
        raise ServiceError("already_disabled", f"Table {row['label']} is already disabled.")
    if row["party_id"] is not None:
        raise ServiceError("table_occupied", f"Table {row['label']} has guests; close it before disabling it.")
    tx.conn.execute("UPDATE dining_table SET enabled = 0 WHERE id = ?", (table_id,))
    return tx.changed("disable_table", table_id)


def _enable(tx: UnitOfWork, table_id: int) -> Result:
    row = tx.row(table_id)
    if row["enabled"]:
        raise ServiceError("not_disabled", f"Table {row['label']} is not disabled.")
    tx.conn.execute("UPDATE dining_table SET enabled = 1 WHERE id = ?", (table_id,))
    return tx.changed("enable_table", table_id)


def _restore(tx: UnitOfWork, table_id: int) -> Result:
    row = tx.row(table_id)
    if row["party_id"] is not None:
        raise ServiceError("table_occupied", f"Table {row['label']} already has guests.")
    if not row["enabled"]:
        raise ServiceError("table_disabled", f"Table {row['label']} is disabled.")
    if tx.window.restorable_until(row) is None:
        raise ServiceError("no_session_to_restore", f"Table {row['label']} has no recently closed party to restore.")
    tx.conn.execute(
        "UPDATE table_session SET state = 'active', closed_at = NULL, last_activity_at = ? WHERE id = ?",
        (tx.now, row["last_party_id"]),
    )
    return tx.changed("restore_table", table_id)


def _move(tx: UnitOfWork, from_table_id: int, to_table_id: int) -> Result:
    if from_table_id == to_table_id:
        raise ServiceError("same_table", "A party cannot move to the table it is already at.")
    source = tx.row(from_table_id, missing="source_table_not_found")
    target = tx.row(to_table_id, missing="target_table_not_found")
    if source["party_id"] is None:
        raise ServiceError("no_session_to_move", f"Table {source['label']} has no guests to move.")
    if table_status(target) != "free":
        raise ServiceError("target_unavailable", f"Table {target['label']} is {table_status(target)}.")
    tx.conn.execute("UPDATE table_session SET table_id = ? WHERE id = ?", (to_table_id, source["party_id"]))
    tx.conn.execute(  # the party's calls go with it
        "UPDATE waiter_request SET table_id = ? WHERE table_id = ? AND resolved_at IS NULL",
        (to_table_id, from_table_id),
    )
    tx.conn.execute("UPDATE dining_table SET seated_at = ? WHERE id = ?", (tx.now, to_table_id))
    return tx.changed("move_table", from_table_id, to_table_id)


def _seat_party(tx: UnitOfWork, table_id: int, guest_count: int | None) -> Result:
    if guest_count is not None and not 1 <= guest_count <= 100:
        raise ServiceError("invalid_guest_count", "The number of guests must be between 1 and 100.")
    row = tx.row(table_id)
    if not row["enabled"]:
        raise ServiceError("table_disabled", f"Table {row['label']} is disabled.")
    if row["party_id"] is not None:
        raise ServiceError("table_occupied", f"Table {row['label']} already has guests.")
    seat(tx, table_id, guest_count)
    return tx.changed("open_session", table_id)  # the log's name for it since the first schema


def seat(tx: UnitOfWork, table_id: int, guest_count: int | None, opened_at: str | None = None,
         last_active: str | None = None) -> None:
    """A party sits down at a free table (now, unless the demo says since when)."""
    opened_at = opened_at or tx.now
    tx.conn.execute(
        "INSERT INTO table_session (table_id, state, guest_count, opened_at, last_activity_at)"
        " VALUES (?, 'active', ?, ?, ?)",
        (table_id, guest_count, opened_at, last_active or opened_at),
    )
    tx.conn.execute("UPDATE dining_table SET seated_at = ? WHERE id = ?", (opened_at, table_id))
