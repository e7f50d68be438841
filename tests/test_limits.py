"""The rate limits (app/limits.py) on a clock the test moves on: no sleeping, no server."""

from __future__ import annotations

import pytest

from app.limits import GuestTaps, PerAddress, TokenBucket, client_key

from .support import Clock


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
    limiter = PerAddress(rate=1, burst=3, clock=clock.monotonic)
    assert takes(limiter, 4, "192.0.2.1") == [True, True, True, False]
    assert takes(limiter, 3, "192.0.2.2") == [True, True, True]
    clock.advance(1)
    assert takes(limiter, 2, "192.0.2.1") == [True, False]


def test_addresses_beyond_remember_forget_the_least_recently_seen():
    limiter = PerAddress(rate=1, burst=2, remember=2, clock=Clock().monotonic)
    takes(limiter, 2, "a")
    takes(limiter, 2, "b")
    assert limiter.take("a") is False  # seen again, so "b" is now the least recently seen
    assert limiter.take("c") is True  # a third address: "b" is forgotten, "a" kept
    assert list(limiter.buckets) == ["a", "c"]
    assert takes(limiter, 3, "b") == [True, True, False]  # a full bucket again; now "a" is forgotten
    assert list(limiter.buckets) == ["c", "b"]
    assert takes(limiter, 2, "a") == [True, True]


def test_allows_spends_nothing():
    limiter = PerAddress(rate=1 / 60, burst=2, clock=Clock().monotonic)
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
    limiter = PerAddress(rate=1 / 60, burst=2, clock=Clock().monotonic)
    assert limiter.allows("someone") and not limiter.buckets  # a stranger costs no memory
    assert takes(limiter, 2, "a") == [True, True]
    limiter.give_back("a")
    assert takes(limiter, 2, "a") == [True, False]
    limiter.give_back("never seen")  # nothing to give back to
    assert "never seen" not in limiter.buckets
