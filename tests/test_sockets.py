"""Unit tests of the socket mechanics (app/sockets.py): no socket, no server.

A stand-in transport records what is written; the real path (a client that stops reading,
one that vanishes) is covered by tests/test_socket.py and tests/test_peers.py.
"""

from __future__ import annotations

import asyncio
import struct
from typing import cast

import pytest
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue  # the queue aiohttp's own client parser feeds
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_websocket import WebSocketReader

from app import sockets
from app.protocol import CLOSE_GOING_AWAY, CLOSE_TRY_AGAIN_LATER
from app.sockets import EARLY_AT_MOST, Connection, frame

from .support import RecordingTransport, StandInSocket, principal

LIMIT = 1000


def connect(ws: StandInSocket | None = None) -> tuple[Connection, RecordingTransport, StandInSocket]:
    transport, ws = RecordingTransport(), ws or StandInSocket()
    return Connection(cast(web.WebSocketResponse, ws), transport, principal(), LIMIT), transport, ws


def header(data: bytes) -> tuple[int, int, int]:
    """First byte, the masked bit and the payload length of a frame, decoded by hand as RFC 6455 5.2 lays them out."""
    first, second = data[0], data[1]
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", data[2:4])
    elif length == 127:
        (length,) = struct.unpack("!Q", data[2:10])
    return first, second >> 7, length


@pytest.mark.parametrize(
    ("size", "length_bytes"),
    [
        (0, b"\x00"),
        (125, b"\x7d"),
        (126, b"\x7e\x00\x7e"),  # 126 says: the length follows in 2 bytes
        (65535, b"\x7e\xff\xff"),
        (65536, b"\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),  # 127 says: the length follows in 8 bytes
    ],
)
def test_frame_has_the_rfc_6455_header(size: int, length_bytes: bytes) -> None:
    text = "x" * size
    data = frame(text)
    # FIN set, no extension bits, opcode 1 (text); a server's frame is not masked
    assert data == b"\x81" + length_bytes + text.encode()
    assert header(data) == (0x81, 0, size)


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
async def test_a_client_parser_reads_the_frame_back(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)  # two bytes a character: the length counts bytes
    loop = asyncio.get_running_loop()
    queue = WebSocketDataQueue(BaseProtocol(loop), 2**17, loop=loop)
    reader = WebSocketReader(queue, max_msg_size=0, compress=False, decode_text=True)
    reader.feed_data(frame(text))
    message = await queue.read()
    assert (message.type, message.data) == (WSMsgType.TEXT, text)


def test_messages_wait_in_the_early_queue_until_the_snapshot_is_sent() -> None:
    connection, transport, _ = connect()
    connection.send(3, b"update 3")
    connection.send(None, b"announcement")
    assert transport.written == []
    connection.start(floor=2)
    assert transport.written == [b"update 3", b"announcement"]
    connection.send(4, b"update 4")
    assert transport.written[-1] == b"update 4"


def test_updates_at_or_below_the_snapshots_version_are_dropped() -> None:
    connection, transport, _ = connect()
    connection.send(5, b"early update 5")
    connection.start(floor=5)
    connection.send(4, b"update 4")
    connection.send(6, b"update 6")
    connection.send(None, b"reply")
    assert transport.written == [b"update 6", b"reply"]


async def test_an_overflowing_early_queue_closes_with_1013() -> None:
    connection, transport, ws = connect()
    for version in range(1, EARLY_AT_MOST + 1):
        connection.send(version, b"update")
    assert not connection.closing
    connection.send(EARLY_AT_MOST + 1, b"one too many")
    assert connection.closing and connection.closer is not None
    await connection.closer
    assert ws.closed_with == [CLOSE_TRY_AGAIN_LATER] and transport.written == []


async def test_a_write_buffer_over_the_limit_closes_with_1013() -> None:
    connection, transport, ws = connect()
    connection.start(floor=0)
    transport.buffered = LIMIT
    connection.send(1, b"update 1")
    transport.buffered = LIMIT + 1
    connection.send(2, b"update 2")
    assert transport.written == [b"update 1"] and connection.closing and connection.closer is not None
    await connection.closer
    assert ws.closed_with == [CLOSE_TRY_AGAIN_LATER]
    connection.send(3, b"update 3")
    assert transport.written == [b"update 1"], "nothing more is sent to a closing socket"


async def test_a_client_that_does_not_take_the_close_frame_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sockets, "CLOSE_GRACE", 0.01)
    connection, transport, ws = connect(StandInSocket(takes_the_close=False))
    connection.abort(CLOSE_TRY_AGAIN_LATER, "slow_consumer")
    assert connection.closer is not None
    await connection.closer
    assert ws.closed_with == [CLOSE_TRY_AGAIN_LATER] and transport.aborted



async def test_going_away_cuts_a_client_that_does_not_take_the_close_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server stopping waits for no stuck tablet: after the grace, it is cut off, as any other close."""
    monkeypatch.setattr(sockets, "CLOSE_GRACE", 0.01)
    connection, transport, ws = connect(StandInSocket(takes_the_close=False))
    await asyncio.wait_for(connection.going_away(CLOSE_GOING_AWAY), timeout=10)
    assert ws.closed_with == [CLOSE_GOING_AWAY] and transport.aborted

async def test_close_after_sends_the_text_then_closes() -> None:
    connection, transport, ws = connect()
    connection.close_after("goodbye", 4000, "revoked")
    assert transport.written == [frame("goodbye")]
    assert connection.closer is not None
    await connection.closer
    assert ws.closed_with == [4000] and not transport.aborted


@pytest.mark.parametrize(("close_code", "cut"), [(WSCloseCode.ABNORMAL_CLOSURE, True), (WSCloseCode.OK, False)])
def test_release_cuts_only_a_peer_that_vanished(close_code: int, cut: bool) -> None:
    connection, transport, ws = connect()
    ws.close_code = close_code
    connection.release()
    assert connection.closing and transport.aborted is cut

