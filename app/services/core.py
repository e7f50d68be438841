"""What every service shares: who acts, what an operation returns, and the change record.

A change is written with its audit event and the restaurant's new version in the
same transaction as the change itself, by `record_change`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    """Who performs an operation, and the one restaurant it may touch."""

    restaurant_id: int
    name: str  # an API key's label, "cli" or "guest"


@dataclass(frozen=True)
class TableUpdate:
    """One changed table as a dashboard shows it, numbered with the restaurant's version."""

    version: int
    table: dict[str, Any]


@dataclass(frozen=True)
class Result:
    """The outcome of an operation: `ok` with its updates and the new version, or an error code."""

    ok: bool
    updates: tuple[TableUpdate, ...] = ()
    version: int | None = None
    code: str | None = None
    detail: str | None = None
    # messages for every dashboard besides the table updates (a guest's call, its resolution)
    announcements: tuple[dict[str, Any], ...] = ()
    restaurant_id: int | None = None  # whose dashboards hear of it

    @classmethod
    def error(cls, code: str, detail: str) -> Result:
        return cls(ok=False, code=code, detail=detail)

    @property
    def tables(self) -> list[dict[str, Any]]:
        return [update.table for update in self.updates]


class ServiceError(Exception):
    """A business rule said no. Raised inside a transaction so it rolls back; callers see a Result."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def record_change(
    conn: sqlite3.Connection,
    actor: Actor,
    action: str,
    at: str,
    before: list[dict[str, Any] | None],
    after: list[dict[str, Any]],
) -> Result:
    """Bump the restaurant's version once per table in `after`, write the audit event, return the Result."""
    (version,) = conn.execute(
        "UPDATE restaurant SET version = version + ? WHERE id = ? RETURNING version",
        (len(after), actor.restaurant_id),
    ).fetchone()
    write_audit(conn, actor, action, at, version, [table["id"] for table in after], before, after)
    first = version - len(after) + 1
    updates = tuple(TableUpdate(first + offset, table) for offset, table in enumerate(after))
    return Result(ok=True, updates=updates, version=version, restaurant_id=actor.restaurant_id)


def write_audit(
    conn: sqlite3.Connection,
    actor: Actor,
    action: str,
    at: str,
    version: int,
    table_ids: list[int],
    before: Any,
    after: Any,
) -> None:
    conn.execute(
        "INSERT INTO audit_event (restaurant_id, version, action, table_ids, actor, at, before, after)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (actor.restaurant_id, version, action, json.dumps(table_ids), actor.name, at,
         json.dumps(before), json.dumps(after)),
    )
