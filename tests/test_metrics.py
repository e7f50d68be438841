"""GET /metrics and GET /readyz: who may read the metrics, and counters that move exactly as the test's actions.

prometheus_client's metrics are process-wide, so every check reads a delta: the value after
the test's actions minus the value before, both read back from GET /metrics with the
library's own parser.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from ipaddress import ip_network

from prometheus_client.parser import text_string_to_metric_families

from app import create_app

from .support import RedisServer

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client, headers: dict[str, str] | None = None) -> Samples:
    response = await client.get("/metrics", headers=headers or {})
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


# -- who may read them ----------------------------------------------------------------------------


async def test_a_loopback_client_reads_the_metrics(client):
    samples = await scrape(client)
    assert samples[("maitre_build_info", (("version", "0.1.0"),))] == 1
    assert ("maitre_dashboards_open", ()) in samples


async def test_another_machine_is_refused_without_the_token_and_let_in_with_it(aiohttp_client, settings):
    trusted = dataclasses.replace(settings, trusted_proxies=(ip_network("127.0.0.1"),),
                                  metrics_token="s3cret-for-prometheus")
    client = await aiohttp_client(create_app(trusted))
    elsewhere = {"X-Forwarded-For": "192.0.2.7"}  # the proxy (the test client, trusted) relays another machine
    assert (await client.get("/metrics", headers=elsewhere)).status == 403
    wrong = {**elsewhere, "Authorization": "Bearer not-the-token"}
    assert (await client.get("/metrics", headers=wrong)).status == 403
    samples = await scrape(client, {**elsewhere, "Authorization": "Bearer s3cret-for-prometheus"})
    assert ("maitre_dashboards_open", ()) in samples
    assert "s3cret" not in await (await client.get("/metrics")).text()


async def test_without_a_token_set_no_bearer_gets_in(proxied):
    elsewhere = {"X-Forwarded-For": "192.0.2.7"}
    assert (await proxied.get("/metrics", headers=elsewhere)).status == 403
    assert (await proxied.get("/metrics", headers={**elsewhere, "Authorization": "Bearer "})).status == 403
    assert (await proxied.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})).status == 200


# -- ready or not ---------------------------------------------------------------------------------


async def test_ready_when_the_database_takes_a_write(client):
    response = await client.get("/readyz")
    assert response.status == 200 and await response.json() == {"status": "ready"}


async def test_not_ready_while_another_process_holds_the_database_write_lock(client, db_path):
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # as a command line stuck mid-write would
        response = await client.get("/readyz")
        assert response.status == 503
        assert await response.json() == {"status": "not ready", "reason": "database: no write within 2.0 s"}
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (await client.get("/readyz")).status == 200


async def test_ready_with_redis_answering_and_not_when_it_is_down(aiohttp_client, settings, redis_server: RedisServer):
    client = await aiohttp_client(create_app(dataclasses.replace(settings, redis_url=redis_server.url)))
    assert (await client.get("/readyz")).status == 200
    redis_server.kill()
    response = await client.get("/readyz")
    assert response.status == 503
    assert await response.json() == {"status": "not ready", "reason": "redis: ConnectionError"}
