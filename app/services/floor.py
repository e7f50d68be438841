"""The floor plan: adding tables, renaming, resizing, moving them between areas and in the grid's
order, removing them, and their QR codes. Admins only (`EDIT_FLOOR`).

A removed table leaves the grid and its QR code stops working; its sessions, calls and
audit events stay (the table row is kept, marked removed), and its label may be reused.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

from .core import EDIT_FLOOR, Actor, Call, Result, Service, ServiceError, UnitOfWork

DEFAULT_AREA = "Main room"
LABEL_AT_MOST = AREA_AT_MOST = 40
SEATS_AT_MOST = 100


def new_qr_token() -> str:
    """An unguessable token for a table's guest page (144 bits)."""
    return secrets.token_urlsafe(18)


def valid_label(label: Any) -> str:
    if not isinstance(label, str) or not 1 <= len(label.strip()) <= LABEL_AT_MOST:
        raise ServiceError("invalid_label", f"A table label must be 1 to {LABEL_AT_MOST} characters long.")
    return label.strip()


def valid_area(area: Any) -> str:
    if not isinstance(area, str) or not 1 <= len(area.strip()) <= AREA_AT_MOST:
        raise ServiceError("invalid_area", f"An area name must be 1 to {AREA_AT_MOST} characters long.")
    return area.strip()


def valid_seats(seats: Any) -> int:
    if isinstance(seats, bool) or not isinstance(seats, int) or not 1 <= seats <= SEATS_AT_MOST:
        raise ServiceError("invalid_seats", f"A table must have between 1 and {SEATS_AT_MOST} seats.")
    return seats


def valid_position(position: Any) -> int:
    if isinstance(position, bool) or not isinstance(position, int) or position < 1:
        raise ServiceError("invalid_position", "A position is a whole number: 1 for the first table.")
    return position


def check_label_free(conn: sqlite3.Connection, restaurant_id: int, label: str, table_id: int | None = None) -> None:
    taken = conn.execute(
        "SELECT id FROM dining_table WHERE restaurant_id = ? AND label = ? AND removed_at IS NULL AND id IS NOT ?",
        (restaurant_id, label, table_id),
    ).fetchone()
    if taken:
        raise ServiceError("label_taken", f"There is already a table {label}.")


def insert_table(conn: sqlite3.Connection, restaurant_id: int, label: Any, seats: Any, area: Any) -> int:
    """Add a table at the end of the restaurant's order; validates what a person typed."""
    label, area, seats = valid_label(label), valid_area(area), valid_seats(seats)
    check_label_free(conn, restaurant_id, label)
    return conn.execute(
        "INSERT INTO dining_table (restaurant_id, label, seats, area, sort_order, qr_token)"
        " VALUES (?, ?, ?, ?, (SELECT coalesce(max(sort_order), 0) + 1 FROM dining_table"
        " WHERE restaurant_id = ? AND removed_at IS NULL), ?)"
        " RETURNING id",
        (restaurant_id, label, seats, area, restaurant_id, new_qr_token()),
    ).fetchone()[0]


class FloorService(Service):
    """Editing the floor plan. Every change is pushed to the dashboards like a party's."""

    needs = EDIT_FLOOR

    async def qr_tokens(self, restaurant_id: int) -> dict[int, str]:
        """Each table's guest-page token, by table id (for the printed codes and the command line)."""
        return await self.db.read(_qr_tokens, restaurant_id)

    def add_table(self, actor: Actor, label: Any, seats: Any = None, area: Any = None) -> Call:
        """A new table at the end of the grid: 4 seats in the main room unless said otherwise."""
        return self.call(actor, _add_table, label, 4 if seats is None else seats,
                         DEFAULT_AREA if area is None else area)

    def set_table(self, actor: Actor, table_id: int, label: Any = None, seats: Any = None, area: Any = None,
                  position: Any = None) -> Call:
        """Change what is given: the label, the seats, the area, the place in the grid's order (1 = first)."""
        return self.call(actor, _set_table, table_id, label, seats, area, position)

    def remove_table(self, actor: Actor, table_id: int) -> Call:
        """Take a free table off the floor: it leaves every grid, its QR code stops working."""
        return self.call(actor, _remove_table, table_id)

    def rotate_qr(self, actor: Actor, table_id: int) -> Call:
        """A new guest-page token for the table: printed codes of the old one stop working."""
        return self.call(actor, _rotate_qr, table_id)


