"""Who the client is behind a reverse proxy: its address, scheme and host, resolved once, at the edge.

Only when the request's peer is a trusted proxy (MAITRE_TRUSTED_PROXIES) are the forwarded
headers read: `X-Forwarded-For` / `-Proto` / `-Host`, which nginx and Caddy set, or, when
there is no `X-Forwarded-For`, RFC 7239 `Forwarded`. (Neither proxy sets `Forwarded` by default
and both pass a client's own through, so it must not win over the header they do maintain; a
proxy that sets only `Forwarded` must drop a client's `X-Forwarded-For`, see docs/deploy.md.)
Walking the chain of addresses from the nearest hop back, trusted proxies are skipped; the
first address that is not one is the client's, and the scheme and host are those that hop
recorded (what the client's browser used). The request is then cloned with them, so
everything downstream (Origin checks, the cookie's Secure flag, rate limits, guests' QR
addresses) just reads `request.remote`, `request.scheme` and `request.host`. From any other
peer forwarded headers are ignored: a client cannot claim to be someone else.

aiohttp-remotes was looked at: its strict middlewares refuse (400) every request that did
not come through the proxy, its relaxed and filtered ones believe the headers of any peer,
and `Forwarded` and `X-Forwarded-*` would take two of them; this is the single
`request.clone` middleware aiohttp's documentation describes instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import NamedTuple

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from ..typedefs import client_address_key

Networks = Sequence[IPv4Network | IPv6Network]

HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
SCHEMES = ("http", "https")


def parse_address(text: str) -> IPv4Address | IPv6Address | None:
    """An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`; None if it is none."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: IPv4Address | IPv6Address | None, trusted: Networks) -> bool:
    return address is not None and any(address in network for network in trusted)


def hops(request: web.BaseRequest) -> list[tuple[str, str | None, str | None]]:
    """What the proxies recorded, client side first: (for, proto, host) per hop."""
    if hdrs.X_FORWARDED_FOR not in request.headers:
        return [(hop.get("for", ""), hop.get("proto"), hop.get("host")) for hop in request.forwarded]
    listed = [[part.strip() for part in ",".join(request.headers.getall(name, ())).split(",") if part.strip()]
              for name in (hdrs.X_FORWARDED_FOR, hdrs.X_FORWARDED_PROTO, hdrs.X_FORWARDED_HOST)]
    addresses, protos, hosts = listed
    # X-Forwarded-Proto and -Host often hold only the nearest proxy's value: align them from the right
    return [(address, _from_right(protos, len(addresses) - i), _from_right(hosts, len(addresses) - i))
            for i, address in enumerate(addresses)]


def _from_right(values: list[str], position: int) -> str | None:
    if not values:
        return None
    return values[-position] if position <= len(values) else values[0]


class Client(NamedTuple):
    remote: str
    scheme: str | None  # None: as the request came
    host: str | None


def resolve(request: web.BaseRequest, trusted: Networks) -> Client | None:
    """The client's address, scheme and host, where a trusted proxy says them; None if none does."""
    if not is_trusted(parse_address(request.remote or ""), trusted):
        return None
    chain = hops(request)
    if not chain:
        return None
    index = len(chain) - 1
    while index > 0 and is_trusted(parse_address(chain[index][0]), trusted):
        index -= 1  # another proxy of ours: the client is further back
    for_, proto, host = chain[index]
    address = parse_address(for_)
    return Client(
        remote=str(address) if address is not None else for_.strip().strip('"')[:64] or "unknown",
        scheme=proto.strip().lower() if proto is not None and proto.strip().lower() in SCHEMES else None,
        host=host.strip() if host is not None and HOST.fullmatch(host.strip()) else None,
    )


def client_from_proxies(trusted: Networks) -> Middleware:
    """The middleware: each request as the client made it, when it came through one of our proxies."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = resolve(request, trusted) if trusted else None
        if client is None:
            return await handler(request)
        request[client_address_key] = client.remote  # for the access log, which sees the request as it came
        resolved = request.clone(remote=client.remote, scheme=client.scheme or request.scheme,
                                 host=client.host or request.host)
        return await handler(resolved)

    return middleware
