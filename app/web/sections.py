"""The sections page: which waiter serves which areas and tables, set by an admin without a script.

`GET /admin/sections` shows one form per waiter, a box for every area and every table, the
waiter's own ticked. Each form posts to `POST /admin/sections`, which makes the waiter's
section exactly what is ticked (SectionService.set_section), pushes the tables whose waiter
changed to every dashboard, and comes back to the page with the result shown (post, redirect,
get). The post is checked as the floor editor's forms are (app/web/access.py: the sign-in's
CSRF token, never another site's Origin); a program may post with a Bearer key instead and
is answered in JSON, as for any change.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..services.core import Result
from ..typedefs import broadcast_key, restaurants_key, sections_key, tables_key
from .access import Refused, changer, read_form, sign_in_csrf
from .api import json_answer, json_error, status_of, table_ids
from .dashboard import floor_editor, page, remember_notice, take_notice


async def sections_page(request: web.Request) -> web.Response:
    """`GET /admin/sections` (admins): each waiter's areas and tables, and the tables in nobody's section."""
    principal = await floor_editor(request)
    restaurant = await request.app[restaurants_key].by_slug(principal.restaurant_slug)
    _, tables = await request.app[tables_key].list_tables(principal.restaurant_id)
    sections = await request.app[sections_key].sections(principal.restaurant_id)
    return page(request, "sections.html", {
        "restaurant": restaurant,
        "sections": sections,
        "tables": tables,
        "areas": list(dict.fromkeys(table["area"] for table in tables)),  # in the grid's order, as the dashboard's
        "area_waiters": {area: section["waiter"] for section in sections for area in section["areas"]},
        "csrf": sign_in_csrf(request),
        "notice": take_notice(request),
    })


async def set_section(request: web.Request) -> web.StreamResponse:
    """`POST /admin/sections`: the waiter's section becomes the areas (`area`) and tables (`table_id`) sent."""
    program = "Authorization" in request.headers  # a Bearer key: answered in JSON; a person's page: redirected
    try:
        form = await read_form(request)
        principal = await changer(request)
        ticked = table_ids(form)
        waiter, areas = form.get("waiter"), form.getall("area", [])
        result = await request.app[sections_key].set_section(principal.actor, waiter, areas, ticked)
    except Refused as refused:
        if program:
            return json_error(refused)
        if refused.status == 401:  # the sign-in ended while the page was open
            raise web.HTTPSeeOther(request.app.router["login"].url_for()) from None
        return web.Response(text=refused.detail, status=refused.status)
    request.app[broadcast_key].result(principal.restaurant_id, result)
    if principal.sign_in_id is None:
        return json_answer(result, 200 if result.ok else status_of(result.code or ""))
    remember_notice(request, worded(result, waiter, given=bool(areas or ticked)))
    raise web.HTTPSeeOther(request.app.router["sections"].url_for())


def worded(result: Result, waiter: Any, *, given: bool) -> str:
    """The result as the page shows it: what became of the waiter's section, or why nothing changed."""
    if not result.ok:
        return f"{result.detail} Nothing was changed."
    name = waiter.strip()
    return f"{name}'s section saved." if given else f"{name} has no section now."
