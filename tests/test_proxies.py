"""Behind a reverse proxy, as docs/deploy.md sets it up: the guide's own nginx and Caddy configs
(docs/deploy/), run by the real programs in front of a real `python run.py serve` process that
trusts the proxy at 127.0.0.1 (docs/deploy/maitre.env), and the guide's systemd units.

Every client is a device of its own: it connects from a loopback address of its own (127.0.0.2,
127.0.0.3, ...), so the proxy sees each as a different phone or tablet, as on a restaurant's Wi-Fi.
The browser tests through the same proxies are in tests/browser/test_proxies.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp
import pytest

from app.auth import SIGN_IN_COOKIE
from app.settings import Settings
from bench.servers import RUN_PY

from .support import (
    DEPLOY,
    PUBLIC_NAME,
    ROOT,
    SOCKET,
    Proxy,
    Server,
    behind_proxy,
    device,
    environment,
    eventually,
    free_port,
    receive,
    service_flags,
    unavailable,
)

# where each proxy's config sets the deadline for a request's headers, in seconds
HEADER_DEADLINES = {"nginx": ("nginx.conf", r"^\s*client_header_timeout (\d+)s;"),
                    "caddy": ("Caddyfile", r"^\s*read_header (\d+)s$")}
FORGED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
          "Forwarded": 'for=203.0.113.8;proto=https;host="evil.example"'}


@pytest.fixture(params=["nginx", "caddy"])
def deployed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Proxy]]:
    """Maître (the demo restaurant) behind nginx or Caddy, each from the guide's config."""
    maitre, proxy = behind_proxy(request.param, tmp_path)
    yield maitre, proxy
    proxy.stop()
    assert maitre.stop() == 0, "Maître did not stop cleanly:\n" + maitre.process_output()


def guest_page(maitre: Server, label: str) -> str:
    """The path of a demo table's guest page (`/t/<code>`), as `run.py table list` gives it."""
    listing = subprocess.run([sys.executable, str(RUN_PY), "table", "list", "demo", "--json", "--db", str(maitre.db)],
                             capture_output=True, text=True, timeout=60, env=environment(), check=True).stdout
    url = next(row["guest_url"] for row in json.loads(listing) if row["label"] == label)
    return "/t/" + url.rsplit("/t/", 1)[1]


async def sign_in(phone: aiohttp.ClientSession, url: str, key: str, headers: dict[str, str] | None = None,
                  origin: str | None = None) -> aiohttp.ClientResponse:
    """The sign-in form posted as a browser posts it from the page at `url`."""
    async with phone.post(f"{url}/admin/login", data={"key": key}, allow_redirects=False,
                          headers={"Origin": origin or url, **(headers or {})}) as response:
        await response.read()
        return response


def sign_in_cookie(response: aiohttp.ClientResponse) -> SimpleCookie:
    cookie = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", ()):
        cookie.load(header)
    assert SIGN_IN_COOKIE in cookie, response.headers
    return cookie


async def test_signing_in_through_the_proxy_gives_a_secure_cookie_and_a_live_socket(deployed):
    maitre, proxy = deployed
    async with device("127.0.0.2", proxy) as tablet:
        assert (await sign_in(tablet, proxy.url, maitre.admin_key(), origin="null")).status == 403

        signed = await sign_in(tablet, proxy.url, maitre.admin_key())
        assert signed.status == 303, signed.headers
        assert signed.headers["Location"] == "/admin/dashboard"
        cookie = sign_in_cookie(signed)[SIGN_IN_COOKIE]
        assert cookie["secure"] is True and cookie["httponly"] is True
        session = {"Cookie": f"{SIGN_IN_COOKIE}={cookie.value}"}

        async with tablet.get(f"{proxy.url}/admin/dashboard", headers=session, allow_redirects=False) as page:
            assert page.status == 200
        # the socket, as the page's script opens it: upgraded through the proxy, the Origin believed
        async with tablet.ws_connect(f"wss://{PUBLIC_NAME}:{proxy.port}{SOCKET}",
                                     headers=session | {"Origin": proxy.url}) as ws:
            assert (await receive(ws))["type"] == "tables_snapshot"
            # closing the tablet's session now aborts the socket's TLS connection: a graceful TLS close
            # waits for the proxy's reply and could outlive this test's event loop (an unclosed transport)
            await tablet.close()


async def test_wrong_sign_ins_from_one_device_do_not_block_another(deployed):
    """20 wrong keys from one device, each claiming another address in forged headers: the proxy replaces
    them, so that device is what gets refused (429), and another device still signs in."""
    maitre, proxy = deployed
    async with device("127.0.0.2", proxy) as guesser, device("127.0.0.3", proxy) as tablet:
        statuses = []
        for attempt in range(20):
            forged = FORGED | {"X-Forwarded-For": f"203.0.113.{attempt}", "Forwarded": f"for=198.51.100.{attempt}"}
            statuses.append((await sign_in(guesser, proxy.url, f"mtr_wrong{attempt}", forged)).status)
        assert set(statuses) == {401, 429} and statuses[-1] == 429, statuses

        signed = await sign_in(tablet, proxy.url, maitre.admin_key())
        assert signed.status == 303, signed.headers


