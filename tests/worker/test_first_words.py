"""The first words: generated while the agent joins, played once the visitor can hear them,
never stale, logged once. A real worker process on the devserver talks to this test's
scripted models, so the test sees when the agent asked them for the opening."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import TypeVar

import pytest
from livekit import api

from conversation import (
    Channel,
    ChannelSwitchEvent,
    ConversationStore,
    MessageEvent,
    Role,
    attributes,
)
from deploy.processes import RedisServer
from deploy.visitor import Visitor
from devserver.process import DevServer
from modelserver import Latency, ModelServer
from tests.worker.conftest import WorkerProcess, logged_until_visitor_left, voice_messages

pytestmark = pytest.mark.realtime

WAIT = 90.0  # generous: other suites may load the machine
CLAIM = "Hello, my January claim for the broken phone screen was rejected."
ORDER = ("Actually I need help with something else now: where is my order A1234 that I "
         "placed three weeks ago?")
T = TypeVar("T")


async def within(step: Awaitable[T], what: str) -> T:
    try:
        return await asyncio.wait_for(step, WAIT)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {WAIT:.0f}s") from None


async def conversation_switched_to_voice(store: ConversationStore) -> str:
    conversation_id = f"c-first-{uuid.uuid4().hex[:8]}"
    await store.create(conversation_id)
    await store.append(conversation_id, MessageEvent(role=Role.USER, channel=Channel.CHAT,
                                                     text=CLAIM))
    await store.append(conversation_id, ChannelSwitchEvent(
        from_channel=Channel.CHAT, to_channel=Channel.VOICE, trigger="visitor_clicked"))
    return conversation_id


async def dispatch(devserver: DevServer, worker: WorkerProcess, room: str) -> None:
    async with devserver.api() as livekit:
        await livekit.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
            agent_name=worker.agent_name, room=room))


async def visitor_joins(devserver: DevServer, room: str) -> Visitor:
    visitor = Visitor()
    identity = f"{attributes.VISITOR_IDENTITY_PREFIX}{uuid.uuid4().hex[:12]}"
    await within(visitor.join(devserver.url, devserver.token(identity, room, attributes={
        attributes.ROLE: attributes.ROLE_VISITOR, attributes.CONVERSATION_ID: room})),
        "joining the call")
    return visitor


async def test_the_opening_is_made_before_the_visitor_joins_and_played_once_they_do(
        store: ConversationStore, devserver: DevServer, redis_server: RedisServer,
        model_server: ModelServer, scripted_worker: WorkerProcess) -> None:
    conversation_id = await conversation_switched_to_voice(store)

    await dispatch(devserver, scripted_worker, conversation_id)
    await within(model_server.wait_for_requests("/audio/speech"),
                 "the opening's speech, asked for while nobody is in the call")
    visitor = await visitor_joins(devserver, conversation_id)
    await within(visitor.agent_spoke_since(0), "the visitor hearing the opening")
    await visitor.leave()
    logged = await within(logged_until_visitor_left(redis_server.url, conversation_id),
                          "the call's end in the log")

    assert len(model_server.requests_to("/chat/completions")) == 1
    [(role, opening)] = voice_messages(logged)
    assert role == "assistant" and "january claim" in opening.lower()


async def test_the_agents_voice_is_in_the_room_before_the_visitor_is_and_silent_until_then(
        store: ConversationStore, devserver: DevServer, redis_server: RedisServer,
        model_server: ModelServer, scripted_worker: WorkerProcess) -> None:
    conversation_id = await conversation_switched_to_voice(store)
    await dispatch(devserver, scripted_worker, conversation_id)
    await within(model_server.wait_for_requests("/audio/speech"), "the opening's speech")

    # Someone who is not the visitor (a supervisor, say) is sent the agent's track on joining,
    # so it was published while the agent waited; the opening waits for the visitor.
    observer = Visitor()
    await within(observer.join(devserver.url, devserver.token("observer", conversation_id),
                               publish=False), "the observer joining")
    await within(observer.subscribed_to_agent(), "the agent's track, before any visitor")
    assert observer.loud_frames == 0

    visitor = await visitor_joins(devserver, conversation_id)
    await within(visitor.agent_spoke_since(0), "the visitor hearing the opening")
    await visitor.leave()
    await observer.leave()


async def test_an_opening_the_visitor_leaves_before_is_neither_played_nor_logged(
        store: ConversationStore, devserver: DevServer, redis_server: RedisServer,
        model_server: ModelServer, scripted_worker: WorkerProcess) -> None:
    conversation_id = await conversation_switched_to_voice(store)
    # The model thinks far longer than the visitor stays.
    model_server.latency = Latency(llm_first_token=WAIT)
    visitor = await visitor_joins(devserver, conversation_id)

    await dispatch(devserver, scripted_worker, conversation_id)
    await within(model_server.wait_for_requests("/chat/completions"), "the opening's request")
    await within(visitor.subscribed_to_agent(), "the agent's audio reaching the visitor")
    await visitor.leave()
    logged = await within(logged_until_visitor_left(redis_server.url, conversation_id),
                          "the call's end in the log")

    assert voice_messages(logged) == []
    assert model_server.requests_to("/audio/speech") == []
    assert visitor.loud_frames == 0


async def test_an_opening_outdated_while_the_agent_joined_is_replaced_unheard(
        store: ConversationStore, devserver: DevServer, redis_server: RedisServer,
        model_server: ModelServer, scripted_worker: WorkerProcess) -> None:
    conversation_id = await conversation_switched_to_voice(store)
    await dispatch(devserver, scripted_worker, conversation_id)
    await within(model_server.wait_for_requests("/audio/speech"), "the first opening")

    # The visitor typed on in the chat while the call was being set up.
    await store.append(conversation_id, MessageEvent(role=Role.USER, channel=Channel.CHAT,
                                                     text=ORDER))
    visitor = await visitor_joins(devserver, conversation_id)
    await within(visitor.agent_spoke_since(0), "the visitor hearing an opening")
    await visitor.leave()
    logged = await within(logged_until_visitor_left(redis_server.url, conversation_id),
                          "the call's end in the log")

    assert len(model_server.requests_to("/chat/completions")) == 2
    [(role, opening)] = voice_messages(logged)
    assert role == "assistant" and "order a1234" in opening.lower()
    assert "claim" not in opening.lower()
