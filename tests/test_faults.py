"""Fault runs (issue 16): two `run.py serve` over one real redis-server, six dashboards acting all along, while
redis-server is killed or stopped and started again 20 times and one server is SIGKILLed 10 times.

At the end every dashboard's grid (its snapshot and the updates it applied, by table id) equals the database,
every acknowledged action is in the audit log with the version and table its ack and update said, and no
dashboard saw a version twice, out of order or skipped within one connection. The figures of a run are printed
(`-s` shows them) and recorded in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from app.db import Database
from app.services.tables import TableService
from app.settings import Settings

from .support import SOCKET, RedisServer, Server, make_place

DASHBOARDS = 6  # even ones at home on A, odd ones on B
TABLES = 12  # two of their own per dashboard: no dashboard's action is refused for another's
REDIS_FAULTS = 20  # every other one SIGKILL, the others a clean stop
SERVER_KILLS = 10  # A and B in turn
PACE = 0.12  # seconds between a dashboard's ack and its next action (the socket allows ten a second)
WAIT = 20  # seconds any one condition may take on a loaded machine before the run fails
AWAY = "bus: Redis at"  # ... is unreachable: the change of mode, logged once each way
BACK = "bus: on Redis at"
OTHER = {"A": "B", "B": "A"}


class Lost(Exception):
    """The dashboard's connection ended."""


LOST: dict[str, Any] = {"type": "lost"}  # the answer to an action still waiting when its connection ended


@dataclasses.dataclass
class Ack:
    version: int
    action: str
    table_id: int
    server: str
    at: float  # when the dashboard had the ack (time.monotonic)


@dataclasses.dataclass
class Link:
    """One socket's life: where, from which snapshot, and every version it was sent."""

    server: str
    start: int
    last: int
    first_update_at: float | None = None
    versions: list[int] = dataclasses.field(default_factory=list)
    table_of: dict[int, int] = dataclasses.field(default_factory=dict)  # version -> the table its update named
    out_of_order: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # (after, got)
    closed: bool = False


class Run:
    """What every dashboard saw, and the figures of the run."""

    def __init__(self) -> None:
        self.acks: list[Ack] = []
        self.errors: list[dict[str, Any]] = []
        self.mismatched_acks: list[tuple[Ack, int | None]] = []  # the ack's version named another table on its link
        self.arrivals: dict[tuple[str, int], float] = {}  # (server, version) -> first time a dashboard there had it
        self.reconnects = 0  # after the dashboard's server was killed
        self.moves_home = 0  # back to its own server, once it runs again
        self.stopping = False
        self.quiet: str | None = None  # the server whose dashboards hold their actions (they still read)


