"""What stands between a request and a paid call: one dial per conversation at a time, and
attempts bounded per conversation and across all replicas, counted in Redis.

Every Redis operation here touches one key (a script over one sorted set, SET NX, a compare
and delete), so the guard works on Redis Cluster, where a conversation's keys and the fleet's
live in different slots. Time comes from Redis, so replicas with skewed clocks share one
window.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

from conversation import StoreUnavailable
from conversation.errors import redis_errors
from conversation.redisclient import RedisClient
from orchestrator.errors import CallInProgress, TooManyDialAttempts
from orchestrator.timing import waited

FLEET_KEY = "baton:dial-attempts:fleet"

# A sliding window: the attempts of the last `window` ms are the set's members, scored by
# when they were made. Answers 0 when this attempt is counted, else the ms until the oldest
# leaves the window.
_TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def conversation_key(conversation_id: str) -> str:
    return f"baton:dial-attempts:{{{conversation_id}}}"


@dataclass(frozen=True, slots=True)
class Window:
    """At most `attempts` per `window`; `scope` names it in the refusal."""

    key: str
    attempts: int
    window: timedelta
    scope: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One counted attempt; `refund` takes it back when nothing was dialled after all."""

    guard: DialGuard
    member: str
    keys: tuple[str, ...]

    async def refund(self) -> None:
        # Best effort: an attempt left counted only makes the window stricter.
        with suppress(StoreUnavailable), redis_errors():
            for key in self.keys:
                await waited("redis", self.guard.redis.zrem(key, self.member))


class DialGuard:
    """The limits of one deployment; every replica builds the same from the same settings."""

    def __init__(self, redis: RedisClient, *, per_conversation: int,
                 conversation_window: timedelta, per_window: int,
                 fleet_window: timedelta) -> None:
        self.redis = redis
        self.per_conversation = per_conversation
        self.conversation_window = conversation_window
        self.fleet = Window(FLEET_KEY, per_window, fleet_window, "all conversations together")
        self._take = redis.register_script(_TAKE)
        self._release = redis.register_script(_RELEASE)

    @asynccontextmanager
    async def dialling(self, conversation_id: str, hold: timedelta) -> AsyncIterator[None]:
        """Held while a number is dialled for the conversation: a second request meanwhile (a
        double click, another replica) is CallInProgress rather than a second phone ringing.
        `hold` bounds it if this process dies while dialling."""
        key = f"baton:dialling:{{{conversation_id}}}"
        token = secrets.token_hex(16)
        with redis_errors():
            taken = await waited("redis", self.redis.set(
                key, token, nx=True, px=int(hold.total_seconds() * 1000)))
        if not taken:
            raise CallInProgress("a number is being dialled for this conversation already")
        try:
            yield
        finally:
            with suppress(StoreUnavailable), redis_errors():
                await waited("redis", self._release(keys=[key], args=[token]))

    async def count(self, conversation_id: str) -> Attempt:
        """Count an attempt against the conversation's window, then the fleet's; refused by
        either, it counts against neither, and TooManyDialAttempts says when to retry."""
        member = secrets.token_hex(8)
        windows = (Window(conversation_key(conversation_id), self.per_conversation,
                          self.conversation_window, "this conversation"), self.fleet)
        taken: list[str] = []
        for window in windows:
            with redis_errors():
                wait_ms = int(await waited("redis", self._take(
                    keys=[window.key],
                    args=[window.attempts, int(window.window.total_seconds() * 1000), member])))
            if wait_ms:
                await Attempt(self, member, tuple(taken)).refund()
                raise TooManyDialAttempts(
                    f"{window.scope} made {window.attempts} dial-out attempts in the last "
                    f"{window.window.total_seconds():.0f} s; retry later",
                    retry_after=math.ceil(wait_ms / 1000))
            taken.append(window.key)
        return Attempt(self, member, tuple(taken))
