"""The OpenAPI document stays true to the router, and the server holds up to schemathesis."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from app import create_app
from app.web.openapi import build

from .support import Server

# Pages, the socket and files: for people and the dashboard's script, not part of the HTTP API.
NOT_API = {
    ("GET", "/"), ("GET", "/healthz"), ("GET", "/admin/login"), ("POST", "/admin/login"), ("POST", "/admin/logout"),
    ("GET", "/admin/dashboard"), ("GET", "/admin/ws/dashboard"), ("GET", "/admin/api/openapi.json"),
    ("GET", "/docs/protocol.md"), ("GET", "/static"), ("GET", "/admin/tables/qr"), ("GET", "/admin/waiter"),
    ("GET", "/waiter"), ("GET", "/readyz"), ("GET", "/metrics"),  # the operator's: health and Prometheus
    ("GET", "/t/{token}"), ("POST", "/t/{token}/{kind}"),
}


def test_every_route_is_in_the_document_and_nothing_else(settings):
    app = create_app(settings)
    routes = {(route.method, route.resource.canonical) for route in app.router.routes() if route.method != "HEAD"}
    documented = {(method.upper(), path) for path, item in build()["paths"].items() for method in item}
    assert routes - NOT_API == documented


async def test_the_document_is_served(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings))
    response = await client.get("/admin/api/openapi.json")
    assert response.status == 200 and (await response.json()) == build()


def test_schemathesis_finds_nothing(tmp_path):
    """A short property-based run of every operation against a real server process."""
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    assert schemathesis, "schemathesis is installed with the test extras"
    server = Server(tmp_path)
    key = next(line for line in server.output if line.startswith("Admin key")).rsplit(" ", 1)[1]
    # A report's period is one day, or a range of at most 90 days that has begun: no schema can say so, so dates the
    # document allows may rightly be refused (400 invalid_period); the server must still answer, never fail.
    (tmp_path / "schemathesis.toml").write_text(
        '[[operations]]\ninclude-path-regex = "reports"\n'
        'checks.positive_data_acceptance.expected-statuses = '
        '["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]\n')
    try:
        run = subprocess.run(
            [schemathesis, "run", f"http://127.0.0.1:{server.port}/admin/api/openapi.json",
             "-H", f"Authorization: Bearer {key}", "--max-examples", "25", "--checks", "all",
             "--generation-deterministic", "--request-timeout", "10"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )
    finally:
        assert server.stop() == 0
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
    assert "Traceback" not in server.process_output()
