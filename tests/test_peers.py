"""Slow and dead peers: a tablet whose network vanishes mid-service is let go within two heartbeats,
and nothing of it is kept; the other dashboards carry on. (The stuck reader is in test_socket.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import struct
import subprocess
import time

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

from app import create_app, sockets
from app.typedefs import hub_key
from bench.stuck import frozen_tablet, tcp_state

from . import netns
from .support import SOCKET, dashboard, eventually, make_place, receive

HEARTBEAT = 1.0
TCP_CLOSE = 7  # tcpi_state of a socket that was reset


def need_namespaces() -> None:
    """Skip on a developer's machine without root; fail on CI, which runs as root."""
    reason = netns.why_unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the dropped-network test must run on CI)", pytrace=False)
    pytest.skip(reason)


def towards_tablet(link: netns.Link) -> list[str]:
    """The server side's TCP sockets to the tablet, in any state (an orphan the kernel still retries included)."""
    out = subprocess.run(["ip", "netns", "exec", link.office, "ss", "-Htan", "dst", link.tablet_address],
                         capture_output=True, text=True, check=True, timeout=10)
    return out.stdout.splitlines()


@pytest.mark.parametrize("stream", ["service", "flood"])
async def test_a_tablet_whose_network_vanishes_is_removed_within_two_heartbeats(settings, db, stream):
    """`service`: a few actions a second, as in a dining room. `flood`: 16 KB updates, ten a second, so
    what waits for the vanished tablet outgrows the kernel's buffers and the server's own queue."""
    need_namespaces()
    place = await make_place(db, settings, "wifi", 6)
    app = create_app(dataclasses.replace(settings, heartbeat_seconds=HEARTBEAT))
    hub = app[hub_key]
    restaurant_id = place.actor.restaurant_id
    runner = web.AppRunner(app)
    await runner.setup()
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()  # the tablets that stay
    try:
        with netns.Link() as link:
            await web.SockSite(runner, link.listen(8080)).start()  # the one across the link
            connector = aiohttp.TCPConnector(socket_factory=lambda info: link.tablet_socket(*info[:3]))
            async with aiohttp.ClientSession(connector=connector) as far, aiohttp.ClientSession() as near:
                tablet = await far.ws_connect(f"http://{link.server_address}:8080{SOCKET}?token={place.admin}")
                assert (await receive(tablet))["type"] == "tables_snapshot"
                others = [await near.ws_connect(f"http://127.0.0.1:{port}{SOCKET}?token={place.viewer}")
                          for _ in range(3)]
                admin = await near.ws_connect(f"http://127.0.0.1:{port}{SOCKET}?token={place.admin}")
                for ws in [*others, admin]:
                    assert (await receive(ws))["type"] == "tables_snapshot"
                seen: dict[int, list[int]] = {id(ws): [] for ws in [tablet, *others]}

                async def read(ws: aiohttp.ClientWebSocketResponse) -> None:  # as a browser does: pongs included
                    async for message in ws:
                        if message.type is aiohttp.WSMsgType.TEXT:
                            data = json.loads(message.data)
                            if "version" in data and data["type"] != "ack":
                                seen[id(ws)].append(data["version"])

                readers = [asyncio.create_task(read(ws)) for ws in [tablet, *others]]
                acks: list[dict] = []

                async def acks_in() -> None:
                    async for message in admin:
                        if (answer := json.loads(message.data))["type"] in ("ack", "error"):
                            acks.append(answer)

                readers.append(asyncio.create_task(acks_in()))

                async def service() -> None:  # the admin tablet disables and enables tables, eight times a second
                    for n in range(10_000):
                        table = list(place.ids.values())[n % 6]
                        action = "disable_table" if (n // 6) % 2 == 0 else "enable_table"
                        await admin.send_json({"action": action, "table_id": table, "ref": n})
                        await asyncio.sleep(0.125)

                async def flood() -> None:
                    base = hub.versions()[restaurant_id] or 0  # the hub sends versions in order, from its own
                    for n in range(1, 100_000):
                        pad = "x" * 16_000
                        hub.deliver(restaurant_id, base + n, json.dumps(
                            {"type": "table_update", "version": base + n, "pad": pad}))
                        await asyncio.sleep(0.1)

                traffic = asyncio.create_task(service() if stream == "service" else flood())
                await asyncio.sleep(3 * HEARTBEAT)  # reachable, it answers every ping and stays
                assert hub.count(restaurant_id) == 5
                assert seen[id(tablet)], "the tablet received updates across the link"

                link.cut()
                cut = time.monotonic()
                while hub.count(restaurant_id) == 5 and time.monotonic() - cut < 10 * HEARTBEAT:
                    await asyncio.sleep(0.01)
                removed = time.monotonic() - cut
                assert hub.count(restaurant_id) == 4
                assert removed <= 2 * HEARTBEAT, f"removed after {removed:.2f} s"
                print(f"{stream}: removed {removed:.2f} s after the cut")

                # Nothing of it is left: not the process's socket, nor one the kernel keeps retrying (dashboard
                # sockets give up after two heartbeats unacknowledged). A flood may overflow the queue before the
                # heartbeat notices: then it is closed with 1013 and, never taking the close frame, cut off after
                # the close grace.
                while (left := towards_tablet(link)) and time.monotonic() - cut < sockets.CLOSE_GRACE + 2:
                    await asyncio.sleep(0.05)
                assert left == [], left

                before = {id(ws): len(seen[id(ws)]) for ws in others}
                await asyncio.sleep(2 * HEARTBEAT)
                traffic.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await traffic
                # until the last update is in with every other (an action sent as traffic stopped may add one)
                await eventually(lambda: all(seen[id(ws)][-1:] == [hub.versions()[restaurant_id]] for ws in others))
                versions = seen[id(others[0])]
                assert versions == sorted(set(versions))
                for ws in others:  # the others carry on: every update, in order
                    assert len(seen[id(ws)]) > before[id(ws)]
                    assert seen[id(ws)] == versions
                if stream == "service":
                    assert acks and all(a["type"] == "ack" for a in acks)
                for task in readers:
                    task.cancel()
                await tablet.close()  # its own side gives up too (the link stays down)
    finally:
        await runner.cleanup()


async def test_a_frozen_dashboard_is_cut_off_after_its_close_grace(aiohttp_client, settings, db, monkeypatch):
    """A tablet that stops reading and never reads again: closed with 1013 once its buffer overflows, and
    when it has not taken even the close frame within the grace, its socket is cut and what waited is freed."""
    monkeypatch.setattr(sockets, "CLOSE_GRACE", 1.0)
    place = await make_place(db, settings, "frozen", 2)
    client = await aiohttp_client(create_app(settings))
    hub = client.app[hub_key]
    frozen = await frozen_tablet(client.port, place.admin, client.host)
    local_port = frozen.getsockname()[1]
    awake, _ = await dashboard(client, place.viewer)
    while not (frozen_connections := [c for c in hub.connections() if c.principal.role == "admin"]) \
            or frozen_connections[0].early is not None:
        await asyncio.sleep(0.01)  # until its snapshot is out: from then on, updates go to its socket
    (connection,) = frozen_connections
    assert open_between(client.port, local_port) == 1

    got = n = 0
    base = hub.versions()[place.actor.restaurant_id] or 0  # the hub sends versions in order, from its own
    while not connection.closing and n < 1000:  # until the kernel's buffers and the 256 KiB queue are full
        n += 1
        hub.deliver(place.actor.restaurant_id, base + n,
                    json.dumps({"type": "table_update", "version": base + n, "pad": "x" * 16_000}))
        while got < n:
            assert (await receive(awake))["version"] == base + got + 1
            got += 1
    closed = time.monotonic()
    assert connection.closing and hub.count(place.actor.restaurant_id) == 1
    print(f"closed (1013) after {n} updates of 16 KB")
    assert connection.transport.get_write_buffer_size() > 0, "the close frame waits behind what it never read"
    assert open_between(client.port, local_port) == 1

    while open_between(client.port, local_port) and time.monotonic() - closed < 5:
        await asyncio.sleep(0.05)
    assert open_between(client.port, local_port) == 0, "cut off: its socket is gone"
    assert tcp_state(frozen) == TCP_CLOSE, "reset: the kernel holds nothing for it either"
    assert 0.9 < time.monotonic() - closed < 1.0 + 1.0, "after its grace of 1 s, not before"
    await awake.send_json({"action": "ping"})
    assert await receive(awake) == {"type": "pong"}
    frozen.close()


def open_between(server_port: int, client_port: int) -> int:
    """Established TCP connections from the server's port to this client's port (as `ss` lists them)."""
    between = f"( sport = :{server_port} and dport = :{client_port} )"
    out = subprocess.run(["ss", "-Htn", "state", "established", between],
                         capture_output=True, text=True, check=True, timeout=10)
    return len(out.stdout.splitlines())


async def test_a_tablet_that_leaves_with_updates_still_queued_gets_them_and_its_close(aiohttp_client, settings, db):
    """Closing is the client's own choice here: what waits for it is sent, then the close echo; no reset."""
    place = await make_place(db, settings, "leaving", 2)
    client = await aiohttp_client(create_app(settings))
    hub = client.app[hub_key]
    leaving = await frozen_tablet(client.port, place.admin, client.host)  # not reading for now
    while not (connections := list(hub.connections())) or connections[0].early is not None:
        await asyncio.sleep(0.01)  # until its snapshot is out: from then on, updates go to its socket
    (connection,) = connections
    n = 0
    base = hub.versions()[place.actor.restaurant_id] or 0  # the hub sends versions in order, from its own
    while connection.transport.get_write_buffer_size() < 50_000 and n < 1000:  # well under the 256 KiB limit
        n += 1
        hub.deliver(place.actor.restaurant_id, base + n,
                    json.dumps({"type": "table_update", "version": base + n, "pad": "x" * 16_000}))
        await asyncio.sleep(0)
    assert not connection.closing and connection.transport.get_write_buffer_size() >= 50_000
    loop = asyncio.get_running_loop()
    mask = os.urandom(4)
    code = struct.pack("!H", 1000)
    await loop.sock_sendall(leaving, bytes([0x88, 0x80 | len(code)]) + mask + bytes(
        b ^ mask[i % 4] for i, b in enumerate(code)))  # a masked close frame, 1000
    await eventually(lambda: connection.ws.close_code == 1000)  # the server took it, with the updates still queued
    assert connection.transport.get_write_buffer_size() > 0
    received = bytearray()
    while chunk := await asyncio.wait_for(loop.sock_recv(leaving, 1 << 20), 5):  # a reset would raise here
        received += chunk
    leaving.close()
    assert received.count(b'"type": "table_update"') + received.count(b'"type":"table_update"') == n
    assert received.endswith(b"\x88\x02" + code), "the close echo comes last"
