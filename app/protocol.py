"""The dashboard socket's close codes and small server messages (the card-carrying ones are built in render.py)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from .services.core import Result

Ref = str | int | None
LARGEST_ID = 2**62  # ids, versions and refs in messages stay well inside SQLite's integers


def is_int(value: Any) -> bool:
    """A whole number as the protocol takes one (JSON true and false are not)."""
    return isinstance(value, int) and not isinstance(value, bool) and -LARGEST_ID <= value <= LARGEST_ID

# The close codes Maître chooses, declared here only (aiohttp closes a too-large message with 1009).
CLOSE_GOING_AWAY = 1001  # the server is shutting down: reconnect, to the next server
CLOSE_TRY_AGAIN_LATER = 1013  # the client stopped reading: reconnect, and take a snapshot
CLOSE_UNAUTHORIZED = 4401  # no valid key or sign-in, or it ended: sign in again
CLOSE_TOO_MANY_CONNECTIONS = 4429  # the restaurant, or the key, has its fill of dashboards


class Refusal(NamedTuple):
    """Why a dashboard is turned away right after the upgrade: the error it is told (if any), then the close."""

    text: str | None
    code: int


def loads(text: str | bytes) -> Any:
    """A message from a client. JSON has one kind of number: 4.0 is the whole number 4 (as JSON Schema, and the
    OpenAPI document, count it), while 4.5 stays a fraction, which no id or count takes."""
    return json.loads(text, parse_float=_number)


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and abs(value) <= LARGEST_ID else value


def dumps(message: dict[str, Any]) -> str:
    """A message as compact JSON text, as every socket message is sent."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


PONG = dumps({"type": "pong"})


def ack(ref: Ref, version: int) -> str:
    return dumps({"type": "ack", "ref": ref, "version": version})


def error(code: str, detail: str, ref: Ref = None, failed: dict[str, Any] | None = None) -> str:
    message: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if ref is not None:
        message["ref"] = ref
    if failed is not None:  # the item that failed a whole bulk
        message["failed"] = failed
    return dumps(message)


def reply(result: Result, ref: Ref) -> str:
    """An operation's outcome for the client that asked: ack with the new version (and a bulk's results), or
    the error."""
    if not (result.ok and result.version is not None):
        return error(result.code or "internal_error", result.detail or "Nothing was changed.", ref, result.failed)
    if not result.outcomes:
        return ack(ref, result.version)
    return dumps({"type": "ack", "ref": ref, "version": result.version, "results": result.outcomes})


UNAUTHORIZED = error("unauthorized", "Your sign-in has ended. Please sign in again.")
TOO_MANY_CONNECTIONS = Refusal(error("too_many_connections", "Too many dashboards are open for this restaurant."),
                               CLOSE_TOO_MANY_CONNECTIONS)
SHUTTING_DOWN = Refusal(None, CLOSE_GOING_AWAY)  # as every open dashboard is closed
MADE_ROOM = error("too_many_connections", "This screen was closed to make room for an admin's dashboard: "
                  "this restaurant has as many dashboards open as it may.")


def too_many_for_key(limit: int) -> Refusal:
    return Refusal(error("too_many_connections", f"This key already has {limit} dashboards open; close one, "
                         "or give this screen a key of its own."), CLOSE_TOO_MANY_CONNECTIONS)
