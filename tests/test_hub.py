"""Unit tests of the registry (app/hub.py): who is connected to which restaurant, at which version.

No socket, no server: dashboards are Connections over the stand-ins of tests/support.py.
"""

from __future__ import annotations

from typing import cast

from aiohttp import web

from app.hub import FILL_TRIES, REPLAY_SIZE, Hub
from app.protocol import MADE_ROOM, SHUTTING_DOWN, TOO_MANY_CONNECTIONS
from app.sockets import BUFFER_LIMIT, Connection, frame

from .support import RecordingTransport, StandInSocket, eventually, principal

BISTRO, CAFE = 1, 2


def dashboard(restaurant_id: int = BISTRO, key_id: int = 1, expires_at: str | None = None,
              limit: int = BUFFER_LIMIT, role: str = "admin") -> tuple[Connection, RecordingTransport]:
    transport = RecordingTransport()
    ws = cast(web.WebSocketResponse, StandInSocket())
    return Connection(ws, transport, principal(restaurant_id, key_id, expires_at, role), limit), transport


async def join(hub: Hub, restaurant_id: int = BISTRO, key_id: int = 1, expires_at: str | None = None,
               limit: int = BUFFER_LIMIT, role: str = "admin") -> tuple[Connection, RecordingTransport]:
    """A dashboard of the restaurant whose snapshot is out, and what was written to it."""
    connection, transport = dashboard(restaurant_id, key_id, expires_at, limit, role)
    assert await hub.join(connection) is None
    hub.start_at(restaurant_id, 0)  # its snapshot was at version 0
    connection.start(floor=0)
    return connection, transport


def update(version: int) -> str:
    return f'{{"type":"table_update","version":{version}}}'


def deliver(hub: Hub, versions: range | list[int], restaurant_id: int = BISTRO) -> None:
    for version in versions:
        hub.deliver(restaurant_id, version, update(version))


async def test_replay_gives_the_updates_after_since_in_order() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    await join(hub)
    deliver(hub, range(1, 5))
    assert hub.replay(BISTRO, 1) == [frame(update(2)), frame(update(3)), frame(update(4))]
    assert hub.replay(BISTRO, 4) == []


async def test_a_restaurant_nobody_here_watches_is_not_followed() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    deliver(hub, range(1, 5))
    assert hub.replay(BISTRO, 1) is None and hub.versions() == {}
    connection, _ = await join(hub)
    deliver(hub, [1])
    hub.leave(connection)
    deliver(hub, [2])  # its last dashboard left: the restaurant is let go, its next one starts afresh
    assert hub.restaurants == {}


async def test_an_update_before_its_predecessor_is_held_and_the_gap_filled_from_the_log() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    asked: list[int] = []

    async def log(restaurant_id: int, after: int) -> list[tuple[int, str]]:  # the audit log holds 1..5
        asked.append(after)
        return [(version, update(version)) for version in range(after + 1, 6)]

    hub.fill = log
    _, transport = await join(hub)
    deliver(hub, [1, 2, 5])  # 3 and 4 are on their way, or were lost
    assert transport.written == [frame(update(1)), frame(update(2))], "5 waits for 3 and 4"
    await eventually(lambda: len(transport.written) == 5)
    assert transport.written == [frame(update(v)) for v in range(1, 6)] and asked == [2]
    deliver(hub, [3, 4])  # the late ones are old news now
    assert len(transport.written) == 5 and hub.replay(BISTRO, 0) == transport.written


async def test_an_actions_ack_waits_for_its_update_when_that_is_held_behind_a_gap() -> None:
    """Worker B commits version 3 just after worker A committed 2: B delivers its own 3 at once, but 2 is still
    on its way through Redis, so 3 is held. The ack of 3 must not overtake it (protocol.md: the ack comes after
    the action's numbered messages). tests/test_faults.py found acks sent before their updates under load."""
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    connection, transport = await join(hub)
    deliver(hub, [1, 3])
    hub.reply(connection, 3, frame('{"type":"ack","version":3}'))
    hub.reply(connection, 1, frame('{"type":"ack","version":1}'))  # delivered already: goes out at once
    assert transport.written == [frame(update(1)), frame('{"type":"ack","version":1}')]
    deliver(hub, [2])
    assert transport.written[2:] == [frame(update(2)), frame(update(3)), frame('{"type":"ack","version":3}')]


