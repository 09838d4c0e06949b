"""The calls whose agent is not in the room yet, in Redis so every replica sees them.

A call is registered when it starts and whenever its agent leaves while the visitor stays,
and removed when an agent joins or the call ends (`orchestrator/recovery.py` acts on them).
"""

from __future__ import annotations

import time

from conversation.errors import redis_errors
from conversation.redisclient import RedisClient

KEY = "baton:waiting-calls"
"""Hash: conversation id -> epoch ms since which a visitor has waited with no agent (0 while
nobody has been seen waiting yet)."""

# Starts the wait unless it started already, in one step.
_START = """
local since = redis.call('HGET', KEYS[1], ARGV[1])
if (not since) or since == '0' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return ARGV[2]
end
return since
"""


class WaitingCalls:
    """The registry of calls whose agent is not (yet) in the room, shared by all replicas."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._start = redis.register_script(_START)

    async def add(self, conversation_id: str, *, visitor_waiting: bool = False) -> None:
        """Register a call; a call already waiting keeps the time its wait started."""
        if visitor_waiting:
            await self.visitor_waiting(conversation_id)
            return
        with redis_errors():
            await self.redis.hsetnx(KEY, conversation_id, "0")

    async def visitor_waiting(self, conversation_id: str) -> int:
        """The epoch ms the visitor's wait started: now, unless it had started already."""
        with redis_errors():
            since = await self._start(keys=[KEY], args=[conversation_id, str(now_ms())])
        return int(since)

    async def remove(self, conversation_id: str) -> None:
        with redis_errors():
            await self.redis.hdel(KEY, conversation_id)

    async def all(self) -> dict[str, int]:
        with redis_errors():
            raw = await self.redis.hgetall(KEY)
        return {decoded(k): int(v) for k, v in raw.items()}


def now_ms() -> int:
    return int(time.time() * 1000)


def decoded(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
