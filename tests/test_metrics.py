"""GET /metrics and GET /readyz: who may read the metrics, and counters that move exactly as the test's actions.

prometheus_client's metrics are process-wide, so every check reads a delta: the value after
the test's actions minus the value before, both read back from GET /metrics with the
library's own parser.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from ipaddress import ip_network

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from prometheus_client import generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from app import create_app, metrics
from app import db as db_module
from app.sockets import frame
from app.typedefs import hub_key

from .support import SOCKET, RedisServer, dashboard, receive, signed_in

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client, headers: dict[str, str] | None = None) -> Samples:
    response = await client.get("/metrics", headers=headers or {})
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples_of(await response.text())


def samples_of(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
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


# -- counters move as the test's actions ------------------------------------------------------------


async def scraped_until(client, condition, timeout: float = 10) -> Samples:
    """Scrapes until `condition(samples)` holds (the server closes a socket after its client saw it go)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        samples = await scrape(client)
        if condition(samples):
            return samples
        assert asyncio.get_running_loop().time() < deadline, "the metrics did not get there in time"
        await asyncio.sleep(0.02)


async def test_actions_count_by_action_and_outcome_with_every_frame_and_byte_sent(client, bistro_place):
    ids = bistro_place.ids
    admin, _ = await dashboard(client, bistro_place.admin)
    viewer, _ = await dashboard(client, bistro_place.viewer)
    before = await scrape(client)
    heard: list[str] = []  # every frame's text the two dashboards got

    async def say(ws, message: dict, replies: int) -> None:
        await ws.send_json(message)
        for _ in range(replies):
            heard.append((await ws.receive(timeout=3)).data)

    for label in "123":  # N = 3 seats and 3 closes: an update to both dashboards and the sender's ack, each
        await say(admin, {"action": "seat_table", "table_id": ids[label], "guest_count": 2}, 2)
        heard.append((await viewer.receive(timeout=3)).data)
    for label in "123":
        await say(admin, {"action": "close_table", "table_id": ids[label]}, 2)
        heard.append((await viewer.receive(timeout=3)).data)
    await say(admin, {"action": "close_table", "table_id": ids["4"]}, 1)  # free: the table's refusal
    for _ in range(2):  # M = 2 refusals: a viewer may not close
        await say(viewer, {"action": "close_table", "table_id": ids["5"]}, 1)
    unsigned = await client.post(f"/admin/tables/{ids['5']}/close", headers={"Accept": "application/json"})
    assert unsigned.status == 401
    assert json.loads(heard[-1])["code"] == "forbidden"
    after = await scrape(client)

    assert delta(after, before, "maitre_actions_total", action="seat_table", outcome="ok") == 3
    assert delta(after, before, "maitre_actions_total", action="close_table", outcome="ok") == 3
    assert delta(after, before, "maitre_actions_total", action="close_table", outcome="client_error") == 2
    assert delta(after, before, "maitre_actions_total", action="close_table", outcome="refused") == 2
    assert delta(after, before, "maitre_action_commit_seconds_count", action="close_table") == 3
    assert delta(after, before, "maitre_action_commit_seconds_count", action="seat_table") == 3
    assert delta(after, before, "maitre_action_fanout_seconds_count") == 6
    assert delta(after, before, "maitre_messages_sent_total") == len(heard) == 6 * 3 + 1 + 2
    assert delta(after, before, "maitre_sent_bytes_total") == sum(len(frame(text)) for text in heard)
    commits = delta(after, before, "maitre_db_commit_batch_size_count")
    assert commits >= 6 and delta(after, before, "maitre_db_commit_batch_size_sum") >= 6
    assert delta(after, before, "maitre_db_commit_seconds_count") == commits
    await admin.close()
    await viewer.close()


