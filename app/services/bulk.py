"""Several table changes in one transaction: a bulk.

A bulk runs the calls of other services (each a `Call`, see core.py) one after the other in
one write transaction, on one unit of work that collects what they change instead of
recording each: the bulk is one audit event listing every item, and each table it changed
is one update with its final state, numbered in the order the tables were first changed.

Atomic (the default), the first item that fails rolls the whole bulk back (`bulk_failed`,
naming that item). Not atomic, each item stands alone in a savepoint of its own: a failed
item is rolled back and reported, and the others stand.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .core import MANAGE_TABLES, Actor, Call, Result, Service, ServiceError, UnitOfWork, refusal

BULK_AT_MOST = 100  # items in one bulk: what bounds a bulk's work (the rate limit counts it as one message)
OK: dict[str, Any] = {"ok": True}


@dataclass(frozen=True)
class Item:
    """One item of a bulk: what was asked for (as the caller sent it, for the audit log), and its call."""

    asked: dict[str, Any]
    call: Call


class BulkService(Service):
    """Runs other services' calls together: admins only (End of service is not a waiter's to call)."""

    needs = MANAGE_TABLES

    def bulk(self, actor: Actor, items: Sequence[Item], atomic: bool = True) -> Call:
        """The items in one transaction: all or nothing when `atomic`, otherwise each on its own.

        Each item's call must be the same actor's. The result's `outcomes` has one entry per item.
        """
        if not 1 <= len(items) <= BULK_AT_MOST:
            raise ValueError(f"a bulk has 1 to {BULK_AT_MOST} items, not {len(items)}")
        if any(item.call.actor != actor for item in items):
            raise ValueError("every item of a bulk is its actor's")
        return self.call(actor, _bulk, list(items), atomic)

    def unit(self, conn: sqlite3.Connection, actor: Actor) -> BulkUnit:
        return BulkUnit(conn, actor, self.clock(), self.settings.restore_window_minutes)


class BulkUnit(UnitOfWork):
    """A unit of work that keeps the tables each item changes, to record them all once at the end."""

    def __init__(self, conn: sqlite3.Connection, actor: Actor, now: str, default_window: int) -> None:
        super().__init__(conn, actor, now, default_window)
        self.touched: list[int] = []

    def changed(self, action: str, *table_ids: int) -> Result:
        self.touched.extend(table_ids)
        return Result(ok=True, restaurant_id=self.actor.restaurant_id)


def _bulk(tx: BulkUnit, items: list[Item], atomic: bool) -> Result:
    outcomes: list[dict[str, Any]] = []
    announcements: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        touched, removed = len(tx.touched), set(tx.removed)
        tx.conn.execute("SAVEPOINT item")
        try:
            result = _item(tx, item.call)
        except ServiceError as error:
            tx.conn.execute("ROLLBACK TO item")
            tx.conn.execute("RELEASE item")
            if atomic:
                raise ServiceError("bulk_failed", f"Item {index + 1} ({item.asked['action']}): {error.detail} "
                                   "Nothing was changed.",
                                   {"index": index, "code": error.code, "detail": error.detail}) from None
            del tx.touched[touched:]
            tx.removed = removed
            outcomes.append({"ok": False, "code": error.code, "detail": error.detail})
            continue
        tx.conn.execute("RELEASE item")
        outcomes.append(OK)
        announcements.extend(result.announcements)
    asked = [{**item.asked, **outcome} for item, outcome in zip(items, outcomes, strict=True)]
    return replace(tx.record("bulk", tx.touched, asked), outcomes=tuple(outcomes), announcements=tuple(announcements))


def _item(tx: BulkUnit, call: Call) -> Result:
    """One item's operation on the bulk's unit of work, if the actor may do what its service does."""
    if not tx.actor.may(call.needs):
        raise ServiceError("forbidden", refusal(tx.actor, call.needs))
    return call.operation(tx, *call.args)
