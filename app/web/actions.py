"""Every change a dashboard, a script or a no-script form can ask for, declared once.

The socket (`{"action": name, ...}`) and HTTP (`POST path`) both read this table: which
service method does the change, which whole-number ids it needs, which other fields it
takes, and how a success is worded for a person. A field the caller leaves out reaches
the service as None; the service checks every value it is given (a guest count, a note,
a label) and answers with its own error code, so both roads refuse the same input alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..services.core import Actor, Result
from ..typedefs import floor_key, tables_key, waiters_key

Service = web.AppKey[Any]


@dataclass(frozen=True)
class Action:
    name: str  # the socket's action, and the HTTP route's name
    service: Service  # the application key of the service doing it
    method: str  # its method: method(actor, *ids, *values)
    ids: tuple[str, ...]  # whole numbers it must have, in order; over HTTP the first is the path's {id}
    path: str  # POST path of the HTTP road
    done: str  # the success as a person reads it: {first} and {last} are the first and last changed tables' labels
    values: tuple[str, ...] = ()  # other fields, passed as given
    numbers: tuple[str, ...] = ()  # which of the values a form sends as text for a whole number
    legacy_verb: str | None = None  # also answers, deprecated, at /admin/table/{id}/<verb> (the old dashboards')

    def operation(self, app: web.Application) -> Callable[..., Awaitable[Result]]:
        method: Callable[..., Awaitable[Result]] = getattr(app[self.service], self.method)
        return method

    async def perform(self, app: web.Application, actor: Actor, fields: dict[str, Any]) -> Result:
        """Run the change with the caller's fields (ids already checked)."""
        return await self.operation(app)(
            actor, *(fields[name] for name in self.ids), *(fields.get(name) for name in self.values))


TABLE = "/admin/tables/{id}"
ACTIONS: dict[str, Action] = {action.name: action for action in [
    Action("seat_table", tables_key, "seat_table", ("table_id",), f"{TABLE}/seat", "Table {first} seated.",
           values=("guest_count",), numbers=("guest_count",)),
    Action("set_guest_count", tables_key, "set_guest_count", ("table_id",), f"{TABLE}/guests",
           "Table {first}: party size changed.", values=("guest_count",), numbers=("guest_count",)),
    Action("set_note", tables_key, "set_note", ("table_id",), f"{TABLE}/note", "Table {first}: note saved.",
           values=("note",)),
    Action("join_tables", tables_key, "join_tables", ("table_id", "with_table_id"), f"{TABLE}/join",
           "Table {last} joined to table {first}."),
    Action("split_table", tables_key, "split_table", ("table_id",), f"{TABLE}/split", "Table {first} released."),
    Action("close_table", tables_key, "close_table", ("table_id",), f"{TABLE}/close", "Table {first} closed.",
           legacy_verb="close"),
    Action("disable_table", tables_key, "disable_table", ("table_id",), f"{TABLE}/disable", "Table {first} disabled.",
           legacy_verb="disable"),
    Action("enable_table", tables_key, "enable_table", ("table_id",), f"{TABLE}/enable", "Table {first} enabled.",
           legacy_verb="enable"),
    Action("restore_table", tables_key, "restore_table", ("table_id",), f"{TABLE}/restore", "Table {first} restored.",
           legacy_verb="restore"),
    Action("move_table", tables_key, "move_table", ("from_table_id", "to_table_id"), f"{TABLE}/move",
           "Party moved from table {first} to table {last}.", legacy_verb="move"),
    Action("add_table", floor_key, "add_table", (), "/admin/tables", "Table {first} added.",
           values=("label", "seats", "area"), numbers=("seats",)),
    Action("set_table", floor_key, "set_table", ("table_id",), f"{TABLE}/set", "Table {first} saved.",
           values=("label", "seats", "area", "position"), numbers=("seats", "position")),
    Action("remove_table", floor_key, "remove_table", ("table_id",), f"{TABLE}/remove", "Table {first} removed."),
    Action("resolve_waiter_request", waiters_key, "resolve", ("request_id",), "/admin/request/{id}/resolve",
           "Table {first}: seen to."),
]}


def worded(action: Action, result: Result) -> str:
    """A success as a person reads it, naming the changed tables."""
    labels = [table["number"] for table in result.tables]
    return action.done.format(first=labels[0], last=labels[-1])
