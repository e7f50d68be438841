"""The HTTP side: every change of app/web/actions.py, and the read API.

A change answers at its path (`/admin/tables/{id}/<verb>` for a table's; the page's no-script
forms and its script's fallback post there) and, for the five the old HTMX dashboards knew,
deprecated but kept, at `/admin/table/{id}/<verb>`: the same handler, only the old paths add
the deprecation headers. Each answers in three ways from one result: JSON for `Accept:
application/json`; for our own no-script forms (which send `back=dashboard` or `back=floor`)
a redirect back to that page with the result shown; otherwise the HTML toast the old
dashboards swap in.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from .. import protocol
from ..protocol import is_int
from ..services.audit import EVENTS_AT_MOST
from ..services.core import Result
from ..typedefs import broadcast_key, tables_key
from .access import TABLE_ID, Refused, caller, changer, read_form
from .actions import ACTIONS, Action, perform_bulk, refused, worded
from .dashboard import remember_notice

DEPRECATION = {
    "Deprecation": "@1795564800",  # 2026-11-25, when the live dashboard replaced them (RFC 9745)
    "Link": '</docs/protocol.md>; rel="deprecation"; type="text/markdown"',
}
VERSION = re.compile(r"[0-9]{1,19}")  # ASCII digits only: str.isdigit() takes "²" too, which int() refuses
NOT_FOUND = {"table_not_found", "source_table_not_found", "target_table_not_found", "request_not_found",
             "waiter_not_found", "area_not_found"}
BAD_INPUT = {"invalid_action", "same_table", "invalid_guest_count", "invalid_note", "invalid_label", "invalid_seats",
             "invalid_area", "invalid_position"}
PAGES = {"dashboard", "floor", "waiter"}  # where our own no-script forms come back to (`back=`)
ALIASES = {"to_table_id": "target"}  # a move's target, as the old dashboards' forms name it


def status_of(code: str) -> int:
    if code in NOT_FOUND:
        return 404
    if code == "forbidden":
        return 403
    return 422 if code in BAD_INPUT else 409


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def json_error(refused: Refused, headers: dict[str, str] | None = None,
               failed: dict[str, Any] | None = None) -> web.Response:
    """The error as JSON; for a whole bulk refused, with the item that `failed` it."""
    headers = dict(headers or {})
    if refused.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="maitre"'
    body: dict[str, Any] = {"type": "error", "code": refused.code, "detail": refused.detail}
    if failed is not None:
        body["failed"] = failed
    return web.json_response(body, status=refused.status, headers=headers)


def parse_id(text: str | None, field: str, kind: str) -> int:
    """A table's or a request's id from a path or a form; anything else is refused (422)."""
    if text is None or not TABLE_ID.fullmatch(text):
        raise Refused("invalid_action", f"{field} must be {kind} id (a whole number).", 422)
    return int(text)


def form_fields(request: web.Request, form: Any, action: Action) -> dict[str, Any]:
    """The action's fields from the path and the form: ids checked as whole numbers, numbers made numbers
    where they are digits (otherwise left as typed, for the service to refuse), an empty number left out."""
    fields: dict[str, Any] = {}
    for name in action.ids:
        if name == action.ids[0] and "id" in request.match_info:
            whose = ("The request", "a waiter request's") if name == "request_id" else ("The table", "a table")
            fields[name] = parse_id(request.match_info["id"], *whose)
            continue
        text = form.get(name, form.get(ALIASES.get(name, name)))
        fields[name] = parse_id(text if isinstance(text, str) else None, name, "a table")
    for name in action.values:
        value = form.get(name)
        if name in action.numbers and isinstance(value, str):
            value = int(value) if VERSION.fullmatch(value.strip()) else value.strip() or None
        fields[name] = value
    return fields


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def action_handler(action: Action, *, deprecated: bool = False) -> Handler:
    """The handler of `POST <action.path>`, or with `deprecated` of the old `/admin/table/{id}/<verb>`.

    One change over HTTP: who asks, the fields, then the service (which says whether this key may),
    the push to the dashboards, and the answer. Our own no-script forms send `back=dashboard` (or
    `floor`): post, redirect, get, with the result shown there.
    """
    headers = DEPRECATION if deprecated else {}

    async def handler(request: web.Request) -> web.StreamResponse:
        back = None
        try:
            form = await read_form(request)
            back = next((page for page in PAGES if form.get("back") == page), None)
            principal = await changer(request)
            result = await action.perform(request.app, principal.actor, form_fields(request, form, action))
        except Refused as refusal:
            refused(action.name, refusal.code)
            if back and refusal.status == 401:
                raise web.HTTPSeeOther(request.app.router["login"].url_for()) from None
            return answer(request, Result.error(refusal.code, refusal.detail), refusal.status, headers,
                          refusal.status)
        request.app[broadcast_key].result(principal.restaurant_id, result)
        if result.ok:
            result = dataclasses.replace(result, detail=worded(action, result))
        if back and principal.sign_in_id is not None:
            remember_notice(request, result.detail or "")
            raise web.HTTPSeeOther(request.app.router[back].url_for(), headers=headers)
        status = 200 if result.ok else status_of(result.code or "")
        # a refused key (403) or bad input (422: a label, a guest count...) keeps its status in the toast too;
        # a table's refusal (same_table among them, as before) is a 200 toast (see answer)
        kept = status in (403, 422) and result.code != "same_table"
        return answer(request, result, status, headers, status if kept else 200)

    return handler


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
    return json_answer(result, status, headers)


def json_answer(result: Result, status: int, headers: dict[str, str] | None = None) -> web.Response:
    """The ack (with the changed tables, and a bulk's results) or the error (with the item that failed a bulk)."""
    if result.ok:
        body: dict[str, Any] = {"type": "ack", "version": result.version, "tables": result.tables}
        if result.outcomes:
            body["results"] = result.outcomes
        return web.json_response(body, headers=headers)
    return json_error(Refused(result.code or "", result.detail or "", status), headers, result.failed)


async def bulk(request: web.Request) -> web.StreamResponse:
    """`POST /admin/api/bulk`: several changes in one transaction, as the socket's `bulk` (docs/protocol.md).

    A JSON body is the socket's message (without `ref`), answered in JSON. Our no-script forms send one
    `action` and a `table_id` per table, with `back=dashboard`: post, redirect, get, with the result
    shown there, and after a close an Undo (restore the same tables).
    """
    back = False
    try:
        form = None if request.content_type == "application/json" else await read_form(request)
        back = form is not None and form.get("back") == "dashboard"
        principal = await changer(request)
        message = await json_body(request) if form is None else bulk_of_form(form)
        result = await perform_bulk(request.app, principal.actor, message)
    except Refused as refusal:
        refused("bulk", refusal.code)
        if back and refusal.status == 401:
            raise web.HTTPSeeOther(request.app.router["login"].url_for()) from None
        if not (back and refusal.status == 422):  # a form sent without a table ticked is shown on the page
            return json_error(refusal)
        result = Result.error(refusal.code, refusal.detail)
    request.app[broadcast_key].result(principal.restaurant_id, result)
    if not (back and principal.sign_in_id is not None):
        return json_answer(result, 200 if result.ok else status_of(result.code or ""))
    action = form.get("action") if form is not None else None
    closed = result.ok and action == "close_table"
    undo = tuple(item["table_id"] for item in message["actions"]) if closed else ()
    remember_notice(request, bulk_worded(action, result), undo=undo)
    raise web.HTTPSeeOther(request.app.router["dashboard"].url_for())


def table_ids(form: Any) -> list[int]:
    """Every `table_id` a form sends (a box per table), each once: both boxes of a joined party name its own table."""
    return list(dict.fromkeys(parse_id(text if isinstance(text, str) else None, "table_id", "a table")
                              for text in form.getall("table_id", [])))


def bulk_of_form(form: Any) -> dict[str, Any]:
    """A no-script form's bulk: its one `action` for each `table_id` it sends."""
    ids = table_ids(form)
    if not ids:
        raise Refused("invalid_action", "Select one or more tables first.", 422)
    return {"actions": [{"action": form.get("action"), "table_id": table_id} for table_id in ids]}


async def json_body(request: web.Request) -> Any:
    try:
        return await request.json(loads=protocol.loads)
    except (ValueError, RecursionError):
        raise Refused("invalid_json", "The request body is not valid JSON, or nests too deeply.", 422) from None


def bulk_worded(action: Any, result: Result) -> str:
    """A no-script form's bulk (one action for several tables) as a person reads it: "Tables 4 and 9 closed."."""
    if not result.ok:
        return f"{result.failed['detail']} Nothing was changed." if result.failed else result.detail or ""
    labels = [table["number"] for table in result.tables]
    named = labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"
    text = worded(ACTIONS[action], result, named)
    return text.replace("Table ", "Tables ", 1) if len(labels) > 1 else text


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
