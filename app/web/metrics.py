"""`GET /metrics`: what the server is doing, in Prometheus' text format, for this machine or a token's holder.

Loopback clients may read it (the address a trusted proxy named, app/web/forwarded.py: a
request relayed by a proxy on this machine is not taken for a local one), and so may anyone
presenting `Authorization: Bearer <MAITRE_METRICS_TOKEN>`; everyone else gets 403. It holds
no key, no table and nothing per restaurant (app/metrics.py).
"""

from __future__ import annotations

import hmac

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from .. import metrics
from ..typedefs import settings_key, waiters_key
from .forwarded import parse_address


async def scrape(request: web.Request) -> web.Response:
    if not may_read(request):
        raise web.HTTPForbidden(text="Metrics are for this machine, or for a client with the metrics token.")
    metrics.CALLS_WAITING.set(await request.app[waiters_key].calls_waiting())
    # every name here is a classic one, so the text is the 0.0.4 format, which Prometheus 2 (Debian 12's) knows by name
    return web.Response(body=generate_latest(metrics.registry()),
                        headers={hdrs.CONTENT_TYPE: CONTENT_TYPE_PLAIN_0_0_4})


def may_read(request: web.Request) -> bool:
    address = parse_address(request.remote or "")
    if address is not None and address.is_loopback:
        return True
    token = request.app[settings_key].metrics_token
    scheme, _, sent = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())
