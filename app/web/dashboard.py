"""Signing in and out, the dashboard page, the grid fragment for polling, the no-script move and join
pages, and the floor editor. The waiter's page (app/web/waiter.py) is a live page like the dashboard.

The dashboard is rendered whole on the server, so it works without a script: every card
button is a form posting to `/admin/tables/{id}/<verb>` (app/web/api.py), which comes back
here with the result shown. The page's script, when it runs, sends the same actions over the socket.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import aiohttp_jinja2
import segno
from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from ..auth import SIGN_IN_COOKIE, Principal
from ..db import utc_now
from ..services.core import EDIT_FLOOR, REFUSALS
from ..services.restaurants import restaurant_view
from ..services.table_view import Table
from ..typedefs import api_keys_key, floor_key, restaurants_key, settings_key, tables_key
from .access import (
    TABLE_ID,
    Refused,
    caller,
    check_own_page,
    principal_of_key,
    require_our_origin,
    sign_in_csrf,
    signed_in,
)

NOTICE_COOKIE = "maitre_notice"
NOTICE_SECONDS = 120  # a notice not shown by then (the tablet went elsewhere) is let go


class Notice(NamedTuple):
    text: str
    undo: tuple[int, ...] = ()  # the tables a bulk closed: the page offers to restore them in one bulk


notice_key: web.RequestKey[Notice | None] = web.RequestKey("notice")  # to leave for the next page; None: clear it


def remember_notice(request: web.Request, text: str, undo: tuple[int, ...] = ()) -> None:
    """A line to show on this tablet's next page (post/redirect/get); with `undo`, the tables just closed,
    which its Undo restores. It travels in a short-lived cookie, so whichever worker serves that page shows it."""
    request[notice_key] = Notice(text, undo)


def take_notice(request: web.Request) -> Notice | None:
    """The line the tablet's last change left for this page, shown once (its cookie is cleared)."""
    raw = request.cookies.get(NOTICE_COOKIE)
    if raw is None:
        return None
    request.setdefault(notice_key, None)
    try:
        text, undo = json.loads(base64.urlsafe_b64decode(raw))
        if isinstance(text, str) and isinstance(undo, list) and all(type(i) is int for i in undo):
            return Notice(text[:500], tuple(undo))
    except (ValueError, TypeError):
        pass
    return None  # not one of ours: the page shows nothing (and its text would have been escaped)


