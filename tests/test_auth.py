from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.auth import KEY_PREFIX, KeyService, Principal, hash_key
from app.services.core import ServiceError


def database_bytes(db_path: str) -> bytes:
    """The database as it lies on disk, WAL included."""
    return b"".join(Path(p).read_bytes() for p in (db_path, db_path + "-wal") if Path(p).exists())


async def test_a_key_authenticates_as_its_restaurant_and_role(keys: KeyService, bistro):
    record, key = await keys.add("bistro", "front tablet", "admin")
    assert key.startswith(KEY_PREFIX) and len(key) >= len(KEY_PREFIX) + 32  # 192 random bits
    principal = await keys.authenticate(key)
    assert principal == Principal(record["id"], bistro.restaurant_id, "bistro", "front tablet", "admin",
                                  name="front tablet")
    assert principal.may_act
    assert principal.actor.restaurant_id == bistro.restaurant_id


async def test_a_viewer_may_only_watch(keys: KeyService, bistro):
    _, key = await keys.add("bistro", "wall screen", "viewer")
    principal = await keys.authenticate(key)
    assert principal is not None and not principal.may_act


@pytest.mark.parametrize("attempt", ["", "mtr_", "not-a-key", "mtr_" + "A" * 32, "x" * 10_000, "mtr_\udcff"])
async def test_wrong_keys_do_not_authenticate(keys: KeyService, bistro, attempt):
    await keys.add("bistro")
    assert await keys.authenticate(attempt) is None


async def test_the_database_never_holds_a_key_in_clear(keys: KeyService, bistro, db_path):
    _, key = await keys.add("bistro", "front tablet")
    secret_part = key.removeprefix(KEY_PREFIX)
    on_disk = database_bytes(db_path)
    assert secret_part.encode() not in on_disk
    assert secret_part[:12].encode() not in on_disk
    conn = sqlite3.connect(db_path)
    (stored,) = conn.execute("SELECT secret_hash FROM api_key").fetchone()
    conn.close()
    assert stored == hash_key(key) and len(stored) == 32


async def test_revoked_keys_stop_working(keys: KeyService, bistro):
    record, key = await keys.add("bistro")
    revoked = await keys.revoke(record["id"])
    assert revoked["revoked_at"] is not None
    assert await keys.authenticate(key) is None
    with pytest.raises(ServiceError) as refused:
        await keys.revoke(record["id"])
    assert refused.value.code == "already_revoked"


async def test_key_management_errors(keys: KeyService, bistro):
    for call, code in [
        (keys.add("nowhere"), "restaurant_not_found"),
        (keys.add("bistro", role="owner"), "invalid_role"),
        (keys.add("bistro", label="  "), "invalid_label"),
        (keys.revoke(999), "key_not_found"),
        (keys.list("nowhere"), "restaurant_not_found"),
    ]:
        with pytest.raises(ServiceError) as refused:
            await call
        assert refused.value.code == code


async def test_keys_are_listed_per_restaurant_without_secrets(keys: KeyService, bistro, cafe):
    await keys.add("bistro", "one")
    await keys.add("bistro", "two", "viewer")
    await keys.add("cafe", "three")
    listed = await keys.list("bistro")
    assert [(k["label"], k["role"]) for k in listed] == [("one", "admin"), ("two", "viewer")]
    assert all("secret_hash" not in k for k in listed)


async def test_key_changes_are_audited(keys: KeyService, bistro, db_path):
    record, _ = await keys.add("bistro", "front tablet")
    await keys.revoke(record["id"])
    conn = sqlite3.connect(db_path)
    actions = [a for (a,) in conn.execute("SELECT action FROM audit_event WHERE action LIKE '%key'")]
    conn.close()
    assert actions == ["add_key", "revoke_key"]
