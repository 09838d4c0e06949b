"""A throwaway room that shows whether a worker takes the agent name's jobs and whether LiveKit's
webhooks reach an orchestrator that accepts their signature.

LiveKit has no API that lists workers. So the check creates a room named `baton-preflight.<hex>`
(no conversation id has a '.'), dispatches the agent name to it and watches the dispatch: LiveKit
adds a job to it once a worker has accepted the job (ListDispatch shows it), and adds none when
no worker with capacity is registered for the name. The worker's entrypoint then ends the job at
once, logging that the room is not a conversation. The room's `room_started` webhook goes to
every URL in LiveKit's `webhook.urls`; an orchestrator that verifies its signature notes it in
Redis (orchestrator/probes.py), where the check reads it. The room is deleted at the end.
"""

from __future__ import annotations

import asyncio
import json
import time

from livekit import api
from livekit.protocol import agent_dispatch
from livekit.protocol import room as proto_room

from conversation import StoreUnavailable
from conversation.redisclient import RedisClient
from deploy.preflight.livekit_server import FAILURES, trouble
from deploy.preflight.results import Result, fail, ok, unknown
from orchestrator.probes import probe_room_name, webhooks_noted
from orchestrator.settings import Settings

POLL = 0.2
"""Seconds between looks at the dispatch and the webhook notes: LiveKit pushes neither."""


async def check_probe_room(livekit: api.LiveKitAPI, redis: RedisClient | None,
                           settings: Settings, wait: float) -> tuple[Result, Result]:
    """The `agent` and `webhook-delivery` results; `redis` None when Redis is unreachable."""
    room = probe_room_name()
    try:
        await livekit.room.create_room(proto_room.CreateRoomRequest(
            name=room, empty_timeout=int(wait) + 30, departure_timeout=1))
    except FAILURES as exc:
        problem = f"could not create a probe room: {trouble(exc, settings)}"
        return fail("agent", problem), fail("webhook-delivery", problem)
    try:
        return await _watch(livekit, redis, settings, room, wait)
    finally:
        try:
            await livekit.room.delete_room(proto_room.DeleteRoomRequest(room=room))
        except FAILURES:
            # LiveKit closes it anyway once its empty timeout passes.
            pass


async def _watch(livekit: api.LiveKitAPI, redis: RedisClient | None, settings: Settings,
                 room: str, wait: float) -> tuple[Result, Result]:
    started = time.monotonic()
    try:
        await livekit.agent_dispatch.create_dispatch(agent_dispatch.CreateAgentDispatchRequest(
            agent_name=settings.agent_name, room=room,
            metadata=json.dumps({"baton_preflight": True})))
        refused = None
    except FAILURES as exc:
        refused = trouble(exc, settings)
    job_id: str | None = None
    noted = False
    while time.monotonic() - started < wait:
        if job_id is None and refused is None:
            job_id = await _job_of(livekit, room)
        if redis is not None and not noted:
            try:
                noted = "room_started" in await webhooks_noted(redis, room)
            except StoreUnavailable:
                redis = None
        awaiting_job = job_id is None and refused is None
        awaiting_note = redis is not None and not noted
        if not (awaiting_job or awaiting_note):
            break
        await asyncio.sleep(POLL)
    seconds = time.monotonic() - started
    return (_agent(job_id, refused, settings, wait, seconds),
            _delivery(noted, redis is not None, settings, wait))


def _agent(job_id: str | None, refused: str | None, settings: Settings, wait: float,
           seconds: float) -> Result:
    if refused is not None:
        return fail("agent", f"could not dispatch the agent: {refused}")
    if job_id is None:
        return fail("agent", f"no worker took a probe job for the agent name "
                             f"{settings.agent_name!r} within {wait:g} s: start workers with "
                             f"BATON_AGENT_NAME={settings.agent_name} and this LiveKit URL and "
                             "keys (a worker logs 'registered worker' once LiveKit takes it); "
                             "if they run, all are full (baton_worker_load) or draining")
    return ok("agent", f"a worker took a probe job for {settings.agent_name!r} "
                       f"({job_id}, {seconds:.1f} s)")


async def _job_of(livekit: api.LiveKitAPI, room: str) -> str | None:
    try:
        dispatches = await livekit.agent_dispatch.list_dispatch(room)
    except FAILURES:
        return None
    jobs = [job.id for dispatch in dispatches for job in dispatch.state.jobs]
    return jobs[0] if jobs else None


def _delivery(noted: bool, readable: bool, settings: Settings, wait: float) -> Result:
    name = "webhook-delivery"
    if noted:
        return ok(name, "LiveKit's room_started for the probe room reached an orchestrator, "
                        "which verified its signature")
    if not readable:
        return unknown(name, "cannot tell without Redis, where orchestrators note what they "
                             "receive (see redis)")
    return fail(name, f"no orchestrator using this REDIS_URL received a verified "
                      f"room_started for the probe room within {wait:g} s: LiveKit's "
                      "webhook.urls must hold the orchestrator's /v1/livekit/webhook as "
                      f"LiveKit reaches it, and webhook.api_key must be "
                      f"{settings.livekit_api_key!r} with the orchestrator holding its secret; "
                      "a refused signature shows as 401 in the orchestrator's log")
