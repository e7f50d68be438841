"""Socket mechanics: frames written once, a bounded buffer per socket, closing and cutting peers.

Only this module knows transports. A message is framed once and the same bytes written to
every socket that gets it; a slow or stuck tablet never delays the others: one whose
outgoing buffer overflows is closed (1013, try again later) and resynchronises when it
reconnects. Which sockets get a message is the hub's business (app/hub.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct

from aiohttp import WSCloseCode, web

from . import metrics
from .auth import Principal
from .protocol import CLOSE_TRY_AGAIN_LATER

log = logging.getLogger(__name__)

BUFFER_LIMIT = 256 * 1024  # bytes waiting for one dashboard before it counts as stuck
EARLY_AT_MOST = 256  # messages held while the snapshot goes out
CLOSE_GRACE = 5.0  # seconds a dashboard being closed has to take its close frame before it is cut off


def frame(text: str) -> bytes:
    """A whole WebSocket text frame, built once and written as it is to every socket that gets it.

    Server frames are never masked, and these are never compressed (an uncompressed message is
    valid with permessage-deflate too), so the bytes are the same for every connection.
    """
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class Connection:
    """One dashboard socket: who it is, and its transport, written to directly.

    The transport's own write buffer is the connection's outgoing queue: a client that
    lets it grow past `limit` bytes has stopped reading and is closed (1013), so it never
    holds the others up nor pins the server's memory.
    """

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, principal: Principal,
                 limit: int) -> None:
        self.ws = ws
        self.transport = transport
        self.principal = principal
        self.limit = limit
        self.floor = 0  # updates at or below this version were in the snapshot the client got
        self.early: list[tuple[int | None, bytes]] | None = []  # what came before the snapshot was sent
        self.closing = False
        self.closer: asyncio.Task[None] | None = None
        self.open = False  # joined its restaurant and not yet released: counted in maitre_dashboards_open
        self.reason: str | None = None  # why the server closes it (maitre_sockets_closed_total); None: the peer did

    def opened(self) -> None:
        """It joined its restaurant: one more dashboard open."""
        self.open = True
        metrics.DASHBOARDS_OPEN.inc()

    def start(self, floor: int, first: tuple[bytes, ...] = ()) -> None:
        """The snapshot at version `floor` is sent (or goes out now, in `first`): from now on, messages go
        straight out, the ones that came meanwhile first (those the snapshot holds are dropped)."""
        early, self.early, self.floor = self.early or [], None, floor
        for data in first:
            self.send(None, data)
        for version, data in early:
            self.send(version, data)

    def hold(self) -> None:
        """Keep what comes from now on until `start`: a replay or a snapshot is being read, and must go first."""
        if self.early is None:
            self.early = []

    def send(self, version: int | None, data: bytes) -> None:
        """Write a frame (a table update carries its version); a client that is not keeping up is closed."""
        if self.write(version, data):
            metrics.MESSAGES_SENT.inc()
            metrics.SENT_BYTES.inc(len(data))

    def write(self, version: int | None, data: bytes) -> bool:
        """`send` without counting it in the metrics (a broadcast counts its frames once): True if it was written."""
        if self.closing or version is not None and version <= self.floor:
            return False
        if self.early is not None:
            self.early.append((version, data))
            if len(self.early) > EARLY_AT_MOST:
                self.abort(CLOSE_TRY_AGAIN_LATER, "slow_consumer")
            return False
        if self.transport.is_closing():
            return False
        if self.transport.get_write_buffer_size() > self.limit:
            log.info("closing a dashboard of restaurant %s that stopped reading", self.principal.restaurant_id)
            self.abort(CLOSE_TRY_AGAIN_LATER, "slow_consumer")
            return False
        self.transport.write(data)
        return True

    def close_after(self, text: str, code: int, reason: str) -> None:
        """Send `text`, then close with `code` (for `reason`, a label of maitre_sockets_closed_total)."""
        if self.early is not None:
            self.start(self.floor)
        self.send(None, frame(text))
        self.abort(code, reason)

    def abort(self, code: int, reason: str) -> None:
        if not self.closing:
            self.closing = True
            self.reason = reason
            self.closer = asyncio.create_task(self._close(code))

    async def _close(self, code: int, message: bytes = b"") -> None:
        """Send the close frame; a client that has not taken it within CLOSE_GRACE is cut off.

        Closing waits for the outgoing buffer to drain, and a client that stopped reading
        never drains it: without the cut, its socket and the bytes waiting for it would
        stay until it read again, however long that took (or a stopping server would wait).
        """
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=message), CLOSE_GRACE)
        except TimeoutError:
            self.cut()
        else:
            if self.transport.get_write_buffer_size():  # it was already closed (a missed pong): nothing drains
                self.cut()

    async def going_away(self, code: int) -> None:
        """The server is stopping: the close frame, so the client reconnects to the next one."""
        await self._close(code, b"server shutting down")

    def release(self) -> None:
        """Its handler is done with it. If its peer vanished (a pong went unanswered), reset it.

        aiohttp then closes the transport, and a close waits for the buffer to drain: bytes
        still waiting would hold the socket until TCP gave up, a quarter of an hour later.
        A close the client asked for, or one under way (see `abort`), ends as it would.
        """
        self.closing = True
        vanished = self.closer is None and self.ws.close_code == WSCloseCode.ABNORMAL_CLOSURE
        if self.open:  # released once, however many times it is let go (a shutdown, then its handler)
            self.open = False
            metrics.DASHBOARDS_OPEN.dec()
            metrics.SOCKETS_CLOSED.labels(self.reason or ("heartbeat" if vanished else "client")).inc()
        if vanished:
            self.cut()

    def cut(self) -> None:
        """Reset the connection: nothing more is sent, here or by the kernel, and the client sees a reset.

        A plain close would leave what the kernel already holds (up to a few MB) to be
        retried to a client that does not take it; a zero linger time discards it now.
        """
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


def give_up_after(transport: asyncio.Transport, seconds: float) -> None:
    """Have the kernel drop the connection once what it sent has gone unacknowledged this long.

    This is TCP_USER_TIMEOUT. It covers a peer that vanished, even after its socket was
    closed: the kernel would otherwise keep retrying that orphaned socket for minutes. A
    peer that is alive but not reading still acknowledges, so this does not end it.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, min(int(seconds * 1000), 2**31 - 1))
