"""Helpers the test modules share (their fixtures are in conftest.py): import from here, never from a test module."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.abc
import pytest
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.test_utils import TestClient

from app.auth import KeyService, Principal
from app.db import Database, format_time
from app.services.core import Actor
from app.services.restaurants import RestaurantService
from app.services.tables import TableService
from app.settings import Settings, declared
from app.typedefs import api_keys_key, db_key
from bench.servers import ROOT, RUN_PY, Process, environment, free_port

SOCKET = "/admin/ws/dashboard"


@dataclasses.dataclass
class Place:
    """A restaurant on the test server: its tables by label, and its keys."""

    actor: Actor
    ids: dict[str, int]
    admin: str
    viewer: str


async def make_place(db: Database, settings: Settings, slug: str, tables: int) -> Place:
    restaurant = await RestaurantService(db, settings).add(slug, slug.title(), tables=tables)
    actor = Actor(restaurant["id"], "setup", "admin")
    _, rows = await TableService(db, settings).list_tables(actor.restaurant_id)
    keys = KeyService(db)
    _, admin = await keys.add(slug, "admin tablet")
    _, viewer = await keys.add(slug, "wall screen", "viewer")
    return Place(actor, {row["number"]: row["id"] for row in rows}, admin, viewer)


async def waiters_of(tables: TableService, place: Place) -> dict[str, str | None]:
    """Each table's waiter (whose section it is in), by label."""
    _, rows = await tables.list_tables(place.actor.restaurant_id)
    return {row["number"]: row["waiter"] for row in rows}


def audit_events(db_path: str) -> list[sqlite3.Row]:
    """Every event of the audit log, oldest first, read straight from the file."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM audit_event ORDER BY id").fetchall()
    finally:
        conn.close()


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3) -> dict[str, Any]:
    message = await ws.receive(timeout=timeout)
    assert message.type is WSMsgType.TEXT, message
    return json.loads(message.data)


def origin(client: TestClient) -> str:
    """The test server's own origin, as a browser on its pages sends it."""
    return f"http://{client.host}:{client.port}"


async def sign_in(client: TestClient, key: str) -> aiohttp.ClientResponse:
    """Post the sign-in form as the browser does from our own page (with its Origin)."""
    return await client.post("/admin/login", data={"key": key}, headers={"Origin": origin(client)},
                             allow_redirects=False)


async def signed_in(client: TestClient, key: str) -> str:
    """Sign in, and the CSRF token the dashboard page gives its forms."""
    assert (await sign_in(client, key)).status == 303
    page = await (await client.get("/admin/dashboard")).text()
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def dashboard(client: TestClient, key: str) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    ws = await client.ws_connect(f"{SOCKET}?token={key}")
    snapshot = await receive(ws)
    assert snapshot["type"] == "tables_snapshot"
    return ws, snapshot


