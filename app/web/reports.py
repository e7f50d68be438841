"""Reports over HTTP: the page of charts, the parties as CSV, and the figures as JSON (issue 19).

All three take the period as the service does (`day=YYYY-MM-DD`, or `from=` and `to=`; none: the last
service) and hand it to ReportService, which scopes it to the key's restaurant and says who may see what
(admins: the whole floor; waiters: their own section and calls; anyone else: `forbidden`). The page is a
signed-in admin's or waiter's (or a Bearer key's); its charts are SVG drawn by templates/_charts.html,
so the tablet runs no chart script.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import aiohttp_jinja2
from aiohttp import web

from ..auth import Principal
from ..services.core import Actor, ServiceError
from ..services.reports import PartyRow, Period, day_start
from ..typedefs import reports_key
from .access import Refused, caller
from .api import json_error

T = TypeVar("T")
STATUS = {"invalid_period": 400, "forbidden": 403}
CSV_COLUMNS = ("party", "table", "area", "tables", "seated", "closed", "turn_minutes", "guests", "calls",
               "claim_wait_seconds", "resolve_wait_seconds", "restores")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula (CSV injection)


def period_asked(request: web.Request) -> dict[str, str | None]:
    """The period's query parameters as the user typed them, for the service (and the page's form)."""
    query = request.query
    return {"day": query.get("day"), "first": query.get("from"), "last": query.get("to")}


async def period_of(request: web.Request, restaurant_id: int) -> Period:
    return await request.app[reports_key].period(restaurant_id, **period_asked(request))


def refused(error: ServiceError) -> Refused:
    return Refused(error.code, error.detail, STATUS.get(error.code, 409))


async def reports_page(request: web.Request) -> web.Response:
    """`GET /admin/reports`: the period's charts (HTML), for a signed-in admin or waiter, or a Bearer key."""
    try:
        principal = await caller(request)
    except Refused as refusal:
        if "Authorization" in request.headers:
            return json_error(refusal)
        raise web.HTTPSeeOther(request.app.router["login"].url_for()) from None
    home = "waiter" if principal.role == "waiter" else "dashboard"  # where "Back to the tables" goes
    try:
        period = await period_of(request, principal.restaurant_id)
        report = await request.app[reports_key].report(principal.actor, period)
    except ServiceError as error:
        return report_page(request, {"error": refused(error), "home": home})
    return report_page(request, {"report": report, "around": around(period), "home": home})


def report_page(request: web.Request, context: dict[str, Any]) -> web.Response:
    """The page: the `report`, or the `error` that there is none (with the form to choose the period again)."""
    context = {"report": None, "error": None, "asked": period_asked(request), **context}
    error = context["error"]
    response = aiohttp_jinja2.render_template("reports.html", request, context,
                                              status=error.status if error else 200)
    response.headers["Cache-Control"] = "no-store"
    return response


def around(period: Period) -> dict[str, str | None]:
    """The days before and after the period (the page's links); no next day while the period is still running."""
    next_day = period.last_day + timedelta(days=1)
    running = period.end.timestamp() < day_start(next_day, period).timestamp()
    return {"previous": (period.first_day - timedelta(days=1)).isoformat(),
            "next": None if running else next_day.isoformat()}


async def asked(request: web.Request, read: Callable[[Actor, Period], Awaitable[T]]) -> tuple[Principal, Period, T]:
    """Who asks, for which period, and what `read` (a ReportService method) gives them; `Refused` if nothing."""
    principal = await caller(request)
    try:
        period = await period_of(request, principal.restaurant_id)
        return principal, period, await read(principal.actor, period)
    except ServiceError as error:
        raise refused(error) from None


async def parties_csv(request: web.Request) -> web.Response:
    """`GET /admin/reports.csv`: one row per party seated in the period, as a spreadsheet opens it."""
    try:
        principal, period, rows = await asked(request, request.app[reports_key].parties)
    except Refused as refusal:
        return json_error(refusal)
    name = f"{principal.restaurant_slug}-reports-{period.first_day}-{period.last_day}.csv"
    return web.Response(body=csv_of(rows).encode(), content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def csv_of(rows: list[PartyRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([cell(row[column]) for column in CSV_COLUMNS])  # type: ignore[literal-required]
    return buffer.getvalue()


def cell(value: object) -> object:
    """A value as the CSV writes it: none is empty; text a spreadsheet would take for a formula (a table's label
    or area is anyone's text) starts with an apostrophe, so it is shown, never run."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


async def api_report(request: web.Request) -> web.Response:
    """`GET /admin/api/reports`: the period's report (ReportService.report) as JSON."""
    try:
        _, _, report = await asked(request, request.app[reports_key].report)
    except Refused as refusal:
        return json_error(refusal)
    return web.json_response(report, headers={"Cache-Control": "no-store"})

