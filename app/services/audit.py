"""The audit log: the durable record of every change, and the source of truth for versions.

Writing it, reading it and replaying it live here and nowhere else. A change touching N
tables adds N to the restaurant's version in the same transaction as the change, and its
event records the tables after it: they are numbered `version - N + 1 .. version`, in order
(`numbered`). Every in-memory buffer of recent updates (the hub's) is a cache of this log.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from .table_view import Removed, Table

if TYPE_CHECKING:  # core builds on this module, not the other way round
    from .core import Actor

EVENTS_AT_MOST = 500  # one page of the events feed


class Event(TypedDict):
    """A change as the events feed shows it."""

    version: int
    action: str
    actor: str
    at: str
    tables: list[Table | Removed]
    items: NotRequired[list[dict[str, Any]]]  # a bulk's: each item asked for, and how it went


@dataclass(frozen=True)
class TableUpdate:
    """One changed table as a dashboard shows it, numbered with the restaurant's version."""

    version: int
    table: Table | Removed


def numbered(version: int, tables: Sequence[Table | Removed]) -> list[TableUpdate]:
    """The updates of a change that brought the restaurant to `version`: one version per table, in order."""
    first = version - len(tables) + 1
    return [TableUpdate(first + offset, table) for offset, table in enumerate(tables)]


def record_change(
    conn: sqlite3.Connection, actor: Actor, action: str, at: str, before: list[Table | None],
    after: list[Table | Removed], items: list[dict[str, Any]] | None = None,
) -> tuple[int, list[TableUpdate]]:
    """Bump the restaurant's version once per table in `after` and write the event: the new version, the updates.

    A bulk's event also lists its `items`, what was asked and how each went.
    """
    (version,) = conn.execute(
        "UPDATE restaurant SET version = version + ? WHERE id = ? RETURNING version",
        (len(after), actor.restaurant_id),
    ).fetchone()
    record_event(conn, actor, action, at, version, [table["id"] for table in after], before, after, items)
    return version, numbered(version, after)


def record_event(
    conn: sqlite3.Connection, actor: Actor, action: str, at: str, version: int, table_ids: list[int],
    before: Any, after: Any, items: list[dict[str, Any]] | None = None,
) -> None:
    """Write one event. Changes that touch no table (keys, a restaurant's settings) keep the version as it is."""
    conn.execute(
        "INSERT INTO audit_event (restaurant_id, version, action, table_ids, actor, at, before, after, items)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (actor.restaurant_id, version, action, json.dumps(table_ids), actor.name, at,
         json.dumps(before), json.dumps(after), None if items is None else json.dumps(items)),
    )


def _table_events(conn: sqlite3.Connection, restaurant_id: int, after: int, limit: int = -1) -> sqlite3.Cursor:
    return conn.execute(
        "SELECT version, action, actor, at, after, items FROM audit_event"
        " WHERE restaurant_id = ? AND version > ? AND table_ids != '[]' ORDER BY version LIMIT ?",
        (restaurant_id, after, limit),
    )


def updates_after(conn: sqlite3.Connection, restaurant_id: int, after: int, events: int = -1) -> list[TableUpdate]:
    """Every table update of the restaurant numbered above `after`, in order: a replay from the log (of its first
    `events` changes only, when given)."""
    updates: list[TableUpdate] = []
    for row in _table_events(conn, restaurant_id, after, events):
        updates.extend(numbered(row["version"], json.loads(row["after"])))
    return [update for update in updates if update.version > after]


def replay_after(conn: sqlite3.Connection, restaurant_id: int, since: int, at_most: int) -> list[TableUpdate] | None:
    """The table updates numbered above `since`, if at most `at_most` of them; None if more, or if `since` is
    ahead of the log (a client of another database): then only a snapshot will do."""
    (version,) = conn.execute("SELECT version FROM restaurant WHERE id = ?", (restaurant_id,)).fetchone()
    if since > version:
        return None
    updates = updates_after(conn, restaurant_id, since, at_most + 1)  # a change numbers one update or more
    return updates if len(updates) <= at_most else None


def events_after(conn: sqlite3.Connection, restaurant_id: int, since: int) -> tuple[int, list[Event]]:
    """The restaurant's version and up to EVENTS_AT_MOST table changes after `since`, oldest first."""
    (version,) = conn.execute("SELECT version FROM restaurant WHERE id = ?", (restaurant_id,)).fetchone()
    events: list[Event] = []
    for row in _table_events(conn, restaurant_id, since, EVENTS_AT_MOST):
        event: Event = {"version": row["version"], "action": row["action"], "actor": row["actor"], "at": row["at"],
                        "tables": json.loads(row["after"])}
        if row["items"] is not None:
            event["items"] = json.loads(row["items"])
        events.append(event)
    return version, events


def last_event(conn: sqlite3.Connection) -> int:
    """The id of the newest event in the log (0 for none): where reading what comes next starts."""
    return conn.execute("SELECT coalesce(max(id), 0) FROM audit_event").fetchone()[0]


def restaurants_configured_after(conn: sqlite3.Connection, event_id: int) -> tuple[int, list[dict[str, Any]]]:
    """The newest event's id, and each restaurant as configured by the `configure_restaurant` events after
    `event_id`, oldest first (a rename, a restaurant's own windows: changes that number no table)."""
    newest = last_event(conn)  # first: an event written meanwhile is left for the next read
    rows = conn.execute(
        "SELECT after FROM audit_event WHERE id > ? AND id <= ? AND action = 'configure_restaurant' ORDER BY id",
        (event_id, newest))
    return newest, [json.loads(row["after"]) for row in rows]


def current_versions(conn: sqlite3.Connection, restaurant_ids: list[int]) -> dict[int, int]:
    """Each restaurant's version: the number of its last table update in the log."""
    placeholders = ",".join("?" * len(restaurant_ids))
    rows = conn.execute(f"SELECT id, version FROM restaurant WHERE id IN ({placeholders})", restaurant_ids)
    return dict(rows.fetchall())
