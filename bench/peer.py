"""The peer: python-socketio, the library a Python developer would pick instead of Maître, under the same load.

The server is python-socketio's `AsyncServer` on an aiohttp application, with one room per
restaurant. Like the floor (bench/floor.py) it has no database and renders nothing: a
socket joins the room named by `group` in its query string and gets a `tables_snapshot`
event; an `action` event bumps the room's version, emits one `table_update` of the same
size as Maître's (html of `--html-bytes`, the floor's fields) to the whole room, the sender
included, then an `ack` (ref, version) to the sender. What it costs beyond the floor is
Engine.IO and Socket.IO themselves: their packets, a queue and a writer task per socket,
a task per recipient of each emit.

Set up as a fair comparison would: no HTTP compression, and no per-message deflate (the
load's clients never offer it, as they do not to Maître); Engine.IO's pings at their
default, every 25 s (Maître's heartbeat is 30 s), answered by the clients; no logging.

The load side, `SocketIOFleet`, is bench.load's Fleet speaking Engine.IO 4 / Socket.IO 5
by hand over the same aiohttp WebSocket clients. python-socketio's own AsyncClient would
make the load process the bottleneck, and so measure the client rather than the server.

    python -m bench.peer --port 9002 --html-bytes 662   # the server alone
    python -m bench.peer --bench [--quick]              # its fan-out, ladder and memory, printed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
from collections import defaultdict
from importlib import metadata
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import aiohttp
import socketio
from aiohttp import web

from .load import Fleet, percentile
from .measure import QUICK, Measured, Scale, measure_other

# The server's process runs this module too: like the floor's, it should hold python-socketio and aiohttp only,
# not the harness (bench.servers imports the app: 9,000 more objects for every full garbage collection to walk).
# So the measuring side imports the harness where it uses it.
if TYPE_CHECKING:
    from .servers import Process

MAITRE_UPDATE_BYTES = 662  # a table_update's length in docs/benchmarks.md's latest run, for --bench's default


def peer_app(html_bytes: int) -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", always_connect=True, http_compression=False, logger=False,
                               engineio_logger=False)
    versions: dict[str, int] = defaultdict(int)
    rooms: dict[str, str] = {}  # sid -> its restaurant's room
    padding = "x" * html_bytes

    # always_connect: the connection is accepted before this runs, so the snapshot follows the `40` reply
    @sio.event
    async def connect(sid: str, environ: dict, auth: object) -> None:
        room = parse_qs(environ["QUERY_STRING"])["group"][0]
        rooms[sid] = room
        await sio.enter_room(sid, room)
        await sio.emit("tables_snapshot", {"version": versions[room]}, to=sid)

    @sio.event
    async def action(sid: str, data: dict) -> None:
        room = rooms[sid]
        versions[room] += 1
        version = versions[room]
        await sio.emit("table_update", {"version": version, "table": {"id": data["table_id"], "status": "free"},
                                        "html": padding}, room=room)
        await sio.emit("ack", {"ref": data["ref"], "version": version}, to=sid)

    @sio.event
    async def disconnect(sid: str, reason: str) -> None:
        rooms.pop(sid, None)

    app = web.Application()
    sio.attach(app)
    return app


def start_peer(port: int, html_bytes: int) -> Process:
    """`python -m bench.peer` on this port, returned once it accepts connections."""
    from .servers import Process

    return Process([sys.executable, "-m", "bench.peer", "--port", str(port), "--html-bytes", str(html_bytes)],
                   ready="Running on")


def peer_url(port: int, restaurant: int) -> str:
    """Where a restaurant's dashboards connect: Engine.IO 4 straight over WebSocket, its room in the query."""
    return f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket&group={restaurant}"


