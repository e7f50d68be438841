"""What docs/metrics.md gives an operator, run for real: Debian's Prometheus scraping a running `run.py serve`
every second and answering queries about it, `promtool` checking a scrape, the alerting rules and their unit
tests, and the Grafana dashboard's queries naming only metrics Maître declares (so none of them can drift)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import app.metrics
from app.protocol import CLOSE_UNAUTHORIZED

from .support import ROOT, SOCKET, Server, eventually, free_port, receive, terminate, unavailable

DOCS = ROOT / "docs"
ALERTS = DOCS / "prometheus-alerts.yml"
DASHBOARD = DOCS / "grafana-dashboard.json"
TOKEN = "metrics-token-for-the-test"
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
START_SECONDS = 20


def program(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if found is None:
        unavailable(f"{name} is not installed; install Debian's prometheus package to run these tests")
    assert found is not None
    return found


def declared() -> dict[str, str]:
    """Every maitre_ metric app/metrics.py declares, by its exposed name (counters with `_total`), and its type."""
    names = {}
    for family in REGISTRY.collect():
        if family.name.startswith("maitre_"):
            names[family.name + ("_total" if family.type == "counter" else "")] = family.type
    return names


def documented() -> dict[str, str]:
    """docs/metrics.md's table of every metric: name and type."""
    rows = re.findall(r"^\| `(maitre_\w+)` \| (\w+)", (DOCS / "metrics.md").read_text(encoding="utf-8"), re.M)
    return dict(rows)


def named_metrics(expr: str) -> set[str]:
    """The maitre_ metrics a PromQL expression reads (a histogram's series named by their histogram)."""
    names = set()
    for name in re.findall(r"\bmaitre_\w+", expr):
        for suffix in HISTOGRAM_SERIES:
            if name.endswith(suffix) and declared().get(name.removesuffix(suffix)) == "histogram":
                name = name.removesuffix(suffix)
        names.add(name)
    return names


def label_values() -> dict[str, set[str]]:
    """The fixed values app/metrics.py gives each label a query may match."""
    return {"outcome": set(app.metrics.OUTCOMES), "answer": set(app.metrics.SYNC_ANSWERS),
            "reason": set(app.metrics.REFUSED_REASONS + app.metrics.CLOSED_REASONS),
            "kind": {"call_waiter", "ask_for_bill"}}


def unknown_label_values(expr: str) -> list[str]:
    """The label matchers of `expr` that match a value no metric has (a renamed outcome or reason)."""
    known = label_values()
    return [f'{label}="{value}"' for label, value in re.findall(r'\b(\w+)!?="([^"]*)"', expr)
            if label in known and not set(value.split("|")) <= known[label]]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    queries += [variable["definition"] for variable in dashboard["templating"]["list"] if "definition" in variable]
    return queries


def as_instant_query(expr: str) -> str:
    """A dashboard's query as Prometheus' API takes it: Grafana's variables given values."""
    return expr.replace("$instance", ".*").replace("$__rate_interval", "1m")


def test_docs_list_every_metric_declared_with_its_type():
    assert documented() == declared()


def test_the_dashboard_queries_only_declared_metrics_and_shows_the_issue_s_panels():
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = dashboard_queries()
    used: set[str] = set()
    for expr in queries:
        named = named_metrics(expr)
        assert named, f"a query of the dashboard reads no metric of Maître's: {expr}"
        assert named <= set(declared()), f"{expr} names metrics Maître does not declare: {named - set(declared())}"
        assert not unknown_label_values(expr), (expr, unknown_label_values(expr))
        used |= named
    for name in ("maitre_dashboards_open", "maitre_actions_total", "maitre_action_commit_seconds",
                 "maitre_action_fanout_seconds", "maitre_sockets_closed_total", "maitre_bus_on_redis"):
        assert name in used, name
    assert any("histogram_quantile(0.99, " in expr and "maitre_action_fanout_seconds_bucket" in expr
               for expr in queries)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24, panel["title"]


