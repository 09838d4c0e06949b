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
from orchestrator.waiting import WaitingCalls


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    redis: aioredis.Redis
    store: ConversationStore
    livekit: LiveKit
    dispatcher: Dispatcher
    waiting: WaitingCalls
    webhooks: api.WebhookReceiver
    metrics: Metrics


@asynccontextmanager
async def open_services(settings: Settings, metrics: Metrics) -> AsyncIterator[Services]:
    redis = settings.redis_client(socket_connect_timeout=2.0, health_check_interval=30)
    livekit = LiveKit(settings)
    try:
        yield Services(
            settings=settings, redis=redis,
            store=settings.store(redis),
            livekit=livekit,
            dispatcher=Dispatcher(livekit, redis, settings.agent_name,
                                  livekit_timeout=settings.livekit_timeout,
                                  grace=settings.dispatch_grace),
            waiting=WaitingCalls(redis),
            webhooks=api.WebhookReceiver(api.TokenVerifier(
                settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())),
            metrics=metrics,
        )
    finally:
        await livekit.aclose()
        await redis.aclose()
