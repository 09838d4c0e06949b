"""The clients one app instance shares across requests, built and closed by its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from livekit import api

from conversation import ConversationStore
from conversation.desk import Desk
from conversation.handoffs import HandoffStore
from conversation.redisclient import RedisClient
from orchestrator.dialguard import DialGuard
from orchestrator.dispatch import Dispatcher
from orchestrator.humans import Humans
from orchestrator.livekit import LiveKit
from orchestrator.metrics import Metrics
from orchestrator.settings import Settings
from orchestrator.streamslots import StreamSlots
from orchestrator.waiting import WaitingCalls

LOGIN_WINDOW = timedelta(minutes=15)
REQUEST_CONNECTIONS = 100
REQUEST_CONNECTION_WAIT = 2.0
STREAM_CHECK_CONNECTIONS = 16
STREAM_CHECK_WAIT = 5.0


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    redis: RedisClient
    store: ConversationStore
    livekit: LiveKit
    dispatcher: Dispatcher
    waiting: WaitingCalls
    webhooks: api.WebhookReceiver
    metrics: Metrics
    # Live streams use Redis through connections of their own (XREAD BLOCK holds one per
    # stream), so no number of streams can starve requests, webhooks or /readyz of theirs.
    streams: ConversationStore
    stream_slots: StreamSlots
    handoffs: HandoffStore
    desk: Desk
    desk_streams: Desk
    """The desk through the live streams' connections: the dashboards' queue streams block on
    it."""
    humans: Humans
    dial_guard: DialGuard


@asynccontextmanager
async def open_services(settings: Settings, metrics: Metrics) -> AsyncIterator[Services]:
    # Requests wait briefly for a free connection rather than fail at once in a burst.
    redis = settings.redis_client(socket_connect_timeout=2.0, health_check_interval=30,
                                  max_connections=REQUEST_CONNECTIONS,
                                  waiting_timeout=REQUEST_CONNECTION_WAIT)
    # One connection per stream (the bound is taken before a stream reads), plus a few for the
    # checks a stream makes while its read blocks; beyond that a check waits for one.
    blocking = settings.redis_client(
        socket_connect_timeout=2.0, health_check_interval=30,
        max_connections=settings.sse_streams_per_replica + STREAM_CHECK_CONNECTIONS,
        waiting_timeout=STREAM_CHECK_WAIT)
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
            streams=settings.store(blocking),
            stream_slots=StreamSlots(settings.sse_streams_per_replica, metrics.streams),
            handoffs=HandoffStore(settings.store(redis)),
            desk=Desk(redis, presence=settings.sse_heartbeat * 2),
            desk_streams=Desk(blocking, presence=settings.sse_heartbeat * 2),
            humans=Humans(settings.humans, redis, session_ttl=settings.human_session_ttl,
                          attempts=settings.human_login_attempts,
                          attempt_window=LOGIN_WINDOW),
            dial_guard=DialGuard(redis, per_conversation=settings.dial_attempts_per_conversation,
                                 conversation_window=settings.dial_conversation_window,
                                 per_window=settings.dial_attempts_per_window,
                                 fleet_window=settings.dial_window),
        )
    finally:
        await livekit.aclose()
        await blocking.aclose()
        await redis.aclose()