def _qr_tokens(conn: sqlite3.Connection, restaurant_id: int) -> dict[int, str]:
    rows = conn.execute("SELECT id, qr_token FROM dining_table WHERE restaurant_id = ? AND removed_at IS NULL",
                        (restaurant_id,))
    return dict(rows.fetchall())


def _add_table(tx: UnitOfWork, label: Any, seats: Any, area: Any) -> Result:
    table_id = insert_table(tx.conn, tx.actor.restaurant_id, label, seats, area)
    return tx.changed("add_table", table_id)


def _set_table(tx: UnitOfWork, table_id: int, label: Any, seats: Any, area: Any, position: Any) -> Result:
    if (label, seats, area, position) == (None, None, None, None):
        raise ServiceError("invalid_action", "Say what to change: label, seats, area or position.")
    changes: dict[str, Any] = {}  # what was typed is checked first, as TableService does: bad input is 422
    if label is not None:
        changes["label"] = valid_label(label)
    if seats is not None:
        changes["seats"] = valid_seats(seats)
    if area is not None:
        changes["area"] = valid_area(area)
    if position is not None:
        valid_position(position)
    row = tx.row(table_id)
    if "label" in changes:
        check_label_free(tx.conn, tx.actor.restaurant_id, changes["label"], table_id)
    for column, value in changes.items():  # column names from the lines above, never from the caller
        tx.conn.execute(f"UPDATE dining_table SET {column} = ? WHERE id = ?", (value, table_id))
    moved = place(tx, table_id, position) if position is not None else []
    # a party's other cards name this table ("With 5", "Joined with 6"): a new label changes them too
    party = tx.party(row) if "label" in changes and row["party_id"] is not None else []
    return tx.changed("set_table", table_id, *moved, *party)


def place(tx: UnitOfWork, table_id: int, position: Any) -> list[int]:
    """Put the table at `position` in the restaurant's order (past the end: last), numbering every table
    1..N; the ids of the tables whose position changed, in their new order."""
    valid_position(position)
    rows = tx.conn.execute(
        "SELECT id, sort_order FROM dining_table WHERE restaurant_id = ? AND removed_at IS NULL"
        " ORDER BY sort_order, id", (tx.actor.restaurant_id,)).fetchall()
    order = [row["id"] for row in rows if row["id"] != table_id]
    order.insert(min(position, len(order) + 1) - 1, table_id)
    was = {row["id"]: row["sort_order"] for row in rows}
    moved = [other for number, other in enumerate(order, 1) if was[other] != number]
    for other in moved:
        tx.row(other)  # the 'before' of each table whose position changes
    for number, other in enumerate(order, 1):
        if was[other] != number:
            tx.conn.execute("UPDATE dining_table SET sort_order = ? WHERE id = ?", (number, other))
    return moved


def _remove_table(tx: UnitOfWork, table_id: int) -> Result:
    row = tx.row(table_id)
    if row["party_id"] is not None:
        raise ServiceError("table_occupied", f"Table {row['label']} has guests; close it before removing it.")
    tx.remove(table_id)
    return tx.changed("remove_table", table_id)


def _rotate_qr(tx: UnitOfWork, table_id: int) -> Result:
    tx.row(table_id)
    tx.conn.execute("UPDATE dining_table SET qr_token = ? WHERE id = ?", (new_qr_token(), table_id))
    return tx.changed("rotate_qr", table_id)
