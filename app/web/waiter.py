"""The waiter's phone, `/admin/waiter`: my section's calls first (oldest first), then my tables, the other calls,
and the rest of the floor, folded away.

The same cards as the dashboard's, live over the same socket: the page's script puts each pushed card
in its list (static/waiter.js) as this module does for the first render. "My" tables are those whose
waiter is the signed-in key's name (a waiter's section, app/services/sections.py).
"""

from __future__ import annotations

from aiohttp import web

from ..services.core import SERVE
from ..services.table_view import Table
from .dashboard import live_page, page, signed_in_to, take_notice


async def waiter_page(request: web.Request) -> web.Response:
    principal = await signed_in_to(request, SERVE)  # a viewer watches the dashboard
    context = await live_page(request, principal)
    return page(request, "waiter.html", {
        **context, **waiter_lists(context["tables"], principal.name),
        "back": "waiter",  # the cards' no-script forms come back here
        "notice": take_notice(request),
    })


async def short_address(request: web.Request) -> web.Response:
    """`GET /waiter`: the address to type on a phone. The page lives under /admin, where the sign-in is sent."""
    raise web.HTTPSeeOther(request.app.router["waiter"].url_for())


def waiter_lists(tables: list[Table], name: str) -> dict[str, list[Table]]:
    """Each table in one list: calls by their oldest first (a table's calls come oldest first), tables in the
    floor's order."""
    calls = sorted((t for t in tables if t["requests"]), key=lambda t: t["requests"][0]["since"])
    quiet = [t for t in tables if not t["requests"]]
    return {
        "my_calls": [t for t in calls if t["waiter"] == name],
        "my_tables": [t for t in quiet if t["waiter"] == name],
        "other_calls": [t for t in calls if t["waiter"] != name],
        "rest": [t for t in quiet if t["waiter"] != name],
    }