class Dashboard:
    """A real aiohttp WebSocket client acting on its own tables at a steady pace and reading everything sent."""

    def __init__(self, n: int, run: Run, urls: dict[str, str], key: str, tables: list[int]) -> None:
        self.n = n
        self.run = run
        self.urls = urls
        self.key = key
        self.tables = tables
        self.home = "AB"[n % 2]
        self.target = self.home  # the server the test wants it on: the client decides where it connects
        self.links: list[Link] = []
        self.grid: dict[int, dict[str, Any]] = {}
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.step = 0

    @property
    def link(self) -> Link | None:
        return self.links[-1] if self.links and not self.links[-1].closed else None

    def on(self, server: str) -> bool:
        link = self.link
        return link is not None and link.server == server

    def move_to(self, server: str) -> None:
        """Leave this server for `server` after the action under way (a fresh snapshot there)."""
        self.target = server

    async def live(self, session: aiohttp.ClientSession) -> None:
        while True:
            server = self.target
            try:
                ws = await session.ws_connect(f"{self.urls[server]}{SOCKET}?token={self.key}")
            except (aiohttp.ClientError, OSError):
                self.target = OTHER[server]  # not up (yet): try the other one
                await asyncio.sleep(0.05)  # a tablet's reconnect backoff, not a wait on the test's part
                continue
            dropped = await self.connected(ws, server)
            if self.run.stopping:
                return
            if dropped:  # its server went away: the other one is up
                self.target = OTHER[server]
                self.run.reconnects += 1

    async def connected(self, ws: aiohttp.ClientWebSocketResponse, server: str) -> bool:
        """Snapshot, then act while reading; returns whether the server dropped the connection.

        Once the run stops, it keeps reading until the test closes the socket."""
        self.ws = ws
        try:
            first = await ws.receive(timeout=WAIT)
            if first.type is not WSMsgType.TEXT:
                return True
            snapshot = json.loads(first.data)
            assert snapshot["type"] == "tables_snapshot", snapshot
            self.grid = {table["id"]: table for table in snapshot["tables"]}
            link = Link(server, snapshot["version"], snapshot["version"])
            self.links.append(link)
            reader = asyncio.create_task(self.read(ws, link))
            try:
                while not self.run.stopping and self.target == server and not reader.done():
                    if self.run.quiet != server:
                        await self.act(ws, link, reader)
                    await asyncio.sleep(PACE)
            except (Lost, aiohttp.ClientError, ConnectionError):
                pass
            if not self.run.stopping:
                await ws.close()
            await reader
            return self.target == server and not self.run.stopping
        finally:
            self.ws = None

    async def read(self, ws: aiohttp.ClientWebSocketResponse, link: Link) -> None:
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                if data["type"] == "table_update":
                    self.apply(link, data)
                elif data["type"] in ("ack", "error") and data.get("ref") in self.waiting:
                    self.waiting.pop(data["ref"]).set_result(data)
        finally:
            link.closed = True
            for future in self.waiting.values():
                if not future.done():
                    future.set_result(LOST)
            self.waiting.clear()

    def apply(self, link: Link, update: dict[str, Any]) -> None:
        version = update["version"]
        link.versions.append(version)
        if version != link.last + 1:
            link.out_of_order.append((link.last, version))
        if version <= link.last:
            return  # a version seen already on this connection: not applied again
        if link.first_update_at is None:
            link.first_update_at = time.monotonic()
        link.last = version
        link.table_of[version] = update["table"]["id"]
        self.grid[update["table"]["id"]] = update["table"]
        self.run.arrivals.setdefault((link.server, version), time.monotonic())

    def next_action(self) -> dict[str, Any]:
        """Seat, note, close, disable, enable its tables in turn, by each one's state as this dashboard sees it."""
        self.step += 1
        table_id, turn = self.tables[self.step % len(self.tables)], self.step // len(self.tables)
        table = self.grid[table_id]
        if table["status"] == "disabled":
            return {"action": "enable_table", "table_id": table_id}
        if table["status"] == "occupied":
            if turn % 2 and table["session"]["note"] != f"d{self.n}":
                return {"action": "set_note", "table_id": table_id, "note": f"d{self.n}"}
            return {"action": "close_table", "table_id": table_id}
        if turn % 3 == 0:
            return {"action": "disable_table", "table_id": table_id}
        return {"action": "seat_table", "table_id": table_id, "guest_count": 1 + turn % 2}

    async def act(self, ws: aiohttp.ClientWebSocketResponse, link: Link, reader: asyncio.Task[None]) -> None:
        request = self.next_action()
        ref = self.step
        if reader.done():
            raise Lost()
        self.waiting[ref] = asyncio.get_running_loop().create_future()  # the reader answers it, or ends it
        await ws.send_json({**request, "ref": ref})
        reply = await asyncio.wait_for(self.waiting[ref], WAIT)
        if reply is LOST:
            raise Lost()
        if reply["type"] == "error":
            self.run.errors.append(reply)
            return
        ack = Ack(reply["version"], request["action"], request["table_id"], link.server, time.monotonic())
        self.run.acks.append(ack)
        if link.table_of.get(ack.version) != ack.table_id:  # the ack comes after its update, on its connection
            self.run.mismatched_acks.append((ack, link.table_of.get(ack.version)))


def modes(server: Server) -> bool:
    """Whether each start of the server logged being on Redis first, then away and back in turn."""
    for start in server.runs:
        lines = [line for line in start.output if AWAY in line or BACK in line]
        if any((AWAY in line) != (n % 2 == 1) for n, line in enumerate(lines)):
            return False
    return True


def said(servers: dict[str, Server], what: str) -> dict[str, int]:
    """How many lines of each server's output (every start of it) say `what`."""
    return {name: sum(what in line for r in server.runs for line in r.output) for name, server in servers.items()}


async def until(condition: Any, what: str, timeout: float = WAIT) -> float:
    """Wait for `condition()`; returns when it held (time.monotonic). Fails with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"after {timeout} s: {what}"
        await asyncio.sleep(0.01)
    return time.monotonic()


def stored(db_path: Path, restaurant_id: int) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT version FROM restaurant WHERE id = ?", (restaurant_id,)).fetchone()[0]
    finally:
        conn.close()


def audit_log(db_path: Path, restaurant_id: int) -> dict[int, tuple[str, list[int]]]:
    """The restaurant's events by version: (action, table ids)."""
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute("SELECT version, action, table_ids FROM audit_event WHERE restaurant_id = ?",
                            (restaurant_id,)).fetchall()
    finally:
        conn.close()
    return {version: (action, json.loads(table_ids)) for version, action, table_ids in rows}


