"""The visitor's typed messages waiting for the chat agent: one Redis stream, read by a consumer
group, so any number of chat agent processes share the work and a turn whose process died is
taken over by another (at least once).

A turn names a message already in the log; it carries no text. Whoever answers derives the
reply's event ids from the message's id (`reply_event_id`), so a turn delivered twice, or
requested twice by a retried post, is answered once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from redis.typing import EncodableT, FieldT

from conversation.errors import InvalidInput, redis_errors
from conversation.ids import validate_conversation_id, validate_stream_id
from conversation.redisclient import RedisClient

KEY = "baton:chat-turns"
GROUP = "baton-chat-agent"
MAX_LENGTH = 100_000
"""The stream is trimmed (approximately) beyond this many turns, answered or not, so a stack
whose chat agent is not running cannot grow it without bound."""
_MAX_BASE = 96
"""Longest message id used as is in reply ids; longer ones are shortened to a digest, so every
reply id fits the event id pattern (128 characters)."""


@dataclass(frozen=True, slots=True)
class Turn:
    """A visitor's message that wants an answer: where it is in which conversation's log."""

    conversation_id: str
    event_id: str
    seq: str

    def fields(self) -> dict[FieldT, EncodableT]:
        return {"conversation_id": self.conversation_id, "event_id": self.event_id,
                "seq": self.seq}

    @classmethod
    def of(cls, fields: Mapping[bytes | str, bytes | str]) -> Turn:
        """A turn read back from the stream; InvalidInput for an entry that is not one."""
        values = {_text(k): _text(v) for k, v in fields.items()}
        try:
            return cls(validate_conversation_id(values["conversation_id"]), values["event_id"],
                       validate_stream_id(values["seq"], "seq"))
        except KeyError as missing:
            raise InvalidInput(str(missing), "missing from the turn") from None


async def request_reply(redis: RedisClient, turn: Turn) -> None:
    """Ask the chat agent to answer the message; asking twice is answered once."""
    with redis_errors():
        await redis.xadd(KEY, turn.fields(), maxlen=MAX_LENGTH, approximate=True)


def reply_event_id(message_event_id: str, index: int) -> str:
    """The id of the `index`-th event (from 1) the chat agent writes in answer to a message."""
    base = message_event_id
    if len(base) > _MAX_BASE:
        base = hashlib.sha256(base.encode()).hexdigest()[:32]
    return f"{base}.reply-{index}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
