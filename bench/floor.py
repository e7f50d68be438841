"""The floor: a bare aiohttp server that broadcasts to a group of sockets, with no database and no rendering.

It speaks just enough of the dashboard protocol for bench/load.py: an action from a client
becomes one `table_update` of the same size as Maître's, sent to every socket of the
client's group (the sender included), then an `ack` to the sender. Whatever Maître adds on
top of this (durable commit, audit, rendering, the hub) is what the comparison shows.

    python -m bench.floor --port 9001 --html-bytes 900
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from aiohttp import web

groups: web.AppKey[dict[str, set[web.WebSocketResponse]]] = web.AppKey("groups", dict)
versions: web.AppKey[dict[str, int]] = web.AppKey("versions", dict)
padding: web.AppKey[str] = web.AppKey("padding", str)


async def socket(request: web.Request) -> web.WebSocketResponse:
    group = request.query["group"]
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    members = request.app[groups][group]
    members.add(ws)
    await ws.send_str(json.dumps({"type": "tables_snapshot", "version": request.app[versions][group]}))
    try:
        async for message in ws:
            action = json.loads(message.data)
            request.app[versions][group] += 1
            version = request.app[versions][group]
            update = json.dumps({"type": "table_update", "version": version,
                                 "table": {"id": action["table_id"], "status": "free"}, "html": request.app[padding]})
            for member in list(members):
                await member.send_str(update)
            await ws.send_str(json.dumps({"type": "ack", "ref": action["ref"], "version": version}))
    finally:
        members.discard(ws)
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--html-bytes", type=int, default=900, help="size of each update's html, as Maître's cards")
    args = parser.parse_args()
    app = web.Application()
    app[groups] = defaultdict(set)
    app[versions] = defaultdict(int)
    app[padding] = "x" * args.html_bytes
    app.router.add_get("/ws", socket)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
