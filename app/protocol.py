"""The dashboard socket's small server messages (the card-carrying ones are built in render.py)."""

from __future__ import annotations

from typing import Any

from .render import dumps
from .services.core import Result

Ref = str | int | None

PONG = dumps({"type": "pong"})


def ack(ref: Ref, version: int) -> str:
    return dumps({"type": "ack", "ref": ref, "version": version})


def error(code: str, detail: str, ref: Ref = None) -> str:
    message: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if ref is not None:
        message["ref"] = ref
    return dumps(message)


def reply(result: Result, ref: Ref) -> str:
    """An operation's outcome for the client that asked: ack with the new version, or the error."""
    if result.ok and result.version is not None:
        return ack(ref, result.version)
    return error(result.code or "internal_error", result.detail or "Nothing was changed.", ref)


UNAUTHORIZED = error("unauthorized", "Your sign-in has ended. Please sign in again.")
TOO_MANY_CONNECTIONS = error("too_many_connections", "Too many dashboards are open for this restaurant.")