class SocketIOFleet(Fleet):
    """bench.load's Fleet speaking Socket.IO 5 over Engine.IO 4, as python-socketio writes it:

        < 0{"sid":...,"pingInterval":25000,...}   Engine.IO open
        > 40                                        Socket.IO connect, default namespace
        < 40{"sid":...}
        < 42["tables_snapshot",{"version":0}]       an event: 4 message, 2 event, then [name, data]
        > 42["action",{"action":...,"table_id":...,"ref":...}]
        < 42["table_update",{...}]   < 42["ack",{"ref":...,"version":...}]
        < 2   > 3                                   Engine.IO ping, pong

    Not for `connect_senders`: Fleet decodes a sender's frames only when they hold "ref", so a
    sender would never answer a ping, and the server drops a socket 20 s after an unanswered one.
    """

    async def opened(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        handshake = await ws.receive(timeout=30)
        assert handshake.type is aiohttp.WSMsgType.TEXT and handshake.data.startswith("0{"), handshake
        await ws.send_str("40")
        connected = await ws.receive(timeout=30)
        assert connected.type is aiohttp.WSMsgType.TEXT and connected.data.startswith("40{"), connected
        snapshot = await ws.receive(timeout=30)
        assert snapshot.type is aiohttp.WSMsgType.TEXT and snapshot.data.startswith('42["tables_snapshot"'), snapshot

    def decode(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> dict | None:
        if text == "2":  # the server's ping: it closes the socket if no pong comes
            asyncio.ensure_future(ws.send_str("3"))
            return None
        if not text.startswith("42"):
            return None
        name, data = json.loads(text[2:])
        data["type"] = name
        return data

    def encode(self, action: dict) -> str:
        return "42" + json.dumps(["action", action])


async def measure(scale: Scale, html_bytes: int) -> Measured:
    """What `python -m bench` measures of Maître, of the peer alone: fan-out, the ladder, memory per idle socket."""
    from .servers import free_port

    measured = Measured("python-socketio (peer)")
    most = max(max(scale.memory_connections) // scale.dashboards, scale.restaurants)
    table_ids = [[r * scale.tables + t + 1 for t in range(scale.tables)] for r in range(most)]
    port = free_port()
    await measure_other(start_peer(port, html_bytes), SocketIOFleet, lambda r: peer_url(port, r), table_ids, scale,
                        measured)
    return measured


def table(measured: Measured, scale: Scale, html_bytes: int, quick: bool) -> str:
    from .report import ms

    fan = measured.fanout
    assert fan is not None
    rate, p99_at_rate = measured.sustained()
    socketio_version, engineio_version = metadata.version("python-socketio"), metadata.version("python-engineio")
    sockets = scale.restaurants * scale.dashboards
    lines = [
        f"python-socketio {socketio_version} (python-engineio {engineio_version}) on aiohttp {aiohttp.__version__}"
        f", Python {platform.python_version()}{' (quick run)' if quick else ''}; "
        f"updates with {html_bytes:,} bytes of html.",
        "",
        "| Measure | python-socketio |",
        "|---|---|",
    ]
    for p, name in [(50, "p50"), (95, "p95"), (99, "p99"), (100, "max")]:
        lines.append(f"| Fan-out latency {name} ({sockets:,} sockets; to all {scale.dashboards} of a room) | "
                     f"{ms(percentile(fan.latencies_ms, p))} |")
    sustained = f"{rate:,.0f}/s (p99 {ms(p99_at_rate)})" if rate else "none: p99 over 50 ms from the first rung"
    lines.append(f"| Sustained actions/s, p99 fan-out < 50 ms | {sustained} |")
    for count, kib in measured.per_socket().items():
        lines.append(f"| Server memory per idle socket at {count:,} connections | {kib:.1f} KiB |")
    lines += [
        "",
        f"Fan-out: {fan.acked:,} of {fan.sent:,} actions acknowledged at {fan.rate:,.0f}/s, "
        f"{len(fan.latencies_ms):,} fan-outs timed; the box's own pauses meanwhile: {measured.stalls.summary()}.",
        "Throughput ladder (offered rate: acknowledged rate, p99): "
        + "; ".join(f"{r:,.0f}/s: {o.rate:,.0f}/s, {ms(percentile(o.latencies_ms, 99))}" for r, o in measured.ladder)
        + ".",
        f"Memory: empty server {measured.rss_empty:,} KiB RSS; "
        + ", ".join(f"{n:,} sockets {kib:,} KiB" for n, kib in sorted(measured.rss.items())) + ".",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, help="serve the peer on this port")
    parser.add_argument("--html-bytes", type=int, default=MAITRE_UPDATE_BYTES,
                        help=f"size of each update's html, as Maître's updates ({MAITRE_UPDATE_BYTES})")
    parser.add_argument("--bench", action="store_true", help="start a peer and measure it, as python -m bench")
    parser.add_argument("--quick", action="store_true", help="with --bench: the small scale of python -m bench --quick")
    args = parser.parse_args()
    if args.bench:
        scale = QUICK if args.quick else Scale()
        print(table(asyncio.run(measure(scale, args.html_bytes)), scale, args.html_bytes, args.quick))
    elif args.port:
        web.run_app(peer_app(args.html_bytes), host="127.0.0.1", port=args.port, access_log=None)
    else:
        parser.error("give --port to serve, or --bench to measure")


if __name__ == "__main__":
    main()
