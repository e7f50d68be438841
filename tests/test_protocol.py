"""Unit tests of the socket's small server messages (app/protocol.py)."""

from __future__ import annotations

import json

import pytest

from app import protocol
from app.services.core import Result, TableUpdate


@pytest.mark.parametrize("ref", ["move-7", 7, None])
def test_an_ack_carries_the_ref_even_when_absent(ref: protocol.Ref) -> None:
    assert json.loads(protocol.ack(ref, 12)) == {"type": "ack", "ref": ref, "version": 12}


@pytest.mark.parametrize("ref", ["close-3", 0])
def test_an_error_carries_its_ref(ref: protocol.Ref) -> None:
    message = json.loads(protocol.error("not_found", "There is no table 9.", ref))
    assert message == {"type": "error", "code": "not_found", "detail": "There is no table 9.", "ref": ref}


def test_an_error_without_a_ref_has_no_ref_field() -> None:
    assert "ref" not in json.loads(protocol.error("invalid_json", "That message is not valid JSON."))


def test_the_reply_to_a_success_is_an_ack_with_the_new_version() -> None:
    result = Result(ok=True, updates=(TableUpdate(8, {"id": 3}),), version=8)
    assert json.loads(protocol.reply(result, "r1")) == {"type": "ack", "ref": "r1", "version": 8}


def test_the_reply_to_a_failure_is_its_error() -> None:
    result = Result.error("table_not_occupied", "Table 3 is already free.")
    assert json.loads(protocol.reply(result, 5)) == {
        "type": "error", "code": "table_not_occupied", "detail": "Table 3 is already free.", "ref": 5,
    }


def test_a_failure_without_code_or_detail_still_says_something() -> None:
    assert json.loads(protocol.reply(Result(ok=False), None)) == {
        "type": "error", "code": "internal_error", "detail": "Nothing was changed.",
    }


def test_messages_are_compact_and_keep_non_ascii_text() -> None:
    assert protocol.dumps({"type": "pong", "label": "Café"}) == '{"type":"pong","label":"Café"}'
    assert protocol.PONG == '{"type":"pong"}'

