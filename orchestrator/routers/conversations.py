"""Conversations: create, read, append chat messages, page the log, stream it, widget tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import StreamingResponse

from conversation import Channel, MessageEvent, Role, chatturns
from conversation.ids import (
    CONVERSATION_ID_PATTERN,
    STREAM_ID_PATTERN,
    new_conversation_id,
    new_event_id,
    validate_stream_id,
)
from conversation.record import VerifiedIdentity
from orchestrator.deps import ApiKey, CallerDep, ReaderDep, ServicesDep, SettingsDep, StoreDep
from orchestrator.errors import Forbidden, responses
from orchestrator.schemas import (
    ConversationOut,
    CreateConversation,
    EventOut,
    EventPage,
    MessageAppended,
    PostMessage,
    WidgetTokenOut,
)
from orchestrator.sse import EventStreamResponse, event_stream
from orchestrator.tokens import widget_token

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

ConversationId = Annotated[str, Path(pattern=CONVERSATION_ID_PATTERN, max_length=64)]
After = Annotated[str | None, Query(pattern=STREAM_ID_PATTERN, max_length=41,
                                   description="Only events after this log position")]


@router.post("", status_code=201, dependencies=[ApiKey],
             responses=responses(401, 409, 413, 422, 503))
async def create_conversation(body: CreateConversation, store: StoreDep) -> ConversationOut:
    identity = None
    if body.identity is not None:
        identity = VerifiedIdentity(subject=body.identity.subject, method=body.identity.method,
                                    verified_at=body.identity.verified_at)
    record = await store.create(body.id or new_conversation_id(), identity=identity)
    return ConversationOut.of(record)


@router.get("/{conversation_id}", dependencies=[ApiKey], responses=responses(401, 404, 422, 503))
async def get_conversation(conversation_id: ConversationId, store: StoreDep) -> ConversationOut:
    return ConversationOut.of(await store.get(conversation_id))


@router.post("/{conversation_id}/messages", status_code=201,
             responses=responses(401, 403, 404, 413, 422, 503))
async def post_message(conversation_id: ConversationId, body: PostMessage, caller: CallerDep,
                       services: ServicesDep) -> MessageAppended:
    """With an API key, any role; with the widget's token, the visitor's own messages only
    (role `user`, no author). A visitor's message is queued for Baton's chat agent unless
    `BATON_CHAT_AGENT` is off; a retry with the same `event_id` is stored once and answered
    once."""
    if caller.widget and (body.role is not Role.USER or body.author is not None):
        raise Forbidden("a widget token posts the visitor's own messages only: role 'user', "
                        "no author")
    event = MessageEvent(role=body.role, channel=Channel.CHAT, author=body.author,
                         text=body.text, event_id=body.event_id or new_event_id())
    appended = await services.store.append(conversation_id, event)
    if body.role is Role.USER and services.settings.chat_agent:
        await chatturns.request_reply(services.redis, chatturns.Turn(
            conversation_id, event.event_id, appended.seq))
    return MessageAppended(seq=appended.seq, event_id=event.event_id,
                           duplicate=appended.duplicate)


@router.get("/{conversation_id}/events", responses=responses(401, 403, 404, 422, 503))
async def list_events(conversation_id: ConversationId, _caller: CallerDep, store: StoreDep,
                      after: After = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> EventPage:
    events = await store.read(conversation_id, after=after, count=limit)
    more = len(events) == limit
    return EventPage(events=[EventOut.of(stored) for stored in events],
                     next=events[-1].seq if more else None)


@router.get(
    "/{conversation_id}/stream", response_class=StreamingResponse,
    responses={200: {"description": "Server-sent events: `id` is the log position, `event` the "
                                    "kind, `data` the event as JSON; comments are heartbeats. "
                                    "A last `end` event with `{reason}` (`token_expired`, "
                                    "`conversation_gone`) means reconnecting with this URL "
                                    "cannot help",
                     "content": {"text/event-stream": {"schema": {"type": "string"}}}},
               **responses(401, 403, 404, 422, 429, 503)})
async def stream_events(
    conversation_id: ConversationId, reader: ReaderDep, services: ServicesDep,
    after: After = None, last_event_id: Annotated[str | None, Header(max_length=41)] = None,
) -> Response:
    # A reconnecting EventSource sends Last-Event-ID and repeats the original URL, so the
    # header is the newer position.
    if last_event_id:
        position: str | None = validate_stream_id(last_event_id, "Last-Event-ID")
    else:
        position = validate_stream_id(after) if after else None
    # First, so a refused stream costs no Redis call; the response gives it back when the
    # stream ends, however it ends.
    slot = services.stream_slots.take(reader.holder, reader.bound)
    try:
        # Fails with 404 before the response starts, rather than inside the stream.
        await services.streams.get(conversation_id)
    except BaseException:
        slot.release()
        raise
    return EventStreamResponse(
        event_stream(services.streams, conversation_id, after=position,
                     heartbeat=services.settings.sse_heartbeat, expires_at=reader.expires_at),
        slot)


@router.post("/{conversation_id}/widget-token", status_code=201, dependencies=[ApiKey],
             responses=responses(401, 404, 422, 503))
async def issue_widget_token(conversation_id: ConversationId, store: StoreDep,
                             settings: SettingsDep) -> WidgetTokenOut:
    await store.get(conversation_id)
    issued = widget_token(settings, conversation_id)
    return WidgetTokenOut(token=issued.token, expires_at=issued.expires_at)
