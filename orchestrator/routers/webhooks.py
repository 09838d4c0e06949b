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

from conversation import (
    IN_CALL,
    Channel,
    Conversation,
    ConversationNotFound,
    InvalidInput,
    StoreUnavailable,
    attributes,
    calls,
    validate_conversation_id,
)
from conversation.errors import redis_errors
from orchestrator.deps import ServicesDep
from orchestrator.dispatch import Presence, is_agent, is_visitor
from orchestrator.errors import WebhookRejected, responses
from orchestrator.probes import is_probe_room, note_webhook
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
    PROBE = "probe"


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
        with contextlib.suppress(StoreUnavailable), redis_errors():
            await services.redis.delete(seen_key)
        raise
    return WebhookAck(event=event.event, outcome=outcome)


async def _first_time(services: Services, key: str) -> bool:
    with redis_errors():
        return bool(await services.redis.set(key, "1", nx=True,
                                             ex=int(SEEN_TTL.total_seconds())))


async def _handle(services: Services, event: webhook.WebhookEvent) -> Outcome:
    if is_probe_room(event.room.name):
        await note_webhook(services.redis, event.room.name, event.event)
        return Outcome.PROBE
    record = await _conversation_of(services, event.room.name)
    if record is None:
        return Outcome.IGNORED
    participant = event.participant
    if is_visitor(participant) and not attributes.answered(participant.kind,
                                                           participant.attributes):
        # A dialled phone joins while it rings and leaves again when nobody answers: it is in
        # the call only once answered, which LiveKit sends no webhook for. The dial-out records
        # the answer, and the worker sees it in the room.
        return Outcome.IGNORED
    if event.event == "participant_joined" and is_visitor(participant):
        await _append(services, record, calls.visitor_joined(
            _channel_of(participant), participant.identity, participant.sid))
        return Outcome.RECORDED
    if event.event == "participant_left" and is_visitor(participant):
        await _append(services, record, calls.visitor_left(
            _channel_of(participant), participant.identity, participant.sid))
        await services.waiting.remove(record.id)
        return Outcome.RECORDED
    if event.event == "participant_joined" and is_agent(participant):
        await services.waiting.remove(record.id)
        await services.store.append(record.id, calls.agent_joined(participant.sid))
        return Outcome.RECORDED
    if event.event == "participant_left" and is_agent(participant):
        return await _agent_left(services, record)
    if event.event == "room_finished":
        await services.waiting.remove(record.id)
        if record.status in IN_CALL:
            await services.store.transition(record.id, calls.call_over(record))
            return Outcome.RECORDED
    return Outcome.IGNORED


async def _agent_left(services: Services, record: Conversation) -> Outcome:
    """A visitor still in the room gets another agent, which resumes from the log; a crashed
    agent's dispatch is replaced at once, and the call waits like any other until it joins.
    Presence in the room decides, not the record's status, which a lost webhook may have left
    behind."""
    recovery = await services.dispatcher.recover(record.id, record.id)
    if recovery.presence is Presence.DISPATCHED:
        services.metrics.dispatches.labels("agent_left").inc()
        await services.waiting.add(record.id, visitor_waiting=True)
        log.info("agent left a room with its visitor still in it; dispatched again",
                 extra={"conversation_id": record.id})
        return Outcome.REDISPATCHED
    if recovery.presence is Presence.ON_ITS_WAY:
        await services.waiting.add(record.id, visitor_waiting=True)
    return Outcome.IGNORED


async def _conversation_of(services: Services, room: str) -> Conversation | None:
    """The conversation a room belongs to; None for rooms that are not Baton's."""
    try:
        return await services.store.get(validate_conversation_id(room))
    except (InvalidInput, ConversationNotFound):
        return None


def _channel_of(participant: models.ParticipantInfo) -> Channel:
    return Channel.PHONE if attributes.is_phone(participant.kind) else Channel.VOICE


async def _append(services: Services, record: Conversation, step: calls.Step) -> None:
    await services.store.append(record.id, step.event, transition=step.transition)
