"""app/collect.py: full collections walk only what is new, and a quiet moment sweeps the rest."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from aiohttp.test_utils import TestClient

from app import collect
from app.collect import CHECK_SECONDS, GROWN_AT_LEAST, SWEEP_EVERY_SECONDS, Sweeper
from app.typedefs import db_key

from .support import Place


class Node:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector() -> Iterator[None]:
    collect.start()
    yield
    collect.stop()


def test_a_full_collection_freezes_what_survived(collector: None) -> None:
    gc.collect()
    assert gc.get_freeze_count() > 0
    young = Node()
    assert gc.is_tracked(young)
    gc.collect()
    assert gc.get_freeze_count() > 0 and collect.freeze_survivors in gc.callbacks


def test_a_cycle_left_after_the_freeze_waits_for_the_sweep(collector: None) -> None:
    node = Node()
    alive = weakref.ref(node)
    gc.collect()  # node survives: frozen
    del node
    gc.collect()
    assert alive() is not None  # the price: frozen garbage in a cycle stays
    collected, seconds = collect.sweep()
    assert alive() is None and collected >= 1 and seconds >= 0
    assert gc.get_freeze_count() > 0  # the survivors of the sweep are set aside again


def test_the_last_user_unfreezes_everything() -> None:
    collect.start()
    collect.start()
    gc.collect()
    collect.stop()
    assert gc.get_freeze_count() > 0 and collect.freeze_survivors in gc.callbacks
    collect.stop()
    assert gc.get_freeze_count() == 0 and collect.freeze_survivors not in gc.callbacks


class Server:
    """What a Sweeper looks at: the time, the writes so far, the objects frozen."""

    def __init__(self) -> None:
        self.now, self.writes, self.frozen = 1000.0, 0, 60_000

    def sweeper(self) -> Sweeper:
        return Sweeper(lambda: self.writes, lambda: self.now, lambda: self.frozen)


def test_a_sweep_waits_for_a_quiet_look_an_hour_after_the_last() -> None:
    server = Server()
    sweeper = server.sweeper()
    while server.now < 1000 + SWEEP_EVERY_SECONDS:
        server.now += CHECK_SECONDS
        assert not sweeper.due() or server.now >= 1000 + SWEEP_EVERY_SECONDS
    server.now += CHECK_SECONDS
    server.writes += 1  # busy: written since the last look
    assert not sweeper.due()
    server.now += CHECK_SECONDS
    assert sweeper.due()  # an hour since the last sweep, and nothing written since the last look


def test_a_quiet_look_soon_after_a_sweep_is_not_enough() -> None:
    server = Server()
    sweeper = server.sweeper()
    server.now += SWEEP_EVERY_SECONDS - 1
    assert not sweeper.due()


def test_a_server_never_quiet_is_swept_once_its_frozen_objects_doubled() -> None:
    """Tablets reconnecting all day: what they leave frozen cannot grow without end."""
    server = Server()
    sweeper = server.sweeper()
    for _ in range(1000):
        server.now += CHECK_SECONDS
        server.writes += 1
        server.frozen += 50
        assert not sweeper.due()
    server.frozen = 2 * 60_000 - 1
    server.writes += 1
    assert not sweeper.due()
    server.frozen += 1
    server.writes += 1
    assert sweeper.due()


def test_a_small_server_is_swept_after_a_growth_of_its_own() -> None:
    server = Server()
    server.frozen = 1_000
    sweeper = server.sweeper()
    server.frozen += GROWN_AT_LEAST - 1
    assert not sweeper.due()
    server.frozen += 1
    assert sweeper.due()


def test_sweeping_restarts_the_wait_and_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server()
    sweeper = server.sweeper()
    swept = []

    def sweep() -> tuple[int, float]:
        swept.append(server.now)
        server.frozen = 70_000  # what survived the sweep, frozen again
        return 0, 0.0

    monkeypatch.setattr(collect, "sweep", sweep)
    server.now += SWEEP_EVERY_SECONDS
    sweeper.check()
    sweeper.check()
    assert swept == [1000 + SWEEP_EVERY_SECONDS]
    server.frozen = 2 * 70_000 - 1  # doubled from what the sweep left, less one
    sweeper.check()
    assert len(swept) == 1


async def test_the_server_collects_this_way_while_it_runs(client: TestClient, bistro_place: Place) -> None:
    """While the app runs its full collections freeze; its database counts the writes a sweep waits out."""
    assert collect.freeze_survivors in gc.callbacks
    db = client.app[db_key]
    writes = db.writes
    response = await client.post(f"/admin/tables/{bistro_place.ids['1']}/disable",
                                 headers={"Authorization": f"Bearer {bistro_place.admin}"})
    assert response.status == 200
    assert db.writes == writes + 1
    await client.close()
    assert collect.freeze_survivors not in gc.callbacks and gc.get_freeze_count() == 0
