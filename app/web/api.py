"""The HTTP side: a table's changes, a waiter request seen to, and the read API.

A table's changes answer at `/admin/tables/{id}/<verb>` (the page's no-script forms and
its script's fallback) and, deprecated but kept for the old HTMX dashboards, at
`/admin/table/{id}/<verb>`: the same handler, only the old paths add the deprecation
headers. Each answers in three ways from one result: JSON for `Accept: application/json`;
for our own no-script forms (which send `back=dashboard`) a redirect back to the
dashboard with the result shown; otherwise the HTML toast the old dashboards swap in.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ..auth import Principal
from ..protocol import is_int
from ..services.audit import EVENTS_AT_MOST
from ..services.core import Result
from ..services.tables import TableService
from ..typedefs import broadcast_key, request_limiter_key, tables_key, waiters_key
from .access import TABLE_ID, Refused, caller, read_form
from .dashboard import remember_notice

Operation = Callable[..., Awaitable[Result]]

DEPRECATION = {
    "Deprecation": "@1795564800",  # 2026-11-25, when the live dashboard replaced them (RFC 9745)
    "Link": '</docs/protocol.md>; rel="deprecation"; type="text/markdown"',
}
VERSION = re.compile(r"[0-9]{1,19}")  # ASCII digits only: str.isdigit() takes "²" too, which int() refuses
NOT_FOUND = {"table_not_found", "source_table_not_found", "target_table_not_found", "request_not_found"}
BAD_INPUT = {"invalid_action", "same_table"}
DONE = {
    "close_table": "Table {0} closed.",
    "disable_table": "Table {0} disabled.",
    "enable_table": "Table {0} enabled.",
    "restore_table": "Table {0} restored.",
    "move_table": "Party moved from table {0} to table {1}.",
}


def status_of(code: str) -> int:
    if code in NOT_FOUND:
        return 404
    return 422 if code in BAD_INPUT else 409


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def json_error(refused: Refused, headers: dict[str, str] | None = None) -> web.Response:
    headers = dict(headers or {})
    if refused.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="maitre"'
    return web.json_response({"type": "error", "code": refused.code, "detail": refused.detail},
                             status=refused.status, headers=headers)


def parse_id(text: str | None, field: str, kind: str) -> int:
    """A table's or a request's id from a path or a form; anything else is refused (422)."""
    if text is None or not TABLE_ID.fullmatch(text):
        raise Refused("invalid_action", f"{field} must be {kind} id (a whole number).", 422)
    return int(text)


Perform = Callable[[web.Request, Any, Principal], Awaitable[Result]]


async def change(request: web.Request, perform: Perform, done: Callable[[Result], str],
                 headers: dict[str, str]) -> web.StreamResponse:
    """One change over HTTP: who asks, may they, then the service, the push to the dashboards, and the answer.

    `perform(request, form, principal)` reads the ids and calls the service; `done` words a success.
    Our own no-script forms send `back=dashboard`: post, redirect, get, with the result shown there.
    """
    back = False
    try:
        form = await read_form(request)
        back = form.get("back") == "dashboard"
        principal = await caller(request, changing=True)
        if not principal.may_act:
            raise Refused("forbidden", "This key may watch the tables but not change them.", 403)
        if not request.app[request_limiter_key].take(f"key {principal.key_id}"):
            raise Refused("rate_limited", "Too many requests; slow down.", 429)
        result = await perform(request, form, principal)
    except Refused as refused:
        if back and refused.status == 401:
            raise web.HTTPSeeOther(request.app.router["login"].url_for()) from None
        return answer(request, Result.error(refused.code, refused.detail), refused.status, headers, refused.status)
    request.app[broadcast_key].result(principal.restaurant_id, result)
    if result.ok:
        result = dataclasses.replace(result, detail=done(result))
    if back and principal.sign_in_id is not None:
        remember_notice(request.app, principal.sign_in_id, result.detail or "")
        raise web.HTTPSeeOther(request.app.router["dashboard"].url_for(), headers=headers)
    return answer(request, result, 200 if result.ok else status_of(result.code or ""), headers)


def table_change(action: str, operation: Operation, *, deprecated: bool = False
                 ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler of `POST /admin/tables/{id}/<verb>`, or with `deprecated` of the old `/admin/table/{id}/<verb>`.

    `action` is the socket's name for the change (`close_table`...), `operation` the service method doing it.
    """
    headers = DEPRECATION if deprecated else {}

    async def perform(request: web.Request, form: Any, principal: Principal) -> Result:
        ids = [parse_id(request.match_info["id"], "The table", "a table")]
        if action == "move_table":
            target = form.get("target")
            ids.append(parse_id(target if isinstance(target, str) else None, "target", "a table"))
        return await operation(request.app[tables_key], principal.actor, *ids)

    def done(result: Result) -> str:
        return DONE[action].format(*(t["number"] for t in result.tables))

    async def handler(request: web.Request) -> web.StreamResponse:
        return await change(request, perform, done, headers)

    return handler


