"""End of service, 40 tables: one bulk message against 40 single close_table messages.

    python -m bench.bulk [--dashboards 20] [--repetitions 30]

One restaurant of 40 tables on the real server, with 20 dashboards connected. Each
repetition seats every table (one bulk of seat_table items), then closes them all, as one
bulk of 40 close_table items from one dashboard; then seats them again and closes them as
40 single close_table messages sent back to back (the two in the other order every other
repetition). The time is from sending the first message to the moment every dashboard has
received the last table_update (the restaurant's version 40 changes on).

A tablet may send 20 messages at once, then 10 a second: 40 singles from one socket would
see 20 of them refused. So the singles come from the dashboards in turn, two each, as the
fan-out rows' load does. That is the singles' best case: the server commits messages that
arrive together in one group, as it would for a whole floor of tablets.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from app.web.socket import MESSAGES_PER_SECOND

from .load import percentile
from .servers import free_port, prepare, start_server

TABLES = 40
UPDATE = '{"type":"table_update","version":'  # how the server's table_update frames begin (app/render.py)
WAIT_SECONDS = 30


@dataclass
class EndOfService:
    dashboards: int
    tables: int
    bulk_ms: list[float]
    singles_ms: list[float]

    def lines(self) -> list[str]:
        def figures(values: list[float]) -> str:
            return f"p50 {percentile(values, 50):7.2f} ms, p90 {percentile(values, 90):7.2f} ms"

        return [
            f"End of service, {self.tables} tables, {len(self.bulk_ms)} repetitions, "
            f"until all {self.dashboards} dashboards have the last update:",
            f"  one bulk message      {figures(self.bulk_ms)}",
            f"  {self.tables} single messages    {figures(self.singles_ms)}",
            f"  bulk / singles, p50   {percentile(self.bulk_ms, 50) / percentile(self.singles_ms, 50):.2f}x",
        ]


class Restaurant:
    """The dashboards of one restaurant: each notes when the update of the awaited version reaches it."""

    def __init__(self, sockets: list[aiohttp.ClientWebSocketResponse], version: int) -> None:
        self.sockets = sockets
        self.version = version
        self.awaited = version
        self.arrived: list[float] = []
        self.everyone = asyncio.Event()
        self.replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.refs = itertools.count(1)
        self.readers = [asyncio.create_task(self._read(ws)) for ws in sockets]

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, url: str, dashboards: int) -> Restaurant:
        sockets, versions = [], set()
        for _ in range(dashboards):
            ws = await session.ws_connect(url, max_msg_size=0, heartbeat=None)
            snapshot = json.loads((await ws.receive(timeout=WAIT_SECONDS)).data)
            assert snapshot["type"] == "tables_snapshot", snapshot
            sockets.append(ws)
            versions.add(snapshot["version"])
        assert len(versions) == 1, versions  # nothing changes while they connect
        return cls(sockets, versions.pop())

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            now = time.perf_counter()
            if message.data.startswith(UPDATE):  # only its version is read: 800 cards to parse would add their time
                version = int(message.data[len(UPDATE):message.data.index(",", len(UPDATE))])
                if version == self.awaited:
                    self.arrived.append(now)
                    if len(self.arrived) == len(self.sockets):
                        self.everyone.set()
                continue
            data = json.loads(message.data)
            if data.get("ref") in self.replies:
                self.replies.pop(data["ref"]).set_result(data)

    async def change(self, messages: list[tuple[int, dict[str, Any]]], changes: int) -> float:
        """Send each message from its dashboard (by index), back to back; the seconds from the first send
        until every dashboard has the update `changes` versions on. Any refusal stops the benchmark."""
        self.awaited, self.arrived, self.everyone = self.version + changes, [], asyncio.Event()
        answers = []
        start = time.perf_counter()
        for dashboard, message in messages:
            ref = f"r{next(self.refs)}"
            answers.append(self.replies.setdefault(ref, asyncio.get_running_loop().create_future()))
            await self.sockets[dashboard].send_str(json.dumps({**message, "ref": ref}))
        for answer in await asyncio.wait_for(asyncio.gather(*answers), WAIT_SECONDS):
            if answer["type"] != "ack" or not all(result["ok"] for result in answer.get("results", [])):
                raise RuntimeError(f"refused: {answer}")
        await asyncio.wait_for(self.everyone.wait(), WAIT_SECONDS)
        self.version = self.awaited
        return max(self.arrived) - start

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


def bulk(action: str, table_ids: list[int]) -> dict[str, Any]:
    return {"action": "bulk", "actions": [{"action": action, "table_id": table_id} for table_id in table_ids]}


async def end_of_service(restaurant: Restaurant, table_ids: list[int], turn: int, as_bulk: bool) -> float:
    """Seat every table, then the seconds until every dashboard sees them all closed.

    `turn` picks the dashboards that send the bulks; before the singles, each tablet's allowance of
    messages is given time to refill what they take from it."""
    count = len(restaurant.sockets)
    await restaurant.change([(turn % count, bulk("seat_table", table_ids))], len(table_ids))
    if as_bulk:
        return await restaurant.change([((turn + 1) % count, bulk("close_table", table_ids))], len(table_ids))
    await asyncio.sleep(math.ceil(len(table_ids) / count) / MESSAGES_PER_SECOND)
    singles = [(n % count, {"action": "close_table", "table_id": table_id}) for n, table_id in enumerate(table_ids)]
    return await restaurant.change(singles, len(table_ids))


async def measure_end_of_service(tmpdir: Path, dashboards: int, repetitions: int) -> EndOfService:
    """On its own server and database; one repetition first, not counted, to warm the server up."""
    db = tmpdir / "end-of-service.db"
    keys, table_ids = await prepare(db, 1, TABLES)
    port = free_port()
    server = start_server(db, port, compression=False, heartbeat=30.0)
    bulk_ms: list[float] = []
    singles_ms: list[float] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            restaurant = await Restaurant.connect(
                session, f"http://127.0.0.1:{port}/admin/ws/dashboard?token={keys[0]}", dashboards)
            try:
                for repetition in range(repetitions + 1):
                    order = [True, False] if repetition % 2 else [False, True]
                    for step, as_bulk in enumerate(order):
                        seconds = await end_of_service(restaurant, table_ids[0], 2 * repetition + step, as_bulk)
                        if repetition:
                            (bulk_ms if as_bulk else singles_ms).append(seconds * 1000)
            finally:
                await restaurant.close()
    finally:
        server.stop()
    return EndOfService(dashboards, TABLES, bulk_ms, singles_ms)


async def main(dashboards: int, repetitions: int) -> None:
    with tempfile.TemporaryDirectory(prefix="maitre-bulk-") as tmp:
        outcome = await measure_end_of_service(Path(tmp), dashboards, repetitions)
    print("\n".join(outcome.lines()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__.splitlines()[0])
    parser.add_argument("--dashboards", type=int, default=20,
                        help="dashboards connected, at least 3: they send the 40 singles between them (20)")
    parser.add_argument("--repetitions", type=int, default=30, help="of each way to close (30)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.dashboards, arguments.repetitions))
