"""Event and id validation: bad input raises InvalidInput naming the field at fault."""

from __future__ import annotations

from typing import Any

import pytest

from conversation import InvalidInput, MessageEvent, parse_event, validate_conversation_id
from conversation.events import MAX_TEXT_CHARS

VALID_MESSAGE = {"kind": "message", "role": "user", "channel": "chat", "text": "hi"}


def test_a_valid_message_parses_into_its_typed_event():
    event = parse_event(VALID_MESSAGE)

    assert isinstance(event, MessageEvent)
    assert event.event_id.startswith("ev_")
    assert event.at.tzinfo is not None


@pytest.mark.parametrize(("data", "field"), [
    ({"kind": "telepathy"}, "kind"),
    ({"role": "user"}, "kind"),
    ({**VALID_MESSAGE, "text": ""}, "text"),
    ({**VALID_MESSAGE, "text": "x" * (MAX_TEXT_CHARS + 1)}, "text"),
    ({**VALID_MESSAGE, "role": "wizard"}, "role"),
    ({**VALID_MESSAGE, "event_id": "has space"}, "event_id"),
    ({**VALID_MESSAGE, "at": "2026-01-01T10:00:00"}, "at"),
    ({**VALID_MESSAGE, "surprise": 1}, "surprise"),
    ({"kind": "tool_call", "call_id": "1", "name": "lookup", "channel": "chat",
      "arguments": "{not json"}, "arguments"),
    ({"kind": "tool_call", "call_id": "1", "name": "lookup", "channel": "chat",
      "arguments": "[1, 2]"}, "arguments"),
    ({"kind": "tool_call", "call_id": "1", "name": "drop table", "channel": "chat"}, "name"),
    ({"kind": "call", "outcome": "answered", "sip_status": 42}, "sip_status"),
    ({"kind": "handoff", "handoff_id": "c1.1", "state": "teleported"}, "state"),
])
def test_bad_event_data_names_the_field_at_fault(data: dict[str, Any], field: str):
    with pytest.raises(InvalidInput) as raised:
        parse_event(data)

    assert raised.value.field == field


@pytest.mark.parametrize("value", ["", "-leading-dash", "a" * 65, "room{1}", "a:b", "a b",
                                   "a/b", "café", "a.b"])
def test_unsafe_conversation_ids_are_refused(value: str):
    with pytest.raises(InvalidInput) as raised:
        validate_conversation_id(value)

    assert raised.value.field == "conversation_id"


@pytest.mark.parametrize("value", ["c1", "A" * 64, "conv_2026-01-05", "0"])
def test_safe_conversation_ids_are_accepted(value: str):
    assert validate_conversation_id(value) == value