class Clock:
    """Time that moves on only when the test says so: `now` as the services read it, `monotonic` as the limiters do."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC)
        self.seconds = 0.0

    def now(self) -> str:
        return format_time(self.start + timedelta(seconds=self.seconds))

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


def keys_on(clock: Clock, app: web.Application) -> web.Application:
    """The app, its key service (sign-ins and their expiry) reading the time from `clock`."""

    async def replace_key_service(app: web.Application) -> None:  # runs once the database is open
        app[api_keys_key] = KeyService(app[db_key], clock.now)

    app.on_startup.append(replace_key_service)
    return app


async def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Wait until `condition()` holds, looking every few milliseconds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {timeout} s"
        await asyncio.sleep(0.01)


class Server:
    """`python run.py ARGS --port PORT` as a developer starts it, in a directory of its own.

    It starts at once; it can be stopped and started again, on the same port (and database).
    """

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        self.args = args
        self.db = directory / "maitre.db"  # unless ARGS name another
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runs: list[Process] = []
        self.start()

    def start(self) -> None:
        assert not self.runs or self.runs[-1].process.poll() is not None, "already running"
        self.runs.append(Process([sys.executable, str(RUN_PY), *self.args, "--port", str(self.port)],
                                 cwd=self.directory))

    def stop(self, how: signal.Signals = signal.SIGINT) -> int:
        """SIGINT, as Ctrl+C does (or SIGTERM, as systemd does); returns the exit status."""
        return self.runs[-1].stop(how)

    @property
    def process(self) -> subprocess.Popen[str]:
        return self.runs[-1].process

    @property
    def output(self) -> list[str]:
        """What the latest start printed, line by line (so far, while it runs)."""
        return self.runs[-1].output

    def process_output(self) -> str:
        """Everything the latest start printed, its log included."""
        return "\n".join(self.output)

    def admin_key(self) -> str:
        """The key the first start printed for the demo restaurant."""
        lines = [line for line in self.runs[0].output if line.startswith("Admin key for 'demo'")]
        assert len(lines) == 1, "\n".join(self.runs[0].output)
        return lines[0].rsplit(" ", 1)[1]

    def get(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as response:
            return response.status, response.read().decode()


# -- stand-ins for the unit tests of the hub and the socket mechanics ------------------------------


class RecordingTransport(asyncio.Transport):
    """Records writes; its write buffer holds whatever `buffered` says."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.buffered = 0
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.aborted

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def abort(self) -> None:
        self.aborted = True


class StandInSocket:
    """The part of aiohttp's WebSocketResponse a Connection uses: closing it, and how it was closed."""

    def __init__(self, takes_the_close: bool = True) -> None:
        self.close_code: int | None = None
        self.closed_with: list[int] = []
        self.takes_the_close = takes_the_close

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"") -> bool:
        self.closed_with.append(code)
        if not self.takes_the_close:
            await asyncio.Event().wait()  # a client that never takes the close frame
        self.close_code = code
        return True


def principal(restaurant_id: int = 1, key_id: int = 1, expires_at: str | None = None, role: str = "admin") -> Principal:
    return Principal(key_id, restaurant_id, f"place-{restaurant_id}", "test", role, expires_at=expires_at)


# Behind a reverse proxy: the guide's own configs (docs/deploy/), run for real by nginx and Caddy.

DEPLOY = ROOT / "docs" / "deploy"
PUBLIC_NAME = "maitre.lan"  # the box's name in docs/deploy/*; the tests' clients find it at 127.0.0.1
PROXIES = {"nginx": "/usr/sbin/nginx", "caddy": "/usr/bin/caddy"}
PROXY_START_SECONDS = 30
NGINX_UPSTREAM = "upstream maitre {\n    server 127.0.0.1:8080;\n}\n"  # nginx.conf's, for one instance

# What Debian's /etc/nginx/nginx.conf gives a site file: the http block it is included in (with the
# temporary files under the test's directory instead of /var/lib/nginx, which needs root).
NGINX_MAIN = """worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    include {d}/maitre.conf;
}}
"""


def unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail on CI (`CI=true`), where a skipped suite would pass unnoticed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: these tests must run on CI)", pytrace=False)
    pytest.skip(reason)


def proxy_program(kind: str) -> str:
    """The path of nginx or caddy, or the test is skipped (failed on CI) with the reason."""
    path = PROXIES[kind]
    found = path if os.access(path, os.X_OK) else shutil.which(kind)
    if found is None:
        unavailable(f"{kind} is not installed ({path} and `{kind}` on PATH are missing); "
                    f"install Debian's {kind} package to run the tests through it")
    if kind == "nginx" and shutil.which("openssl") is None:
        unavailable("openssl is not installed: it makes nginx's certificate (install Debian's openssl package)")
    return found