async def test_two_phones_at_one_table_get_an_allowance_each(deployed):
    """One phone tapping until it is refused does not use up the table: a second phone at it still calls."""
    maitre, proxy = deployed
    page = f"{proxy.url}{guest_page(maitre, '2')}"
    async with device("127.0.0.2", proxy) as first, device("127.0.0.3", proxy) as second:
        answers = []
        while not answers or "problem=rate_limited" not in answers[-1]:
            assert len(answers) < 50, answers
            async with first.post(f"{page}/call_waiter", allow_redirects=False,
                                  headers={"Origin": proxy.url}) as tap:
                assert tap.status == 303, await tap.text()
                answers.append(tap.headers["Location"])
        assert answers[0].endswith("?done=call_waiter"), answers

        async with second.post(f"{page}/ask_for_bill", allow_redirects=False, headers={"Origin": proxy.url}) as tap:
            assert tap.status == 303 and tap.headers["Location"].endswith("?done=ask_for_bill"), tap.headers


@pytest.mark.parametrize("trusted, address", [("", "127.0.0.1"), ("127.0.0.1", "127.0.0.2")],
                         ids=["no trusted proxies", "peer not a trusted proxy"])
async def test_forwarded_headers_from_a_peer_not_trusted_change_nothing(tmp_path, trusted, address):
    """Straight to Maître, forged X-Forwarded-* and Forwarded headers: the peer's own address is the one
    limited, and a claimed https:// scheme and other host neither pass the Origin check nor make the cookie
    Secure."""
    maitre = await asyncio.to_thread(
        Server, tmp_path, "serve", *service_flags(db_path=str(tmp_path / "maitre.db"), trusted_proxies=trusted))
    try:
        async with device(address) as phone:
            claimed = f"https://{FORGED['X-Forwarded-Host']}"
            assert (await sign_in(phone, maitre.url, maitre.admin_key(), FORGED, origin=claimed)).status == 403

            signed = await sign_in(phone, maitre.url, maitre.admin_key(), FORGED)
            assert signed.status == 303, signed.headers
            assert sign_in_cookie(signed)[SIGN_IN_COOKIE]["secure"] == ""

            statuses = []
            for attempt in range(20):
                forged = FORGED | {"X-Forwarded-For": f"203.0.113.{attempt}", "Forwarded": f"for=198.51.100.{attempt}"}
                statuses.append((await sign_in(phone, maitre.url, f"mtr_wrong{attempt}", forged)).status)
            assert statuses[-1] == 429, statuses
    finally:
        assert await asyncio.to_thread(maitre.stop) == 0, maitre.process_output()


async def test_slow_headers_are_dropped_by_the_proxy(deployed):
    """A client that starts a request and never finishes its headers is cut off by the proxy's deadline
    (aiohttp has none of its own, docs/deploy.md), and Maître never sees the request."""
    _, proxy = deployed
    config, setting = HEADER_DEADLINES[proxy.kind]
    deadline = int(re.search(setting, (DEPLOY / config).read_text(encoding="utf-8"), re.M).group(1))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port, ssl=proxy.ssl_context(),
                                                   server_hostname=PUBLIC_NAME, local_addr=("127.0.0.2", 0))
    try:
        writer.write(f"GET /admin/login HTTP/1.1\r\nHost: {PUBLIC_NAME}:{proxy.port}\r\nX-Slow: ".encode())
        await writer.drain()
        started = time.monotonic()
        answer = await asyncio.wait_for(read_until_closed(reader), timeout=deadline + 15)
        waited = time.monotonic() - started
    finally:
        writer.transport.abort()  # not close(): a TLS close would wait for the proxy's reply past this test's loop
    assert deadline - 1 < waited < deadline + 15, waited
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    received = b""
    try:
        while chunk := await reader.read(4096):
            received += chunk
    except (ConnectionResetError, OSError):  # a TLS connection cut without close_notify
        pass
    return received


