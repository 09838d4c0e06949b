"""LiveKit webhooks: verified first, handled once per event id, turned into log entries."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from datetime import timedelta
from enum import StrEnum

from fastapi import APIRouter, Request
from google.protobuf import json_format
from livekit.protocol import models, webhook
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conversation import (
    Channel,
    ChannelSwitchEvent,
    Conversation,
    ConversationNotFound,
    InvalidInput,
    Status,
    StoreUnavailable,
    attributes,
    validate_conversation_id,
)
from orchestrator.deps import ServicesDep
from orchestrator.dispatch import is_agent, is_visitor
from orchestrator.errors import WebhookRejected, responses
from orchestrator.services import Services

log = logging.getLogger("orchestrator.webhooks")

router = APIRouter(tags=["livekit"])

# A captured webhook can be replayed while its token is valid (5 minutes, plus leeway).
SEEN_TTL = timedelta(minutes=10)


class Outcome(StrEnum):
    RECORDED = "recorded"
    REDISPATCHED = "redispatched"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


class WebhookAck(BaseModel):
    event: str
    outcome: Outcome


@router.post("/v1/livekit/webhook", responses=responses(401, 413, 422, 503))
async def receive_webhook(request: Request, services: ServicesDep) -> WebhookAck:
    """Signed by LiveKit with the API secret over the body's sha256; anything else is 401."""
    body = await request.body()
    # LiveKit sends the bare JWT; accept a Bearer prefix too.
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    try:
        event = services.webhooks.receive(body.decode("utf-8"), token)
    except json_format.ParseError:
        raise InvalidInput("body", "signed, but not a LiveKit WebhookEvent") from None
    except Exception:
        # WebhookReceiver raises plain Exception for a hash mismatch, besides JWT and decode
        # errors; all of them mean the sender is not our LiveKit.
        raise WebhookRejected("webhook signature does not verify") from None
    services.metrics.webhooks.labels(event.event or "unknown").inc()
    event_id = event.id or hashlib.sha256(body).hexdigest()
    seen_key = f"baton:webhook:{event_id}"
    if not await _first_time(services, seen_key):
        return WebhookAck(event=event.event, outcome=Outcome.DUPLICATE)
    try:
        outcome = await _handle(services, event)
    except Exception:
        # Forget the event so LiveKit's retry is handled, whatever failed; every write in
        # handling is idempotent, so a retry cannot double anything.
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
            await services.redis.delete(seen_key)
        raise
    return WebhookAck(event=event.event, outcome=outcome)


async def _first_time(services: Services, key: str) -> bool:
    try:
        return bool(await services.redis.set(key, "1", nx=True,
                                             ex=int(SEEN_TTL.total_seconds())))
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"Redis is unreachable: {type(exc).__name__}") from exc


async def _handle(services: Services, event: webhook.WebhookEvent) -> Outcome:
    record = await _conversation_of(services, event.room.name)
    if record is None:
        return Outcome.IGNORED
    participant = event.participant
    if event.event == "participant_joined" and is_visitor(participant):
        await _visitor_joined(services, record, participant)
        return Outcome.RECORDED
    if event.event == "participant_left" and is_visitor(participant):
        await _visitor_left(services, record, participant)
        return Outcome.RECORDED
    if event.event == "participant_left" and is_agent(participant):
        ensured = await services.dispatcher.redispatch(event.room.name, record.id)
        if ensured.created:
            services.metrics.dispatches.labels("agent_left").inc()
            log.info("agent left a room with its visitor still in it; dispatched again")
            return Outcome.REDISPATCHED
        return Outcome.IGNORED
    if event.event == "room_finished" and record.status is Status.VOICE:
        await services.store.update(record.id, status=Status.CHAT)
        return Outcome.RECORDED
    return Outcome.IGNORED


async def _conversation_of(services: Services, room: str) -> Conversation | None:
    """The conversation a room belongs to; None for rooms that are not Baton's."""
    try:
        return await services.store.get(validate_conversation_id(room))
    except (InvalidInput, ConversationNotFound):
        return None


async def _visitor_joined(services: Services, record: Conversation,
                          participant: models.ParticipantInfo) -> None:
    event = ChannelSwitchEvent(event_id=attributes.visitor_joined_event_id(participant.sid),
                               from_channel=None, to_channel=Channel.VOICE,
                               trigger="visitor_joined")
    status = Status.VOICE if record.status in (Status.CHAT, Status.VOICE) else None
    await _record(services, record, event, status)


async def _visitor_left(services: Services, record: Conversation,
                        participant: models.ParticipantInfo) -> None:
    # The worker writes the same event id when it sees the visitor go, so one of the two
    # writes is a no-op.
    event = ChannelSwitchEvent(event_id=attributes.visitor_left_event_id(participant.sid),
                               from_channel=Channel.VOICE, to_channel=Channel.CHAT,
                               trigger="visitor_left")
    status = Status.CHAT if record.status is Status.VOICE else None
    await _record(services, record, event, status)


async def _record(services: Services, record: Conversation, event: ChannelSwitchEvent,
                  status: Status | None) -> None:
    appended = await services.store.append(record.id, event, status=status)
    # A duplicate append changes nothing, and the other writer may not have set the status.
    if appended.duplicate and status is not None and status is not record.status:
        await services.store.update(record.id, status=status)