async def test_sockets_open_refused_and_closed_by_reason(aiohttp_client, settings, bistro_place):
    client = await aiohttp_client(create_app(dataclasses.replace(settings, max_connections_per_restaurant=3)))
    before = await scrape(client)
    viewers = [(await dashboard(client, bistro_place.viewer))[0] for _ in range(3)]
    after = await scrape(client)
    assert delta(after, before, "maitre_dashboards_open") == 3

    refused = await client.ws_connect(f"{SOCKET}?token={bistro_place.viewer}")  # the restaurant is full
    assert (await refused.receive(timeout=3)).type is WSMsgType.TEXT
    admin, _ = await dashboard(client, bistro_place.admin)  # closes the viewer that joined last to make room
    nobody = await client.ws_connect(f"{SOCKET}?token=mtr_nope")
    assert (await receive(nobody))["code"] == "unauthorized"
    await signed_in(client, bistro_place.admin)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect(SOCKET, headers={"Origin": "https://evil.example"})
    for ws in (*viewers[:2], admin):  # three closed by their clients
        await ws.close()

    after = await scraped_until(client, lambda s: delta(s, before, "maitre_dashboards_open") == 0)
    assert delta(after, before, "maitre_connections_refused_total", reason="limit") == 1
    assert delta(after, before, "maitre_connections_refused_total", reason="unauthorized") == 1
    assert delta(after, before, "maitre_connections_refused_total", reason="origin") == 1
    assert delta(after, before, "maitre_sockets_closed_total", reason="made_room") == 1
    assert delta(after, before, "maitre_sockets_closed_total", reason="client") == 3
    assert delta(after, before, "maitre_sockets_closed_total", reason="heartbeat") == 0


async def test_dropped_sockets_count_as_heartbeat_timeouts(aiohttp_client, settings, bistro_place):
    client = await aiohttp_client(create_app(dataclasses.replace(settings, heartbeat_seconds=0.2)))
    before = await scrape(client)
    # K = 2 tablets that stop answering the server's pings (no one reads them, so nothing answers)
    silent = [await client.ws_connect(f"{SOCKET}?token={bistro_place.admin}", autoping=False) for _ in range(2)]
    after = await scraped_until(client, lambda s: delta(s, before, "maitre_sockets_closed_total",
                                                        reason="heartbeat") == 2)
    assert delta(after, before, "maitre_dashboards_open") == 0
    assert delta(after, before, "maitre_sockets_closed_total", reason="client") == 0
    for ws in silent:
        await ws.close()


async def test_syncs_count_by_how_they_were_answered(client, bistro_place):
    ws, snapshot = await dashboard(client, bistro_place.admin)
    before = await scrape(client)
    version = snapshot["version"]
    await ws.send_json({"action": "sync", "since": version - 1, "ref": "log"})  # nothing held here yet: the log
    assert (await receive(ws))["type"] == "table_update"
    assert (await receive(ws))["type"] == "ack"
    await ws.send_json({"action": "sync", "since": version, "ref": "held"})  # nothing missed: from the hub
    assert (await receive(ws))["type"] == "ack"
    await ws.send_json({"action": "sync", "ref": "fresh"})  # no version: a snapshot
    assert (await receive(ws))["type"] == "tables_snapshot"
    after = await scrape(client)
    assert delta(after, before, "maitre_syncs_total", answer="replay_log") == 1
    assert delta(after, before, "maitre_syncs_total", answer="replay_buffer") == 1
    assert delta(after, before, "maitre_syncs_total", answer="snapshot") == 1
    await ws.close()


async def test_a_guests_call_counted_waiting_claimed_and_resolved(client, bistro_place, floor):
    token = (await floor.qr_tokens(bistro_place.actor.restaurant_id))[bistro_place.ids["2"]]
    before = await scrape(client)
    assert before[("maitre_calls_waiting", ())] == 0
    assert (await client.post(f"/t/{token}/call_waiter", allow_redirects=False)).status == 303
    middle = await scrape(client)
    assert middle[("maitre_calls_waiting", ())] == 1
    assert delta(middle, before, "maitre_guest_requests_total", kind="call_waiter") == 1
    assert delta(middle, before, "maitre_guest_requests_total", kind="ask_for_bill") == 0
    bearer = {"Authorization": f"Bearer {bistro_place.admin}", "Accept": "application/json"}
    listed = await (await client.get("/admin/api/tables", headers=bearer)).json()
    request_id = next(r["id"] for table in listed for r in table["requests"])
    for step in ("claim", "resolve"):
        assert (await client.post(f"/admin/request/{request_id}/{step}", headers=bearer)).status == 200
    after = await scrape(client)
    assert after[("maitre_calls_waiting", ())] == 0
    assert delta(after, middle, "maitre_call_claim_seconds_count") == 1
    assert delta(after, middle, "maitre_call_resolve_seconds_count") == 1
    assert delta(after, middle, "maitre_actions_total", action="claim_waiter_request", outcome="ok") == 1


