"""The guest's page, `/t/{qr_token}`: call a waiter or ask for the bill, from a phone, without signing in.

Plain forms, post/redirect/get: it works without a script. The redirect carries only a
fixed word (`?done=call_waiter`, `?problem=rate_limited`), never text to show.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from .. import metrics
from ..limits import client_key
from ..services.table_view import WaiterRequest
from ..services.waiters import KINDS
from ..typedefs import broadcast_key, guest_taps_key, limits_key, waiters_key
from .access import refuse_foreign_origin

DONE = {
    "call_waiter": "The staff have your call. Someone will be with you shortly.",
    "ask_for_bill": "The staff have your request for the bill.",
}
PROBLEMS = {
    "request_already_pending": "The staff already have that request; they are coming.",
    "rate_limited": "Too many taps for now. Please wait a minute and try again.",
    "table_disabled": "This table is not available right now. Please ask a member of staff.",
}


async def page(request: web.Request) -> web.Response:
    found = await request.app[waiters_key].guest_table(request.match_info["token"])
    if found is None:
        return aiohttp_jinja2.render_template("guest_missing.html", request, {}, status=404)
    coming = on_the_way(found.table["requests"])
    done = request.query.get("done", "")
    response = aiohttp_jinja2.render_template("guest.html", request, {
        "place": found,
        "token": request.match_info["token"],
        "coming": coming,
        # a reload after the staff saw to it, or once a waiter is coming, shows how things stand now
        "done": DONE.get(done) if done in found.pending and coming is None else None,
        "problem": PROBLEMS.get(request.query.get("problem", "")),
    })
    response.headers["Cache-Control"] = "no-store"
    return response


def on_the_way(requests: list[WaiterRequest]) -> str | None:
    """The first name of the waiter who claimed the table's oldest claimed call: guests see only that much."""
    names = [r["claimed_by"] for r in requests if r["claimed_by"]]  # never blank (auth.valid_name)
    return names[0].split()[0] if names else None


async def call(request: web.Request) -> web.Response:
    refuse_foreign_origin(request)
    token, kind = request.match_info["token"], request.match_info["kind"]
    back = request.app.router["guest"].url_for(token=token)
    if kind not in KINDS:
        raise web.HTTPNotFound()
    if not await request.app[limits_key].take(request.app[guest_taps_key].buckets(token, client_key(request.remote))):
        raise web.HTTPSeeOther(back.with_query(problem="rate_limited"))
    result = await request.app[waiters_key].request(token, kind)
    if result.code == "table_not_found":
        return aiohttp_jinja2.render_template("guest_missing.html", request, {}, status=404)
    if not result.ok:
        raise web.HTTPSeeOther(back.with_query(problem=result.code or ""))
    if result.restaurant_id is not None:
        request.app[broadcast_key].result(result.restaurant_id, result)
    metrics.GUEST_REQUESTS.labels(kind).inc()
    raise web.HTTPSeeOther(back.with_query(done=kind))
