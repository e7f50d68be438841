"""The dashboard socket, spoken to by real WebSocket clients over a real server and database."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import re
import signal
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType, web

from app import create_app
from app.auth import KeyService
from app.db import Database
from app.limits import TokenBucket
from app.services.floor import FloorService
from app.services.tables import TableService
from app.typedefs import api_keys_key, hub_key, tables_key
from app.web import socket as socket_handler

from .html import cards
from .support import SOCKET, Clock, Server, dashboard, eventually, keys_on, receive, signed_in


async def quiet(ws: aiohttp.ClientWebSocketResponse, seconds: float = 0.3) -> None:
    """Nothing more arrives on this socket for a while."""
    with pytest.raises(asyncio.TimeoutError):
        print(await ws.receive(timeout=seconds))


async def answer_to(ws: aiohttp.ClientWebSocketResponse, message: Any) -> dict[str, Any]:
    await ws.send_str(message if isinstance(message, str) else json.dumps(message))
    return await receive(ws)


# -- connecting -----------------------------------------------------------------------------------


async def test_the_snapshot_on_connect(client, bistro_place):
    ws, snapshot = await dashboard(client, bistro_place.admin)
    assert snapshot["version"] == 6
    assert [t["number"] for t in snapshot["tables"]] == ["1", "2", "3", "4", "5", "6"]
    grid = cards(snapshot["html"])
    assert [card["id"] for card in grid] == [f"table-{bistro_place.ids[str(n)]}" for n in range(1, 7)]
    assert {card["data-status"] for card in grid} == {"free"}
    await ws.close()


async def test_the_snapshot_names_the_restaurant_as_it_is_now(client, bistro_place, restaurants, settings):
    ws, snapshot = await dashboard(client, bistro_place.admin)
    assert snapshot["restaurant"] == {"name": "Bistro", "idle_warning_minutes": settings.idle_warning_minutes,
                                      "idle_alert_minutes": settings.idle_alert_minutes}
    await ws.close()
    await restaurants.configure("bistro", name="Le Bistro", idle_warning_minutes=15)  # while the tablet was away
    ws, snapshot = await dashboard(client, bistro_place.admin)
    assert snapshot["restaurant"] == {"name": "Le Bistro", "idle_warning_minutes": 15,
                                      "idle_alert_minutes": settings.idle_alert_minutes}
    await ws.send_json({"action": "sync", "ref": "s"})  # a fresh snapshot says it too
    assert (await receive(ws))["restaurant"]["name"] == "Le Bistro"
    await ws.close()


async def test_an_action_is_acknowledged_and_pushed_to_every_dashboard(client, bistro_place, tables):
    table_id = bistro_place.ids["2"]
    await tables.seat_table(bistro_place.actor, table_id, 2)  # version 7
    sender, snapshot = await dashboard(client, bistro_place.admin)
    watcher, _ = await dashboard(client, bistro_place.viewer)
    assert snapshot["version"] == 7

    await sender.send_json({"action": "close_table", "table_id": table_id, "ref": "a1"})
    update = await receive(sender)
    assert update["type"] == "table_update" and update["version"] == 8
    assert update["table"]["id"] == table_id and update["table"]["status"] == "free"
    (card,) = cards(update["html"])
    assert card["id"] == f"table-{table_id}" and card["data-status"] == "free"
    # Seat opens 1..4 or More; Restore
    assert card["buttons"] == ["Seat", "1", "2", "3", "4", "Seat", "Restore", "Disable"]
    assert await receive(sender) == {"type": "ack", "ref": "a1", "version": 8}
    assert await receive(watcher) == update
    await quiet(watcher)


async def test_a_move_pushes_both_tables_in_order(client, bistro_place, tables):
    await tables.seat_table(bistro_place.actor, bistro_place.ids["1"], 4)
    ws, snapshot = await dashboard(client, bistro_place.admin)
    start = snapshot["version"]
    await ws.send_json({"action": "move_table", "from_table_id": bistro_place.ids["1"],
                        "to_table_id": bistro_place.ids["5"], "ref": 7})
    first, second, ack = await receive(ws), await receive(ws), await receive(ws)
    assert (first["version"], first["table"]["id"], first["table"]["status"]) == (
        start + 1, bistro_place.ids["1"], "free")
    assert (second["version"], second["table"]["id"], second["table"]["status"]) == (
        start + 2, bistro_place.ids["5"], "occupied")
    assert ack == {"type": "ack", "ref": 7, "version": start + 2}


async def test_seating_over_the_socket_with_and_without_a_guest_count(client, bistro_place):
    sender, snapshot = await dashboard(client, bistro_place.admin)
    watcher, _ = await dashboard(client, bistro_place.viewer)
    start = snapshot["version"]
    await sender.send_json({"action": "seat_table", "table_id": bistro_place.ids["1"], "guest_count": 3, "ref": 1})
    seated = await receive(sender)
    assert (seated["version"], seated["table"]["status"], seated["table"]["session"]["guest_count"]) == (
        start + 1, "occupied", 3)
    assert cards(seated["html"])[0]["buttons"][:3] == ["Close", "Move", "Join"]
    assert await receive(sender) == {"type": "ack", "ref": 1, "version": start + 1}
    assert await receive(watcher) == seated
    await sender.send_json({"action": "seat_table", "table_id": bistro_place.ids["2"], "ref": 2})
    assert (await receive(sender))["table"]["session"]["guest_count"] == 4  # as many as it seats
    assert await receive(sender) == {"type": "ack", "ref": 2, "version": start + 2}


@pytest.mark.parametrize("guest_count", ["3", 0, 100, 2.5, True, None])
async def test_the_socket_takes_a_guest_count_only_as_a_whole_number_1_to_99(client, bistro_place, guest_count):
    ws, snapshot = await dashboard(client, bistro_place.admin)
    action = "set_guest_count" if guest_count is None else "seat_table"  # a party's size must be said
    if action == "set_guest_count":
        await ws.send_json({"action": "seat_table", "table_id": bistro_place.ids["1"]})
        await receive(ws), await receive(ws)
    reply = await answer_to(ws, {"action": action, "table_id": bistro_place.ids["1"], "guest_count": guest_count,
                                 "ref": "g"})
    assert (reply["type"], reply["code"], reply["ref"]) == ("error", "invalid_guest_count", "g")
    assert await answer_to(ws, {"action": "ping"}) == {"type": "pong"}  # no update came with the refusal


async def test_a_whole_number_may_be_written_with_a_zero_fraction(client, bistro_place):
    """JSON has one kind of number, so 2.0 is the whole number 2 (as JSON Schema counts it); 2.5 is no id."""
    ws, snapshot = await dashboard(client, bistro_place.admin)
    one = bistro_place.ids["1"]
    await ws.send_str(f'{{"action": "seat_table", "table_id": {one}.0, "guest_count": 2.0, "ref": 1e0}}')
    seated = await receive(ws)
    assert seated["table"]["session"]["guest_count"] == 2
    assert await receive(ws) == {"type": "ack", "ref": 1, "version": snapshot["version"] + 1}
    reply = await answer_to(ws, f'{{"action": "close_table", "table_id": {one}.5}}')
    assert reply["code"] == "invalid_action"


async def test_a_viewers_socket_may_not_seat_or_change_a_party(client, bistro_place, tables):
    await tables.seat_table(bistro_place.actor, bistro_place.ids["1"], 2)
    one, two = bistro_place.ids["1"], bistro_place.ids["2"]
    ws, _ = await dashboard(client, bistro_place.viewer)
    for message in [{"action": "seat_table", "table_id": two, "guest_count": 2},
                    {"action": "set_guest_count", "table_id": one, "guest_count": 5},
                    {"action": "set_note", "table_id": one, "note": "hi"},
                    {"action": "join_tables", "table_id": one, "with_table_id": two},
                    {"action": "split_table", "table_id": one}]:
        reply = await answer_to(ws, {**message, "ref": "v"})
        assert (reply["code"], reply["ref"]) == ("forbidden", "v"), message
    _, rows = await tables.list_tables(bistro_place.actor.restaurant_id)
    assert (rows[0]["session"]["guest_count"], rows[0]["session"]["note"], rows[1]["status"]) == (2, None, "free")


async def test_the_party_size_and_note_over_the_socket(client, bistro_place, tables):
    await tables.seat_table(bistro_place.actor, bistro_place.ids["1"], 2)
    sender, snapshot = await dashboard(client, bistro_place.admin)
    watcher, _ = await dashboard(client, bistro_place.viewer)
    start = snapshot["version"]
    await sender.send_json({"action": "set_guest_count", "table_id": bistro_place.ids["1"], "guest_count": 6})
    sized = await receive(sender)
    assert (sized["version"], sized["table"]["session"]["guest_count"]) == (start + 1, 6)
    assert "6 guests" in cards(sized["html"])[0]["text"]
    assert (await receive(sender))["version"] == start + 1 and await receive(watcher) == sized

    note = "<script>alert(1)</script> & birthday"
    await sender.send_json({"action": "set_note", "table_id": bistro_place.ids["1"], "note": note, "ref": "n"})
    noted = await receive(sender)
    assert noted["table"]["session"]["note"] == note  # the table dict carries the text as typed
    assert "<script>" not in noted["html"]
    assert '<p class="party-note">&lt;script&gt;alert(1)&lt;/script&gt; &amp; birthday</p>' in noted["html"]
    assert note in cards(noted["html"])[0]["text"]  # and the card shows it, as text
    assert await receive(sender) == {"type": "ack", "ref": "n", "version": start + 2}
    assert await receive(watcher) == noted
    for bad in ["x" * 141, "two\nlines", 42]:
        reply = await answer_to(sender, {"action": "set_note", "table_id": bistro_place.ids["1"], "note": bad})
        assert reply["code"] == "invalid_note"
    await quiet(watcher)


async def test_join_and_split_push_one_update_per_changed_table(client, bistro_place, tables):
    one, two, three = (bistro_place.ids[label] for label in ("1", "2", "3"))
    await tables.seat_table(bistro_place.actor, one, 6)
    sender, snapshot = await dashboard(client, bistro_place.admin)
    watcher, _ = await dashboard(client, bistro_place.viewer)
    start = snapshot["version"]

    await sender.send_json({"action": "join_tables", "table_id": one, "with_table_id": two, "ref": "j"})
    joined = [await receive(sender), await receive(sender)]
    assert [(m["type"], m["version"], m["table"]["id"]) for m in joined] == [
        ("table_update", start + 1, one), ("table_update", start + 2, two)]
    party = joined[0]["table"]["session"]
    assert joined[1]["table"]["session"] == party and party["tables"] == [{"id": one, "number": "1"},
                                                                         {"id": two, "number": "2"}]
    assert await receive(sender) == {"type": "ack", "ref": "j", "version": start + 2}
    assert [await receive(watcher), await receive(watcher)] == joined

    # from the joined table, a third: the party's tables, then the new one
    await sender.send_json({"action": "join_tables", "table_id": two, "with_table_id": three, "ref": "j2"})
    third = [await receive(sender) for _ in range(3)]
    assert [(m["version"], m["table"]["id"]) for m in third] == [(start + 3, one), (start + 4, two),
                                                                 (start + 5, three)]
    assert all(m["table"]["session"]["id"] == party["id"] for m in third)
    assert await receive(sender) == {"type": "ack", "ref": "j2", "version": start + 5}

    await sender.send_json({"action": "split_table", "table_id": two, "ref": "s"})
    split = [await receive(sender) for _ in range(3)]
    assert [m["version"] for m in split] == [start + 6, start + 7, start + 8]
    after = {m["table"]["id"]: m["table"] for m in split}
    assert after[two]["status"] == "free" and after[two]["session"] is None
    assert after[one]["session"]["tables"] == after[three]["session"]["tables"] == [
        {"id": one, "number": "1"}, {"id": three, "number": "3"}]
    assert await receive(sender) == {"type": "ack", "ref": "s", "version": start + 8}
    assert [(await receive(watcher))["version"] for _ in range(6)] == list(range(start + 3, start + 9))
    await quiet(watcher)


@pytest.mark.parametrize(("message", "code"), [
    ({"action": "join_tables", "table_id": "BISTRO:1", "with_table_id": "BISTRO:1"}, "same_table"),
    ({"action": "join_tables", "table_id": "BISTRO:2", "with_table_id": "BISTRO:3"}, "no_active_session"),
    ({"action": "join_tables", "table_id": "BISTRO:1", "with_table_id": "BISTRO:4"}, "target_unavailable"),
    ({"action": "join_tables", "table_id": "BISTRO:1"}, "invalid_action"),
    ({"action": "split_table", "table_id": "BISTRO:1"}, "not_joined"),
    ({"action": "split_table", "table_id": "BISTRO:2"}, "no_active_session"),
    ({"action": "set_note", "table_id": "BISTRO:2", "note": "hi"}, "no_active_session"),
])
async def test_party_refusals_on_the_socket(client, bistro_place, tables, message, code):
    await tables.seat_table(bistro_place.actor, bistro_place.ids["1"], 2)
    await tables.seat_table(bistro_place.actor, bistro_place.ids["4"], 2)
    message = {k: bistro_place.ids[v.split(":")[1]] if isinstance(v, str) and ":" in v else v
               for k, v in message.items()}
    ws, _ = await dashboard(client, bistro_place.admin)
    reply = await answer_to(ws, {**message, "ref": "p"})
    assert (reply["type"], reply["code"], reply["ref"]) == ("error", code, "p")
    assert await answer_to(ws, {"action": "ping"}) == {"type": "pong"}


async def test_a_joined_party_moves_to_one_table_and_releases_the_others(client, bistro_place, tables):
    one, two, five = (bistro_place.ids[label] for label in ("1", "2", "5"))
    await tables.seat_table(bistro_place.actor, one, 6)
    await tables.join_tables(bistro_place.actor, one, two)
    ws, snapshot = await dashboard(client, bistro_place.admin)
    start = snapshot["version"]
    await ws.send_json({"action": "move_table", "from_table_id": two, "to_table_id": five, "ref": "m"})
    moved = [await receive(ws) for _ in range(3)]  # from, the party's other table, to
    assert [(m["version"], m["table"]["id"], m["table"]["status"]) for m in moved] == [
        (start + 1, two, "free"), (start + 2, one, "free"), (start + 3, five, "occupied")]
    assert moved[2]["table"]["session"]["tables"] == [{"id": five, "number": "5"}]
    assert moved[2]["table"]["session"]["guest_count"] == 6
    assert await receive(ws) == {"type": "ack", "ref": "m", "version": start + 3}


@pytest.mark.parametrize(("message", "code"), [
    ({"action": "close_table", "table_id": 999}, "table_not_found"),
    ({"action": "close_table", "table_id": "BISTRO:1"}, "no_active_session"),
    ({"action": "enable_table", "table_id": "BISTRO:1"}, "not_disabled"),
    ({"action": "restore_table", "table_id": "BISTRO:1"}, "no_session_to_restore"),
    ({"action": "move_table", "from_table_id": "BISTRO:1", "to_table_id": "BISTRO:1"}, "same_table"),
    ({"action": "move_table", "from_table_id": "BISTRO:1", "to_table_id": "BISTRO:2"}, "no_session_to_move"),
    ({"action": "close_table", "table_id": "CAFE:1"}, "table_not_found"),
    ({"action": "move_table", "from_table_id": "CAFE:1", "to_table_id": "BISTRO:2"}, "source_table_not_found"),
])
async def test_refusals_come_back_with_their_code_and_ref(client, bistro_place, cafe_place, message, code):
    places = {"BISTRO": bistro_place, "CAFE": cafe_place}
    message = {k: places[v.split(":")[0]].ids[v.split(":")[1]] if isinstance(v, str) and ":" in v else v
               for k, v in message.items()}
    ws, snapshot = await dashboard(client, bistro_place.admin)
    reply = await answer_to(ws, {**message, "ref": "x9"})
    assert reply["type"] == "error" and reply["code"] == code and reply["ref"] == "x9"
    assert reply["detail"]
    assert await answer_to(ws, {"action": "ping"}) == {"type": "pong"}


@pytest.mark.parametrize(("frame", "code"), [
    ("{not json", "invalid_json"),
    ("", "invalid_json"),
    ("[1, 2]", "invalid_action"),
    ("42", "invalid_action"),
    ('{"table_id": 1}', "invalid_action"),
    ('{"action": 5}', "invalid_action"),
    ('{"action": "close_table"}', "invalid_action"),
    ('{"action": "close_table", "table_id": "1"}', "invalid_action"),
    ('{"action": "close_table", "table_id": true}', "invalid_action"),
    ('{"action": "close_table", "table_id": 1.5}', "invalid_action"),
    ('{"action": "close_table", "table_id": 99999999999999999999999999}', "invalid_action"),
    ('{"action": "move_table", "from_table_id": 1}', "invalid_action"),
    ('{"action": "close_table", "table_id": 1, "ref": {"a": 1}}', "invalid_action"),
    ('{"action": "ping", "ref": 1.5}', "invalid_action"),  # a ref is a string or a whole number
    ("[" * 3000, "invalid_json"),  # deeper than the JSON parser goes, in under 4 KiB
    ('{"action": "sync", "since": "yesterday"}', "invalid_action"),
    ('{"action": "drop_tables"}', "unknown_action"),
    ('{"action": "__init__"}', "unknown_action"),
])
async def test_bad_messages_get_an_error_and_the_connection_stays(client, bistro_place, frame, code):
    ws, _ = await dashboard(client, bistro_place.admin)
    reply = await answer_to(ws, frame)
    assert reply["type"] == "error" and reply["code"] == code
    assert "Traceback" not in reply["detail"] and "sqlite" not in reply["detail"].lower()
    assert await answer_to(ws, {"action": "ping"}) == {"type": "pong"}


async def test_a_frame_nested_too_deep_is_invalid_json_without_a_traceback(client, bistro_place, caplog):
    ws, _ = await dashboard(client, bistro_place.admin)
    for nested in ("[" * 3000, '{"a":' * 800, "[" * 1500 + "]" * 1500):
        reply = await answer_to(ws, nested)
        assert reply == {"type": "error", "code": "invalid_json",
                         "detail": "That message is not valid JSON, or nests too deeply."}
    assert await answer_to(ws, {"action": "ping", "ref": 7}) == {"type": "pong"}
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING or record.exc_info]


async def test_a_binary_frame_is_refused_politely(client, bistro_place):
    ws, _ = await dashboard(client, bistro_place.admin)
    await ws.send_bytes(b'{"action": "ping"}')
    assert (await receive(ws))["code"] == "invalid_json"
    assert await answer_to(ws, {"action": "ping"}) == {"type": "pong"}


async def test_a_viewer_may_watch_but_not_act(client, bistro_place, tables):
    await tables.seat_table(bistro_place.actor, bistro_place.ids["1"])
    ws, _ = await dashboard(client, bistro_place.viewer)
    reply = await answer_to(ws, {"action": "close_table", "table_id": bistro_place.ids["1"], "ref": "v"})
    assert (reply["code"], reply["ref"]) == ("forbidden", "v")
    _, rows = await tables.list_tables(bistro_place.actor.restaurant_id)
    assert rows[0]["status"] == "occupied"


async def test_an_oversized_message_closes_the_socket_with_1009(client, bistro_place):
    ws, _ = await dashboard(client, bistro_place.admin)
    await ws.send_str(json.dumps({"action": "ping", "padding": "x" * socket_handler.MAX_MESSAGE_BYTES}))
    message = await ws.receive(timeout=3)
    assert message.type is WSMsgType.CLOSE and message.data == 1009


async def test_too_many_messages_are_rate_limited_and_the_connection_kept(client, bistro_place, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(socket_handler, "TokenBucket", functools.partial(TokenBucket, clock=clock.monotonic))
    ws, _ = await dashboard(client, bistro_place.admin)
    for n in range(40):
        await ws.send_json({"action": "ping", "ref": n})
    replies = [await receive(ws) for _ in range(40)]
    limited = [r for r in replies if r.get("code") == "rate_limited"]
    assert 10 <= len(limited) <= 25
    assert replies[0] == {"type": "pong"}
    clock.advance(0.5)
    assert await answer_to(ws, {"action": "ping"}) == {"type": "pong"}


# -- sync -----------------------------------------------------------------------------------------


async def test_sync_replays_what_was_missed_in_order(client, bistro_place):
    ws, snapshot = await dashboard(client, bistro_place.admin)
    start = snapshot["version"]
    for label in ("1", "2", "3"):
        await ws.send_json({"action": "disable_table", "table_id": bistro_place.ids[label]})
    seen = [await receive(ws) for _ in range(6)]
    updates = [m for m in seen if m["type"] == "table_update"]
    assert [m["version"] for m in updates] == [start + 1, start + 2, start + 3]

    await ws.send_json({"action": "sync", "since": start + 1, "ref": "s"})
    replay = [await receive(ws), await receive(ws)]
    assert replay == updates[1:]
    assert await receive(ws) == {"type": "ack", "ref": "s", "version": start + 3}

    await ws.send_json({"action": "sync", "since": start + 3, "ref": "s2"})
    assert await receive(ws) == {"type": "ack", "ref": "s2", "version": start + 3}


async def test_sync_from_before_this_server_followed_the_restaurant_replays_from_the_log(client, bistro_place,
                                                                                         tables):
    for _ in range(2):  # written before any dashboard was here: no buffer of this server's holds them
        await tables.disable_table(bistro_place.actor, bistro_place.ids["5"])
        await tables.enable_table(bistro_place.actor, bistro_place.ids["5"])
    ws, snapshot = await dashboard(client, bistro_place.admin)
    now = snapshot["version"]
    await ws.send_json({"action": "sync", "since": now - 4, "ref": "s"})
    replay = [await receive(ws) for _ in range(4)]
    assert [(m["version"], m["table"]["status"]) for m in replay] == [
        (now - 3, "disabled"), (now - 2, "free"), (now - 1, "disabled"), (now, "free")]
    assert await receive(ws) == {"type": "ack", "ref": "s", "version": now}


async def test_sync_from_too_far_back_or_without_since_sends_a_snapshot(client, bistro_place, tables):
    for _ in range(socket_handler.REPLAY_AT_MOST // 2 + 1):  # more updates than a replay gives
        await tables.disable_table(bistro_place.actor, bistro_place.ids["5"])
        await tables.enable_table(bistro_place.actor, bistro_place.ids["5"])
    ws, snapshot = await dashboard(client, bistro_place.admin)
    await ws.send_json({"action": "disable_table", "table_id": bistro_place.ids["4"]})
    await receive(ws), await receive(ws)
    now = snapshot["version"] + 1
    for request in ({"action": "sync", "since": now - socket_handler.REPLAY_AT_MOST - 1}, {"action": "sync"},
                    {"action": "sync", "since": 10**6}):
        await ws.send_json(request)
        fresh = await receive(ws)
        assert fresh["type"] == "tables_snapshot" and fresh["version"] == now
        assert [c["data-status"] for c in cards(fresh["html"])][3] == "disabled"
        assert (await receive(ws))["type"] == "ack"


async def test_the_version_carries_on_after_a_restart(settings, bistro_place, aiohttp_client, db):
    first = await aiohttp_client(create_app(settings))
    ws, snapshot = await dashboard(first, bistro_place.admin)
    await ws.send_json({"action": "disable_table", "table_id": bistro_place.ids["1"]})
    await receive(ws), await receive(ws)
    await ws.close()
    await first.close()

    second = await aiohttp_client(create_app(settings))
    ws, after = await dashboard(second, bistro_place.admin)
    assert after["version"] == snapshot["version"] + 1
    assert after["tables"][0]["status"] == "disabled"
    await ws.send_json({"action": "enable_table", "table_id": bistro_place.ids["1"], "ref": "r"})
    assert (await receive(ws))["version"] == snapshot["version"] + 2


# -- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?token=", "?token=mtr_nope", "?token=" + "x" * 500])
async def test_without_valid_credentials_the_socket_says_unauthorized_and_closes_4401(client, bistro_place, query):
    ws = await client.ws_connect(SOCKET + query)
    reply = await receive(ws)
    assert reply["type"] == "error" and reply["code"] == "unauthorized"
    closing = await ws.receive(timeout=3)
    assert closing.type is WSMsgType.CLOSE and closing.data == 4401


async def test_revoking_a_key_closes_its_sockets_within_a_second(client, bistro_place, keys):
    ws, _ = await dashboard(client, bistro_place.admin)
    other, _ = await dashboard(client, bistro_place.viewer)
    (admin_key,) = [k for k in await keys.list("bistro") if k["label"] == "admin tablet"]
    started = time.monotonic()
    await keys.revoke(admin_key["id"])
    assert (await receive(ws, timeout=2))["code"] == "unauthorized"
    closing = await ws.receive(timeout=2)
    assert closing.type is WSMsgType.CLOSE and closing.data == 4401
    assert time.monotonic() - started < 1.5
    assert await answer_to(other, {"action": "ping"}) == {"type": "pong"}


async def test_the_signed_in_cookie_opens_the_socket_from_the_sites_own_page(client, bistro_place):
    await signed_in(client, bistro_place.admin)
    origin = f"http://{client.host}:{client.port}"
    ws = await client.ws_connect(SOCKET, headers={"Origin": origin})
    assert (await receive(ws))["type"] == "tables_snapshot"
    await ws.close()


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1.evil.example", "null", None])
async def test_the_cookie_from_a_foreign_origin_is_refused_before_the_upgrade(client, bistro_place, origin):
    await signed_in(client, bistro_place.admin)
    headers = {"Origin": origin} if origin else {}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(SOCKET, headers=headers)
    assert refused.value.status == 403


async def test_allowed_origins_are_matched_exactly(aiohttp_client, settings, bistro_place):
    allowed = dataclasses.replace(settings, allowed_origins=("https://tablet.example",))
    client = await aiohttp_client(create_app(allowed))
    await signed_in(client, bistro_place.admin)
    ws = await client.ws_connect(SOCKET, headers={"Origin": "https://tablet.example"})
    assert (await receive(ws))["type"] == "tables_snapshot"
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect(SOCKET, headers={"Origin": "https://tablet.example.evil"})


async def test_signing_out_closes_the_sessions_sockets(client, bistro_place):
    await signed_in(client, bistro_place.admin)
    origin = f"http://{client.host}:{client.port}"
    ws = await client.ws_connect(SOCKET, headers={"Origin": origin})
    await receive(ws)
    page = await (await client.get("/admin/dashboard")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert (await client.post("/admin/logout", data={"csrf_token": token}, allow_redirects=False)).status == 303
    assert (await receive(ws, timeout=2))["code"] == "unauthorized"


# -- isolation, limits, liveness ------------------------------------------------------------------


async def test_nothing_of_another_restaurant_is_ever_sent(client, bistro_place, cafe_place):
    bistro_ws, bistro_snapshot = await dashboard(client, bistro_place.admin)
    cafe_ws, cafe_snapshot = await dashboard(client, cafe_place.admin)
    assert {t["id"] for t in cafe_snapshot["tables"]} == set(cafe_place.ids.values())
    await cafe_ws.send_json({"action": "disable_table", "table_id": cafe_place.ids["1"], "ref": "c"})
    assert (await receive(cafe_ws))["type"] == "table_update"
    await quiet(bistro_ws)
    await bistro_ws.send_json({"action": "enable_table", "table_id": cafe_place.ids["1"], "ref": "b"})
    assert (await receive(bistro_ws))["code"] == "table_not_found"


async def test_the_connection_limit_refuses_the_next_dashboard_only(aiohttp_client, settings, bistro_place, cafe_place):
    client = await aiohttp_client(create_app(dataclasses.replace(settings, max_connections_per_restaurant=2)))
    first, _ = await dashboard(client, bistro_place.admin)
    second, _ = await dashboard(client, bistro_place.viewer)
    third = await client.ws_connect(f"{SOCKET}?token={bistro_place.viewer}")  # an admin would close the viewer
    assert (await receive(third))["code"] == "too_many_connections"
    closing = await third.receive(timeout=3)
    assert closing.type is WSMsgType.CLOSE and closing.data == 4429
    assert await answer_to(first, {"action": "ping"}) == {"type": "pong"}
    assert await answer_to(second, {"action": "ping"}) == {"type": "pong"}
    other_restaurant, _ = await dashboard(client, cafe_place.admin)  # the limit is per restaurant
    await second.close()
    await eventually(lambda: client.app[hub_key].count(bistro_place.actor.restaurant_id) == 1)
    again, _ = await dashboard(client, bistro_place.admin)
    await again.close()


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> int:
    message = await ws.receive(timeout=3)
    assert message.type is WSMsgType.CLOSE, message
    return message.data


async def test_a_viewer_keys_20_sockets_cannot_lock_an_admin_out(client, bistro_place):
    """Issue 12: one key holds at most 5 of the restaurant's 20 places (the defaults)."""
    screens = [await client.ws_connect(f"{SOCKET}?token={bistro_place.viewer}") for _ in range(20)]
    first = [await receive(ws) for ws in screens]
    assert [message["type"] for message in first] == ["tables_snapshot"] * 5 + ["error"] * 15
    detail = "This key already has 5 dashboards open; close one, or give this screen a key of its own."
    assert {(m["code"], m["detail"]) for m in first[5:]} == {("too_many_connections", detail)}
    assert [await closed_with(ws) for ws in screens[5:]] == [4429] * 15
    admin, _ = await dashboard(client, bistro_place.admin)
    for ws in [admin, *screens[:5]]:
        assert await answer_to(ws, {"action": "ping"}) == {"type": "pong"}


