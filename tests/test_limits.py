"""The rate limits (app/limits.py) on a clock the test moves on: no sleeping, no server; then shared by two
workers over a real redis-server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.limits import ASK_AGAIN_AFTER, GuestTaps, PerAddress, SharedLimits, TokenBucket, client_key

from .support import Clock, RedisServer


def takes(bucket: TokenBucket | PerAddress, times: int, *address: str) -> list[bool]:
    return [bucket.take(*address) for _ in range(times)]


def test_a_full_bucket_allows_its_burst_at_once_then_refuses():
    bucket = TokenBucket(rate=2, burst=5, clock=Clock().monotonic)
    assert takes(bucket, 6) == [True] * 5 + [False]


def test_the_bucket_refills_at_its_rate():
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=5, clock=clock.monotonic)
    takes(bucket, 5)
    clock.advance(0.25)  # half a token
    assert bucket.take() is False
    clock.advance(0.25)  # the refusal spent nothing: one token
    assert takes(bucket, 2) == [True, False]
    clock.advance(1.5)  # three tokens
    assert takes(bucket, 4) == [True, True, True, False]


def test_a_long_rest_refills_no_more_than_the_burst():
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=5, clock=clock.monotonic)
    takes(bucket, 5)
    clock.advance(3600)
    assert takes(bucket, 6) == [True] * 5 + [False]


def test_one_address_over_its_limit_does_not_limit_another():
    clock = Clock()
    limiter = PerAddress("test", rate=1, burst=3, clock=clock.monotonic)
    assert takes(limiter, 4, "192.0.2.1") == [True, True, True, False]
    assert takes(limiter, 3, "192.0.2.2") == [True, True, True]
    clock.advance(1)
    assert takes(limiter, 2, "192.0.2.1") == [True, False]


def test_addresses_beyond_remember_forget_the_least_recently_seen():
    limiter = PerAddress("test", rate=1, burst=2, remember=2, clock=Clock().monotonic)
    takes(limiter, 2, "a")
    takes(limiter, 2, "b")
    assert limiter.take("a") is False  # seen again, so "b" is now the least recently seen
    assert limiter.take("c") is True  # a third address: "b" is forgotten, "a" kept
    assert list(limiter.buckets) == ["a", "c"]
    assert takes(limiter, 3, "b") == [True, True, False]  # a full bucket again; now "a" is forgotten
    assert list(limiter.buckets) == ["c", "b"]
    assert takes(limiter, 2, "a") == [True, True]


def test_allows_spends_nothing():
    limiter = PerAddress("test", rate=1 / 60, burst=2, clock=Clock().monotonic)
    assert all(limiter.allows("a") for _ in range(5))
    assert takes(limiter, 3, "a") == [True, True, False]
    assert not limiter.allows("a")


def test_one_phone_cannot_lock_a_tables_guests_out():
    taps = GuestTaps(per_phone=4, clock=Clock().monotonic)
    assert [taps.take("table-1", "phone-a") for _ in range(6)] == [True] * 4 + [False] * 2
    assert [taps.take("table-1", "phone-b") for _ in range(4)] == [True] * 4  # the table's real guests


def test_a_table_has_a_ceiling_well_above_one_phone():
    taps = GuestTaps(per_phone=4, clock=Clock().monotonic)
    for phone in range(5):
        assert all(taps.take("table-1", f"phone-{phone}") for _ in range(4))
    assert not taps.take("table-1", "phone-5")  # 20 taps a minute at one table: enough
    assert taps.take("table-2", "phone-5")


def test_a_phone_has_a_ceiling_across_tables_and_a_refused_tap_spends_nothing():
    clock = Clock()
    taps = GuestTaps(per_phone=4, clock=clock.monotonic)
    assert [taps.take(f"table-{n // 4}", "phone-a") for n in range(12)] == [True] * 12
    assert not taps.take("table-9", "phone-a")  # twelve a minute across tables
    assert "table-9 phone-a" not in taps.at_table.buckets and "table-9" not in taps.table.buckets  # nothing spent
    clock.advance(5)  # a tap comes back every five seconds per phone
    assert taps.take("table-8", "phone-a")


@pytest.mark.parametrize(("address", "key"), [
    ("192.0.2.7", "192.0.2.7"), ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"), ("::ffff:192.0.2.7", "192.0.2.7"), ("unknown", "unknown"),
    (None, "unknown"),
])
def test_an_ipv6_client_is_limited_by_its_64(address, key):
    assert client_key(address) == key


def test_asking_makes_no_bucket_and_a_token_can_be_given_back():
    limiter = PerAddress("test", rate=1 / 60, burst=2, clock=Clock().monotonic)
    assert limiter.allows("someone") and not limiter.buckets  # a stranger costs no memory
    assert takes(limiter, 2, "a") == [True, True]
    limiter.give_back("a")
    assert takes(limiter, 2, "a") == [True, False]
    limiter.give_back("never seen")  # nothing to give back to
    assert "never seen" not in limiter.buckets


# -- the same buckets shared by several workers in a real Redis (SharedLimits) ----------------------


class Worker:
    """One worker's limits: its own PerAddress and GuestTaps objects, and its own Redis client."""

    def __init__(self, url: str) -> None:
        self.redis = Redis.from_url(url)
        self.limits = SharedLimits(self.redis)
        self.sign_ins = PerAddress("sign-in", rate=1 / 60, burst=3)
        self.taps = GuestTaps(per_phone=4)


