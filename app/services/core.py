"""What every service shares: who acts, what an operation returns, and the unit of work.

An operation is a plain function of a `UnitOfWork` (one write transaction, the actor, the
moment it runs). It reads tables through `UnitOfWork.row`, changes them, and ends with
`UnitOfWork.changed`, which writes the audit event and the restaurant's new version in the
same transaction. A business rule that says no raises `ServiceError`: the transaction rolls
back and `Service.attempt` hands the caller a `Result.error` instead.

A service's method does not run its operation: it returns a `Call`. Awaited, the call runs
alone, in a transaction of its own; handed to a bulk (bulk.py) with others, it runs with them
in one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from ..db import Database, milliseconds, utc_now
from ..settings import Settings
from .audit import TableUpdate, record_change
from .table_view import Removed, RestoreWindow, Table, restore_window, table_dict, table_row

# What each role may do (the README's "Who may do what" is this table). A service says what its
# operations need (`Service.needs`, or an operation's own); the service refuses an actor whose role
# does not have it, whichever road the operation came by.
SERVE = "serve"  # seat, close, move, restore, join and split, the party's size and note; calls claimed and seen to
MANAGE_TABLES = "manage_tables"  # disable and enable tables; several changes at once (a bulk: End of service)
EDIT_FLOOR = "edit_floor"  # add, rename, resize, reorder and remove tables; new QR codes; waiters' sections
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({SERVE, MANAGE_TABLES, EDIT_FLOOR}),
    "waiter": frozenset({SERVE}),
    "viewer": frozenset(),
    "guest": frozenset(),  # a guest's calls are their own road (WaiterService.request), not a permission
}
REFUSALS = {
    SERVE: "This key may watch the tables but not change them.",
    MANAGE_TABLES: "Only an admin key may take tables out of service or change several at once.",
    EDIT_FLOOR: "Only an admin key may edit the floor.",
}


def refusal(actor: Actor, needs: str) -> str:
    """Why the actor may not do what needs this: a key that may change nothing is told just that."""
    return REFUSALS[needs if actor.may(SERVE) else SERVE]


@dataclass(frozen=True)
class Actor:
    """Who performs an operation, with which role, and the one restaurant it may touch."""

    restaurant_id: int
    name: str  # an API key's label, "cli" or "guest"
    role: str  # admin, waiter, viewer or guest (see PERMISSIONS)
    key_id: int | None = None  # the key it acts with (None for the command line and guests)

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())


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
    # a bulk's: each item's outcome ({"ok": true} or its code and detail), and which item failed a whole one
    outcomes: tuple[dict[str, Any], ...] = ()
    failed: dict[str, Any] | None = None

    @classmethod
    def error(cls, code: str, detail: str, failed: dict[str, Any] | None = None) -> Result:
        return cls(ok=False, code=code, detail=detail, failed=failed)

    @property
    def tables(self) -> list[Table | Removed]:
        return [update.table for update in self.updates]


class ServiceError(Exception):
    """A business rule said no. Raised inside a transaction so it rolls back; callers see a Result."""

    def __init__(self, code: str, detail: str, failed: dict[str, Any] | None = None) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail
        self.failed = failed  # a whole bulk's refusal names the item that failed it


class UnitOfWork:
    """One operation's transaction: the connection, the actor, the time, and the tables read before."""

    def __init__(self, conn: sqlite3.Connection, actor: Actor, now: str, default_window: int) -> None:
        self.conn = conn
        self.actor = actor
        self.now = now
        self.window = restore_window(conn, actor.restaurant_id, default_window, now)
        self.before: dict[int, Table] = {}
        self.removed: set[int] = set()

    def row(self, table_id: int, missing: str = "table_not_found") -> sqlite3.Row:
        """The table's current row; first reads are kept as the audit's 'before'."""
        row = table_row(self.conn, self.actor.restaurant_id, table_id)
        if row is None:
            raise ServiceError(missing, f"There is no table {table_id}.")
        self.before.setdefault(table_id, table_dict(row, self.window))
        return row

    def party(self, row: sqlite3.Row) -> list[int]:
        """The ids of every table the row's party sits at (its own first), each read as 'before'."""
        ids = [table["id"] for table in json.loads(row["party_tables"])]
        for table_id in ids:
            if table_id not in self.before:
                self.row(table_id)
        return ids

    def remove(self, table_id: int) -> None:
        """The table leaves the floor: its history stays, and the change records it as removed."""
        self.conn.execute("UPDATE dining_table SET removed_at = ? WHERE id = ?", (self.now, table_id))
        self.removed.add(table_id)

    def changed(self, action: str, *table_ids: int) -> Result:
        """Record the change to these tables (audit event, version) and return it as a Result.

        Each table is one update, in the order first named: a table named again (the one acted on,
        then its whole party) counts once.
        """
        return self.record(action, table_ids)

    def record(self, action: str, table_ids: Sequence[int], items: list[dict[str, Any]] | None = None) -> Result:
        """Write the audit event (with a bulk's `items`) and the new version: each table once, as it is now."""
        table_ids = tuple(dict.fromkeys(table_ids))
        before = [self.before.get(table_id) for table_id in table_ids]
        after = [self._after(table_id) for table_id in table_ids]
        self._stints(before, after)
        version, updates = record_change(self.conn, self.actor, action, self.now, before, after, items)
        return Result(ok=True, updates=tuple(updates), version=version, restaurant_id=self.actor.restaurant_id)

    def _stints(self, before: list[Table | None], after: list[Table | Removed]) -> None:
        """Each table whose party changed ends the old party's stint there and starts the new one's (reports.py).

        A party's first stint starts when it sat down (the demo seats parties some time ago); any later one, as
        it moves or is joined to a table, now. A restore has opened again the stints its close ended.
        """
        for old, new in zip(before, after, strict=True):
            was = old["session"]["id"] if old is not None and old["session"] is not None else None
            party = None if "removed" in new else new["session"]
            if was == (party["id"] if party else None):
                continue
            now = milliseconds(self.now)
            if was is not None:
                self.conn.execute("UPDATE stint SET ended_ms = ? WHERE table_id = ? AND ended_ms IS NULL",
                                  (now, new["id"]))
            if party:
                self.conn.execute(
                    "INSERT INTO stint (restaurant_id, party_id, table_id, started_ms)"
                    " SELECT :restaurant, :party, :table,"
                    " CASE WHEN EXISTS (SELECT 1 FROM stint WHERE party_id = :party) THEN :now ELSE :opened END"
                    " WHERE NOT EXISTS (SELECT 1 FROM stint WHERE table_id = :table AND ended_ms IS NULL)",
                    {"restaurant": self.actor.restaurant_id, "party": party["id"], "table": new["id"],
                     "now": now, "opened": min(milliseconds(party["opened_at"]), now)})

    def _after(self, table_id: int) -> Table | Removed:
        if table_id in self.removed:
            return {"id": table_id, "number": self.before[table_id]["number"], "removed": True}
        return table_dict(self.row(table_id), self.window)