async def test_an_admin_gets_into_a_restaurant_full_of_viewers(aiohttp_client, settings, bistro_place, keys):
    client = await aiohttp_client(create_app(dataclasses.replace(settings, max_connections_per_key=20)))
    screens = [(await dashboard(client, bistro_place.viewer))[0] for _ in range(20)]
    _, other_viewer = await keys.add("bistro", "bar screen", "viewer")
    refused = await client.ws_connect(f"{SOCKET}?token={other_viewer}")
    assert (await receive(refused))["code"] == "too_many_connections" and await closed_with(refused) == 4429
    admin, _ = await dashboard(client, bistro_place.admin)
    made_room = await receive(screens[-1])
    assert made_room["code"] == "too_many_connections" and "make room for an admin" in made_room["detail"]
    assert await closed_with(screens[-1]) == 4429, "the viewer that joined last"
    for ws in [admin, *screens[:-1]]:
        assert await answer_to(ws, {"action": "ping"}) == {"type": "pong"}
    assert client.app[hub_key].count(bistro_place.actor.restaurant_id) == 20


async def test_a_peer_that_stops_answering_pings_is_dropped(aiohttp_client, settings, bistro_place):
    client = await aiohttp_client(create_app(dataclasses.replace(settings, heartbeat_seconds=0.2)))
    silent = await client.ws_connect(f"{SOCKET}?token={bistro_place.admin}", autoping=False)
    answering = await client.ws_connect(f"{SOCKET}?token={bistro_place.viewer}", autoping=False)
    assert (await receive(answering))["type"] == "tables_snapshot"
    heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    pings = 0

    async def keep_reading() -> None:  # answers every ping at once, as a browser always does
        nonlocal pings
        async for message in answering:
            if message.type is WSMsgType.PING:
                pings += 1
                await answering.pong(message.data)
            else:
                await heard.put(json.loads(message.data))

    reader = asyncio.create_task(keep_reading())
    started = time.monotonic()
    while True:
        message = await silent.receive(timeout=3)
        if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            break
    assert time.monotonic() - started < 2
    answered = pings
    await eventually(lambda: pings >= answered + 5)  # five more heartbeats
    await answering.send_json({"action": "ping"})
    assert await asyncio.wait_for(heard.get(), 3) == {"type": "pong"}
    assert client.app[hub_key].count(bistro_place.actor.restaurant_id) == 1
    reader.cancel()