def test_the_alerting_rules_pass_promtool_and_their_unit_tests(tmp_path):
    promtool = program("promtool")
    checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the unit tests name the rules file relative to themselves, as an operator runs them from docs/
    tested = subprocess.run([promtool, "test", "rules", "prometheus-alerts.test.yml"], cwd=DOCS,
                            capture_output=True, text=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    text = ALERTS.read_text(encoding="utf-8")
    alerts = re.findall(r"^\s*- alert: (\w+)$", text, re.M)
    assert set(alerts) == {"MaitreDown", "MaitreNoDashboardsDuringOpeningHours", "MaitreSlowCommits",
                           "MaitreSlowConsumerCuts", "MaitreBusOnFallback", "MaitreServerErrors"}
    unit_tests = (DOCS / "prometheus-alerts.test.yml").read_text(encoding="utf-8")
    for alert in alerts:
        assert f"alertname: {alert}\n" in unit_tests, f"{alert} has no unit test"
        assert f"| `{alert}` |" in (DOCS / "metrics.md").read_text(encoding="utf-8"), f"{alert} is not documented"
    assert named_metrics(text) <= set(declared()), named_metrics(text) - set(declared())
    assert not unknown_label_values(text), unknown_label_values(text)
    assert not unknown_label_values(unit_tests), unknown_label_values(unit_tests)  # their series as Maître's
    assert named_metrics(unit_tests) <= set(declared()), named_metrics(unit_tests) - set(declared())


def documented_config(directory: Path, port: int) -> Path:
    """docs/metrics.md's prometheus.yml with its token, as the guide shows them, replacing only the interval
    (every second), Maître's port and the two files' paths; and the rules evaluated every second."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", (DOCS / "metrics.md").read_text(encoding="utf-8"), re.M | re.S)
    assert len(blocks) == 2, "docs/metrics.md shows prometheus.yml, then the token's lines"
    (directory / "maitre-token").write_text(TOKEN)
    text = "global:\n  evaluation_interval: 1s\n" + "".join(blocks)
    for placeholder, value in {"scrape_interval: 15s": "scrape_interval: 1s", "127.0.0.1:8080": f"127.0.0.1:{port}",
                               "/etc/prometheus/maitre-alerts.yml": str(ALERTS),
                               "/etc/prometheus/maitre-token": str(directory / "maitre-token")}.items():
        assert placeholder in text, f"docs/metrics.md's prometheus.yml no longer has {placeholder!r}"
        text = text.replace(placeholder, value)
    config = directory / "prometheus.yml"
    config.write_text(text)
    checked = subprocess.run([program("promtool"), "check", "config", str(config)], capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return config


class Prometheus:
    """Debian's `prometheus` on a free loopback port, its data in `directory`, scraping Maître on `target_port`
    as docs/metrics.md's config says (every second), with docs/prometheus-alerts.yml evaluated every second."""

    def __init__(self, directory: Path, target_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = documented_config(directory, target_port)
        self.log = (directory / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [program("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_SECONDS
        while not self.ready():
            assert self.process.poll() is None, f"prometheus exited at start: {self.output()}"
            assert time.monotonic() < deadline, f"prometheus not ready within {START_SECONDS} s: {self.output()}"
            time.sleep(0.05)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=5) as r:
            answer = json.loads(r.read())
        assert answer["status"] == "success", answer
        return answer["data"]

    def value(self, query: str) -> float | None:
        """The query's one value now (None: no series)."""
        result = self.api("query", query=query)["result"]
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(encoding="utf-8")

    def stop(self) -> None:
        terminate(self.process)
        self.log.close()


@pytest.fixture(scope="module")
def maitre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`run.py serve` (the demo restaurant) behind a trusted proxy at 127.0.0.1, with a metrics token; one for
    the module's tests (only one of them makes changes: the others read /metrics)."""
    server = Server(tmp_path_factory.mktemp("maitre"), "serve", "--trusted-proxies", "127.0.0.1",
                    "--metrics-token", TOKEN)
    yield server
    assert server.stop() == 0, server.process_output()


@pytest.fixture
def prometheus(tmp_path: Path, maitre: Server) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path, maitre.port)
    yield server
    server.stop()


async def wait_for(prometheus: Prometheus, query: str, expected: float, timeout: float = 15) -> None:
    """Until Prometheus' answer to `query` is `expected` (it scrapes every second)."""
    seen: list[float | None] = []

    def answered() -> bool:
        seen.append(prometheus.value(query))
        return seen[-1] == expected

    try:
        await eventually(answered, timeout)
    except AssertionError:
        raise AssertionError(f"{query}: {expected} expected, Prometheus said {seen[-5:]}") from None


async def test_a_real_prometheus_scrapes_the_changes_made_and_loads_the_alerts(maitre, prometheus):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{maitre.url}{SOCKET}?token={maitre.admin_key()}") as ws:
            snapshot = await receive(ws)
            free = [table["id"] for table in snapshot["tables"] if table["status"] == "free"]
            for number, action in enumerate(("disable_table", "enable_table", "disable_table")):
                await ws.send_json({"action": action, "table_id": free[0], "ref": f"r{number}"})
                while (await receive(ws)).get("type") != "ack":
                    pass
            await ws.send_json({"action": "close_table", "table_id": free[1], "ref": "free"})  # nobody to close
            while (await receive(ws)).get("type") != "error":
                pass
            async with session.ws_connect(f"{maitre.url}{SOCKET}?token=mtr_wrong") as refused:
                while not refused.closed:
                    await refused.receive(timeout=5)
                assert refused.close_code == CLOSE_UNAUTHORIZED

            await wait_for(prometheus, 'up{job="maitre"}', 1)
            await wait_for(prometheus, "maitre_dashboards_open", 1)
            await wait_for(prometheus, 'maitre_actions_total{action="disable_table", outcome="ok"}', 2)
            await wait_for(prometheus, 'maitre_actions_total{action="enable_table", outcome="ok"}', 1)
            await wait_for(prometheus, 'maitre_actions_total{action="close_table", outcome="client_error"}', 1)
            await wait_for(prometheus, 'maitre_action_commit_seconds_count{action="disable_table"}', 2)
            await wait_for(prometheus, 'maitre_connections_refused_total{reason="unauthorized"}', 1)
            await wait_for(prometheus, "sum(maitre_build_info)", 1)
        await wait_for(prometheus, "maitre_dashboards_open", 0)
        await wait_for(prometheus, 'maitre_sockets_closed_total{reason="client"}', 1)

    # every query of the Grafana dashboard is one Prometheus takes
    for expr in dashboard_queries():
        if not expr.startswith("label_values("):
            prometheus.api("query", query=as_instant_query(expr))
    # and the alerting rules are loaded, evaluated without error, and quiet (the demo is open with no tablet
    # only if the test runs in the opening hours: that one may fire, no other)
    def evaluated() -> bool:
        rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
        return len(rules) == 8 and all(rule.get("lastEvaluation", "").startswith("2") and rule["health"] == "ok"
                                       for rule in rules)

    await eventually(evaluated, 10)
    firing = {alert["labels"]["alertname"] for alert in prometheus.api("alerts")["alerts"]}
    assert firing <= {"MaitreNoDashboardsDuringOpeningHours"}, firing


async def test_a_scrape_passes_promtool_check_metrics(maitre):
    status, scrape = await asyncio.to_thread(maitre.get, "/metrics")
    assert status == 200
    checked = subprocess.run([program("promtool"), "check", "metrics"], input=scrape, capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    families = {family.name for family in text_string_to_metric_families(scrape)}
    assert {name.removesuffix("_total") for name in declared()} <= families


async def test_only_loopback_or_the_token_may_read_the_metrics(maitre):
    """Behind the trusted proxy (127.0.0.1), a request it relays for a device on the network is that device's."""
    asked = [({}, 200),  # loopback, straight to Maître
             ({"X-Forwarded-For": "192.0.2.7"}, 403),
             ({"X-Forwarded-For": "192.0.2.7", "Authorization": "Bearer wrong-token"}, 403),
             ({"X-Forwarded-For": "192.0.2.7", "Authorization": f"Bearer {TOKEN[:-1]}"}, 403),
             ({"X-Forwarded-For": "192.0.2.7", "Authorization": f"Bearer {TOKEN}"}, 200)]
    async with aiohttp.ClientSession() as session:
        for headers, status in asked:
            async with session.get(f"{maitre.url}/metrics", headers=headers) as response:
                body = await response.text()
            assert response.status == status, (headers, body)
            assert ("maitre_dashboards_open" in body) is (status == 200), (headers, body)
