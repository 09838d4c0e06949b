"""The human agents' desk in Redis: who is online, who is taken, each one's queue, and the
stream of handoff changes their dashboards follow.

Every operation touches one key, so the desk works on Redis Cluster beside the conversations'
hash-tagged keys. Presence is a heartbeat: a human is online while their dashboard keeps
saying so (`seen`), and available while online and not taken by a handoff.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from conversation.errors import redis_errors
from conversation.events import HandoffState
from conversation.redisclient import RedisClient, longest_block

ONLINE = "baton:desk:online"
"""Sorted set: username -> epoch ms last seen."""
NAMES = "baton:desk:names"
"""Hash: username -> display name, written at sign-in."""
LAST_CALL = "baton:desk:last-call"
"""Sorted set: username -> epoch ms their last handoff ended (fair turns)."""
WAITING = "baton:desk:waiting"
"""Sorted set: handoff id -> epoch ms requested, until a human accepts or it ends."""
UPDATES = "baton:desk:updates"
"""Stream of handoff changes: handoff_id, human, state."""
ONCALL_TURN = "baton:desk:oncall-turn"
UPDATES_KEPT = 10_000

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _taken(username: str) -> str:
    return f"baton:desk:taken:{{{username}}}"


def _queue(username: str) -> str:
    return f"baton:desk:queue:{{{username}}}"


@dataclass(frozen=True, slots=True)
class Update:
    position: str
    handoff_id: str
    human: str
    state: HandoffState


class Desk:
    def __init__(self, redis: RedisClient, *,
                 presence: timedelta = timedelta(seconds=30)) -> None:
        self.redis = redis
        self.presence = presence
        self._release = redis.register_script(_RELEASE)

    async def signed_in(self, username: str, name: str) -> None:
        with redis_errors():
            await self.redis.hset(NAMES, username, name)

    async def name_of(self, username: str) -> str:
        with redis_errors():
            name = await self.redis.hget(NAMES, username)
        return _text(name) if name is not None else username

    async def seen(self, username: str) -> None:
        with redis_errors():
            await self.redis.zadd(ONLINE, {username: _now_ms()})

    async def gone(self, username: str) -> None:
        with redis_errors():
            await self.redis.zrem(ONLINE, username)

    async def available(self) -> list[str]:
        """Online humans not taken by a handoff, the one whose last call ended first first."""
        horizon = _now_ms() - int(self.presence.total_seconds() * 1000)
        with redis_errors():
            members = cast(list[bytes], await self.redis.zrangebyscore(ONLINE, horizon, "+inf"))
            online = [_text(u) for u in members]
            if not online:
                return []
            # One GET per human, pipelined: their keys live in different cluster slots.
            async with self.redis.pipeline(transaction=False) as pipe:
                for user in online:
                    pipe.get(_taken(user))
                taken = await pipe.execute()
            ended = await self.redis.zmscore(LAST_CALL, online)
        free = [(score or 0.0, user) for user, flag, score in zip(online, taken, ended,
                                                                  strict=True) if flag is None]
        return [user for _score, user in sorted(free)]

    async def take(self, username: str, handoff_id: str, *, hold: timedelta) -> bool:
        """Claim the human for a handoff; False if another handoff took them first."""
        with redis_errors():
            return bool(await self.redis.set(_taken(username), handoff_id, nx=True,
                                             px=int(hold.total_seconds() * 1000)))

    async def free(self, username: str, handoff_id: str) -> None:
        """Let the human go, if this handoff still holds them."""
        with redis_errors():
            if await self._release(keys=[_taken(username)], args=[handoff_id]):
                await self.redis.zadd(LAST_CALL, {username: _now_ms()})

    async def taken_by(self, username: str) -> str | None:
        with redis_errors():
            value = await self.redis.get(_taken(username))
        return _text(value) if value is not None else None

    async def queue_add(self, username: str, handoff_id: str) -> None:
        with redis_errors():
            await self.redis.zadd(_queue(username), {handoff_id: _now_ms()})

    async def queue_remove(self, username: str, handoff_id: str) -> None:
        with redis_errors():
            await self.redis.zrem(_queue(username), handoff_id)

    async def queue(self, username: str) -> list[str]:
        with redis_errors():
            members = cast(list[bytes], await self.redis.zrange(_queue(username), 0, -1))
        return [_text(h) for h in members]

    async def waiting_add(self, handoff_id: str) -> None:
        with redis_errors():
            await self.redis.zadd(WAITING, {handoff_id: _now_ms()}, nx=True)

    async def waiting_remove(self, handoff_id: str) -> float | None:
        """Stop counting the handoff as waiting; the seconds it waited, if it was."""
        with redis_errors():
            since = await self.redis.zscore(WAITING, handoff_id)
            await self.redis.zrem(WAITING, handoff_id)
        return None if since is None else (_now_ms() - since) / 1000

    async def waiting(self) -> dict[str, float]:
        """Handoffs nobody has accepted yet: id -> seconds waited."""
        now = _now_ms()
        with redis_errors():
            entries = cast(list[tuple[bytes, float]],
                           await self.redis.zrange(WAITING, 0, -1, withscores=True))
        return {_text(h): (now - since) / 1000 for h, since in entries}

    async def publish(self, handoff_id: str, human: str, state: HandoffState) -> None:
        with redis_errors():
            await self.redis.xadd(UPDATES, {"handoff_id": handoff_id, "human": human,
                                            "state": state.value},
                                  maxlen=UPDATES_KEPT, approximate=True)

    async def latest_position(self) -> str:
        with redis_errors():
            newest = cast(list[Any], await self.redis.xrevrange(UPDATES, count=1))
        return _text(newest[0][0]) if newest else "0-0"

    async def updates(self, after: str, *, block: timedelta) -> AsyncIterator[Update]:
        """Changes after `after`, as they come; ends when a read brings nothing (the caller
        decides whether to go on, e.g. after sending a heartbeat)."""
        wait = min(block, longest_block(self.redis))
        with redis_errors():
            reply = cast(list[tuple[Any, list[tuple[Any, Mapping[Any, Any]]]]] | None,
                         await self.redis.xread({UPDATES: after}, count=100,
                                                block=int(wait.total_seconds() * 1000)))
        for _stream, entries in reply or []:
            for position, fields in entries:
                data = {_text(k): _text(v) for k, v in fields.items()}
                yield Update(_text(position), data["handoff_id"], data["human"],
                             HandoffState(data["state"]))

    async def oncall_turn(self) -> int:
        with redis_errors():
            return int(await self.redis.incr(ONCALL_TURN))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