async def test_changes_written_by_another_process_reach_the_dashboards(client, bistro_place, db_path, settings):
    ws, snapshot = await dashboard(client, bistro_place.admin)
    other = await Database.open(db_path)  # what the command line holds
    try:
        added = await FloorService(other, settings).add_table(bistro_place.actor, "Terrace 1", 2, "Terrace")
        await TableService(other, settings).seat_table(bistro_place.actor, bistro_place.ids["3"], 2)
    finally:
        await other.close()
    started = time.monotonic()
    first, second = await receive(ws, timeout=2.5), await receive(ws, timeout=2.5)
    assert time.monotonic() - started < 2
    assert (first["version"], first["table"]["number"]) == (snapshot["version"] + 1, "Terrace 1")
    assert first["table"] == added.tables[0]
    assert (second["version"], second["table"]["status"]) == (snapshot["version"] + 2, "occupied")
    await quiet(ws, 1.2)  # published once, not again on the next look


async def test_a_stuck_dashboard_never_delays_the_others(client, bistro_place):
    hub = client.app[hub_key]
    stuck = await client.ws_connect(f"{SOCKET}?token={bistro_place.admin}")
    await receive(stuck)
    readers = [(await dashboard(client, bistro_place.viewer))[0] for _ in range(3)]
    restaurant_id = bistro_place.actor.restaurant_id
    payload = "x" * 16_000
    count = 1500  # 24 MB: more than the stuck client's socket buffers and its queue hold

    base = hub.versions()[restaurant_id] or 0  # the hub sends versions in order, from its own

    async def read_all(ws):
        for expected in range(1, count + 1):
            message = await receive(ws, timeout=5)
            assert message["version"] == base + expected

    reading = [asyncio.create_task(read_all(ws)) for ws in readers]
    started = time.monotonic()
    for n in range(1, count + 1):
        hub.deliver(restaurant_id, base + n, json.dumps({"type": "table_update", "version": base + n, "pad": payload}))
        if n % 10 == 0:
            await asyncio.sleep(0.005)  # a brisk stream of changes, not one burst
    await asyncio.gather(*reading)
    assert time.monotonic() - started < 20
    closed = None
    while closed is None:
        message = await stuck.receive(timeout=10)
        if message.type is WSMsgType.CLOSE:
            closed = message.data
    assert closed == 1013
    assert hub.count(restaurant_id) == 3