def deploy_file(name: str, replacements: dict[str, str]) -> str:
    """docs/deploy/NAME as the guide shows it, with only these strings replaced (ports, certificate paths,
    the upstream address: docs/deploy.md lists them). Each must still be in the file."""
    text = (DEPLOY / name).read_text(encoding="utf-8")
    for placeholder, value in replacements.items():
        assert placeholder in text, f"docs/deploy/{name} no longer has {placeholder!r}, which the tests replace"
        text = text.replace(placeholder, value)
    return text


def service_flags(**overrides: str) -> list[str]:
    """docs/deploy/maitre.env as `run.py serve` flags (each variable must be a setting); `overrides`, by
    setting name, replace the file's values."""
    specs = {spec.env: spec for spec in declared()}
    values: dict[str, str] = {}
    for line in (DEPLOY / "maitre.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            env, _, value = line.partition("=")
            assert env in specs, f"docs/deploy/maitre.env sets {env}, which is no setting of Maître's"
            values[specs[env].name] = value
    values |= overrides
    flags = {spec.name: spec.flag for spec in specs.values()}
    return [part for name, value in values.items() for part in (flags[name], value)]


class Proxy:
    """nginx or Caddy as its own process, in `directory`, from the guide's config, on ports of its own,
    in front of `upstream` (host:port), or of two instances (nginx only: the guide's nginx-instances.conf
    as its upstream block). Ready once a client that trusts its certificate (`ca`) completes a TLS
    handshake for PUBLIC_NAME; its output (error log) is kept in `output`."""

    def __init__(self, kind: str, directory: Path, upstream: str | tuple[str, str], port: int) -> None:
        self.kind = kind
        self.port = port
        self.url = f"https://{PUBLIC_NAME}:{port}"
        self.output: list[str] = []
        directory.mkdir(parents=True, exist_ok=True)
        program = proxy_program(kind)
        if kind == "nginx":
            args, env = self._nginx(program, directory, upstream), environment()
        else:
            args, env = self._caddy(program, directory, upstream), environment() | {
                "HOME": str(directory), "XDG_DATA_HOME": str(directory / "data"),
                "XDG_CONFIG_HOME": str(directory / "config")}
        self.process = subprocess.Popen(args, cwd=directory, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, name=f"{kind}-output", daemon=True)
        self.reader.start()
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def _nginx(self, program: str, directory: Path, upstream: str | tuple[str, str]) -> list[str]:
        certificate, key = directory / "maitre.crt", directory / "maitre.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(certificate), "-days", "2", "-subj", f"/CN={PUBLIC_NAME}",
             "-addext", f"subjectAltName=DNS:{PUBLIC_NAME}"],
            check=True, capture_output=True, timeout=30)
        self.ca = certificate
        if isinstance(upstream, tuple):  # the upstream block, as the guide has it replaced for two instances
            instances = {"server 127.0.0.1:8080;": f"server {upstream[0]};",
                         "server 127.0.0.1:8081;": f"server {upstream[1]};"}
            upstreams = {NGINX_UPSTREAM: deploy_file("nginx-instances.conf", instances)}
        else:
            upstreams = {"server 127.0.0.1:8080;": f"server {upstream};"}
        (directory / "maitre.conf").write_text(deploy_file("nginx.conf", {
            "listen 443 ssl;": f"listen 127.0.0.1:{self.port} ssl;",
            "listen 80;": f"listen 127.0.0.1:{free_port()};",
            "/etc/ssl/maitre/maitre.crt": str(certificate),
            "/etc/ssl/maitre/maitre.key": str(key),
            **upstreams,
        }))
        (directory / "nginx.conf").write_text(NGINX_MAIN.format(d=directory))
        return [program, "-p", str(directory), "-c", str(directory / "nginx.conf"), "-e", "stderr",
                "-g", f"daemon off; pid {directory / 'nginx.pid'}; error_log stderr;"]

    def _caddy(self, program: str, directory: Path, upstream: str | tuple[str, str]) -> list[str]:
        assert isinstance(upstream, str), "the guide's Caddyfile has one upstream"
        # `tls internal` makes Caddy's certificate authority under XDG_DATA_HOME, here the test's directory
        self.ca = directory / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        (directory / "Caddyfile").write_text(deploy_file("Caddyfile", {
            "admin localhost:2019": f"admin 127.0.0.1:{free_port()}",
            "http_port 80": f"http_port {free_port()}",
            "https_port 443": f"https_port {self.port}",
            "reverse_proxy 127.0.0.1:8080": f"reverse_proxy {upstream}",
        }))
        return [program, "run", "--config", str(directory / "Caddyfile"), "--adapter", "caddyfile"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + PROXY_START_SECONDS
        while not self._handshake():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} did not start:\n" + "\n".join(self.output))
            time.sleep(0.05)

    def _handshake(self) -> bool:
        try:
            context = self.ssl_context()
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw:
                with context.wrap_socket(raw, server_hostname=PUBLIC_NAME):
                    return True
        except (OSError, ssl.SSLError):  # not listening yet; Caddy's authority or certificate not made yet
            return False

    def ssl_context(self) -> ssl.SSLContext:
        """Trusting this proxy's certificate (nginx's, made by the test) or authority (Caddy's own)."""
        return ssl.create_default_context(cafile=str(self.ca))

    def stop(self) -> int:
        """SIGTERM (nginx: fast shutdown; Caddy: graceful), then SIGKILL if it still runs 10 s later."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def behind_proxy(kind: str, directory: Path) -> tuple[Server, Proxy]:
    """Maître with the service's settings (docs/deploy/maitre.env: trusting the proxy at 127.0.0.1) on a
    database and port of its own, and the proxy in front of it. The first start makes the demo restaurant."""
    port = free_port()
    maitre = Server(directory, "serve", *service_flags(db_path=str(directory / "maitre.db"),
                                                       public_url=f"https://{PUBLIC_NAME}:{port}"))
    try:
        return maitre, Proxy(kind, directory / kind, f"127.0.0.1:{maitre.port}", port)
    except BaseException:
        maitre.stop()
        raise


class ToTheBox(aiohttp.abc.AbstractResolver):
    """PUBLIC_NAME is 127.0.0.1, as a restaurant's local DNS would say; nothing else is looked up."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[aiohttp.abc.ResolveResult]:
        assert host == PUBLIC_NAME, host
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        pass


