"""Preflight probe rooms: how they are named, and the note the webhook handler leaves in Redis
for each, by which the preflight check (deploy/preflight) sees LiveKit's webhooks reach an
orchestrator that accepts their signature."""

from __future__ import annotations

import uuid
from datetime import timedelta

from conversation.errors import redis_errors
from conversation.redisclient import RedisClient

PREFIX = "baton-preflight."
"""Conversation ids have no '.', so no service takes a probe room for a conversation."""
NOTE_TTL = timedelta(minutes=5)


def probe_room_name() -> str:
    return f"{PREFIX}{uuid.uuid4().hex}"


def is_probe_room(name: str) -> bool:
    return name.startswith(PREFIX)


def _key(room: str) -> str:
    return f"baton:preflight:{room}"


async def note_webhook(redis: RedisClient, room: str, event: str) -> None:
    """Record that a verified webhook `event` arrived for the probe `room`."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.sadd(_key(room), event)
        pipe.expire(_key(room), NOTE_TTL)
        with redis_errors():
            await pipe.execute()


async def webhooks_noted(redis: RedisClient, room: str) -> set[str]:
    """The events any orchestrator received for the probe `room`."""
    with redis_errors():
        members = await redis.smembers(_key(room))
    return {m.decode() if isinstance(m, bytes) else str(m) for m in members}
