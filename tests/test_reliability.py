"""It holds: crashes lose nothing acknowledged, backups are consistent under load, races keep the invariants,
output is escaped everywhere, static files stay in static/. (Figures and full-size runs: docs/reliability.md.)"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from app import STATIC_DIR, create_app
from app.db import Database
from app.services.core import Actor
from app.web.socket import MAX_MESSAGE_BYTES
from bench.crash import run as crash_loop
from bench.load import upgrade_request
from bench.servers import RUN_PY

from .html import cards
from .support import SOCKET, Server, make_place, receive, signed_in


async def test_killing_the_server_loses_no_acknowledged_action(tmp_path):
    tally = await crash_loop(kills=3, directory=tmp_path)
    assert tally.kills == 3 and len(tally.acknowledged) > 20
    assert tally.lost == []
    assert tally.integrity == ["ok"] * 3


def test_a_backup_under_write_load_is_consistent_and_restores(tmp_path):
    server = Server(tmp_path)
    key = next(line for line in server.output if line.startswith("Admin key")).rsplit(" ", 1)[1]
    db = tmp_path / "maitre.db"

    async def write_while_backing_up() -> list[subprocess.CompletedProcess[str]]:
        import aiohttp

        stop = asyncio.Event()

        async def toggle(session: aiohttp.ClientSession) -> None:
            step = 0
            while not stop.is_set():
                action = ("disable", "enable")[step % 2]
                async with session.post(f"http://127.0.0.1:{server.port}/admin/table/7/{action}",
                                        headers={"Authorization": f"Bearer {key}", "Accept": "application/json"}):
                    step += 1
                await asyncio.sleep(0.11)

        async with aiohttp.ClientSession() as session:
            writer = asyncio.create_task(toggle(session))
            copies = []
            for n in range(3):
                await asyncio.sleep(0.3)
                copies.append(await asyncio.to_thread(
                    subprocess.run, [sys.executable, str(RUN_PY), "backup", str(tmp_path / f"copy{n}.db"),
                                     "--db", str(db)], capture_output=True, text=True, timeout=60))
            stop.set()
            await writer
        return copies

    try:
        copies = asyncio.run(write_while_backing_up())
    finally:
        assert server.stop() == 0
    for n, copy in enumerate(copies):
        assert copy.returncode == 0, copy.stderr
        assert "integrity check ok" in copy.stdout
        conn = sqlite3.connect(tmp_path / f"copy{n}.db")
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        version, events = conn.execute(
            "SELECT version, (SELECT max(version) FROM audit_event WHERE restaurant_id = r.id) FROM restaurant AS r"
        ).fetchone()
        conn.close()
        assert version == events  # the copy is one moment: every version it counts, it has the change of
    restored = asyncio.run(_tables_in(tmp_path / "copy2.db"))
    assert len(restored) == 12


async def _tables_in(path: Path) -> list[dict]:
    from app.services.tables import TableService
    from app.settings import Settings

    db = await Database.open(str(path))
    try:
        return (await TableService(db, Settings.from_env(environ={}, db_path=str(path))).list_tables(1))[1]
    finally:
        await db.close()


async def test_racing_tablets_keep_every_invariant(aiohttp_client, settings, db, tables):
    place = await make_place(db, settings, "busy", 12)
    ids = [place.ids[str(n)] for n in range(1, 13)]
    for table_id in ids[:6]:
        await tables.seat_table(place.actor, table_id, 2)
    client = await aiohttp_client(create_app(dataclasses.replace(settings, max_connections_per_key=8)))
    tablets = [await client.ws_connect(f"{SOCKET}?token={place.admin}") for _ in range(8)]
    views = []
    for ws in tablets:
        snapshot = await receive(ws)
        views.append({"version": snapshot["version"], "versions": [],
                      "tables": {t["id"]: t for t in snapshot["tables"]}})
    # conflicting actions, all at once: moves to one target, closes against restores, disables against moves
    plans = []
    for n, ws in enumerate(tablets):
        for step in range(6):
            source, target = ids[(n + step) % 6], ids[6 + (step % 3)]
            plans.append((ws, {"action": "move_table", "from_table_id": source, "to_table_id": target}))
            plans.append((ws, {"action": ("close_table", "restore_table")[step % 2], "table_id": source}))
            plans.append((ws, {"action": "disable_table", "table_id": target}))
            plans.append((ws, {"action": "enable_table", "table_id": target}))
    await asyncio.gather(*(ws.send_json({**message, "ref": i}) for i, (ws, message) in enumerate(plans)))

    async def follow(ws, view) -> None:
        answered, expected = 0, sum(1 for w, _ in plans if w is ws)
        while answered < expected:
            message = await receive(ws, timeout=10)
            if message["type"] == "table_update":
                view["versions"].append(message["version"])
                view["tables"][message["table"]["id"]] = message["table"]
            elif message["type"] in ("ack", "error"):
                answered += 1

    await asyncio.gather(*(follow(ws, view) for ws, view in zip(tablets, views)))
    version, rows = await tables.list_tables(place.actor.restaurant_id)  # every action answered: the last version
    for ws, view in zip(tablets, views):  # what is still in flight to each tablet, up to that version, then quiet
        while True:
            caught_up = (view["versions"] or [view["version"]])[-1] >= version
            try:
                message = await receive(ws, timeout=0.3 if caught_up else 10)
            except TimeoutError:
                break
            if message["type"] == "table_update":
                view["versions"].append(message["version"])
                view["tables"][message["table"]["id"]] = message["table"]
    truth = {row["id"]: row for row in rows}
    for view in views:
        assert view["versions"] == sorted(set(view["versions"])), "versions strictly increasing, none twice"
        assert {i: (t["status"], t["session"]) for i, t in view["tables"].items()} == \
            {i: (t["status"], t["session"]) for i, t in truth.items()}, "every tablet sees what the database holds"
    conn = sqlite3.connect(settings.db_path)
    try:
        assert conn.execute("SELECT count(*) FROM table_session AS s JOIN dining_table AS t ON t.id = s.table_id"
                            " WHERE s.state = 'active' AND t.enabled = 0").fetchone() == (0,)
        assert conn.execute("SELECT max(n) FROM (SELECT count(*) AS n FROM table_session WHERE state = 'active'"
                            " GROUP BY table_id)").fetchone()[0] == 1
    finally:
        conn.close()
    assert sum(row["status"] == "occupied" for row in rows) <= 6  # no party appeared from nowhere


XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(2)>', "'><svg onload=alert(3)>",
       "</textarea><script>alert(4)</script>", "javascript:alert(5)"]


async def test_names_labels_and_areas_are_escaped_in_every_page_and_fragment(aiohttp_client, settings, db,
                                                                              restaurants, tables, floor, keys):
    restaurant = await restaurants.add("xss", XSS[0][:80], tables=0)
    actor = Actor(restaurant["id"], "setup", "admin")
    for n, payload in enumerate(XSS):
        result = await floor.add_table(actor, payload[:40], 2, XSS[(n + 1) % len(XSS)][:40])
        assert result.ok, result
    _, rows = await tables.list_tables(actor.restaurant_id)
    await tables.seat_table(actor, rows[0]["id"], 2)
    await tables.seat_table(actor, rows[1]["id"], 2)  # so that its move and join pages list the other tables
    _, admin = await keys.add("xss")
    client = await aiohttp_client(create_app(settings))
    auth = {"Authorization": f"Bearer {admin}"}
    tokens = await floor.qr_tokens(actor.restaurant_id)
    await signed_in(client, admin)
    ws = await client.ws_connect(f"{SOCKET}?token={admin}")
    snapshot = await receive(ws)
    await ws.send_json({"action": "close_table", "table_id": rows[0]["id"]})
    pushed = await receive(ws)
    assert (await receive(ws))["type"] == "ack"
    note = " ".join(XSS)  # a party's note is typed by the staff: every payload at once (137 characters)
    await ws.send_json({"action": "set_note", "table_id": rows[1]["id"], "note": note})
    noted = await receive(ws)
    assert (await receive(ws))["type"] == "ack"
    assert noted["table"]["session"]["note"] == note  # the table dict carries it as text, as typed
    pages = {
        "dashboard": await (await client.get("/admin/dashboard")).text(),
        "grid": await (await client.get("/admin/tables", headers=auth)).text(),
        "qr": await (await client.get("/admin/tables/qr")).text(),
        "guest": await (await client.get(f"/t/{tokens[rows[1]['id']]}")).text(),
        "move": await (await client.get(f"/admin/tables/{rows[1]['id']}/move", allow_redirects=False)).text(),
        "join": await (await client.get(f"/admin/tables/{rows[1]['id']}/join", allow_redirects=False)).text(),
        "floor": await (await client.get("/admin/floor", allow_redirects=False)).text(),
        "toast": await (await client.post(f"/admin/table/{rows[2]['id']}/close", headers=auth)).text(),
        "snapshot": snapshot["html"],
        "push": pushed["html"],
        "noted": noted["html"],
    }
    for name, html in pages.items():
        for marker in ("<script>alert", "<img src=x", "<svg onload", "onerror=alert(2)>", "</textarea>"):
            assert marker not in html, f"{marker!r} unescaped in the {name}"
    assert len(cards(pages["dashboard"])) == len(XSS)
    # the move and join pages themselves: every other table is free
    assert pages["move"].count('name="to_table_id"') == len(XSS) - 1
    assert pages["join"].count('name="with_table_id"') == len(XSS) - 1
    # shown, escaped: the note on the dashboard's card and the pushed one; every label and area on the floor page
    for html in (pages["dashboard"], pages["noted"]):
        (card,) = [card for card in cards(html) if card["id"] == f"table-{rows[1]['id']}"]
        assert note in card["text"]
        assert f'<p class="party-note">{escape(note)}</p>' in html
    assert [item for item in list_items(pages["floor"]) if item.startswith("floor-")] == [
        f"floor-{row['id']}" for row in rows]
    for n, payload in enumerate(XSS):
        assert f'name="label" value="{escape(payload)}"' in pages["floor"]
        assert f'name="area" value="{escape(XSS[(n + 1) % len(XSS)])}"' in pages["floor"]


class _ListItems(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "li":
            self.ids.append(dict(attrs).get("id") or "")


def list_items(html: str) -> list[str]:
    """The id of every list item in `html`, in order."""
    parser = _ListItems()
    parser.feed(html)
    parser.close()
    return parser.ids


@pytest.mark.parametrize("path", [
    "/static/../app/db.py", "/static/%2e%2e/app/db.py", "/static/..%2fapp%2fdb.py", "/static/%2e%2e%2fapp%2fdb.py",
    "/static/....//app/db.py", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
])
async def test_static_files_cannot_escape_static(aiohttp_client, settings, path):
    client = await aiohttp_client(create_app(settings))
    response = await client.get(path)
    assert response.status in (400, 403, 404)
    assert "aiosqlite" not in await response.text() and "root:" not in await response.text()


async def test_a_symlink_in_static_is_not_followed_out(aiohttp_client, settings):
    link = STATIC_DIR / "escape-test.py"
    os.symlink(Path(__file__).resolve().parent.parent / "app" / "db.py", link)
    try:
        client = await aiohttp_client(create_app(settings))
        response = await client.get("/static/escape-test.py")
        assert response.status in (403, 404)
    finally:
        link.unlink()


def test_the_log_never_shows_a_key_or_a_session(tmp_path):
    server = Server(tmp_path)
    key = next(line for line in server.output if line.startswith("Admin key")).rsplit(" ", 1)[1]

    async def visit() -> str:
        import aiohttp

        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            base = f"http://127.0.0.1:{server.port}"
            async with session.post(f"{base}/admin/login", data={"key": key}, headers={"Origin": base},
                                    allow_redirects=False) as response:
                session_token = response.cookies["maitre_session"].value
            async with session.ws_connect(f"{base}/admin/ws/dashboard", headers={"Origin": base}) as ws:
                assert json.loads((await ws.receive()).data)["type"] == "tables_snapshot"
            async with session.ws_connect(f"{base}/admin/ws/dashboard?token={key}") as ws:
                await ws.receive()
            async with session.get(f"{base}/admin/api/tables", headers={"Authorization": f"Bearer {key}"}):
                pass
            async with session.get(f"{base}/admin/api/tables", headers={"Authorization": "Bearer mtr_wrong"}):
                pass
            return session_token

    try:
        session_token = asyncio.run(visit())
    finally:
        assert server.stop() == 0
    log = server.process_output().split("Running on", 1)[1]
    assert "/admin/api/tables" in log and "/admin/ws/dashboard" in log
    for secret in (key, session_token, "mtr_wrong"):
        assert secret not in log
    conn = sqlite3.connect(tmp_path / "maitre.db")
    dump = "\n".join(conn.iterdump())
    conn.close()
    assert key not in dump and session_token not in dump


async def test_reconnect_churn_leaves_memory_and_files_flat(tmp_path):
    from bench.soak import run as soak

    result = await soak(tmp_path, sockets=100, seconds=10, rate=20, sample=5, report=lambda line: None)
    assert result.reconnects >= 100
    assert result.fds_end == result.fds_start
    assert result.rss_end < result.rss_start * 1.1  # after the warm-up: the bounded buffers are already full


async def test_a_compressed_frame_that_inflates_past_the_limit_is_refused(aiohttp_client, settings, db):
    import dataclasses

    from aiohttp import WSMsgType

    place = await make_place(db, settings, "zip", 2)
    client = await aiohttp_client(create_app(dataclasses.replace(settings, ws_compression=True)))
    ws = await client.ws_connect(f"{SOCKET}?token={place.admin}", compress=15)
    assert ws.compress, "the server agreed to permessage-deflate"
    await receive(ws)
    await ws.send_str('{"action":"ping","pad":"' + "a" * 200_000 + '"}')  # a few hundred bytes on the wire
    closing = await ws.receive(timeout=5)
    assert closing.type is WSMsgType.CLOSE and closing.data == 1009
    again = await client.ws_connect(f"{SOCKET}?token={place.admin}", compress=15)
    await receive(again)
    await again.send_str('{"action":"ping"}')
    assert (await receive(again)) == {"type": "pong"}


async def test_slowly_dripped_fragments_cannot_pin_memory(aiohttp_client, settings, db):
    """A raw client sends one message in 100-byte continuation frames, slowly: past 16 KiB in all, it is cut off."""
    import struct

    place = await make_place(db, settings, "drip", 1)
    client = await aiohttp_client(create_app(settings))
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(upgrade_request(client.host, client.port, place.admin))
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")

    def fragment(payload: bytes, first: bool, last: bool) -> bytes:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        opcode = 0x1 if first else 0x0
        return struct.pack("!BB", (0x80 if last else 0) | opcode, 0x80 | len(payload)) + mask + masked

    received = bytearray()

    async def collect() -> None:  # read while writing: once the server closes, what it sent is still here
        try:
            while chunk := await reader.read(65536):
                received.extend(chunk)
        except ConnectionError:
            pass

    collecting = asyncio.create_task(collect())
    sent = 0
    for n in range(200):  # 20,000 bytes offered, 100 at a time
        try:
            writer.write(fragment(b"x" * 100, first=n == 0, last=False))
            await writer.drain()
        except ConnectionError:
            break
        sent += 100
        await asyncio.sleep(0.01)
    await asyncio.wait_for(collecting, 5)
    close = bytes(received[received.rindex(b"\x88"):])
    assert struct.unpack("!H", close[2:4])[0] == 1009, "refused once the fragments passed 16 KiB"
    assert MAX_MESSAGE_BYTES < sent < MAX_MESSAGE_BYTES + 2000, "cut off soon after the limit, not at the end"
    writer.close()


def test_oversized_frames_leave_the_servers_memory_where_it_was(tmp_path):
    server = Server(tmp_path)
    key = next(line for line in server.output if line.startswith("Admin key")).rsplit(" ", 1)[1]

    def rss_kib() -> int:
        status = Path(f"/proc/{server.process.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])

    async def flood(times: int) -> list[int]:
        import aiohttp

        codes = []
        async with aiohttp.ClientSession() as session:
            for _ in range(times):
                async with session.ws_connect(f"http://127.0.0.1:{server.port}/admin/ws/dashboard?token={key}") as ws:
                    await ws.receive()
                    try:
                        await ws.send_str("x" * (1 << 20))  # 1 MiB, against a 4 KiB limit
                        codes.append((await ws.receive(timeout=10)).data)
                    except ConnectionError:
                        codes.append("cut off while sending")  # the server closed before the rest arrived
        return codes

    try:
        asyncio.run(flood(10))  # warm up: code paths, buffers
        before = rss_kib()
        codes = asyncio.run(flood(100))  # 100 MiB offered
        after = rss_kib()
    finally:
        assert server.stop() == 0
    assert set(codes) <= {1009, "cut off while sending"} and len(codes) == 100
    assert after - before < 8 * 1024, f"RSS grew from {before} to {after} KiB"
