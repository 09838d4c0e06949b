"""The clients one app instance shares across requests, built and closed by its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis
from livekit import api

from conversation import ConversationStore
from orchestrator.dispatch import Dispatcher
from orchestrator.livekit import LiveKit
from orchestrator.metrics import Metrics
from orchestrator.settings import Settings
from orchestrator.streamslots import StreamSlots

STREAM_CHECK_CONNECTIONS = 16
STREAM_CHECK_WAIT = 5.0


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    redis: aioredis.Redis
    store: ConversationStore
    livekit: LiveKit
    dispatcher: Dispatcher
    webhooks: api.WebhookReceiver
    metrics: Metrics
    # Live streams use Redis through connections of their own (XREAD BLOCK holds one per
    # stream), so no number of streams can starve requests, webhooks or /readyz of theirs.
    streams: ConversationStore
    stream_slots: StreamSlots


@asynccontextmanager
async def open_services(settings: Settings, metrics: Metrics) -> AsyncIterator[Services]:
    redis = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2.0,
                                    health_check_interval=30)
    # One connection per stream (the bound is taken before a stream reads), plus a few for the
    # checks a stream makes while its read blocks; beyond that a check waits for one.
    blocking = aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, socket_connect_timeout=2.0, health_check_interval=30,
        max_connections=settings.sse_streams_per_replica + STREAM_CHECK_CONNECTIONS,
        timeout=STREAM_CHECK_WAIT))
    livekit = LiveKit(settings)
    try:
        yield Services(
            settings=settings, redis=redis,
            store=ConversationStore(redis, retention=settings.retention,
                                    max_events=settings.max_events),
            livekit=livekit,
            dispatcher=Dispatcher(livekit, redis, settings.agent_name),
            webhooks=api.WebhookReceiver(api.TokenVerifier(
                settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())),
            metrics=metrics,
            streams=ConversationStore(blocking, retention=settings.retention,
                                      max_events=settings.max_events),
            stream_slots=StreamSlots(settings.sse_streams_per_replica, metrics.streams),
        )
    finally:
        await livekit.aclose()
        await blocking.aclose()
        await redis.aclose()
