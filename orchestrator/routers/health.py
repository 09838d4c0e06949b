"""Liveness and readiness probes, and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisClusterException, RedisError

from conversation import BatonError, StoreUnavailable
from conversation.redisclient import serving
from orchestrator.deps import ServicesDep
from orchestrator.schemas import Health, Readiness

router = APIRouter(tags=["health"])

PROBE_TIMEOUT = 2.0
# Under the 1 s a Kubernetes probe waits by default: a LiveKit that hangs rather than refuses
# must not fail the readiness probe by making it slow.
LIVEKIT_PROBE_TIMEOUT = 0.5
# ListRooms for one name costs LiveKit a lookup; without names it lists every room, on every
# probe of every replica.
PROBE_ROOM = "baton-readiness-probe"


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up; says nothing about Redis or LiveKit."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Readiness, "description": "Redis is down"}})
async def readyz(services: ServicesDep, response: Response) -> Readiness:
    """Ready while Redis takes commands (a cluster, while whole): no route works without it.
    LiveKit's state is reported here and in `baton_dependency_up`, but chat and live streams
    work without it, so a LiveKit outage does not take every replica out of service."""
    redis_ok, livekit_ok = await check_dependencies(services)
    if not redis_ok:
        response.status_code = 503
    down = [name for name, ok in (("Redis", redis_ok), ("LiveKit", livekit_ok)) if not ok]
    return Readiness(ready=redis_ok, redis="ok" if redis_ok else "down",
                     livekit="ok" if livekit_ok else "down",
                     message=" and ".join(down) + " unavailable" if down else "ready")


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                             "description": "Prometheus text format"}})
async def metrics(services: ServicesDep) -> Response:
    redis_ok, _livekit_ok = await check_dependencies(services)
    if redis_ok:
        await _desk_gauges(services)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _desk_gauges(services: ServicesDep) -> None:
    """The human agents' queue as it is now: handoffs nobody accepted yet, and how long the
    oldest has waited. Read at each scrape, so every replica reports the same, shared queue."""
    with contextlib.suppress(StoreUnavailable):
        waiting = await services.desk.waiting()
        services.metrics.handoff_queue_depth.set(len(waiting))
        services.metrics.handoff_oldest_wait.set(max(waiting.values(), default=0.0))


async def check_dependencies(services: ServicesDep) -> tuple[bool, bool]:
    """Whether Redis and LiveKit answer, also set as the `baton_dependency_up` gauge."""
    redis_ok, livekit_ok = await asyncio.gather(_redis_up(services), _livekit_up(services))
    services.metrics.dependency_up.labels("redis").set(redis_ok)
    services.metrics.dependency_up.labels("livekit").set(livekit_ok)
    return redis_ok, livekit_ok


async def _redis_up(services: ServicesDep) -> bool:
    try:
        return await asyncio.wait_for(serving(services.redis), PROBE_TIMEOUT)
    except (RedisError, RedisClusterException, OSError, TimeoutError):
        return False


async def _livekit_up(services: ServicesDep) -> bool:
    try:
        await asyncio.wait_for(services.livekit.list_rooms([PROBE_ROOM]), LIVEKIT_PROBE_TIMEOUT)
    except (BatonError, TimeoutError):
        return False
    return True