async def test_redis_and_server_faults_leave_no_dashboard_stale_and_lose_no_acknowledged_action(
        tmp_path: Path, redis_server: RedisServer) -> None:
    began = time.monotonic()
    db_path = tmp_path / "maitre.db"
    settings = Settings.from_env(environ={}, db_path=str(db_path))
    db = await Database.open(str(db_path))
    try:
        place = await make_place(db, settings, "bistro", TABLES)
    finally:
        await db.close()
    restaurant_id = place.actor.restaurant_id
    ids = sorted(place.ids.values())
    args = ("serve", "--db", str(db_path), "--no-demo", "--redis-url", redis_server.url, "--heartbeat-seconds", "1",
            "--max-connections-per-key", "50", "--max-connections-per-restaurant", "50")
    servers: dict[str, Server] = {}
    for name in "AB":
        (tmp_path / name).mkdir()
        servers[name] = Server(tmp_path / name, *args)
    run = Run()
    urls = {name: server.url.replace("http", "ws") for name, server in servers.items()}
    dashboards = [Dashboard(n, run, urls, place.admin, ids[2 * n:2 * n + 2]) for n in range(DASHBOARDS)]
    outages: list[float] = []  # seconds from the fault until both servers were on Redis again
    # a change acked on one server during an outage, until a dashboard on the other had it: with that server's
    # dashboards holding their actions (the watcher's road), and with every dashboard acting
    by_watcher: list[float] = []
    crossings: list[float] = []
    moved: list[float] = []  # a server killed, until its dashboards had an update on the other one
    try:
        await until(lambda: all(said(servers, BACK).values()), "both servers on Redis")
        async with aiohttp.ClientSession() as session:
            living = [asyncio.create_task(d.live(session)) for d in dashboards]
            await until(lambda: all(d.link and d.link.first_update_at for d in dashboards), "every dashboard acting")
            kills = 0
            for fault in range(REDIS_FAULTS + SERVER_KILLS):
                if fault % 3 == 2:
                    victim = "AB"[kills % 2]
                    kills += 1
                    moved.extend(await kill_server(servers, victim, dashboards))
                else:
                    outage, watched, other = await redis_fault(redis_server, servers, run, dashboards, len(outages))
                    outages.append(outage)
                    by_watcher.append(watched)
                    crossings.append(other)
            run.stopping = True
            for dashboard in dashboards:  # the last action of each, answered
                await until(lambda d=dashboard: not d.waiting, f"dashboard {dashboard.n}'s last ack")
            final = stored(db_path, restaurant_id)
            settled = time.monotonic() + 10
            while time.monotonic() < settled and not all(d.link and d.link.last == final for d in dashboards):
                await asyncio.sleep(0.02)
            db = await Database.open(str(db_path))
            try:
                version, rows = await TableService(db, settings).list_tables(restaurant_id)
            finally:
                await db.close()
            for dashboard in dashboards:
                if dashboard.ws is not None:
                    await dashboard.ws.close()
            await asyncio.gather(*living)
        assert version == final
        truth = {row["id"]: row for row in rows}
        stale = [d.n for d in dashboards if d.grid != truth or d.links[-1].last != final]
        events = audit_log(db_path, restaurant_id)
        lost = [a for a in run.acks if a.version not in events or events[a.version][0] != a.action
                or a.table_id not in events[a.version][1]]
        disordered = [(d.n, link.server, link.out_of_order) for d in dashboards for link in d.links
                      if link.out_of_order]
        away, back = said(servers, AWAY), said(servers, BACK)
        print(f"\nfault run: {len(run.acks)} actions acknowledged ({len(run.errors)} refused) in "
              f"{time.monotonic() - began:.1f} s; {REDIS_FAULTS} Redis faults ({REDIS_FAULTS // 2} SIGKILL, "
              f"{REDIS_FAULTS // 2} clean stop), {SERVER_KILLS} servers SIGKILLed; {run.reconnects} reconnects to "
              f"the other server, {run.moves_home} moves back home; {sum(len(d.links) for d in dashboards)} "
              f"connections; versions {dashboards[0].links[0].start}..{final}")
        ms = {name: (statistics.median(times) * 1000, max(times) * 1000) for name, times in
              (("outage", outages), ("watcher", by_watcher), ("acting", crossings), ("moved", moved))}
        print("Redis outage, fault to both servers back on it: median {:.0f} ms, max {:.0f} ms".format(*ms["outage"]))
        print("a change during an outage, on the other server's dashboards after: through the watcher median "
              "{:.0f} ms, max {:.0f} ms; with both acting median {:.0f} ms, max {:.0f} ms".format(
                  *ms["watcher"], *ms["acting"]))
        print("a killed server's dashboards, updated on the other after: median {:.0f} ms, max {:.0f} ms".format(
            *ms["moved"]))
        print(f"mode changes logged: away {away}, back {back}; stale dashboards {len(stale)}, lost acks {len(lost)}, "
              f"connections with a version twice, out of order or skipped {len(disordered)}")
        assert stale == [], f"dashboards whose grid is not the database's: {stale}"
        assert lost == [], f"acknowledged actions not in the audit log as acked: {lost[:5]}"
        assert disordered == [], f"versions twice, out of order or skipped on a connection: {disordered[:5]}"
        assert run.mismatched_acks == [], f"acks whose version's update named another table: {run.mismatched_acks[:5]}"
        assert run.errors == [], f"actions refused: {run.errors[:5]}"
        assert run.reconnects >= SERVER_KILLS, "each kill sent its dashboards to the other server"
        assert all(modes(server) for server in servers.values()), "the mode change logged once each way"
        assert all(n >= REDIS_FAULTS for n in away.values()), "every outage noticed and logged"
    finally:
        for server in servers.values():
            if server.process.poll() is None:
                server.stop()
            else:
                server.runs[-1].close()