async def test_shutdown_closes_every_socket_with_1001(settings, bistro_place, unused_tcp_port_factory):
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    port = unused_tcp_port_factory()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(f"http://127.0.0.1:{port}{SOCKET}?token={bistro_place.admin}")
                   for _ in range(3)]
        for ws in sockets:
            await receive(ws)
        await runner.cleanup()
        for ws in sockets:
            message = await ws.receive(timeout=3)
            assert message.type is WSMsgType.CLOSE and message.data == 1001


async def test_a_dashboard_closed_while_its_snapshot_is_read_ends_quietly(client, bistro_place, monkeypatch, caplog):
    """The server stopping between the join and the snapshot: the close frame, then nothing written after it."""
    tables = client.app[tables_key]
    list_tables, reading, go_on, read = tables.list_tables, asyncio.Event(), asyncio.Event(), []

    async def slow_list_tables(restaurant_id: int) -> Any:
        reading.set()
        await go_on.wait()
        try:
            return await list_tables(restaurant_id)
        finally:
            read.append(restaurant_id)  # the handler goes on from here in the same step

    monkeypatch.setattr(tables, "list_tables", slow_list_tables)
    ws = await client.ws_connect(f"{SOCKET}?token={bistro_place.admin}")
    await reading.wait()
    (connection,) = client.app[hub_key].connections()
    stopping = asyncio.create_task(client.app[hub_key].close_all())
    await eventually(lambda: connection.ws.closed)  # the close frame is out; the client has not answered yet
    go_on.set()
    await eventually(lambda: bool(read))
    assert await closed_with(ws) == 1001
    await stopping
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING or record.exc_info]


