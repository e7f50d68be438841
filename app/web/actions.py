"""Every change a dashboard, a script or a no-script form can ask for, declared once.

The socket (`{"action": name, ...}`) and HTTP (`POST path`) both read this table: which
service method does the change, which whole-number ids it needs, which other fields it
takes, and how a success is worded for a person. A field the caller leaves out reaches
the service as None; the service checks every value it is given (a guest count, a note,
a label) and answers with its own error code, so both roads refuse the same input alike.

A bulk (`{"action": "bulk", "actions": [...]}`) is a list of these; the socket, HTTP
(`POST /admin/api/bulk`) and the command line all read it with `parse_bulk`.

Both roads count here what they are asked for (maitre_actions_total by action and outcome,
and the time to commit): the change's result in `perform` and `perform_bulk`, a request
refused before it reached the service (credentials, role, rate, input) with `refused`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .. import metrics
from ..protocol import is_int
from ..services.bulk import BULK_AT_MOST, Item
from ..services.core import Actor, Call, Result
from ..typedefs import bulk_key, floor_key, tables_key, waiters_key
from .access import Refused

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

    def call(self, app: web.Application, actor: Actor, fields: dict[str, Any]) -> Call:
        """The change with the caller's fields (ids already checked), to run alone or in a bulk."""
        method: Callable[..., Call] = getattr(app[self.service], self.method)
        return method(actor, *(fields[name] for name in self.ids), *(fields.get(name) for name in self.values))

    async def perform(self, app: web.Application, actor: Actor, fields: dict[str, Any]) -> Result:
        """Run the change with the caller's fields (ids already checked), counted."""
        result = await counted(self.name, self.call(app, actor, fields))
        if result.ok and self.name in CALL_WAITS:
            await observe_wait(app, self.name, fields["request_id"])
        return result

    def check_ids(self, fields: dict[str, Any]) -> str | None:
        """Why the fields will not do for this action (its ids are not whole numbers), or None."""
        if all(is_int(fields.get(name)) for name in self.ids):
            return None
        return f"{self.name} needs {' and '.join(self.ids)} as whole numbers."


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
    Action("claim_waiter_request", waiters_key, "claim", ("request_id",), "/admin/request/{id}/claim",
           "Table {first}: you are on your way."),
    Action("resolve_waiter_request", waiters_key, "resolve", ("request_id",), "/admin/request/{id}/resolve",
           "Table {first}: seen to."),
]}


CALL_WAITS = ("claim_waiter_request", "resolve_waiter_request")


async def observe_wait(app: web.Application, name: str, request_id: int) -> None:
    """A guest's call claimed or resolved: how long after it was made (a read, once the change is committed)."""
    claimed, resolved = await app[waiters_key].waited(request_id)
    if name == "claim_waiter_request" and claimed is not None:
        metrics.CALL_CLAIM_SECONDS.observe(claimed)
    elif name == "resolve_waiter_request" and resolved is not None:
        metrics.CALL_RESOLVE_SECONDS.observe(resolved)


async def counted(name: str, change: Awaitable[Result]) -> Result:
    """The change's result, counted by its outcome, and timed from now (its receipt) to its commit if it succeeds."""
    started = time.perf_counter()
    try:
        result = await change
    except Exception:
        metrics.ACTIONS.labels(name, "server_error").inc()
        raise
    metrics.ACTIONS.labels(name, metrics.outcome_of(result.code)).inc()
    if result.ok:
        metrics.ACTION_COMMIT_SECONDS.labels(name).observe(time.perf_counter() - started)
    return result


def refused(name: str, code: str) -> None:
    """A change (`name`: an action's, or bulk) refused before it reached its service, counted by the refusal's code."""
    metrics.ACTIONS.labels(name, metrics.outcome_of(code)).inc()


def worded(action: Action, result: Result, named: str | None = None) -> str:
    """A success as a person reads it, naming the changed tables (or all of them, `named`, as its first)."""
    labels = [table["number"] for table in result.tables]
    return action.done.format(first=named or labels[0], last=labels[-1])


@dataclass(frozen=True)
class Bulk:
    """A bulk as asked for: all or nothing (`atomic`), and each item's action with its fields."""

    atomic: bool
    items: list[tuple[Action, dict[str, Any]]]


def parse_bulk(message: Any) -> Bulk:
    """A bulk message's items, checked whole before anything runs; a malformed one is Refused (422).

    `message` is the socket's `{"atomic": ..., "actions": [...]}` (its `action` and `ref` aside).
    """
    if not isinstance(message, dict):
        raise Refused("invalid_action", "A bulk is a JSON object with an \"actions\" list.", 422)
    atomic = message.get("atomic", True)
    if not isinstance(atomic, bool):
        raise Refused("invalid_action", "A bulk's \"atomic\" is true or false.", 422)
    asked = message.get("actions")
    if not isinstance(asked, list) or not asked:
        raise Refused("invalid_action", "A bulk needs \"actions\": a list of one or more actions.", 422)
    if len(asked) > BULK_AT_MOST:
        raise Refused("bulk_too_large", f"A bulk holds at most {BULK_AT_MOST} actions, not {len(asked)}.", 422)
    items = []
    for index, item in enumerate(asked):
        where = f"actions[{index}]"
        name = item.get("action") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise Refused("invalid_action", f"{where} is not an action: an object with an \"action\".", 422)
        if name in NOT_IN_A_BULK:
            raise Refused("invalid_action", f"{where}: {name} cannot be part of a bulk.", 422)
        if name not in ACTIONS:
            raise Refused("unknown_action", f"{where}: there is no action {name[:40]!r}.", 422)
        action = ACTIONS[name]
        wrong = action.check_ids(item)
        if wrong is not None:
            raise Refused("invalid_action", f"{where}: {wrong}", 422)
        items.append((action, item))
    return Bulk(atomic, items)


NOT_IN_A_BULK = {"bulk", "ping", "sync"}  # the socket's own messages


async def perform_bulk(app: web.Application, actor: Actor, message: Any) -> Result:
    """Parse a bulk and run it: one transaction, one Result (published by the caller)."""
    bulk = parse_bulk(message)
    items = []
    for action, fields in bulk.items:
        asked = {name: fields[name] for name in (*action.ids, *action.values) if name in fields}
        items.append(Item({"action": action.name, **asked}, action.call(app, actor, fields)))
    return await counted("bulk", app[bulk_key].bulk(actor, items, bulk.atomic))