# -- the bus between workers ----------------------------------------------------------------------


async def test_the_bus_counts_what_it_published_and_received_and_says_whether_it_is_on_redis(
        aiohttp_client, settings, bistro_place, redis_server: RedisServer):
    over_redis = dataclasses.replace(settings, redis_url=redis_server.url)
    a = await aiohttp_client(create_app(over_redis))
    b = await aiohttp_client(create_app(over_redis))
    before = await scraped_until(a, lambda s: s[("maitre_bus_on_redis", ())] == 1)
    on_b, snapshot = await dashboard(b, bistro_place.viewer)
    on_a, _ = await dashboard(a, bistro_place.admin)
    await on_a.send_json({"action": "seat_table", "table_id": bistro_place.ids["1"]})
    assert (await receive(on_b))["version"] == snapshot["version"] + 1  # through Redis (or B's watcher)
    # A publishes the update once; B receives it once (A's own comes back to A, and is not counted)
    after = await scraped_until(a, lambda s: delta(s, before, "maitre_bus_received_total") >= 1)
    assert delta(after, before, "maitre_bus_published_total") == 1
    assert delta(after, before, "maitre_bus_received_total") == 1
    assert delta(after, before, "maitre_bus_lag_seconds_count") == 1
    assert 0 <= delta(after, before, "maitre_bus_lag_seconds_sum") < 5
    redis_server.kill()
    await scraped_until(a, lambda s: s[("maitre_bus_on_redis", ())] == 0)
    for ws in (on_a, on_b):
        await ws.close()


async def test_a_gap_in_the_versions_is_filled_from_the_log_and_counted(client, bistro_place, tables):
    ws, snapshot = await dashboard(client, bistro_place.admin)
    before = await scrape(client)
    await tables.seat_table(bistro_place.actor, bistro_place.ids["1"], 2)  # as the command line writes: no bus
    await ws.send_json({"action": "seat_table", "table_id": bistro_place.ids["2"]})
    versions = [(await receive(ws))["version"] for _ in range(2)]
    assert versions == [snapshot["version"] + 1, snapshot["version"] + 2]
    after = await scrape(client)
    assert delta(after, before, "maitre_gap_fills_total") >= 1
    await ws.close()


# -- switched off (the setting metrics, MAITRE_METRICS=off) -----------------------------------------


async def test_switched_off_the_whole_road_works_nothing_is_counted_and_metrics_is_not_found(
        monkeypatch, aiohttp_client, settings, bistro_place):
    """monkeypatch comes first, so it puts the metrics back last, after the servers have closed their sockets."""
    on = await aiohttp_client(create_app(settings))
    before = await scrape(on)
    for name, value in vars(metrics).items():
        if isinstance(value, MetricWrapperBase):
            monkeypatch.setattr(metrics, name, value)
    metrics.switch_off()
    off = await aiohttp_client(create_app(dataclasses.replace(settings, metrics=False)))
    assert (await off.get("/metrics")).status == 404
    admin, snapshot = await dashboard(off, bistro_place.admin)
    viewer, _ = await dashboard(off, bistro_place.viewer)
    await admin.send_json({"action": "seat_table", "table_id": bistro_place.ids["1"], "guest_count": 2, "ref": 1})
    assert (await receive(viewer))["version"] == snapshot["version"] + 1
    assert {(await receive(admin))["type"] for _ in range(2)} == {"table_update", "ack"}
    await viewer.send_json({"action": "close_table", "table_id": bistro_place.ids["1"], "ref": 2})
    assert (await receive(viewer))["code"] == "forbidden"
    await viewer.send_json({"action": "sync", "since": snapshot["version"], "ref": 3})
    assert [(await receive(viewer))["type"] for _ in range(2)] == ["table_update", "ack"]  # replayed
    refused = await off.ws_connect(f"{SOCKET}?token=mtr_nope")
    assert (await receive(refused))["code"] == "unauthorized"
    for ws in (admin, viewer, refused):
        await ws.close()
    after = await scrape(on)  # the process's metrics, still registered: none of them moved
    moved = {key: (before.get(key), value) for key, value in after.items()
             if key[0].startswith("maitre_") and key[0] != "maitre_calls_waiting" and before.get(key) != value}
    assert not moved


