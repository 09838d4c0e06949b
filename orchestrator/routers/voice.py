"""Switch to voice: the room, one agent dispatch, the visitor's token and the switch event."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body

from conversation import Channel, Status, calls
from orchestrator.deps import CallerDep, ServicesDep
from orchestrator.errors import ConversationClosed, Forbidden, responses
from orchestrator.routers.conversations import ConversationId
from orchestrator.schemas import SwitchToVoice, VoiceSession
from orchestrator.timing import waited
from orchestrator.tokens import visitor_token

router = APIRouter(prefix="/v1/conversations", tags=["voice"])


@router.post("/{conversation_id}/voice", responses=responses(401, 403, 404, 409, 413, 422, 502,
                                                              503))
async def switch_to_voice(conversation_id: ConversationId, services: ServicesDep,
                          caller: CallerDep,
                          body: Annotated[SwitchToVoice | None, Body()] = None) -> VoiceSession:
    """Room named by the conversation id, an agent unless one is live, and a visitor token.
    The widget's token may ask for itself (`visitor`) or take the chat agent's offer
    (`agent`), not speak for an operator.

    The switch is recorded only after LiveKit has the room and the dispatch, so a failure
    leaves the log as it was. It is recorded once however often it is asked for: a second
    click while the call is up issues another token and writes nothing.
    """
    started = time.perf_counter()
    request = body or SwitchToVoice()
    if caller.widget and request.trigger == "operator":
        raise Forbidden("a widget token switches for the visitor, not an operator")
    settings, store = services.settings, services.store
    record = await waited("redis", store.get(conversation_id))
    if record.status is Status.CLOSED:
        raise ConversationClosed(conversation_id)
    room = conversation_id
    await services.livekit.create_room(room, empty_timeout=settings.room_empty_timeout,
                                       departure_timeout=settings.room_departure_timeout)
    ensured = await services.dispatcher.ensure(room, conversation_id)
    if ensured.created:
        services.metrics.dispatches.labels("switch").inc()
    token = visitor_token(settings, record, room)
    if record.status is Status.CHAT:
        step = calls.switch_into_call(record, Channel.VOICE, request.trigger, room)
        appended = await waited("redis", store.append(conversation_id, step.event,
                                                      transition=step.transition))
        if appended.written:
            services.metrics.switches.labels(request.trigger).inc()
    await waited("redis", services.waiting.add(conversation_id))
    services.metrics.switch_seconds.observe(time.perf_counter() - started)
    return VoiceSession(url=settings.livekit_url, token=token.jwt, room=room,
                        identity=token.identity)