@web.middleware
async def carry_notice(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sets the notice a change left for the next page, or clears the one this page showed, on its answer
    (a redirect is raised: its headers carry the cookie too)."""
    try:
        response = await handler(request)
    except web.HTTPException as exception:
        exception.headers.extend(notice_cookie(request))
        raise
    if not response.prepared:
        response.headers.extend(notice_cookie(request))
    return response


def notice_cookie(request: web.Request) -> list[tuple[str, str]]:
    """The Set-Cookie header for the notice (none when no notice was left or shown)."""
    if notice_key not in request:
        return []
    notice, carrier = request[notice_key], web.Response()
    if notice is None:
        carrier.del_cookie(NOTICE_COOKIE, path="/admin")
    else:
        value = base64.urlsafe_b64encode(json.dumps([notice.text, list(notice.undo)]).encode()).decode()
        carrier.set_cookie(NOTICE_COOKIE, value, path="/admin", httponly=True, samesite="Strict",
                           secure=request.secure, max_age=NOTICE_SECONDS)
    return [("Set-Cookie", morsel.OutputString()) for morsel in carrier.cookies.values()]


def login_form(request: web.Request, message: str | None, status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template("login.html", request, {"message": message}, status=status)


def home_of(request: web.Request, principal: Principal) -> URL:
    """Where a sign-in lands: a waiter's key on the waiter's page (their phone), any other on the dashboard."""
    return request.app.router["waiter" if principal.role == "waiter" else "dashboard"].url_for()


async def login_page(request: web.Request) -> web.Response:
    principal = await signed_in(request)
    if principal is not None:
        raise web.HTTPSeeOther(home_of(request, principal))
    return login_form(request, None)


async def login(request: web.Request) -> web.Response:
    # our own page always sends its Origin (Referrer-Policy: same-origin); a form on another
    # site must not sign a tablet in to a restaurant of its choosing (login CSRF)
    require_our_origin(request, "Sign in from Maître's own sign-in page.")
    form = await request.post()
    key = form.get("key")
    settings = request.app[settings_key]
    try:
        principal = await principal_of_key(request, key.strip()) if isinstance(key, str) else None
    except Refused as refused:
        return login_form(request, refused.detail, refused.status)
    if principal is None:
        return login_form(request, "That key was not recognised. Check it and try again.", 401)
    token = await request.app[api_keys_key].sign_in(principal, settings.session_hours)
    response = web.HTTPSeeOther(home_of(request, principal))
    response.set_cookie(
        SIGN_IN_COOKIE, token, path="/admin", httponly=True, samesite="Strict", secure=request.secure,
        max_age=math.ceil(settings.session_hours * 3600),
    )
    raise response


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SIGN_IN_COOKIE)
    if token:
        try:
            await check_own_page(request)
        except Refused as refused:
            raise web.HTTPForbidden(text=refused.detail) from None
        await request.app[api_keys_key].sign_out(token)
    response = web.HTTPSeeOther(request.app.router["login"].url_for())
    response.del_cookie(SIGN_IN_COOKIE, path="/admin")
    raise response


async def signed_in_or_login(request: web.Request) -> Principal:
    principal = await signed_in(request)
    if principal is None:
        raise web.HTTPSeeOther(request.app.router["login"].url_for())
    return principal


def page(request: web.Request, template: str, context: dict[str, Any]) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, context)
    response.headers["Cache-Control"] = "no-store"  # a signed-out tablet's Back button shows nothing stale
    return response


async def live_page(request: web.Request, principal: Principal) -> dict[str, Any]:
    """What a live page (templates/live.html: the dashboard, the waiter's page) shows and its script reads."""
    restaurant = await request.app[restaurants_key].by_slug(principal.restaurant_slug)
    settings = request.app[settings_key]
    view = restaurant_view(restaurant, settings)
    version, tables = await request.app[tables_key].list_tables(principal.restaurant_id)
    return {
        "restaurant": restaurant,
        "principal": principal,
        "version": version,
        "tables": tables,
        "csrf": sign_in_csrf(request),
        "idle_warning": view["idle_warning_minutes"],
        "idle_alert": view["idle_alert_minutes"],
        "claim_within": settings.claim_within_seconds,
        "now": utc_now(),  # the script counts idle minutes, Restore's end and overdue calls by the server's clock
    }


async def dashboard(request: web.Request) -> web.Response:
    principal = await signed_in_or_login(request)
    context = await live_page(request, principal)
    return page(request, "dashboard.html", {
        **context,
        "notice": take_notice(request),
        "requests": pending_requests(context["tables"]),
        "parties": seated_parties(context["tables"]),
    })


def pending_requests(tables: list[Table]) -> list[dict[str, Any]]:
    """Every pending waiter request of the restaurant, oldest first, with its table's label."""
    found = [{**r, "table": t["number"]} for t in tables for r in t["requests"]]
    return sorted(found, key=lambda r: (r["since"], r["id"]))


def seated_parties(tables: list[Table]) -> list[int]:
    """The table of each party seated now, its own (a party at joined tables closes with one close of it)."""
    return [t["id"] for t in tables if t["session"] and t["session"]["tables"][0]["id"] == t["id"]]


async def grid(request: web.Request) -> web.Response:
    """`GET /admin/tables`: the grid fragment, for dashboards that poll (the old way, and the fallback)."""
    try:
        principal = await caller(request)
    except Refused as refused:
        raise web.HTTPUnauthorized(text=refused.detail) from None
    version, tables = await request.app[tables_key].list_tables(principal.restaurant_id)
    etag = f'"{version}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    response = aiohttp_jinja2.render_template("_grid.html", request, {"tables": tables, "csrf": sign_in_csrf(request)})
    response.headers.update({"ETag": etag, "Cache-Control": "no-cache"})
    return response


PICKS = {  # the no-script pages where a free table is picked: the action's heading and its target's field
    "move_table": ("Move table {0} to…", "to_table_id"),
    "join_tables": ("Join a free table to table {0}'s party", "with_table_id"),
}


def pick_page(action: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`GET /admin/tables/{id}/move` or `/join`: the free tables the party can go to, for a tablet without the
    script; each is a form posting the change."""
    heading, field = PICKS[action]

    async def handler(request: web.Request) -> web.Response:
        if not TABLE_ID.fullmatch(request.match_info["id"]):
            raise web.HTTPNotFound(text="There is no such table.")
        principal = await signed_in_or_login(request)
        _, tables = await request.app[tables_key].list_tables(principal.restaurant_id)
        source = next((t for t in tables if str(t["id"]) == request.match_info["id"]), None)
        if source is None or source["status"] != "occupied":
            if principal.sign_in_id is not None:
                remember_notice(request, "That table has no guests." if source else "There is no such table.")
            raise web.HTTPSeeOther(request.app.router["dashboard"].url_for())
        return page(request, "pick.html", {
            "action": action,
            "heading": heading.format(source["number"]),
            "field": field,
            "source": source,
            "targets": [t for t in tables if t["status"] == "free"],
            "csrf": sign_in_csrf(request),
        })

    return handler


async def signed_in_to(request: web.Request, permission: str) -> Principal:
    """The signed-in key, when it has `permission`; any other is sent to the dashboard, told why, and one not
    signed in to the sign-in page."""
    principal = await signed_in_or_login(request)
    if not principal.actor.may(permission):
        if principal.sign_in_id is not None:
            remember_notice(request, REFUSALS[permission])
        raise web.HTTPSeeOther(request.app.router["dashboard"].url_for())
    return principal


async def floor_editor(request: web.Request) -> Principal:
    """The signed-in key, when it may edit the floor (the floor editor's pages, sections among them)."""
    return await signed_in_to(request, EDIT_FLOOR)


async def floor(request: web.Request) -> web.Response:
    """`GET /admin/floor`: edit the floor plan (admins): each table's label, seats, area and place; add, remove."""
    principal = await floor_editor(request)
    restaurant = await request.app[restaurants_key].by_slug(principal.restaurant_slug)
    _, tables = await request.app[tables_key].list_tables(principal.restaurant_id)
    return page(request, "floor.html", {
        "restaurant": restaurant,
        "tables": tables,
        "areas": sorted({t["area"] for t in tables}),
        "csrf": sign_in_csrf(request),
        "notice": take_notice(request),
    })


async def qr_codes(request: web.Request) -> web.Response:
    """`GET /admin/tables/qr`: every table's QR code, laid out to print on A4."""
    principal = await signed_in_or_login(request)
    settings = request.app[settings_key]
    restaurant = await request.app[restaurants_key].by_slug(principal.restaurant_slug)
    _, tables = await request.app[tables_key].list_tables(principal.restaurant_id)
    tokens = await request.app[floor_key].qr_tokens(principal.restaurant_id)
    origin = f"{request.scheme}://{request.host}"  # the tablet's way in (behind a proxy, as the proxy names it)
    base = settings.guest_base(origin)
    codes = [{"table": table, "svg": qr_svg(f"{base}/t/{tokens[table['id']]}")}
             for table in tables if table["id"] in tokens]  # not one removed between the two reads
    return page(request, "qr.html", {"restaurant": restaurant, "codes": codes, "base": base,
                                     "unreachable": only_this_machine(base)})


def only_this_machine(url: str) -> bool:
    """An address no phone can reach: this machine's own name for itself (printing from the box)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def qr_svg(url: str) -> str:
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="svg", scale=5, border=2, xmldecl=False, svgclass="qr-code",
                                    title=url)
    return buffer.getvalue().decode()
