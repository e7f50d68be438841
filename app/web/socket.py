"""The dashboard socket, `/admin/ws/dashboard`: read docs/protocol.md beside this.

A thin handler: it authenticates, joins the hub, sends the snapshot, then for each
message parses it, calls one service operation, publishes the result and replies.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import WSMsgType, web

from .. import metrics, protocol
from ..auth import SIGN_IN_COOKIE, Principal
from ..limits import TokenBucket
from ..services.audit import replay_after
from ..sockets import BUFFER_LIMIT, EARLY_AT_MOST, Connection, frame, give_up_after
from ..typedefs import (
    api_keys_key,
    broadcast_key,
    db_key,
    hub_key,
    renderer_key,
    restaurants_key,
    settings_key,
    tables_key,
)
from .access import Refused, principal_of_key, require_our_origin
from .actions import ACTIONS, perform_bulk, refused

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024  # a full bulk of 100 actions fits; a larger frame closes the socket (1009)
MESSAGES_PER_SECOND = 10
MESSAGE_BURST = 20
REPLAY_AT_MOST = EARLY_AT_MOST // 2  # past that, a snapshot is smaller than the replay
REMOVED = b'{"type":"table_removed"'  # how a removal's frame begins (render.py), after the frame's header

class BadMessage(Exception):
    def __init__(self, code: str, detail: str, ref: protocol.Ref = None) -> None:
        super().__init__(code)
        self.reply = protocol.error(code, detail, ref)


async def authenticate(request: web.Request) -> Principal | None:
    """The sign-in cookie (with an Origin of this site), or `?token=<api key>` for scripts.

    A client over its limit of failed sign-ins is refused with 429 before the upgrade.
    """
    keys = request.app[api_keys_key]
    token = request.query.get("token")
    if token is not None:
        try:
            return await principal_of_key(request, token)
        except Refused as refused:
            raise web.HTTPTooManyRequests(text=refused.detail) from None
    cookie = request.cookies.get(SIGN_IN_COOKIE)
    if cookie is None:
        return None
    require_our_origin(request, "This socket only opens from Maître's own page.")
    return await keys.signed_in_as(cookie)


async def dashboard_socket(request: web.Request) -> web.WebSocketResponse:
    try:
        principal = await authenticate(request)  # a foreign Origin is refused here, before the upgrade
    except web.HTTPForbidden:
        metrics.CONNECTIONS_REFUSED.labels("origin").inc()
        raise
    heartbeat = request.app[settings_key].heartbeat_seconds
    ws = web.WebSocketResponse(
        heartbeat=heartbeat,
        max_msg_size=MAX_MESSAGE_BYTES,
        compress=request.app[settings_key].ws_compression,
    )
    await ws.prepare(request)
    if principal is None:
        metrics.CONNECTIONS_REFUSED.labels("unauthorized").inc()
        await ws.send_str(protocol.UNAUTHORIZED)
        await ws.close(code=protocol.CLOSE_UNAUTHORIZED)
        return ws
    hub = request.app[hub_key]
    transport = request.transport
    assert transport is not None  # prepared just above
    give_up_after(transport, 2 * heartbeat)  # a tablet that vanished is gone from the kernel too
    connection = Connection(ws, transport, principal, BUFFER_LIMIT)
    refusal = await hub.join(connection)
    if refusal is not None:
        metrics.CONNECTIONS_REFUSED.labels("shutting_down" if refusal is protocol.SHUTTING_DOWN else "limit").inc()
        if refusal.text is not None:
            await ws.send_str(refusal.text)
        await ws.close(code=refusal.code)
        return ws
    try:
        version, snapshot = await snapshot_of(request.app, principal.restaurant_id)
        hub.start_at(principal.restaurant_id, version)  # before the next await: the watcher may look meanwhile
        if connection.closing:  # closed while the tables were read (the server stopping, a key revoked)
            return ws
        await ws.send_str(snapshot)
        del snapshot  # this frame lives as long as the socket: the grid's text must not (KiBs per tablet)
        connection.start(floor=version)
        bucket = TokenBucket(MESSAGES_PER_SECOND, MESSAGE_BURST)
        async for message in ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                reply = await answer(request.app, connection, bucket, message)
                if reply is not None:
                    connection.send(None, frame(reply))
    finally:
        hub.leave(connection)
    return ws


async def answer(app: web.Application, connection: Connection, bucket: TokenBucket, message: Any) -> str | None:
    try:
        if message.type is not WSMsgType.TEXT:
            raise BadMessage("invalid_json", "Messages are JSON text.")
        request = parse(message.data)
        ref = request.get("ref")
        if not bucket.take():
            if request["action"] in ACTIONS or request["action"] == "bulk":
                refused(request["action"], "rate_limited")
            raise BadMessage("rate_limited", "Too many messages; slow down.", ref)
        return await perform(app, connection, request, ref)
    except BadMessage as bad:
        return bad.reply
    except Exception:
        log.exception("a dashboard message failed")
        return protocol.error("internal_error", "Something went wrong; nothing was changed. Try again.")


def parse(text: str) -> dict[str, Any]:
    try:
        request = protocol.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes ("[" * 3000)
        raise BadMessage("invalid_json", "That message is not valid JSON, or nests too deeply.") from None
    if not isinstance(request, dict):
        raise BadMessage("invalid_action", "A message is a JSON object with an \"action\".")
    ref = request.get("ref")
    if ref is not None and not (isinstance(ref, str) and len(ref) <= 64 or protocol.is_int(ref)):
        raise BadMessage("invalid_action", "\"ref\" is a string of up to 64 characters or a whole number.")
    if not isinstance(request.get("action"), str):
        raise BadMessage("invalid_action", "A message needs an \"action\".", ref)
    return request


async def perform(
    app: web.Application, connection: Connection, request: dict[str, Any], ref: protocol.Ref
) -> str | None:
    action = request["action"]
    principal = connection.principal
    if action == "ping":
        return protocol.PONG
    if action == "sync":
        await sync(app, connection, request, ref)  # it sends its own ack, after what it replays
        return None
    if action == "bulk":
        try:
            result = await perform_bulk(app, principal.actor, request)
        except Refused as refusal:
            refused("bulk", refusal.code)
            raise BadMessage(refusal.code, refusal.detail, ref) from None
    elif action in ACTIONS:
        change = ACTIONS[action]
        wrong = change.check_ids(request)
        if wrong is not None:
            refused(action, "invalid_action")
            raise BadMessage("invalid_action", wrong, ref)
        result = await change.perform(app, principal.actor, request)  # the service says whether this key may
    else:
        raise BadMessage("unknown_action", f"There is no action {action[:40]!r}.", ref)
    app[broadcast_key].result(principal.restaurant_id, result)
    # the ack after the change's updates: with several workers they may be held until a gap below is filled
    app[hub_key].reply(connection, result.version if result.ok else None, frame(protocol.reply(result, ref)))
    return None


async def sync(app: web.Application, connection: Connection, request: dict[str, Any], ref: protocol.Ref) -> None:
    """Replay what the client missed since `since`, or send a fresh snapshot; then acknowledge.

    The replay comes from the hub's recent updates, or else from the audit log (a worker that
    was not following the restaurant then, or has let them go), up to REPLAY_AT_MOST; a longer
    one, or one holding a removal, is a snapshot. While the log or the tables are read, live
    updates wait, so the client gets the replay (or snapshot) and its ack first, then what follows.
    """
    since = request.get("since")
    if since is not None and not protocol.is_int(since):
        raise BadMessage("invalid_action", "sync's \"since\" is a version number.", ref)
    restaurant_id = connection.principal.restaurant_id
    held = app[hub_key].replay(restaurant_id, since) if since is not None else None
    if since is not None and held is not None and len(held) <= REPLAY_AT_MOST and not any(map(removal, held)):
        connection.start(connection.floor, (*held, frame(protocol.ack(ref, since + len(held)))))
        metrics.SYNCS.labels("replay_buffer").inc()
        return
    connection.hold()
    try:
        logged = None if since is None else await app[db_key].read(replay_after, restaurant_id, since, REPLAY_AT_MOST)
        if since is not None and logged is not None and not any("removed" in update.table for update in logged):
            version = since + len(logged)
            replayed = [frame(app[renderer_key].update(update)) for update in logged]
            connection.start(max(connection.floor, version), (*replayed, frame(protocol.ack(ref, version))))
            metrics.SYNCS.labels("replay_log").inc()
            return
        version, snapshot = await snapshot_of(app, restaurant_id)
        connection.start(version, (frame(snapshot), frame(protocol.ack(ref, version))))
        metrics.SYNCS.labels("snapshot").inc()
    except BaseException:
        connection.start(connection.floor)  # what waited goes out; the caller answers with the error
        raise


def removal(data: bytes) -> bool:
    """A `table_removed` frame. A sync that would replay one gets a snapshot instead: a client written before
    the message existed skips it and would ask for the same replay again, while every client takes a snapshot."""
    return REMOVED in data[:40]


async def snapshot_of(app: web.Application, restaurant_id: int) -> tuple[int, str]:
    """The restaurant's version and its `tables_snapshot` message (its name and idle windows too).

    The tables are read last: the caller may note their version before its next await.
    """
    restaurant = await app[restaurants_key].view(restaurant_id)
    version, tables = await app[tables_key].list_tables(restaurant_id)
    return version, app[renderer_key].snapshot(version, tables, restaurant)
