"""Security headers on every response, and an access log that never records a query string."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.typedefs import Handler

from ..typedefs import client_address_key

# No inline script or style anywhere: the page's script and stylesheet are files under /static/.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # same-origin: our own posts carry their Origin (the sign-in form needs it), other sites get no Referer
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exception:
        exception.headers.update(HEADERS)
        raise
    if not response.prepared:
        response.headers.update(HEADERS)
    return response


class QuietMalformedRequests(logging.Filter):
    """aiohttp logs a request it cannot even parse with a traceback at ERROR; one WARNING line says enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BadHttpMessage):
            record.msg, record.args = "malformed request refused with 400: %s", (str(error).splitlines()[0],)
            record.exc_info = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class AccessLogger(AbstractAccessLogger):
    """Client, method, path, status, size and time; the query string (where a script may put its key) is left out.

    The client is the one a trusted proxy named (app/web/forwarded.py), else the peer.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.1fms',
            request.get(client_address_key, request.remote), request.method, request.path, response.status,
            response.body_length, time * 1000,
        )