def device(address: str, proxy: Proxy | None = None) -> aiohttp.ClientSession:
    """A phone or tablet of its own at `address` (a loopback address: 127.0.0.2, 127.0.0.3, ...), reaching
    PUBLIC_NAME through `proxy` (trusting its certificate), or Maître directly. Redirects are not followed."""
    if proxy is None:
        connector = aiohttp.TCPConnector(local_addr=(address, 0))
    else:
        connector = aiohttp.TCPConnector(local_addr=(address, 0), resolver=ToTheBox(), ssl=proxy.ssl_context())
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


# -- a real redis-server, for the bus and the limits across workers ----------------------------------------------


class RedisServer:
    """Debian's `redis-server` on a free loopback port, persistence off; it can be killed and started again
    on the same port (each start is empty, as a real restart without persistence is)."""

    def __init__(self, directory: Path) -> None:
        self.program = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None)
        if self.program is None:
            unavailable("redis-server is not installed; install Debian's redis-server package to run these tests")
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        assert self.program is not None
        self.process = subprocess.Popen(
            [self.program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.answers():
            assert self.process.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not answer within 10 s"
            time.sleep(0.02)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: gone at once, every connection reset, nothing kept."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), as systemd stops it."""
        if self.process is not None and self.process.poll() is None:
            terminate(self.process)


def terminate(process: subprocess.Popen[Any], seconds: float = 10) -> None:
    """SIGTERM, then SIGKILL if the process still runs `seconds` later; it has ended on return."""
    process.terminate()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
