"""Who is asking, over HTTP: a Bearer key or the sign-in cookie, and for a cookie, proof it is our own page.

With the cookie, a request that changes something needs the sign-in's CSRF token (a
form field `csrf_token` or the `X-CSRF-Token` header) and must not come from a foreign
Origin or Referer. A null or missing Origin is accepted together with a valid token (our
pages send `Referrer-Policy: same-origin`, so browsers send our own Origin, but older pages
said `no-referrer`, under which they send `Origin: null`), and a foreign one never is.
The sign-in form itself has no token yet: it requires our Origin (app/web/dashboard.py).

Keys presented by the client (the sign-in form, `Authorization: Bearer`, a socket's
`?token=`) all go through `principal_of_key`, which counts failures per client address.
"""

from __future__ import annotations

import hmac
import re
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from ..auth import SIGN_IN_COOKIE, Principal, csrf_token, origin_is_ours
from ..limits import client_key
from ..typedefs import api_keys_key, limits_key, request_limiter_key, settings_key, sign_in_failures_key

TABLE_ID = re.compile(r"[1-9][0-9]{0,17}")  # a table id as a path or form field


class Refused(Exception):
    """A request that cannot go on: an error code, a sentence, and its HTTP status."""

    def __init__(self, code: str, detail: str, status: int) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail
        self.status = status


UNAUTHORIZED = Refused("unauthorized", "Sign in, or send an API key as 'Authorization: Bearer <key>'.", 401)
TOO_MANY_FAILURES = Refused("rate_limited", "Too many failed sign-ins from this device. Wait a minute, then try again.",
                            429)


async def principal_of_key(request: web.Request, key: str) -> Principal | None:
    """The principal of a key the client presents (sign-in form, Bearer, `?token=`).

    Failed attempts count against the client (limits.client_key), whichever road they take;
    a client over the limit is refused (even with a good key) until it has waited, and nobody
    else is; with Redis, on every worker alike (limits.SharedLimits). Once a client has got a
    key wrong, its attempts are counted before the key is looked up, so guesses sent all at
    once count too (a right key gives its count back); a client that never has, such as a
    script opening a thousand sockets, is not held up.
    """
    failures, limits = request.app[sign_in_failures_key], request.app[limits_key]
    client = client_key(request.remote)
    if not await limits.allows(failures, client):
        raise TOO_MANY_FAILURES
    counted_first = await limits.take_known(failures, client)
    principal = await request.app[api_keys_key].authenticate(key)
    if principal is not None and counted_first:
        await limits.give_back(failures, client)
    elif principal is None and not counted_first:
        await limits.take([(failures, client)])
    return principal


async def signed_in(request: web.Request) -> Principal | None:
    token = request.cookies.get(SIGN_IN_COOKIE)
    return await request.app[api_keys_key].signed_in_as(token) if token else None


def sign_in_csrf(request: web.Request) -> str | None:
    token = request.cookies.get(SIGN_IN_COOKIE)
    return csrf_token(token) if token else None


async def caller(request: web.Request, changing: bool = False) -> Principal:
    """The principal behind the request, or Refused (401, or 403 for a cookie without its proof)."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, key = header.partition(" ")
        principal = await principal_of_key(request, key.strip()) if scheme.lower() == "bearer" else None
        if principal is None:
            raise UNAUTHORIZED
        return principal
    principal = await signed_in(request)
    if principal is None:
        raise UNAUTHORIZED
    if changing:
        await check_own_page(request)
    return principal


async def changer(request: web.Request) -> Principal:
    """The principal behind a change: `caller` for one, within its key's allowance of changes (429 past it)."""
    principal = await caller(request, changing=True)
    if not await request.app[limits_key].take([(request.app[request_limiter_key], f"key {principal.key_id}")]):
        raise Refused("rate_limited", "Too many requests; slow down.", 429)
    return principal


def is_ours(request: web.Request, origin: str | None) -> bool:
    return origin_is_ours(request, origin, request.app[settings_key].allowed_origins)


def foreign_origin(request: web.Request) -> bool:
    """An Origin that is another site's. A null or missing one is not (see the module's docstring)."""
    origin = request.headers.get("Origin", "null")
    return origin != "null" and not is_ours(request, origin)


def refuse_foreign_origin(request: web.Request) -> None:
    """A form posted from another site (a guest's call) is refused; a null or missing Origin is not."""
    if foreign_origin(request):
        raise web.HTTPForbidden(text="This form must be sent from Maître's own page.")


def require_our_origin(request: web.Request, refusal: str) -> None:
    """Only our own page may send this (the sign-in form, the cookie's socket): anything else is 403."""
    if not is_ours(request, request.headers.get("Origin")):
        raise web.HTTPForbidden(text=refusal)


async def check_own_page(request: web.Request) -> None:
    referer = request.headers.get("Referer")
    if foreign_origin(request):
        raise Refused("forbidden", "This request came from another site.", 403)
    if request.headers.get("Origin", "null") == "null" and referer and not is_ours(request, _origin_of(referer)):
        raise Refused("forbidden", "This request came from another site.", 403)
    sent = request.headers.get("X-CSRF-Token")
    if sent is None:
        field = (await read_form(request)).get("csrf_token")
        sent = field if isinstance(field, str) else None
    expected = sign_in_csrf(request)
    if not sent or expected is None or not _equal(sent, expected):
        raise Refused("forbidden", "The form has expired. Reload the page and try again.", 403)


async def read_form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | FileField]:
    """The posted form (empty for other bodies); a body that claims to be a form and is not is bad input."""
    try:
        return await request.post()
    except (ValueError, AssertionError, web.HTTPException) as error:
        detail = f"The request body is not a readable form ({type(error).__name__})."
        raise Refused("invalid_action", detail, 422) from None


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))
