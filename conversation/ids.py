"""Validation and generation of conversation, event and stream ids."""

from __future__ import annotations

import re
import uuid

from conversation.errors import InvalidInput

# Safe as a LiveKit room name, a Redis key part inside a hash tag, a URL path segment and a
# SIP attribute: no braces, colons, slashes or spaces.
CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
# '/' because the agents framework names the tool calls it splits from one model item
# `item_x/fnc_0`, and event ids are those item ids.
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"
STREAM_ID_PATTERN = r"^\d{1,20}-\d{1,20}$"
# `<conversation id>.<number>`: the conversation's n-th handoff to a person.
HANDOFF_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.\d{1,9}$"

_conversation_id = re.compile(CONVERSATION_ID_PATTERN)
_stream_id = re.compile(STREAM_ID_PATTERN)


def validate_conversation_id(value: str) -> str:
    if not isinstance(value, str) or not _conversation_id.fullmatch(value):
        raise InvalidInput(
            "conversation_id",
            "must be 1-64 characters of letters, digits, '-' or '_', starting with a letter "
            "or digit",
        )
    return value


# Both parts of a Redis stream id are unsigned 64-bit numbers; Redis refuses larger ones.
_STREAM_ID_PART_MAX = 2**64 - 1


def validate_stream_id(value: str, field: str = "after") -> str:
    if not _stream_id.fullmatch(value) or any(
            int(part) > _STREAM_ID_PART_MAX for part in value.split("-")):
        raise InvalidInput(field, "must be a log position such as '1700000000000-0'")
    return value


def new_conversation_id() -> str:
    return f"c-{uuid.uuid4().hex}"


def new_event_id() -> str:
    return f"ev_{uuid.uuid4().hex}"
