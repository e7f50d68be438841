"""The party at a table: seat it, size it, note it, join and split tables, close, restore, move; disable and enable.

Each operation is a function of a `UnitOfWork` (see core.py): one write transaction that
returns a `Result`; a business error rolls it back and comes back as `Result.error(code,
detail)`. Every operation is scoped to the actor's restaurant: a table of another
restaurant is simply not found.

A party may sit at several tables pushed together: its own table, and tables joined to it
(each a session pointing at the party's, see migration 0004). Whatever changes the party
(its size, its note, closing it) changes every card it sits at, so all of them are updated.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from typing import Any

from ..db import milliseconds
from .audit import Event, events_after
from .core import MANAGE_TABLES, Actor, Call, Result, Service, ServiceError, UnitOfWork
from .table_view import Table, all_tables, table_status

MAX_GUESTS = 99
NOTE_AT_MOST = 140


class TableService(Service):
    """The only code that changes who sits where. Knows nothing of HTTP, sockets or HTML."""

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

    def seat_table(self, actor: Actor, table_id: int, guest_count: Any = None) -> Call:
        """A party sits down at a free table: `guest_count` of them (the table's seats if not said)."""
        return self.call(actor, _seat_table, table_id, guest_count)

    def set_guest_count(self, actor: Actor, table_id: int, guest_count: Any) -> Call:
        return self.call(actor, _set_guest_count, table_id, guest_count)

    def set_note(self, actor: Actor, table_id: int, note: Any) -> Call:
        """The party's note, shown on its cards (up to 140 characters; empty clears it)."""
        return self.call(actor, _set_note, table_id, note)

    def join_tables(self, actor: Actor, table_id: int, with_table_id: int) -> Call:
        """Push a free table to the party at `table_id`: the party now sits at both."""
        return self.call(actor, _join, table_id, with_table_id)

    def split_table(self, actor: Actor, table_id: int) -> Call:
        """Release a table joined to a party: it is free again, the party stays at the others."""
        return self.call(actor, _split, table_id)

    def close_table(self, actor: Actor, table_id: int) -> Call:
        """The party leaves: every table it sits at is free."""
        return self.call(actor, _close, table_id)

    def disable_table(self, actor: Actor, table_id: int) -> Call:
        return self.call(actor, _disable, table_id, needs=MANAGE_TABLES)

    def enable_table(self, actor: Actor, table_id: int) -> Call:
        return self.call(actor, _enable, table_id, needs=MANAGE_TABLES)

    def restore_table(self, actor: Actor, table_id: int) -> Call:
        """Undo a close made by mistake: the party is back at every table it sat at."""
        return self.call(actor, _restore, table_id)

    def move_table(self, actor: Actor, from_table_id: int, to_table_id: int) -> Call:
        """The party moves to a free table; the tables joined to it are released."""
        return self.call(actor, _move, from_table_id, to_table_id)


def valid_guest_count(guest_count: Any) -> int:
    if isinstance(guest_count, bool) or not isinstance(guest_count, int) or not 1 <= guest_count <= MAX_GUESTS:
        raise ServiceError("invalid_guest_count", f"The number of guests must be between 1 and {MAX_GUESTS}.")
    return guest_count


def valid_note(note: Any) -> str | None:
    """The note as it is kept: stripped, None when empty; text of up to 140 characters, no control characters."""
    if not isinstance(note, str):
        raise ServiceError("invalid_note", "A note is text.")
    note = note.strip()
    if len(note) > NOTE_AT_MOST:
        raise ServiceError("invalid_note", f"A note is at most {NOTE_AT_MOST} characters long.")
    if any(unicodedata.category(character) == "Cc" for character in note):
        raise ServiceError("invalid_note", "A note is one line of text, without control characters.")
    return note or None


def party_of(tx: UnitOfWork, table_id: int) -> tuple[sqlite3.Row, list[int]]:
    """The table's row and every table of the party seated there; `no_active_session` if nobody is."""
    row = tx.row(table_id)
    if row["party_id"] is None:
        raise ServiceError("no_active_session", f"Table {row['label']} has no guests.")
    return row, tx.party(row)


def _seat_table(tx: UnitOfWork, table_id: int, guest_count: Any) -> Result:
    if guest_count is not None:
        valid_guest_count(guest_count)
    row = tx.row(table_id)
    if not row["enabled"]:
        raise ServiceError("table_disabled", f"Table {row['label']} is disabled.")
    if row["party_id"] is not None:
        raise ServiceError("table_occupied", f"Table {row['label']} already has guests.")
    seat(tx, table_id, guest_count if guest_count is not None else min(row["seats"], MAX_GUESTS))
    return tx.changed("seat_table", table_id)


def seat(tx: UnitOfWork, table_id: int, guest_count: int | None, opened_at: str | None = None,
         last_active: str | None = None, joined_to: int | None = None) -> int:
    """A party sits down at a free table (now, unless the demo says since when); with `joined_to`, the
    table is pushed to that party's session instead (the party's guests and times stay on its own).
    Returns the new session's id."""
    opened_at = opened_at or tx.now
    session_id: int = tx.conn.execute(
        "INSERT INTO table_session (table_id, state, guest_count, opened_at, last_activity_at, joined_to)"
        " VALUES (?, 'active', ?, ?, ?, ?) RETURNING id",
        (table_id, guest_count, opened_at, last_active or opened_at, joined_to),
    ).fetchone()[0]
    tx.conn.execute("UPDATE dining_table SET seated_at = ? WHERE id = ?", (opened_at, table_id))
    return session_id


def _set_guest_count(tx: UnitOfWork, table_id: int, guest_count: Any) -> Result:
    valid_guest_count(guest_count)
    row, tables = party_of(tx, table_id)
    tx.conn.execute("UPDATE table_session SET guest_count = ? WHERE id = ?", (guest_count, row["party_id"]))
    return tx.changed("set_guest_count", *tables)


def _set_note(tx: UnitOfWork, table_id: int, note: Any) -> Result:
    kept = valid_note(note)
    row, tables = party_of(tx, table_id)
    tx.conn.execute("UPDATE table_session SET note = ? WHERE id = ?", (kept, row["party_id"]))
    return tx.changed("set_note", *tables)


def _join(tx: UnitOfWork, table_id: int, with_table_id: int) -> Result:
    if table_id == with_table_id:
        raise ServiceError("same_table", "A table cannot be joined to itself.")
    row, tables = party_of(tx, table_id)
    other = tx.row(with_table_id)
    if table_status(other) != "free":
        raise ServiceError("target_unavailable", f"Table {other['label']} is {table_status(other)}.")
    seat(tx, with_table_id, None, joined_to=row["party_id"])
    return tx.changed("join_tables", *tables, with_table_id)


def _split(tx: UnitOfWork, table_id: int) -> Result:
    row, tables = party_of(tx, table_id)
    if row["party_table_id"] == table_id:
        raise ServiceError("not_joined", f"Table {row['label']} is the party's own table; close or move it instead.")
    tx.conn.execute("DELETE FROM table_session WHERE table_id = ? AND state = 'active'", (table_id,))
    gather_calls(tx, [table_id], row["party_table_id"])
    return tx.changed("split_table", table_id, *tables)


def gather_calls(tx: UnitOfWork, from_tables: list[int], to_table_id: int) -> None:
    """The party's pending calls go with it to `to_table_id`; one already pending there of the same kind
    stands for both."""
    marks = ",".join("?" * len(from_tables))
    tx.conn.execute(
        f"UPDATE OR IGNORE waiter_request SET table_id = ? WHERE table_id IN ({marks}) AND resolved_at IS NULL",
        (to_table_id, *from_tables))
    resolve_calls(tx, [table for table in from_tables if table != to_table_id])


def resolve_calls(tx: UnitOfWork, tables: list[int]) -> None:
    """The pending calls at these tables end with the party there ('table closed')."""
    marks = ",".join("?" * len(tables))
    tx.conn.execute(
        f"UPDATE waiter_request SET resolved_at = ?, resolved_by = 'table closed'"
        f" WHERE table_id IN ({marks}) AND resolved_at IS NULL",
        (tx.now, *tables))


def _close(tx: UnitOfWork, table_id: int) -> Result:
    row = tx.row(table_id)
    if row["party_id"] is None:
        raise ServiceError("no_active_session", f"Table {row['label']} has no guests to close.")
    tables = tx.party(row)
    tx.conn.execute(
        "UPDATE table_session SET state = 'closed', closed_at = ? WHERE (id = ? OR joined_to = ?) AND state = 'active'",
        (tx.now, row["party_id"], row["party_id"]),
    )
    resolve_calls(tx, tables)
    return tx.changed("close_table", table_id, *tables)


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
    # the party closed here, and every table it sat at when it was closed (one close closes them all at
    # once), but for a joined table removed from the floor since: the party comes back without it
    sessions = tx.conn.execute(
        "SELECT s.id, s.table_id, s.joined_to, s.closed_at, t.removed_at"
        " FROM table_session AS party JOIN table_session AS s"
        " ON (s.id = party.id OR s.joined_to = party.id) AND s.state = 'closed' AND s.closed_at = party.closed_at"
        " JOIN dining_table AS t ON t.id = s.table_id"
        " WHERE party.id = (SELECT coalesce(joined_to, id) FROM table_session WHERE id = ?)"
        " ORDER BY s.joined_to IS NOT NULL, s.id",
        (row["last_party_id"],),
    ).fetchall()
    party = sessions[0]
    if party["joined_to"] is not None or party["removed_at"] is not None:
        raise ServiceError("no_session_to_restore", "The party's own table has been removed from the floor.")
    sessions = [s for s in sessions if s["removed_at"] is None]
    tables = [table_id, *(s["table_id"] for s in sessions if s["table_id"] != table_id)]
    for other_id in tables[1:]:
        other = tx.row(other_id)
        if table_status(other) == "occupied" or (other["seated_at"] or "") > party["closed_at"]:
            raise ServiceError("table_occupied", f"Table {other['label']}, where the party also sat, "
                               "has had guests since.")
        if table_status(other) == "disabled":
            raise ServiceError("table_disabled", f"Table {other['label']}, where the party also sat, is disabled.")
    marks = ",".join("?" * len(sessions))
    tx.conn.execute(f"UPDATE table_session SET state = 'active', closed_at = NULL WHERE id IN ({marks})",
                    [s["id"] for s in sessions])
    tx.conn.execute("UPDATE table_session SET last_activity_at = ?, restores = restores + 1 WHERE id = ?",
                    (tx.now, party["id"]))
    tx.conn.execute(  # the party never left these tables: the stints its close ended go on
        f"UPDATE stint SET ended_ms = NULL WHERE party_id = ? AND ended_ms = ? AND table_id IN ({marks})",
        [party["id"], milliseconds(party["closed_at"]), *(s["table_id"] for s in sessions)])
    return tx.changed("restore_table", *tables)


def _move(tx: UnitOfWork, from_table_id: int, to_table_id: int) -> Result:
    if from_table_id == to_table_id:
        raise ServiceError("same_table", "A party cannot move to the table it is already at.")
    source = tx.row(from_table_id, missing="source_table_not_found")
    target = tx.row(to_table_id, missing="target_table_not_found")
    if source["party_id"] is None:
        raise ServiceError("no_session_to_move", f"Table {source['label']} has no guests to move.")
    if table_status(target) != "free":
        raise ServiceError("target_unavailable", f"Table {target['label']} is {table_status(target)}.")
    tables = tx.party(source)
    party_id = source["party_id"]
    tx.conn.execute("DELETE FROM table_session WHERE joined_to = ? AND state = 'active'", (party_id,))
    tx.conn.execute("UPDATE table_session SET table_id = ? WHERE id = ?", (to_table_id, party_id))
    gather_calls(tx, tables, to_table_id)
    tx.conn.execute("UPDATE dining_table SET seated_at = ? WHERE id = ?", (tx.now, to_table_id))
    return tx.changed("move_table", from_table_id, *tables, to_table_id)
