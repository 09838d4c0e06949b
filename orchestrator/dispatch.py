"""One live agent per voice room: explicit dispatch under a short Redis lock, and re-dispatch."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import redis.asyncio as aioredis
from livekit.protocol import agent, agent_dispatch, models
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conversation import StoreUnavailable, attributes
from orchestrator.errors import DispatchBusy
from orchestrator.livekit import LiveKit
from orchestrator.timing import waited, waiting

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_ENDED = frozenset({agent.JobStatus.JS_SUCCESS, agent.JobStatus.JS_FAILED,
                    agent.JobStatus.JS_CANCELLED})


def is_live(dispatch: agent_dispatch.AgentDispatch) -> bool:
    """Waiting for a worker, or with a job that has not ended."""
    jobs = dispatch.state.jobs
    return not jobs or any(job.state.status not in _ENDED for job in jobs)


def is_pending(dispatch: agent_dispatch.AgentDispatch) -> bool:
    """Not yet taken by a worker: its agent is still on the way."""
    jobs = dispatch.state.jobs
    return not jobs or any(job.state.status == agent.JobStatus.JS_PENDING for job in jobs)


def is_visitor(participant: models.ParticipantInfo) -> bool:
    return (participant.kind != models.ParticipantInfo.Kind.AGENT
            and participant.identity.startswith(attributes.VISITOR_IDENTITY_PREFIX))


def is_agent(participant: models.ParticipantInfo) -> bool:
    return participant.kind == models.ParticipantInfo.Kind.AGENT


@dataclass(frozen=True, slots=True)
class Ensured:
    dispatch_id: str | None
    created: bool


class Dispatcher:
    """Creates explicit dispatches; LiveKit adds a duplicate agent on every CreateDispatch,
    so the check-then-create runs under a per-room lock shared by all replicas."""

    def __init__(self, livekit: LiveKit, redis: aioredis.Redis, agent_name: str, *,
                 lock_ttl: timedelta = timedelta(seconds=10)) -> None:
        self.livekit = livekit
        self.redis = redis
        self.agent_name = agent_name
        self.lock_ttl = lock_ttl
        self._release = redis.register_script(_RELEASE)

    async def ensure(self, room: str, conversation_id: str) -> Ensured:
        """Dispatch the agent to `room` unless a live dispatch for it exists already."""
        async with self._locked(room):
            for dispatch in await self.livekit.list_dispatches(room):
                if dispatch.agent_name == self.agent_name and is_live(dispatch):
                    return Ensured(dispatch.id, created=False)
            created = await self.livekit.create_dispatch(room, self.agent_name,
                                                         _metadata(conversation_id))
            return Ensured(created.id, created=True)

    async def redispatch(self, room: str, conversation_id: str) -> Ensured:
        """Dispatch again if a visitor is in the room without an agent or one on its way.

        Open-source LiveKit records a dispatch's restart policy but never acts on it, and a
        crashed agent's job can still read as running, so presence decides, not job states.
        """
        async with self._locked(room):
            participants = await self.livekit.list_participants(room)
            if not any(map(is_visitor, participants)) or any(map(is_agent, participants)):
                return Ensured(None, created=False)
            for dispatch in await self.livekit.list_dispatches(room):
                if dispatch.agent_name == self.agent_name and is_pending(dispatch):
                    return Ensured(dispatch.id, created=False)
            created = await self.livekit.create_dispatch(room, self.agent_name,
                                                         _metadata(conversation_id))
            return Ensured(created.id, created=True)

    def _locked(self, room: str) -> _RoomLock:
        return _RoomLock(self, room)


class _RoomLock:
    """SET NX PX with an owner token; waits for a holder, which releases within milliseconds."""

    def __init__(self, dispatcher: Dispatcher, room: str) -> None:
        self.dispatcher = dispatcher
        self.room = room
        self.key = f"baton:dispatch-lock:{{{room}}}"
        self.token = secrets.token_hex(16)

    async def __aenter__(self) -> None:
        redis = self.dispatcher.redis
        ttl_ms = int(self.dispatcher.lock_ttl.total_seconds() * 1000)
        deadline = time.monotonic() + self.dispatcher.lock_ttl.total_seconds()
        delay = 0.005
        while True:
            try:
                if await waited("redis", redis.set(self.key, self.token, nx=True, px=ttl_ms)):
                    return
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                raise StoreUnavailable(f"Redis is unreachable: {type(exc).__name__}") from exc
            if time.monotonic() > deadline:
                raise DispatchBusy(self.room)
            # The holder only makes one or two LiveKit calls; back off briefly and look again.
            with waiting("lock"):
                await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def __aexit__(self, *_exc: object) -> None:
        try:
            await waited("redis", self.dispatcher._release(keys=[self.key], args=[self.token]))
        except (RedisConnectionError, RedisTimeoutError, OSError):
            # The lock expires by itself; failing the request over it would hide the real result.
            pass


def _metadata(conversation_id: str) -> str:
    return json.dumps({"conversation_id": conversation_id})
