"""One live agent per call room: explicit dispatch under a Redis lock, and recovery of lost ones.

Open-source LiveKit keeps a dispatch it could not give to any worker ("no worker available")
and never retries it, and records a dispatch's restart policy without acting on it. So an
agent that is neither in the room nor on its way is the orchestrator's to replace: a dispatch
counts as on its way only for a grace period after it was created or its job started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from types import TracebackType

from livekit.protocol import agent, agent_dispatch, models

from conversation import StoreUnavailable, attributes
from conversation.errors import redis_errors
from conversation.redisclient import RedisClient
from conversation.tracing import TRACE_ID_KEY
from orchestrator.errors import DispatchBusy, LiveKitUnavailable
from orchestrator.livekit import LiveKit
from orchestrator.logs import current_trace_id
from orchestrator.timing import waited, waiting

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_ENDED = frozenset({agent.JobStatus.JS_SUCCESS, agent.JobStatus.JS_FAILED,
                    agent.JobStatus.JS_CANCELLED})

MAX_CALLS_UNDER_LOCK = 4
"""LiveKit calls a locked step is given time for: list participants, list dispatches, delete a
lost dispatch, create. A slower step is cut off rather than outlive its lock."""
LOCK_MARGIN = timedelta(seconds=2)


def is_visitor(participant: models.ParticipantInfo) -> bool:
    return attributes.is_visitor(participant.kind, participant.attributes)


def is_agent(participant: models.ParticipantInfo) -> bool:
    return participant.kind == models.ParticipantInfo.Kind.AGENT


def is_live(dispatch: agent_dispatch.AgentDispatch) -> bool:
    """Waiting for a worker, or with a job that has not ended."""
    jobs = dispatch.state.jobs
    return not jobs or any(job.state.status not in _ENDED for job in jobs)


def on_its_way(dispatch: agent_dispatch.AgentDispatch, now_ns: int, grace: timedelta, *,
               lost_before_ns: int | None = None) -> bool:
    """Created, or its job started, within the grace period: its agent may still be joining.
    Past it, a dispatch with no agent in the room was never taken or its agent is gone.

    A dispatch with no job made before `lost_before_ns` (a worker registering since) is lost
    at once: LiveKit gave it to nobody and never will.
    """
    if lost_before_ns is not None and not dispatch.state.jobs \
            and dispatch.state.created_at < lost_before_ns:
        return False
    horizon = now_ns - int(grace.total_seconds() * 1e9)
    if dispatch.state.created_at > horizon:
        return True
    return any(job.state.status not in _ENDED and job.state.started_at > horizon
               for job in dispatch.state.jobs)


class Presence(StrEnum):
    AGENT_PRESENT = "agent_present"
    ON_ITS_WAY = "on_its_way"
    DISPATCHED = "dispatched"
    NO_VISITOR = "no_visitor"


@dataclass(frozen=True, slots=True)
class Ensured:
    dispatch_id: str | None
    created: bool


@dataclass(frozen=True, slots=True)
class Recovery:
    presence: Presence
    replaced: int = 0
    """Lost dispatches deleted before the new one was created."""


class Dispatcher:
    """Creates explicit dispatches; LiveKit adds a duplicate agent on every CreateDispatch,
    so each check-then-create runs under a per-room lock shared by all replicas.

    The lock outlives the work it guards: its time to live covers every LiveKit call the step
    may make at the client's timeout, and the step is cut off before the lock can expire, so
    a second replica never sees the room unlocked while the first is still deciding.
    """

    def __init__(self, livekit: LiveKit, redis: RedisClient, agent_name: str, *,
                 livekit_timeout: float, grace: timedelta = timedelta(seconds=5)) -> None:
        self.livekit = livekit
        self.redis = redis
        self.agent_name = agent_name
        self.grace = grace
        self.work_budget = timedelta(seconds=MAX_CALLS_UNDER_LOCK * livekit_timeout)
        self.lock_ttl = self.work_budget + LOCK_MARGIN
        self._release = redis.register_script(_RELEASE)

    async def ensure(self, room: str, conversation_id: str) -> Ensured:
        """Dispatch the agent to `room` unless a live dispatch for it exists already."""
        async with self._locked(room):
            for dispatch in await self.livekit.list_dispatches(room):
                if dispatch.agent_name == self.agent_name and is_live(dispatch):
                    return Ensured(dispatch.id, created=False)
            created = await self._create(room, conversation_id)
            return Ensured(created.id, created=True)

    async def recover(self, room: str, conversation_id: str, *,
                      lost_before_ns: int | None = None) -> Recovery:
        """Give a visitor without an agent a new one, unless one is on its way.

        Presence decides, not job states: a crashed agent's job can still read as running.
        Lost dispatches are deleted first, so one that a worker takes late cannot add a
        second agent.
        """
        async with self._locked(room):
            participants = await self.livekit.list_participants(room)
            if any(map(is_agent, participants)):
                return Recovery(Presence.AGENT_PRESENT)
            if not any(map(is_visitor, participants)):
                return Recovery(Presence.NO_VISITOR)
            ours = [d for d in await self.livekit.list_dispatches(room)
                    if d.agent_name == self.agent_name]
            now_ns = time.time_ns()
            if any(on_its_way(d, now_ns, self.grace, lost_before_ns=lost_before_ns)
                   for d in ours):
                return Recovery(Presence.ON_ITS_WAY)
            await self._delete(room, ours)
            await self._create(room, conversation_id)
            return Recovery(Presence.DISPATCHED, replaced=len(ours))

    async def _create(self, room: str, conversation_id: str) -> agent_dispatch.AgentDispatch:
        return await self.livekit.create_dispatch(room, self.agent_name,
                                                  _metadata(conversation_id))

    async def _delete(self, room: str,
                      dispatches: Sequence[agent_dispatch.AgentDispatch]) -> None:
        for dispatch in dispatches:
            await self.livekit.delete_dispatch(room, dispatch.id)

    def _locked(self, room: str) -> _RoomLock:
        return _RoomLock(self, room)


class _RoomLock:
    """SET NX PX with an owner token; the holder's work is cut off before the lock expires."""

    def __init__(self, dispatcher: Dispatcher, room: str) -> None:
        self.dispatcher = dispatcher
        self.room = room
        self.key = f"baton:dispatch-lock:{{{room}}}"
        self.token = secrets.token_hex(16)
        self._budget: asyncio.Timeout | None = None

    async def __aenter__(self) -> None:
        redis = self.dispatcher.redis
        ttl = self.dispatcher.lock_ttl.total_seconds()
        deadline = time.monotonic() + ttl
        delay = 0.005
        while True:
            with redis_errors():
                if await waited("redis", redis.set(self.key, self.token, nx=True,
                                                   px=int(ttl * 1000))):
                    break
            if time.monotonic() > deadline:
                raise DispatchBusy(self.room)
            # A holder is done within the lock's time to live; back off and look again.
            with waiting("lock"):
                await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        self._budget = asyncio.timeout(self.dispatcher.work_budget.total_seconds())
        await self._budget.__aenter__()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._budget is not None
        try:
            await self._budget.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            raise LiveKitUnavailable(
                f"LiveKit took longer than {self.dispatcher.work_budget.total_seconds():.0f} s "
                "to answer a dispatch step") from None
        finally:
            # The lock expires by itself; failing the request over its release would hide
            # the real result.
            with contextlib.suppress(StoreUnavailable), redis_errors():
                await waited("redis", self.dispatcher._release(keys=[self.key],
                                                                args=[self.token]))


def _metadata(conversation_id: str) -> str:
    """What the job reads: its conversation and the trace id of the request that dispatched
    it, so the worker's log lines about the call carry the switch's trace id."""
    fields = {"conversation_id": conversation_id}
    if trace_id := current_trace_id():
        fields[TRACE_ID_KEY] = trace_id
    return json.dumps(fields)