async def test_a_commit_that_meets_another_process_write_lock_counts_as_busy(aiohttp_client, settings, db_path,
                                                                            monkeypatch):
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 50)  # SQLite's wait for the lock, before it gives up
    client = await aiohttp_client(create_app(settings))
    before = await scrape(client)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        response = await client.get("/readyz")
        assert await response.json() == {"status": "not ready", "reason": "database: database is locked"}
    finally:
        other.execute("ROLLBACK")
        other.close()
    after = await scrape(client)
    assert delta(after, before, "maitre_db_busy_retries_total") == 1


# -- the server's own closes ----------------------------------------------------------------------


async def test_a_dashboard_that_stops_reading_is_cut_and_counted_as_a_slow_consumer(client, bistro_place):
    hub = client.app[hub_key]
    stuck = await client.ws_connect(f"{SOCKET}?token={bistro_place.admin}")  # never read after its snapshot
    await receive(stuck)
    restaurant_id = bistro_place.actor.restaurant_id
    before = await scrape(client)
    base = hub.versions()[restaurant_id] or 0
    pad = "x" * 16_000
    for n in range(1, 1501):  # 24 MB: more than the socket buffers and the server's limit hold
        hub.deliver(restaurant_id, base + n, json.dumps({"type": "table_update", "version": base + n, "pad": pad}))
        if n % 10 == 0:
            await asyncio.sleep(0.005)
    after = await scraped_until(client, lambda s: delta(s, before, "maitre_dashboards_open") == -1)
    assert delta(after, before, "maitre_sockets_closed_total", reason="slow_consumer") == 1
    assert delta(after, before, "maitre_sockets_closed_total", reason="client") == 0


async def test_revoked_keys_and_a_stopping_server_close_sockets_counted_by_reason(settings, bistro_place, keys,
                                                                                 unused_tcp_port_factory):
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    port = unused_tcp_port_factory()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    before = samples_of(generate_latest(metrics.registry()).decode())
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{port}{SOCKET}?token="
        revoked = await session.ws_connect(url + bistro_place.admin)
        staying = [await session.ws_connect(url + bistro_place.viewer) for _ in range(2)]
        for ws in (revoked, *staying):
            await receive(ws)
        (admin_key,) = [k for k in await keys.list("bistro") if k["label"] == "admin tablet"]
        await keys.revoke(admin_key["id"])  # the watcher closes its socket within a second
        assert (await receive(revoked, timeout=3))["code"] == "unauthorized"
        await runner.cleanup()
        for ws in staying:
            assert (await ws.receive(timeout=3)).data == 1001
    after = samples_of(generate_latest(metrics.registry()).decode())
    assert delta(after, before, "maitre_sockets_closed_total", reason="revoked") == 1
    assert delta(after, before, "maitre_sockets_closed_total", reason="shutdown") == 2
    assert delta(after, before, "maitre_dashboards_open") == 0


async def test_messages_over_the_sockets_rate_count_as_rate_limited(client, bistro_place):
    ws, _ = await dashboard(client, bistro_place.admin)
    before = await scrape(client)
    sent = 30  # past the burst of 20: the bucket refills 10 a second, far slower than these go
    for _ in range(sent):
        await ws.send_json({"action": "close_table", "table_id": bistro_place.ids["4"]})  # free: refused if run
    codes = [(await receive(ws))["code"] for _ in range(sent)]
    after = await scrape(client)
    limited = codes.count("rate_limited")
    assert limited >= 1
    assert delta(after, before, "maitre_actions_total", action="close_table", outcome="rate_limited") == limited
    assert delta(after, before, "maitre_actions_total", action="close_table", outcome="client_error") == sent - limited
    await ws.close()
