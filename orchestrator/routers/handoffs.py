"""Handoffs to a human: requested for a call in progress; seen, accepted, declined and connected
by the human they are offered to, who alone may read that conversation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, Response
from fastapi.responses import StreamingResponse

from conversation import HandoffTrigger
from conversation import handoffs as steps
from conversation.handoffs import Handoff, HandoffNotFound, HandoffStep
from conversation.ids import HANDOFF_ID_PATTERN, validate_stream_id
from orchestrator.deps import HumanDep, ServicesDep, VisitorOrApiKey
from orchestrator.deskstream import queue_of, queue_stream
from orchestrator.errors import HandoffMoved, responses
from orchestrator.routers.conversations import After, ConversationId
from orchestrator.schemas import (
    EventOut,
    EventPage,
    HandoffOut,
    HumanSession,
    Queue,
    RequestHandoff,
)
from orchestrator.services import Services
from orchestrator.sse import EventStreamResponse, event_stream
from orchestrator.tokens import human_token

router = APIRouter(tags=["handoffs"])

HandoffId = Annotated[str, Path(max_length=80, pattern=HANDOFF_ID_PATTERN)]


@router.post("/v1/conversations/{conversation_id}/handoffs", status_code=202,
             dependencies=[VisitorOrApiKey], responses=responses(401, 403, 404, 409, 413, 422,
                                                                   503))
async def request_handoff(conversation_id: ConversationId, services: ServicesDep,
                          body: Annotated[RequestHandoff | None, Body()] = None) -> HandoffOut:
    """Ask for a person in the call in progress (the widget's "talk to a person", or the site).
    The voice agent takes it from there: it tells the visitor, builds the card and finds a
    human; the thread shows each step."""
    reason = (body or RequestHandoff()).reason
    handoff = await steps.start(services.handoffs, services.desk, conversation_id,
                                HandoffTrigger.API, reason)
    services.metrics.handoffs_requested.labels(HandoffTrigger.API.value).inc()
    return HandoffOut.of(handoff)


@router.get("/v1/handoffs", responses=responses(401, 503))
async def my_queue(human: HumanDep, services: ServicesDep) -> Queue:
    """The handoffs offered to or taken by the signed-in human, still running."""
    await services.desk.seen(human.username)
    found = await queue_of(services.handoffs, services.desk, human.username)
    return Queue(handoffs=[HandoffOut.of(h) for h in found])


@router.get("/v1/handoffs/stream", response_class=StreamingResponse,
            responses={200: {"description": "`queue` first (the whole queue), then a "
                                            "`handoff` event per change; heartbeats between",
                             "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                       **responses(401, 429, 503)})
async def my_queue_stream(human: HumanDep, services: ServicesDep) -> Response:
    """The dashboard's live queue. While it is open the human counts as online. It is one of
    the human's live streams, reading Redis through the streams' connections."""
    slot = services.stream_slots.take(f"human:{human.username}",
                                      services.settings.sse_streams_per_token)
    return EventStreamResponse(
        queue_stream(services.handoffs, services.desk_streams, human.username,
                     heartbeat=services.settings.sse_heartbeat), slot)


@router.get("/v1/handoffs/{handoff_id}", responses=responses(401, 404, 422, 503))
async def get_handoff(handoff_id: HandoffId, human: HumanDep,
                      services: ServicesDep) -> HandoffOut:
    return HandoffOut.of(await _theirs(services, handoff_id, human.username))


@router.post("/v1/handoffs/{handoff_id}/accept", responses=responses(401, 404, 409, 422, 503))
async def accept(handoff_id: HandoffId, human: HumanDep, services: ServicesDep) -> HumanSession:
    """Take the handoff: a token to join the visitor's room, in consult: the agent briefs the
    human, and visitor and human do not hear each other until the human connects."""
    handoff = await _theirs(services, handoff_id, human.username)
    await _take(services, handoff, steps.accepted(handoff, human=human.username))
    waited = await services.desk.waiting_remove(handoff.id)
    if waited is not None:
        services.metrics.handoff_wait_seconds.observe(waited)
    token = human_token(services.settings, room=handoff.conversation_id,
                        username=human.username, name=human.name, handoff_id=handoff.id)
    return HumanSession(url=services.settings.livekit_url, token=token.jwt,
                        room=handoff.conversation_id, identity=token.identity,
                        handoff=HandoffOut.of(await services.handoffs.get(handoff.id)))


@router.post("/v1/handoffs/{handoff_id}/decline", responses=responses(401, 404, 409, 422, 503))
async def decline(handoff_id: HandoffId, human: HumanDep, services: ServicesDep) -> HandoffOut:
    """Turn the handoff down; the agent takes the conversation back and tells the visitor."""
    handoff = await _theirs(services, handoff_id, human.username)
    await _take(services, handoff, steps.declined(handoff, human=human.username))
    await services.desk.queue_remove(human.username, handoff.id)
    await services.desk.free(human.username, handoff.id)
    await services.desk.waiting_remove(handoff.id)
    return HandoffOut.of(await services.handoffs.get(handoff.id))


@router.post("/v1/handoffs/{handoff_id}/connect", responses=responses(401, 404, 409, 422, 503))
async def connect(handoff_id: HandoffId, human: HumanDep, services: ServicesDep) -> HandoffOut:
    """End the consult: the agent opens the audio both ways and introduces the human."""
    handoff = await _theirs(services, handoff_id, human.username)
    await _take(services, handoff, steps.connecting(handoff, human=human.username))
    return HandoffOut.of(await services.handoffs.get(handoff.id))


@router.get("/v1/handoffs/{handoff_id}/events", responses=responses(401, 404, 422, 503))
async def handoff_events(handoff_id: HandoffId, human: HumanDep, services: ServicesDep,
                         after: After = None,
                         limit: Annotated[int, Query(ge=1, le=500)] = 500) -> EventPage:
    """The whole thread of the handed-over conversation (chat, voice, phone, tool results)."""
    handoff = await _theirs(services, handoff_id, human.username)
    events = await services.store.read(handoff.conversation_id, after=after, count=limit)
    return EventPage(events=[EventOut.of(stored) for stored in events],
                     next=events[-1].seq if len(events) == limit else None)


@router.get("/v1/handoffs/{handoff_id}/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "The conversation's log live, as for the widget"},
                       **responses(401, 404, 422, 429, 503)})
async def handoff_stream(handoff_id: HandoffId, human: HumanDep, services: ServicesDep,
                         after: After = None,
                         last_event_id: Annotated[str | None, Header(max_length=41)] = None,
                         ) -> Response:
    handoff = await _theirs(services, handoff_id, human.username)
    position = validate_stream_id(last_event_id, "Last-Event-ID") if last_event_id else after
    slot = services.stream_slots.take(f"human:{human.username}",
                                      services.settings.sse_streams_per_token)
    return EventStreamResponse(
        event_stream(services.streams, handoff.conversation_id, after=position,
                     heartbeat=services.settings.sse_heartbeat), slot)


async def _theirs(services: Services, handoff_id: str, username: str) -> Handoff:
    """The handoff, if it was offered to this human; NotFound otherwise, so nobody learns of a
    conversation that is not theirs."""
    handoff = await services.handoffs.get(handoff_id)
    if handoff.human != username:
        raise HandoffNotFound(handoff_id)
    return handoff


async def _take(services: Services, handoff: Handoff, step: HandoffStep) -> None:
    if not await services.handoffs.take(handoff.conversation_id, step):
        current = await services.handoffs.get(handoff.id)
        raise HandoffMoved(handoff.id, current.state.value)
    await services.desk.publish(handoff.id, handoff.human, step.event.state)