@dataclass(frozen=True, eq=False)  # each call is itself: asyncio.gather awaits equal awaitables only once
class Call:
    """An operation asked for by an actor, not yet run: `await` runs it in a transaction of its own."""

    service: Service
    actor: Actor
    operation: Callable[..., Result]
    args: tuple[Any, ...]
    needs: str  # the permission it asks of its actor

    def __await__(self) -> Generator[Any, None, Result]:
        return self.service.run(self).__await__()


class Service:
    """The plumbing every service shares: the database, the settings, the clock, and running an operation.

    `needs` is the permission its operations ask of their actor, unless an operation says otherwise.
    """

    needs = SERVE

    def __init__(self, db: Database, settings: Settings, clock: Callable[[], str] = utc_now) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    def unit(self, conn: sqlite3.Connection, actor: Actor) -> UnitOfWork:
        """A unit of work on this write transaction, as of now."""
        return UnitOfWork(conn, actor, self.clock(), self.settings.restore_window_minutes)

    def call(self, actor: Actor, operation: Callable[..., Result], *args: Any, needs: str | None = None) -> Call:
        """`operation(unit, *args)` for this actor, to await or to hand to a bulk; it `needs` the service's
        permission unless said otherwise."""
        return Call(self, actor, operation, args, needs or self.needs)

    async def run(self, call: Call) -> Result:
        """The call in one write transaction; a business error comes back as a Result.

        An actor whose role lacks the call's permission is refused (`forbidden`) before any transaction.
        """
        if not call.actor.may(call.needs):
            return Result.error("forbidden", refusal(call.actor, call.needs))
        return await self.attempt(self._in_unit, call)

    async def attempt(self, write: Callable[..., Result], *args: Any) -> Result:
        """`write(conn, *args)` in one write transaction (for operations that find their actor inside it)."""
        try:
            return await self.db.write(write, *args)
        except ServiceError as error:
            return Result.error(error.code, error.detail, error.failed)

    def _in_unit(self, conn: sqlite3.Connection, call: Call) -> Result:
        return call.operation(self.unit(conn, call.actor), *call.args)

    def restore_window(self, conn: sqlite3.Connection, restaurant_id: int) -> RestoreWindow:
        """The restaurant's restore window as of now, for reads outside a unit of work."""
        return restore_window(conn, restaurant_id, self.settings.restore_window_minutes, self.clock())
