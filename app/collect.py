"""Garbage collection without long pauses: no collection walks every dashboard's objects.

CPython's cycle collector walks every object it tracks on a full (generation 2) collection.
A server holding 1,000 dashboards tracks about 135,000 objects (about 50,000 of them its own
code and modules, about 85 per socket), and walking them all took 100 to 200 ms on a
two-core box, once every 5 to 15 s under load: a pause that every change in flight waited
for (docs/benchmarks.md, "The second pass (issue 18)"). So the survivors of each full collection are
frozen (`gc.freeze`): the next full collection walks only what was made since, a few
milliseconds.

The price: an object frozen while alive and left later in a reference cycle is not freed
until the frozen objects are walked again. Most of a closed socket's objects are freed at
once by their reference counts, not all: about 28 objects, 9 KiB, wait per socket closed.
Walking everything again is a sweep: `gc.unfreeze`, one full collection, frozen again. A
look every CHECK_SECONDS sweeps if the server wrote nothing since the last look and has
not swept for SWEEP_EVERY_SECONDS (a restaurant's quiet afternoon or night); and whatever
the load, once the frozen objects have doubled since the last sweep (GROWN_AT_LEAST more at
least: about 1,800 sockets closed, 16 MB), so that tablets reconnecting all day cannot grow it
without end. Counting the frozen objects walks them all (a few milliseconds with 1,000
dashboards), which is why the looks are minutes apart.

Every app of a process shares the one collector: the first to start installs it, the last
to stop removes it and unfreezes everything (the tests start many apps in one process).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from .typedefs import db_key

log = logging.getLogger(__name__)

CHECK_SECONDS = 300.0
SWEEP_EVERY_SECONDS = 3600.0
GROWN_AT_LEAST = 50_000  # frozen objects more than after the last sweep

_users = 0


def freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    """A gc callback: after a full collection, set what survived aside from the next ones."""
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def start() -> None:
    global _users
    if _users == 0:
        gc.callbacks.append(freeze_survivors)
    _users += 1


def stop() -> None:
    global _users
    _users -= 1
    if _users == 0:
        gc.callbacks.remove(freeze_survivors)
        gc.unfreeze()


def sweep() -> tuple[int, float]:
    """Walk everything once: what was frozen and has become garbage since is freed. Returns the objects
    collected and the seconds it took."""
    started = time.perf_counter()
    gc.unfreeze()
    collected = gc.collect()  # frozen again by freeze_survivors
    return collected, time.perf_counter() - started


class Sweeper:
    """Decides when to sweep, from how many writes the database has made (`written`), the clock, and how many
    objects are frozen (`frozen`)."""

    def __init__(self, written: Callable[[], int], clock: Callable[[], float] = time.monotonic,
                 frozen: Callable[[], int] = gc.get_freeze_count) -> None:
        self.written = written
        self.clock = clock
        self.frozen = frozen
        self.last_sweep = clock()
        self.writes = written()
        self.after_sweep = frozen()

    def due(self) -> bool:
        """Looked at every CHECK_SECONDS: quiet since the last look and not swept for an hour, or grown."""
        writes = self.written()
        quiet, self.writes = writes == self.writes, writes
        if quiet and self.clock() - self.last_sweep >= SWEEP_EVERY_SECONDS:
            return True
        return self.frozen() - self.after_sweep >= max(GROWN_AT_LEAST, self.after_sweep)

    def check(self) -> None:
        if self.due():
            collected, seconds = sweep()
            self.last_sweep, self.after_sweep = self.clock(), self.frozen()
            log.info("swept the frozen objects: %d collected in %.0f ms", collected, seconds * 1000)


async def collector_ctx(app: web.Application) -> AsyncIterator[None]:
    """Full collections walk only what is new while the app runs; a quiet moment sweeps the rest."""
    start()

    async def check() -> None:
        sweeper = None
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            if sweeper is None:  # from the first look: the start's full collections have frozen the code by then
                sweeper = Sweeper(lambda: app[db_key].writes)
            sweeper.check()

    task = asyncio.create_task(check())
    try:
        yield
    finally:
        task.cancel()
        stop()
