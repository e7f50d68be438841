"""Waiters' sections: which waiter serves which areas and tables.

An admin gives a waiter, by name, whole areas and single tables; a table's own assignment
wins over its area's. Each area and each table is in at most one section, so giving it to a
waiter takes it from whoever had it. A waiter is a name, not a key: a waiter whose phone is
replaced (a new key, the same name) keeps the section. Every table whose waiter changes is
an update, pushed like any other change.
"""

from __future__ import annotations

import sqlite3
from typing import Any, TypedDict

from .core import EDIT_FLOOR, Actor, Call, Result, Service, ServiceError, UnitOfWork
from .table_view import TableRef, all_tables


class Section(TypedDict):
    waiter: str
    areas: list[str]
    tables: list[TableRef]  # single tables, beside the areas


class SectionService(Service):
    needs = EDIT_FLOOR

    async def sections(self, restaurant_id: int) -> list[Section]:
        """Each waiter's section, by name, and the restaurant's waiters who have none. A waiter whose keys were all
        revoked keeps a section until it is given to someone else or cleared."""
        return await self.db.read(_sections, restaurant_id)

    def set_section(self, actor: Actor, waiter: Any, areas: Any = (), table_ids: Any = ()) -> Call:
        """The waiter's section becomes exactly these areas and tables (none: the waiter has no section)."""
        return self.call(actor, _set_section, waiter, areas, table_ids)


def waiters(conn: sqlite3.Connection, restaurant_id: int) -> list[str]:
    """The names of the restaurant's waiters: its live waiter keys'."""
    rows = conn.execute("SELECT DISTINCT name FROM api_key WHERE restaurant_id = ? AND role = 'waiter'"
                        " AND revoked_at IS NULL ORDER BY name", (restaurant_id,))
    return [name for (name,) in rows]


def _sections(conn: sqlite3.Connection, restaurant_id: int) -> list[Section]:
    found: dict[str, Section] = {name: {"waiter": name, "areas": [], "tables": []}
                                 for name in waiters(conn, restaurant_id)}
    rows = conn.execute(
        "SELECT s.waiter, s.area, t.id, t.label FROM section AS s LEFT JOIN dining_table AS t ON t.id = s.table_id"
        " WHERE s.restaurant_id = ? AND (s.table_id IS NULL OR t.removed_at IS NULL)"
        " ORDER BY s.waiter, s.area, t.sort_order, t.id", (restaurant_id,))
    for row in rows:
        section = found.setdefault(row["waiter"], {"waiter": row["waiter"], "areas": [], "tables": []})
        if row["area"] is not None:
            section["areas"].append(row["area"])
        else:
            section["tables"].append({"id": row["id"], "number": row["label"]})
    return sorted(found.values(), key=lambda section: section["waiter"])


def _set_section(tx: UnitOfWork, waiter: Any, areas: Any, table_ids: Any) -> Result:
    restaurant_id = tx.actor.restaurant_id
    known = set(waiters(tx.conn, restaurant_id)) | {name for (name,) in tx.conn.execute(
        "SELECT waiter FROM section WHERE restaurant_id = ?", (restaurant_id,))}  # one whose keys are all revoked
    if not isinstance(waiter, str) or waiter.strip() not in known:
        raise ServiceError("waiter_not_found", f"There is no waiter named {str(waiter)[:40]!r}: a waiter is the "
                           "name of a waiter key (run.py key add SLUG --role waiter --name NAME).")
    waiter = waiter.strip()
    if isinstance(areas, str) or not all(isinstance(area, str) for area in areas):
        raise ServiceError("invalid_area", "Areas are a list of area names.")
    if isinstance(table_ids, str) or not all(type(table_id) is int and 0 < table_id < 2**62 for table_id in table_ids):
        raise ServiceError("invalid_action", "Tables are a list of table ids.")
    before = {table["id"]: table for table in all_tables(tx.conn, restaurant_id, tx.window)}
    on_the_floor = {table["area"] for table in before.values()}
    areas = list(dict.fromkeys(area.strip() for area in areas))
    for area in areas:
        if area not in on_the_floor:
            raise ServiceError("area_not_found", f"There is no area {area[:40]!r} (areas: "
                               f"{', '.join(sorted(on_the_floor)) or 'none yet'}).")
    for table_id in table_ids:
        tx.row(table_id)
    tx.before.update(before)
    tx.conn.execute("DELETE FROM section WHERE restaurant_id = ? AND waiter = ?", (restaurant_id, waiter))
    for area in areas:
        tx.conn.execute("DELETE FROM section WHERE restaurant_id = ? AND area = ?", (restaurant_id, area))
        tx.conn.execute("INSERT INTO section (restaurant_id, waiter, area) VALUES (?, ?, ?)",
                        (restaurant_id, waiter, area))
    for table_id in dict.fromkeys(table_ids):
        tx.conn.execute("DELETE FROM section WHERE table_id = ?", (table_id,))
        tx.conn.execute("INSERT INTO section (restaurant_id, waiter, table_id) VALUES (?, ?, ?)",
                        (restaurant_id, waiter, table_id))
    after = all_tables(tx.conn, restaurant_id, tx.window)
    return tx.changed("set_section", *(table["id"] for table in after
                                       if table["waiter"] != before[table["id"]]["waiter"]))