async def test_an_announcement_waits_for_the_update_it_comes_with_when_that_is_held() -> None:
    """A guest's call on B while A's change below it is still on its way: the card's update is held, and the
    call's announcement must not reach the dashboards before it (nor before the call shows on the card)."""
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    _, transport = await join(hub)
    deliver(hub, [1, 3])
    hub.announce(BISTRO, '{"type":"waiter_request"}', after=3)
    hub.announce(BISTRO, '{"type":"restaurant_update"}')  # comes with no update: at once
    assert transport.written == [frame(update(1)), frame('{"type":"restaurant_update"}')]
    deliver(hub, [2])
    assert transport.written[2:] == [frame(update(2)), frame(update(3)), frame('{"type":"waiter_request"}')]


async def test_updates_that_come_before_the_first_snapshot_wait_for_it() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    connection, transport = dashboard()
    assert await hub.join(connection) is None
    deliver(hub, [7, 8])  # the snapshot is being read: it may hold these or not
    hub.start_at(BISTRO, 7)
    connection.start(floor=7)
    assert transport.written == [frame(update(8))] and hub.versions() == {BISTRO: 8}


async def test_a_gap_the_log_cannot_fill_is_skipped_after_a_few_looks() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    looks: list[int] = []

    async def log(restaurant_id: int, after: int) -> list[tuple[int, str]]:
        looks.append(after)
        return []

    hub.fill = log
    _, transport = await join(hub)
    deliver(hub, [1, 4])
    await eventually(lambda: len(transport.written) == 2, timeout=5)
    assert transport.written == [frame(update(1)), frame(update(4))] and looks == [1] * (FILL_TRIES + 1)
    assert hub.replay(BISTRO, 1) is None, "2 and 3 were never sent: a replay would skip them"


async def test_replay_needs_a_snapshot_when_since_is_ahead_or_older_than_what_is_held() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    assert hub.replay(BISTRO, 0) is None, "nobody watches it yet"
    await join(hub)
    deliver(hub, range(1, REPLAY_SIZE + 3))  # versions 1 and 2 have left the buffer
    assert hub.replay(BISTRO, REPLAY_SIZE + 3) is None
    assert hub.replay(BISTRO, 1) is None
    assert len(hub.replay(BISTRO, 2) or []) == REPLAY_SIZE, "all that is held, from version 3"
    assert hub.replay(CAFE, 0) is None


async def test_start_at_sets_the_version_only_when_nothing_was_delivered() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    hub.start_at(BISTRO, 7)
    assert hub.versions() == {}, "no dashboard: the hub does not track the restaurant"
    assert await hub.join(dashboard()[0]) is None
    hub.start_at(BISTRO, 7)
    hub.start_at(BISTRO, 9)
    assert hub.versions() == {BISTRO: 7}
    hub.deliver(BISTRO, 8, update(8))
    hub.start_at(BISTRO, 20)
    assert hub.versions() == {BISTRO: 8}


async def test_an_old_version_is_dropped() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    _, transport = await join(hub)
    deliver(hub, [1, 2])
    hub.deliver(BISTRO, 2, "a second version 2")
    hub.deliver(BISTRO, 1, "an old version 1")
    assert transport.written == [frame(update(1)), frame(update(2))]
    assert hub.replay(BISTRO, 0) == [frame(update(1)), frame(update(2))]


async def test_updates_reach_only_the_restaurants_dashboards() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    _, bistro = await join(hub, BISTRO)
    _, cafe = await join(hub, CAFE)
    deliver(hub, [1], BISTRO)
    assert bistro.written == [frame(update(1))] and cafe.written == []


async def test_an_announcement_is_neither_numbered_nor_replayed() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    _, transport = await join(hub)
    deliver(hub, [1])
    hub.announce(BISTRO, '{"type":"waiter_request"}')
    assert transport.written == [frame(update(1)), frame('{"type":"waiter_request"}')]
    assert hub.versions() == {BISTRO: 1}
    assert hub.replay(BISTRO, 0) == [frame(update(1))]


async def test_a_dashboard_closed_for_not_keeping_up_leaves_the_restaurant() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    stuck, stuck_transport = await join(hub, key_id=1, limit=100)
    await join(hub, key_id=2)
    stuck_transport.buffered = 101
    deliver(hub, [1])
    assert stuck.closing and hub.count(BISTRO) == 1
    assert stuck.closer is not None
    await stuck.closer



