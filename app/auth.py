"""API keys and dashboard sign-ins; the Origin check.

A key is 192 random bits, shown once when it is made. The database keeps only its
SHA-256 (a key that random needs no slow hash), looked up by that hash and compared
in constant time. A key belongs to one restaurant, has a role (admin, waiter or viewer:
what each may do is services/core.py's PERMISSIONS) and a name: the person or screen
it stands for, shown to staff ("Sam"; a waiter's first name to guests too).

Signing in to the dashboard with a key starts a sign-in: a random token in an HttpOnly
cookie, kept in the database (table `login_session`) as a SHA-256 only. A sign-in ends
when it expires, when its owner signs out, or when its key is revoked. (A seated party
is a "party" in the code; "session" survives only in the wire format and table names.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from .db import Database, format_time, parse_time, utc_now
from .services.audit import record_event
from .services.core import SERVE, Actor, ServiceError
from .services.restaurants import find_restaurant

KEY_PREFIX = "mtr_"
SIGN_IN_COOKIE = "maitre_session"
ROLES = ("admin", "waiter", "viewer")
NAME_AT_MOST = 40


@dataclass(frozen=True)
class Principal:
    """Who a valid key says the caller is."""

    key_id: int
    restaurant_id: int
    restaurant_slug: str
    label: str
    role: str
    sign_in_id: int | None = None  # the sign-in, when the caller came with the cookie
    expires_at: str | None = None  # when that sign-in ends
    name: str = ""  # the person or screen the key stands for

    @property
    def may_act(self) -> bool:
        return self.actor.may(SERVE)

    @property
    def actor(self) -> Actor:
        return Actor(self.restaurant_id, self.label, self.role, self.key_id)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def csrf_token(session_token: str) -> str:
    """The sign-in's CSRF token: derived from the HttpOnly cookie, so another site cannot know it."""
    digest = hashlib.sha256(b"maitre-csrf:" + session_token.encode("utf-8", "surrogatepass")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def origin_is_ours(request: web.Request, origin: str | None, allowed: tuple[str, ...]) -> bool:
    """The Origin check, the one comparison every road makes: `origin` is this site's own (as the
    client reached it: behind a trusted proxy, the scheme and host it names) or one of the
    allowed origins (exact match)."""
    return origin is not None and (origin == f"{request.scheme}://{request.host}" or origin in allowed)


class KeyService:
    def __init__(self, db: Database, clock: Callable[[], str] = utc_now) -> None:
        self.db = db
        self.clock = clock

    async def add(
        self, slug: str, label: str = "admin", role: str = "admin", actor: str = "cli", name: str | None = None
    ) -> tuple[dict[str, Any], str]:
        """Make a key for the restaurant, named `name` (its label's first 40 characters if not said);
        returns its record and the key itself (shown once)."""
        key = new_key()
        record = await self.db.write(_add_key, slug, label, role, name, hash_key(key), actor, self.clock())
        return record, key

    async def authenticate(self, key: str) -> Principal | None:
        """The key's principal, or None for an unknown or revoked key."""
        if not key.startswith(KEY_PREFIX) or len(key) > 100:
            return None
        return await self.db.read(_authenticate, hash_key(key))

    async def sign_in(self, principal: Principal, hours: float) -> str:
        """Start a sign-in for a key already authenticated: its token, for the cookie."""
        token = secrets.token_urlsafe(32)
        await self.db.write(_add_sign_in, hash_key(token), principal.key_id, hours, self.clock())
        return token

    async def signed_in_as(self, token: str) -> Principal | None:
        """Who a sign-in token belongs to, while the sign-in lasts and its key is not revoked."""
        if len(token) > 100:
            return None
        return await self.db.read(_sign_in_principal, hash_key(token), self.clock())

    async def sign_out(self, token: str) -> None:
        await self.db.write(_end_sign_in, hash_key(token))

    async def ended(self, key_ids: set[int], sign_in_ids: set[int]) -> tuple[set[int], set[int]]:
        """Of these keys and sign-ins, the keys now revoked and the sign-ins now over."""
        return await self.db.read(_ended, key_ids, sign_in_ids, self.clock())

    async def revoke(self, key_id: int, actor: str = "cli") -> dict[str, Any]:
        return await self.db.write(_revoke_key, key_id, actor, self.clock())

    async def list(self, slug: str) -> list[dict[str, Any]]:
        return await self.db.read(_list_keys, slug)


def _add_key(
    conn: sqlite3.Connection, slug: str, label: str, role: str, name: str | None, secret_hash: bytes, actor: str,
    now: str,
) -> dict[str, Any]:
    restaurant = find_restaurant(conn, slug)
    label = label.strip()
    if role not in ROLES:
        raise ServiceError("invalid_role", f"A key's role is one of: {', '.join(ROLES)}.")
    if not 1 <= len(label) <= 60:
        raise ServiceError("invalid_label", "A key label must be 1 to 60 characters long.")
    name = valid_name(label[:NAME_AT_MOST] if name is None else name)
    key_id = conn.execute(
        "INSERT INTO api_key (restaurant_id, label, role, name, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)"
        " RETURNING id",
        (restaurant["id"], label, role, name, secret_hash, now),
    ).fetchone()[0]
    record = _key_record(conn, key_id)
    record_event(conn, Actor(restaurant["id"], actor, "admin"), "add_key", now, restaurant["version"], [], None, record)
    return record


def valid_name(name: str) -> str:
    """A key's name as kept: stripped, 1 to 40 characters, one line."""
    name = name.strip()
    if not 1 <= len(name) <= NAME_AT_MOST or any(unicodedata.category(c) == "Cc" for c in name):
        raise ServiceError("invalid_name", f"A name is 1 to {NAME_AT_MOST} characters, on one line.")
    return name


def _authenticate(conn: sqlite3.Connection, secret_hash: bytes) -> Principal | None:
    row = conn.execute(
        "SELECT k.id, k.restaurant_id, r.slug, k.label, k.role, k.name, k.secret_hash"
        " FROM api_key AS k JOIN restaurant AS r ON r.id = k.restaurant_id"
        " WHERE k.secret_hash = ? AND k.revoked_at IS NULL",
        (secret_hash,),
    ).fetchone()
    if row is None or not hmac.compare_digest(row["secret_hash"], secret_hash):
        return None
    return Principal(row["id"], row["restaurant_id"], row["slug"], row["label"], row["role"], name=row["name"])


def _add_sign_in(conn: sqlite3.Connection, token_hash: bytes, key_id: int, hours: float, now: str) -> None:
    expires = format_time(parse_time(now) + timedelta(hours=hours))
    conn.execute("DELETE FROM login_session WHERE expires_at < ?", (now,))
    conn.execute(
        "INSERT INTO login_session (token_hash, key_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        (token_hash, key_id, now, expires),
    )


def _sign_in_principal(conn: sqlite3.Connection, token_hash: bytes, now: str) -> Principal | None:
    row = conn.execute(
        "SELECT s.id AS sign_in_id, s.token_hash, s.expires_at, k.id, k.restaurant_id, r.slug, k.label, k.role,"
        " k.name"
        " FROM login_session AS s JOIN api_key AS k ON k.id = s.key_id JOIN restaurant AS r ON r.id = k.restaurant_id"
        " WHERE s.token_hash = ? AND s.expires_at > ? AND k.revoked_at IS NULL",
        (token_hash, now),
    ).fetchone()
    if row is None or not hmac.compare_digest(row["token_hash"], token_hash):
        return None
    return Principal(row["id"], row["restaurant_id"], row["slug"], row["label"], row["role"], row["sign_in_id"],
                     row["expires_at"], row["name"])


def _end_sign_in(conn: sqlite3.Connection, token_hash: bytes) -> None:
    conn.execute("DELETE FROM login_session WHERE token_hash = ?", (token_hash,))


def _ended(conn: sqlite3.Connection, key_ids: set[int], sign_in_ids: set[int], now: str) -> tuple[set[int], set[int]]:
    keys, sign_ins = sorted(key_ids), sorted(sign_in_ids)
    live_keys = {key_id for (key_id,) in conn.execute(
        f"SELECT id FROM api_key WHERE revoked_at IS NULL AND id IN ({','.join('?' * len(keys))})", keys)}
    live_sign_ins = {sign_in_id for (sign_in_id,) in conn.execute(
        f"SELECT id FROM login_session WHERE expires_at > ? AND id IN ({','.join('?' * len(sign_ins))})",
        [now, *sign_ins])}
    return key_ids - live_keys, sign_in_ids - live_sign_ins


def _revoke_key(conn: sqlite3.Connection, key_id: int, actor: str, now: str) -> dict[str, Any]:
    before = _key_record(conn, key_id)
    if before["revoked_at"] is not None:
        raise ServiceError("already_revoked", f"Key {key_id} was already revoked.")
    conn.execute("UPDATE api_key SET revoked_at = ? WHERE id = ?", (now, key_id))
    conn.execute("DELETE FROM login_session WHERE key_id = ?", (key_id,))
    after = _key_record(conn, key_id)
    (version,) = conn.execute(
        "SELECT version FROM restaurant WHERE id = (SELECT restaurant_id FROM api_key WHERE id = ?)", (key_id,)
    ).fetchone()
    record_event(conn, Actor(after["restaurant_id"], actor, "admin"), "revoke_key", now, version, [], before, after)
    return after


def _key_record(conn: sqlite3.Connection, key_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT k.id, k.restaurant_id, r.slug AS restaurant, k.label, k.role, k.name, k.created_at, k.revoked_at"
        " FROM api_key AS k JOIN restaurant AS r ON r.id = k.restaurant_id WHERE k.id = ?",
        (key_id,),
    ).fetchone()
    if row is None:
        raise ServiceError("key_not_found", f"There is no key {key_id}.")
    return dict(row)


def _list_keys(conn: sqlite3.Connection, slug: str) -> list[dict[str, Any]]:
    restaurant = find_restaurant(conn, slug)
    ids = conn.execute("SELECT id FROM api_key WHERE restaurant_id = ? ORDER BY id", (restaurant["id"],))
    return [_key_record(conn, key_id) for (key_id,) in ids.fetchall()]