async def redis_fault(redis_server: RedisServer, servers: dict[str, Server], run: Run, dashboards: list[Dashboard],
                      n: int) -> tuple[float, float, float]:
    """Kill (even n) or stop redis-server; meanwhile see a change made through one server reach the other's
    dashboards, which hold their own actions (so only the database watcher can tell that server), and then one
    the other way with every dashboard acting (a server that makes a change of its own reads the versions below
    it from the log at once). Then start it again and wait until both servers say they are on it.
    Returns the outage (fault to back), and the two crossings: the watcher's, the other."""
    here, there = ("A", "B") if n % 2 == 0 else ("B", "A")
    back = said(servers, BACK)
    began = time.monotonic()
    await asyncio.to_thread(redis_server.kill if n % 2 == 0 else redis_server.stop)
    run.quiet = there
    await until(lambda: not any(d.waiting for d in dashboards if d.on(there)), f"{there}'s last actions answered")
    watched = await crossing(run, here, there, time.monotonic())
    run.quiet = None
    other = await crossing(run, there, here, time.monotonic())
    await asyncio.to_thread(redis_server.start)
    returned = await until(lambda: all(said(servers, BACK)[s] > back[s] for s in "AB"), "both servers on Redis again")
    return returned - began, watched, other


async def crossing(run: Run, here: str, there: str, since: float) -> float:
    """From the ack of the first action acknowledged on `here` after `since` until a dashboard on `there` had it."""
    await until(lambda: any(a.at > since and a.server == here for a in run.acks), f"an action acked on {here}")
    ack = next(a for a in run.acks if a.at > since and a.server == here)
    await until(lambda: (there, ack.version) in run.arrivals,
                f"version {ack.version}, made on {here} with Redis away, on {there}")
    return run.arrivals[(there, ack.version)] - ack.at


async def kill_server(servers: dict[str, Server], victim: str, dashboards: list[Dashboard]) -> list[float]:
    """SIGKILL one server: its dashboards go to the other and get a snapshot and then updates there; start it
    again on its port, and send its own dashboards back to it. Returns how long each took to be updated."""
    other = OTHER[victim]
    there = [d for d in dashboards if d.on(victim)]
    assert there, f"no dashboard on {victim}"
    before = {d.n: len(d.links) for d in there}
    server = servers[victim]
    killed = time.monotonic()
    server.process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(server.process.wait)
    server.runs[-1].close()

    def caught_up(d: Dashboard) -> bool:
        link = d.link
        return (len(d.links) > before[d.n] and link is not None and link.server == other
                and d.links[before[d.n]].first_update_at is not None)

    await until(lambda: all(caught_up(d) for d in there), f"{victim}'s dashboards updated on {other}")
    updated = [(d.links[before[d.n]].first_update_at or 0) - killed for d in there]
    back = said(servers, BACK)[victim]
    await asyncio.to_thread(server.start)
    await until(lambda: said(servers, BACK)[victim] > back, f"{victim} on Redis after its restart")
    for d in there:
        if d.home == victim:
            d.move_to(victim)
            d.run.moves_home += 1
    await until(lambda: all(d.on(d.home) and d.link and d.link.first_update_at for d in there),
                f"dashboards back on {victim} and updated")
    return updated
