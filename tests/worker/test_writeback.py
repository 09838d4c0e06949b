"""Write-back: every turn of the call reaches the log once, in order, even across an outage."""

from __future__ import annotations

import asyncio
import logging

import pytest
from livekit.agents import llm
from prometheus_client import REGISTRY

from conversation import (
    Channel,
    ConversationStore,
    MessageEvent,
    Role,
    ToolCallEvent,
    ToolResultEvent,
)
from modelserver import ChatReply, ModelServer, ToolCall
from tests.conftest import LogRedis, log_settings
from tests.worker.conftest import Seed, TextSession
from worker.agent import BatonAgent, OpeningKind, opening_for
from worker.writeback import WriteBack, record_session

pytestmark = pytest.mark.server_and_cluster


def fresh_agent() -> BatonAgent:
    return BatonAgent(chat_ctx=llm.ChatContext(), opening=opening_for(OpeningKind.GREET))


async def test_turns_and_tool_round_trips_are_written_as_voice_events_in_order(
        seed: Seed, store: ConversationStore, text_session: TextSession,
        model_server: ModelServer) -> None:
    await seed("c-write", [])
    writeback = WriteBack(store, "c-write")
    writeback.start()
    model_server.script_chat(
        ChatReply("Hello."),
        ChatReply(tool_calls=[ToolCall("lookup_order", {"order_id": "B77"})]),
        ChatReply("Your order B77 is on its way."))

    async with text_session("c-write") as session:
        record_session(session, writeback, channel=Channel.VOICE)
        await session.start(fresh_agent(), capture_run=True)
        await session.run(user_input="Where is order B77?")
    await writeback.aclose(grace=30)

    events = [stored.event for stored in await store.read("c-write")]
    assert [type(e) for e in events] == [MessageEvent, MessageEvent, ToolCallEvent,
                                        ToolResultEvent, MessageEvent]
    greeting, question, call, result, answer = events
    assert (greeting.role, greeting.text) == (Role.ASSISTANT, "Hello.")
    assert (question.role, question.channel, question.text) == (
        Role.USER, Channel.VOICE, "Where is order B77?")
    assert call.name == result.name == "lookup_order" and call.call_id == result.call_id
    assert call.channel is Channel.VOICE
    assert (answer.role, answer.text) == (Role.ASSISTANT, "Your order B77 is on its way.")


async def test_a_tool_call_split_from_a_model_item_is_written(
        seed: Seed, store: ConversationStore, text_session: TextSession,
        model_server: ModelServer) -> None:
    """Bug: the framework names the tool calls it splits out of one model item `item_x/fnc_0`;
    the slash is not allowed in event ids, so the call was refused and never written."""
    await seed("c-split", [])
    writeback = WriteBack(store, "c-split")
    writeback.start()
    model_server.script_chat(
        ChatReply("Hello."),
        ChatReply(tool_calls=[ToolCall("lookup_order", {"order_id": "C1"}),
                              ToolCall("quote_price", {"plan": "pro", "months": 6})]),
        ChatReply("Done."))

    async with text_session("c-split") as session:
        record_session(session, writeback, channel=Channel.VOICE)
        await session.start(fresh_agent(), capture_run=True)
        await session.run(user_input="Order C1, and what is pro for six months?")
    await writeback.aclose(grace=30)

    calls = [s.event for s in await store.read("c-split") if isinstance(s.event, ToolCallEvent)]
    assert sorted(call.name for call in calls) == ["lookup_order", "quote_price"]


async def test_writing_the_same_items_again_adds_nothing(
        seed: Seed, store: ConversationStore, text_session: TextSession) -> None:
    await seed("c-twice", [])
    writeback = WriteBack(store, "c-twice")
    writeback.start()

    async with text_session("c-twice") as session:
        await session.start(fresh_agent(), capture_run=True)
        await session.run(user_input="Hello there")
        for item in session.history.items:
            writeback.add_item(item, channel=Channel.VOICE)
        await writeback.flushed()
        first = await store.read("c-twice")
        for item in session.history.items:
            writeback.add_item(item, channel=Channel.VOICE)
    await writeback.aclose(grace=30)

    assert len(first) == 3
    assert await store.read("c-twice") == first


async def test_events_wait_in_order_while_redis_is_down_and_are_written_once_it_returns(
        own_redis: LogRedis) -> None:
    client = log_settings(own_redis).redis_client(socket_timeout=2, socket_connect_timeout=2)
    store = ConversationStore(client)
    await store.create("c-outage")
    writeback = WriteBack(store, "c-outage", retry_max=0.2)
    writeback.start()
    turns = [MessageEvent(role=Role.USER if n % 2 else Role.ASSISTANT, channel=Channel.VOICE,
                          text=f"turn {n}") for n in range(6)]

    writeback.add(turns[0])
    await writeback.flushed()
    own_redis.stop()
    for turn in turns[1:]:
        writeback.add(turn)
    await asyncio.wait_for(writeback.stalled.wait(), 30)
    assert writeback.pending == turns[1:]
    own_redis.start()
    await writeback.aclose(grace=60)

    logged = [stored.event for stored in await store.read("c-outage")]
    assert logged == turns
    await client.aclose()


async def test_events_left_when_the_grace_period_ends_are_counted_lost_not_hung_on(
        own_redis: LogRedis) -> None:
    client = log_settings(own_redis).redis_client(socket_timeout=1, socket_connect_timeout=1)
    store = ConversationStore(client)
    await store.create("c-gone")
    writeback = WriteBack(store, "c-gone", retry_max=0.1)
    writeback.start()
    own_redis.stop()

    lost_before = REGISTRY.get_sample_value("baton_worker_writeback_lost_total") or 0.0
    writeback.add(MessageEvent(role=Role.USER, channel=Channel.VOICE, text="lost"))
    await asyncio.wait_for(writeback.stalled.wait(), 30)
    await writeback.aclose(grace=0.2)

    assert writeback.pending == []
    assert REGISTRY.get_sample_value("baton_worker_writeback_lost_total") == lost_before + 1
    await client.aclose()


async def test_a_turn_longer_than_one_event_is_written_whole_and_never_logged(
        seed: Seed, store: ConversationStore, text_session: TextSession,
        model_server: ModelServer, caplog: pytest.LogCaptureFixture) -> None:
    """Bug: a typed message over the event size limit raised a validation error inside the
    framework's event handler, which logged part of the text (card numbers included); the turn
    was neither written nor counted lost."""
    await seed("c-long", [])
    writeback = WriteBack(store, "c-long")
    writeback.start()
    model_server.script_chat(ChatReply("Hello."), ChatReply("Thanks, noted."))
    typed = "my card is 4111 1111 1111 1111, " * 700

    caplog.set_level(logging.DEBUG)
    async with text_session("c-long") as session:
        record_session(session, writeback, channel=Channel.VOICE)
        await session.start(fresh_agent(), capture_run=True)
        await session.run(user_input=typed)
    await writeback.aclose(grace=30)

    said = [s.event for s in await store.read("c-long")
            if isinstance(s.event, MessageEvent) and s.event.role is Role.USER]
    assert len(said) > 1 and "".join(e.text for e in said) == typed
    assert "4111" not in caplog.text