async def test_two_instances_behind_nginx_keep_each_device_and_share_every_change(tmp_path, redis_server):
    """The guide's two instances (docs/deploy.md): two `run.py serve` on one database and one Redis, behind
    nginx with nginx-instances.conf as its upstream. Twenty devices spread over both, each keeping to its
    own; a change through one reaches a dashboard on the other; with one stopped, the other serves its
    devices."""
    port = free_port()
    flags = service_flags(db_path=str(tmp_path / "maitre.db"), public_url=f"https://{PUBLIC_NAME}:{port}",
                          redis_url=redis_server.url)
    instances = [await asyncio.to_thread(Server, tmp_path, "serve", *flags) for _ in range(2)]
    proxy = Proxy("nginx", tmp_path / "nginx", tuple(f"127.0.0.1:{maitre.port}" for maitre in instances), port)
    try:
        served_by: dict[str, Server] = {}
        for address in (f"127.0.0.{n}" for n in range(10, 30)):
            async with device(address, proxy) as phone:
                for _ in range(2):
                    async with phone.get(f"{proxy.url}/healthz") as answer:
                        assert answer.status == 200
            line = f'aiohttp.access: {address} "GET /healthz"'
            await eventually(lambda line=line: sum(line in logged for m in instances for logged in m.output) == 2)
            (served_by[address],) = [maitre for maitre in instances if sum(line in logged for logged in maitre.output)]
        first, second = ([address for address, maitre in served_by.items() if maitre is instance][0]
                         for instance in instances)  # with 20 devices, both get some unless chance is 1 in 500,000

        key = instances[0].admin_key()
        async with device(first, proxy) as tablet, device(second, proxy) as other:
            socket_url = f"wss://{PUBLIC_NAME}:{proxy.port}{SOCKET}?token={key}"
            ws = await tablet.ws_connect(socket_url, headers={"Origin": proxy.url})
            seen = await other.ws_connect(socket_url, headers={"Origin": proxy.url})
            snapshot = await receive(ws)
            assert (await receive(seen))["version"] == snapshot["version"]
            table_id = next(table["id"] for table in snapshot["tables"] if table["status"] == "free")
            await ws.send_json({"action": "disable_table", "table_id": table_id, "ref": "d"})
            update = await receive(ws)
            assert update["type"] == "table_update" and update["version"] == snapshot["version"] + 1
            assert (await receive(ws))["type"] == "ack"
            assert await receive(seen) == update

            assert await asyncio.to_thread(instances[0].stop, signal.SIGTERM) == 0
            closing = await ws.receive(timeout=5)
            assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1001
            async with tablet.get(f"{proxy.url}/healthz") as answer:  # its instance is gone: the other answers
                assert answer.status == 200
            await tablet.close()  # aborts the TLS connections (see the first test)
            await other.close()
        # the other instance's access log says so, once its output has been read (a thread reads it line by line)
        await eventually(lambda: any(f'aiohttp.access: {first} "GET /healthz"' in line for line in instances[1].output))
    finally:
        proxy.stop()
        for maitre in instances:
            if maitre.process.poll() is None:
                assert await asyncio.to_thread(maitre.stop) == 0, maitre.process_output()


# The guide itself, its nginx site and systemd units, checked without running them.

def test_the_guide_shows_each_file_the_tests_run_as_it_is():
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    shown = re.findall(r"^```[a-z]*\n(.*?)^```", guide, re.M | re.S)
    for path in sorted(DEPLOY.iterdir()):
        assert path.read_text(encoding="utf-8") in shown, f"docs/deploy.md does not show {path.name} as it is"


def test_nginx_waits_for_the_socket_longer_than_the_heartbeat():
    """A quiet dashboard socket gets Maître's ping every MAITRE_HEARTBEAT_SECONDS; nginx must not cut it first."""
    site = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    for timeout in ("proxy_read_timeout", "proxy_send_timeout"):
        seconds = int(re.search(rf"^\s*{timeout} (\d+)s;", site, re.M).group(1))
        assert seconds > 2 * Settings().heartbeat_seconds, timeout


UNITS = ("maitre.service", "maitre-backup.service", "maitre-backup.timer")


def installed(text: str) -> str:
    """A unit's text with this checkout and its Python where the guide installs Maître (/opt/maitre)."""
    return text.replace("/opt/maitre/.venv/bin/python", sys.executable).replace("/opt/maitre", str(ROOT))


def installed_units(directory: Path) -> list[Path]:
    paths = []
    for name in UNITS:
        path = directory / name
        path.write_text(installed((DEPLOY / name).read_text(encoding="utf-8")))
        paths.append(path)
    return paths


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        unavailable("systemd-analyze is not installed (Debian's systemd package); the units cannot be checked")
    result = subprocess.run(["systemd-analyze", "verify", *map(str, installed_units(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stdout + result.stderr


def test_the_backup_unit_writes_a_checked_copy_into_the_state_directory(tmp_path):
    """maitre-backup.service's commands, run as systemd would (with /var/lib/maitre here, and `%%` as `%`)."""
    state = tmp_path / "state"
    (state / "backups").mkdir(parents=True)
    database = subprocess.run(
        [sys.executable, str(RUN_PY), "restaurant", "add", "bistro", "--name", "Bistro", "--tables", "3",
         "--db", str(state / "maitre.db")],
        capture_output=True, text=True, timeout=60, env=environment())
    assert database.returncode == 0, database.stdout + database.stderr
    unit = (DEPLOY / "maitre-backup.service").read_text(encoding="utf-8")
    settings = dict(line.split("=", 1) for line in (DEPLOY / "maitre.env").read_text(encoding="utf-8").splitlines()
                    if line.strip() and not line.startswith("#"))
    for command in re.findall(r"^ExecStart(?:Post)?=(.*)$", unit, re.M):
        command = installed(command.replace("%%", "%").replace("/var/lib/maitre", str(state)))
        env = environment() | {name: value.replace("/var/lib/maitre", str(state)) for name, value in settings.items()}
        result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
    copies = list((state / "backups").glob("maitre-*.db"))
    assert len(copies) == 1 and re.fullmatch(r"maitre-\d{4}-\d\d-\d\d-\d{6}\.db", copies[0].name), copies