@pytest.fixture
async def two_workers(redis_server: RedisServer) -> AsyncIterator[tuple[Worker, Worker]]:
    a, b = Worker(redis_server.url), Worker(redis_server.url)
    yield a, b
    for worker in (a, b):
        await worker.redis.aclose()


async def test_two_workers_spend_from_one_budget(two_workers: tuple[Worker, Worker]) -> None:
    a, b = two_workers
    spent = [await (a, b)[n % 2].limits.take([((a, b)[n % 2].sign_ins, "192.0.2.1")]) for n in range(4)]
    assert spent == [True, True, True, False]
    assert not await a.limits.allows(a.sign_ins, "192.0.2.1") and not await b.limits.allows(b.sign_ins, "192.0.2.1")
    assert await b.limits.allows(b.sign_ins, "192.0.2.2"), "another address has its own"
    await a.limits.give_back(a.sign_ins, "192.0.2.1")
    assert await b.limits.take_known(b.sign_ins, "192.0.2.1"), "the token given back on A is taken on B"
    assert not await b.limits.take_known(b.sign_ins, "192.0.2.3"), "a client that never failed is not counted first"
    assert not a.sign_ins.buckets and not b.sign_ins.buckets, "no worker's own bucket was used"


async def test_a_guests_tap_counts_against_all_three_buckets_on_every_worker(
        two_workers: tuple[Worker, Worker]) -> None:
    a, b = two_workers
    taps = [await (a, b)[n % 2].limits.take((a, b)[n % 2].taps.buckets("table-1", "phone-a")) for n in range(5)]
    assert taps == [True] * 4 + [False], "four a minute per phone at a table, across workers"
    for n in range(8):  # the phone's other twelve a minute, across tables, less the four spent
        assert await (a, b)[n % 2].limits.take((a, b)[n % 2].taps.buckets(f"table-{2 + n // 4}", "phone-a"))
    assert not await a.limits.take(a.taps.buckets("table-9", "phone-a")), "twelve a minute across tables"
    assert await b.limits.take(b.taps.buckets("table-9", "phone-b")), "the refused tap spent nothing at table 9"
    names = b"\n".join(await a.redis.keys("maitre:limit:*"))
    assert names and b"table-" not in names and b"phone-" not in names, "Redis names a bucket by a hash, not a " \
        "table's QR token or a phone's address"


async def test_redis_away_each_worker_limits_alone_then_shares_again(
        two_workers: tuple[Worker, Worker], redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    a, b = two_workers
    caplog.set_level(logging.WARNING, logger="app.limits")
    clock = Clock()
    a.limits.clock = clock.monotonic
    redis_server.kill()
    assert [await a.limits.take([(a.sign_ins, "192.0.2.1")]) for _ in range(4)] == [True, True, True, False]
    assert await b.limits.take([(b.sign_ins, "192.0.2.1")]), "B's own bucket: a budget per worker meanwhile"
    away = [r for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(away) == 2, "once per worker, not per request"
    redis_server.start()
    assert not await a.limits.take([(a.sign_ins, "192.0.2.1")]), "not asked again at once: A's own bucket"
    clock.advance(ASK_AGAIN_AFTER)
    assert await a.limits.take([(a.sign_ins, "192.0.2.9")]), "shared again: Redis's empty budget"
    assert "192.0.2.9" not in a.sign_ins.buckets
    assert [r.getMessage() for r in caplog.records][-1] == "Redis answers again: rate limits are shared by every worker"
