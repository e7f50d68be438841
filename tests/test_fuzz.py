"""Property-based fuzz of the dashboard socket: thousands of random and malformed frames against a live server.

Every frame gets exactly one `error`, `ack` or `pong` (or, past 4 KiB, the 1009 close), the
connection keeps answering `ping`, and the server's log holds no traceback. Frames go over
fresh connections every few messages so the per-socket rate limit is not what answers.
Set MAITRE_FUZZ_EXAMPLES for a longer run (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.web.socket import MAX_MESSAGE_BYTES

from .support import Server

EXAMPLES = int(os.environ.get("MAITRE_FUZZ_EXAMPLES", "10000"))
TIMEOUT = 10
FRAMES_PER_CONNECTION = 15  # under the burst of 20: the rate limit never answers for the server
ACTIONS = ["close_table", "disable_table", "enable_table", "restore_table", "move_table", "sync", "ping",
           "resolve_waiter_request", "drop_tables", "", "__class__"]
FIELDS = ["action", "table_id", "from_table_id", "to_table_id", "since", "ref", "request_id", "extra"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40), st.sampled_from(ACTIONS),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)
messages = st.dictionaries(st.sampled_from(FIELDS), values, max_size=5)
actions = st.builds(lambda action, rest: {**rest, "action": action}, st.sampled_from(ACTIONS), messages)
frames = st.one_of(
    actions.map(json.dumps),
    messages.map(json.dumps),
    values.map(json.dumps),
    st.text(max_size=300),
    st.binary(max_size=300),
    st.text(min_size=4100, max_size=4200),  # past the 4 KiB limit: the socket closes with 1009
)


class Tablet:
    """A real WebSocket client on its own event loop thread, so hypothesis can drive it from a plain test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.sent = 0
        self.frames = 0

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    async def _connect(self) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        if self.ws is not None:
            await self.ws.close()
        self.ws = await self.session.ws_connect(self.url, max_msg_size=0)
        first = json.loads((await self.ws.receive(timeout=10)).data)
        assert first["type"] == "tables_snapshot"
        self.sent = 0

    async def _answer(self) -> dict[str, Any]:
        assert self.ws is not None
        while True:
            message = await self.ws.receive(timeout=TIMEOUT)
            if message.type is aiohttp.WSMsgType.CLOSE:
                return {"type": "closed", "code": message.data}
            reply = json.loads(message.data)
            if reply["type"] in ("ack", "error", "pong"):
                return reply

    async def _exchange(self, frame: str | bytes) -> dict[str, Any]:
        if self.ws is None or self.sent >= FRAMES_PER_CONNECTION:
            assert self.ws is None or await self._ping(), "the connection stopped answering ping"
            await self._connect()
        assert self.ws is not None
        self.sent += 1
        self.frames += 1
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)
        reply = await self._answer()
        if reply["type"] == "closed":
            self.ws = None
        return reply

    async def _ping(self) -> bool:
        assert self.ws is not None
        self.sent += 1
        await self.ws.send_str('{"action":"ping"}')
        return (await self._answer())["type"] == "pong"

    def exchange(self, frame: str | bytes) -> dict[str, Any]:
        return self.run(self._exchange(frame))

    def close(self) -> None:
        async def shut() -> None:
            if self.ws is not None:
                await self.ws.close()
            if self.session is not None:
                await self.session.close()

        self.run(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("fuzz"), "serve", "--max-connections-per-restaurant", "50")
    key = next(line for line in server.output if line.startswith("Admin key")).rsplit(" ", 1)[1]
    tablet = Tablet(f"http://127.0.0.1:{server.port}/admin/ws/dashboard?token={key}")
    yield server, tablet
    tablet.close()
    assert server.stop() == 0
    assert "Traceback" not in server.process_output(), "the server logged an unhandled exception"


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(frame=frames)
def test_every_frame_gets_one_answer_and_the_server_keeps_answering(live, frame):
    server, tablet = live
    try:
        reply = tablet.exchange(frame)
    except Exception as error:
        tablet.run(tablet._connect())  # a fresh connection for the next example
        raise AssertionError(f"no answer to {frame!r}: {error!r}") from None
    if reply["type"] == "closed":
        size = len(frame) if isinstance(frame, bytes) else len(frame.encode())
        assert size > MAX_MESSAGE_BYTES and reply["code"] == 1009
    elif reply["type"] == "error":
        assert reply["code"] in {"invalid_json", "invalid_action", "unknown_action", "table_not_found",
                                 "no_active_session", "already_disabled", "table_occupied", "not_disabled",
                                 "table_disabled", "no_session_to_restore", "same_table", "source_table_not_found",
                                 "target_table_not_found", "no_session_to_move", "target_unavailable",
                                 "request_not_found"}, reply
        assert "Traceback" not in reply["detail"]
    else:
        assert reply["type"] in ("ack", "pong")


def test_after_the_fuzz_the_server_still_answers(live):
    server, tablet = live
    assert tablet.exchange('{"action":"ping"}') == {"type": "pong"}