async def close_code(ws: aiohttp.ClientWebSocketResponse) -> int:
    """Read on (answering pings) until the socket closes: the code of the server's close frame, 1006 without one."""
    while True:
        message = await ws.receive(timeout=45)
        if message.type is WSMsgType.CLOSE:
            return message.data
        if message.type in (WSMsgType.CLOSED, WSMsgType.ERROR):
            return WSCloseCode.ABNORMAL_CLOSURE


async def test_sigterm_closes_every_dashboard_with_1001_before_the_server_exits(tmp_path):
    """Issue 12: systemd stops the server with SIGTERM; every tablet sees 1001 and reconnects at once, none 1006.

    Besides ten open dashboards, ten more are connecting as the signal lands. A handshake under way
    when the open ones were closed used to join afterwards and get its snapshot; aiohttp no longer
    reads any connection by then (it stops before on_shutdown runs), so the server waited on it until
    the heartbeat dropped it unheard: 1006, and the process up 45 s longer. Those that do not open
    at all (the listener is already closed) were never a dashboard: the page retries them.
    """
    server = Server(tmp_path)
    db = await Database.open(str(server.db))
    try:
        keys = [server.admin_key()] + [(await KeyService(db).add("demo", f"screen {n}", "viewer"))[1] for n in range(3)]
    finally:
        await db.close()
    url = f"{server.url}{SOCKET}?token="

    async def connecting(key: str) -> int | None:
        try:
            ws = await session.ws_connect(url + key)
        except aiohttp.ClientError:
            return None
        return await close_code(ws)

    try:
        async with aiohttp.ClientSession() as session:
            tablets = [await session.ws_connect(url + keys[n % 2]) for n in range(10)]
            for ws in tablets:
                assert (await receive(ws))["type"] == "tables_snapshot"
            closed = [asyncio.create_task(close_code(ws)) for ws in tablets]
            late = [asyncio.create_task(connecting(keys[2 + n % 2])) for n in range(10)]
            stopping = asyncio.create_task(asyncio.to_thread(server.stop, signal.SIGTERM))
            assert await asyncio.gather(*closed) == [1001] * 10
            assert set(await asyncio.gather(*late)) <= {1001, None}
            assert await stopping == 0
    finally:
        if server.process.poll() is None:
            server.stop()
    assert "Traceback" not in server.process_output()


async def test_a_sign_in_that_runs_out_closes_its_socket(aiohttp_client, settings, bistro_place, monkeypatch):
    clock = Clock()  # the watcher reads the time from the key service's clock
    client = await aiohttp_client(keys_on(clock, create_app(dataclasses.replace(settings, session_hours=1))))
    # With a dashboard open, the watcher asks the database which sign-ins ended, once after each write (here,
    # the sign-in). When it has, and found none, only the expiry the hub tracks can close the socket.
    keys, asked = client.app[api_keys_key], asyncio.Event()
    ask = keys.ended

    async def ended(*args: Any) -> Any:
        answer = await ask(*args)
        asked.set()
        return answer

    monkeypatch.setattr(keys, "ended", ended)
    await signed_in(client, bistro_place.admin)
    ws = await client.ws_connect(SOCKET, headers={"Origin": f"http://{client.host}:{client.port}"})
    assert (await receive(ws))["type"] == "tables_snapshot"
    await asyncio.wait_for(asked.wait(), 10)
    clock.advance(3600)
    assert (await receive(ws, timeout=10))["code"] == "unauthorized"
    assert await closed_with(ws) == 4401