async def test_a_dashboard_closed_by_an_announcement_leaves_the_restaurant() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    stuck, stuck_transport = await join(hub, key_id=1, limit=100)
    _, transport = await join(hub, key_id=2)
    stuck_transport.buffered = 101
    hub.announce(BISTRO, '{"type":"waiter_request"}')
    assert stuck.closing and hub.count(BISTRO) == 1
    assert transport.written == [frame('{"type":"waiter_request"}')]
    assert stuck.closer is not None
    await stuck.closer

async def test_close_expired_looks_only_once_a_sign_in_may_have_ended() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    early, _ = await join(hub, key_id=1, expires_at="2030-01-01T10:00:00.000Z")
    late, _ = await join(hub, key_id=2, expires_at="2030-01-01T12:00:00.000Z")
    await join(hub, key_id=3)  # an API key: it does not end
    assert hub.next_expiry == "2030-01-01T10:00:00.000Z"
    hub.close_expired("2030-01-01T09:59:59.999Z", "ended", 4401)
    assert hub.count(BISTRO) == 3 and not early.closing
    hub.close_expired("2030-01-01T10:00:00.000Z", "ended", 4401)
    assert early.closing and not late.closing and hub.count(BISTRO) == 2
    assert hub.next_expiry == "2030-01-01T12:00:00.000Z"
    hub.close_expired("2030-01-01T13:00:00.000Z", "ended", 4401)
    assert late.closing and hub.count(BISTRO) == 1 and hub.next_expiry is None
    for connection in (early, late):
        assert connection.closer is not None
        await connection.closer
        assert cast(StandInSocket, connection.ws).closed_with == [4401]


async def test_a_restaurant_has_at_most_its_connections() -> None:
    hub = Hub(max_per_restaurant=2, max_per_key=5)
    first, _ = await join(hub, BISTRO)
    await join(hub, BISTRO)
    assert await hub.join(dashboard(BISTRO)[0]) == TOO_MANY_CONNECTIONS
    await join(hub, CAFE)  # another restaurant counts its own
    hub.leave(first)
    await join(hub, BISTRO)
    assert (hub.count(BISTRO), hub.count(CAFE)) == (2, 1)


async def test_one_key_holds_at_most_its_share_of_the_restaurant() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=2)
    first, _ = await join(hub, key_id=1)
    await join(hub, key_id=1)
    refusal = await hub.join(dashboard(key_id=1)[0])
    assert refusal is not None and refusal.code == 4429
    assert refusal.text is not None and '"code":"too_many_connections"' in refusal.text
    assert "This key already has 2 dashboards open" in refusal.text
    await join(hub, key_id=2)  # another key of the restaurant counts its own
    hub.leave(first)
    await join(hub, key_id=1)
    assert hub.count(BISTRO) == 3


async def test_an_admin_gets_into_a_full_restaurant_by_closing_the_viewer_that_joined_last() -> None:
    hub = Hub(max_per_restaurant=3, max_per_key=5)
    older_viewer, _ = await join(hub, key_id=2, role="viewer")
    await join(hub, key_id=1)
    newer_viewer, newer_transport = await join(hub, key_id=3, role="viewer")
    assert await hub.join(dashboard(key_id=4, role="viewer")[0]) == TOO_MANY_CONNECTIONS, "a viewer is turned away"
    assert await hub.join(dashboard(key_id=1)[0]) is None
    assert newer_viewer.closing and not older_viewer.closing and hub.count(BISTRO) == 3
    assert newer_transport.written == [frame(MADE_ROOM)]
    assert newer_viewer.closer is not None
    await newer_viewer.closer
    assert cast(StandInSocket, newer_viewer.ws).closed_with == [4429]
    assert await hub.join(dashboard(key_id=5)[0]) is None, "the next admin closes the other viewer"
    assert older_viewer.closing and hub.count(BISTRO) == 3
    assert older_viewer.closer is not None
    await older_viewer.closer
    refusal = await hub.join(dashboard(key_id=6)[0])
    assert refusal == TOO_MANY_CONNECTIONS, "only admins left: nobody is closed for another"
    assert hub.count(BISTRO) == 3


async def test_once_shutting_down_every_dashboard_is_closed_and_newcomers_turned_away() -> None:
    hub = Hub(max_per_restaurant=5, max_per_key=5)
    connection, _ = await join(hub)
    await hub.close_all()
    assert cast(StandInSocket, connection.ws).closed_with == [1001] and hub.count(BISTRO) == 0
    assert await hub.join(dashboard(key_id=2)[0]) == SHUTTING_DOWN and SHUTTING_DOWN.code == 1001
    assert hub.count(BISTRO) == 0
