"""Liveness and readiness probes, and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from conversation import BatonError
from orchestrator.deps import ServicesDep
from orchestrator.schemas import Health, Readiness

router = APIRouter(tags=["health"])

PROBE_TIMEOUT = 2.0


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up; says nothing about Redis or LiveKit."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Readiness,
                                        "description": "Redis or LiveKit is down"}})
async def readyz(services: ServicesDep, response: Response) -> Readiness:
    """Redis answers PING and LiveKit answers ListRooms."""
    redis_ok, livekit_ok = await asyncio.gather(_redis_up(services), _livekit_up(services))
    down = [name for name, ok in (("Redis", redis_ok), ("LiveKit", livekit_ok)) if not ok]
    readiness = Readiness(ready=not down, redis="ok" if redis_ok else "down",
                          livekit="ok" if livekit_ok else "down",
                          message=" and ".join(down) + " unavailable" if down else "ready")
    if down:
        response.status_code = 503
    return readiness


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                             "description": "Prometheus text format"}})
async def metrics(services: ServicesDep) -> Response:
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _redis_up(services: ServicesDep) -> bool:
    try:
        return bool(await asyncio.wait_for(services.redis.ping(), PROBE_TIMEOUT))
    except (RedisError, OSError, TimeoutError):
        return False


async def _livekit_up(services: ServicesDep) -> bool:
    try:
        await asyncio.wait_for(services.livekit.list_rooms(), PROBE_TIMEOUT)
    except (BatonError, TimeoutError):
        return False
    return True
