"""Signing in and out, and the dashboard page (the grid rendered on the server, then kept live by the socket)."""

from __future__ import annotations

import math

import aiohttp_jinja2
from aiohttp import web

from ..auth import SESSION_COOKIE, Principal, origin_allowed
from ..keys import api_keys_key, login_limiter_key, restaurants_key, settings_key, tables_key


async def signed_in(request: web.Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    return await request.app[api_keys_key].session(token) if token else None


def refuse_foreign_origin(request: web.Request) -> None:
    """A form post from another site is refused (the cookie is SameSite=Strict as well).

    Our pages send `Referrer-Policy: no-referrer`, under which browsers send `Origin: null`
    with their own form posts; so a missing or null Origin passes, a foreign one does not.
    """
    origin = request.headers.get("Origin", "null")
    if origin != "null" and not origin_allowed(request, request.app[settings_key].allowed_origins):
        raise web.HTTPForbidden(text="This form must be sent from Maître's own page.")


def login_form(request: web.Request, message: str | None, status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template("login.html", request, {"message": message}, status=status)


async def login_page(request: web.Request) -> web.Response:
    if await signed_in(request):
        raise web.HTTPSeeOther(request.app.router["dashboard"].url_for())
    return login_form(request, None)


async def login(request: web.Request) -> web.Response:
    refuse_foreign_origin(request)
    if not request.app[login_limiter_key].take(request.remote or "unknown"):
        return login_form(request, "Too many attempts from this device. Wait a minute, then try again.", 429)
    form = await request.post()
    key = form.get("key")
    settings = request.app[settings_key]
    signed = None
    if isinstance(key, str):
        signed = await request.app[api_keys_key].sign_in(key.strip(), settings.session_hours)
    if signed is None:
        return login_form(request, "That key was not recognised. Check it and try again.", 401)
    token, _ = signed
    response = web.HTTPSeeOther(request.app.router["dashboard"].url_for())
    response.set_cookie(
        SESSION_COOKIE, token, path="/admin", httponly=True, samesite="Strict", secure=request.secure,
        max_age=math.ceil(settings.session_hours * 3600),
    )
    raise response


async def logout(request: web.Request) -> web.Response:
    refuse_foreign_origin(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await request.app[api_keys_key].sign_out(token)
    response = web.HTTPSeeOther(request.app.router["login"].url_for())
    response.del_cookie(SESSION_COOKIE, path="/admin")
    raise response


async def dashboard(request: web.Request) -> web.Response:
    principal = await signed_in(request)
    if principal is None:
        raise web.HTTPSeeOther(request.app.router["login"].url_for())
    settings = request.app[settings_key]
    restaurant = await request.app[restaurants_key].by_slug(principal.restaurant_slug)
    version, tables = await request.app[tables_key].list_tables(principal.restaurant_id)
    response = aiohttp_jinja2.render_template("dashboard.html", request, {
        "restaurant": restaurant,
        "principal": principal,
        "version": version,
        "tables": tables,
        "idle_warning": restaurant["idle_warning_minutes"] or settings.idle_warning_minutes,
        "idle_alert": restaurant["idle_alert_minutes"] or settings.idle_alert_minutes,
    })
    response.headers["Cache-Control"] = "no-store"  # a signed-out tablet's Back button shows nothing stale
    return response