async def resolve_request(request: web.Request) -> web.StreamResponse:
    """`POST /admin/request/{id}/resolve`: a waiter request seen to (a card's Done button without the script)."""

    async def perform(request: web.Request, form: Any, principal: Principal) -> Result:
        request_id = parse_id(request.match_info["id"], "The request", "a waiter request's")
        return await request.app[waiters_key].resolve(principal.actor, request_id)

    return await change(request, perform, lambda result: f"Table {result.tables[0]['number']}: seen to.", {})


def answer(request: web.Request, result: Result, status: int, headers: dict[str, str],
           toast_status: int = 200) -> web.StreamResponse:
    """JSON for programs; otherwise the toast fragment the old dashboards swap in.

    A table's refusal (occupied, not found...) is a 200 toast, so that HTMX swaps it in as
    the old dashboard did; a refused request (credentials, input, rate) keeps its status.
    """
    if not wants_json(request):
        context = {"ok": result.ok, "message": result.detail}
        toast = aiohttp_jinja2.render_template("_toast.html", request, context, status=toast_status)
        toast.headers.update(headers)
        return toast
    if result.ok:
        return web.json_response({"type": "ack", "version": result.version, "tables": result.tables},
                                 headers=headers)
    return json_error(Refused(result.code or "", result.detail or "", status), headers)


# (verb in the path, the socket's action, the service method)
TABLE_CHANGES: list[tuple[str, str, Operation]] = [
    ("close", "close_table", TableService.close_table),
    ("disable", "disable_table", TableService.disable_table),
    ("enable", "enable_table", TableService.enable_table),
    ("restore", "restore_table", TableService.restore_table),
    ("move", "move_table", TableService.move_table),
]


async def tables(request: web.Request) -> web.Response:
    """`GET /admin/api/tables`: the tables as the socket sends them, with the version as ETag."""
    try:
        principal = await caller(request)
    except Refused as refused:
        return json_error(refused)
    version, rows = await request.app[tables_key].list_tables(principal.restaurant_id)
    etag = f'"{version}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in {tag.strip().removeprefix("W/") for tag in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers=headers)
    return web.json_response(rows, headers=headers)


async def events(request: web.Request) -> web.Response:
    """`GET /admin/api/events?since=<version>`: the table changes after that version, oldest first."""
    try:
        principal = await caller(request)
        since = request.query.get("since", "")
        if not VERSION.fullmatch(since) or not is_int(int(since)):
            raise Refused("invalid_action", "since must be a version number (0 or more).", 422)
    except Refused as refused:
        return json_error(refused)
    version, found = await request.app[tables_key].events_after(principal.restaurant_id, int(since))
    return web.json_response({"version": version, "events": found, "more": len(found) == EVENTS_AT_MOST})
