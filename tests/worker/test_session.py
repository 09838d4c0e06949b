"""The voice agent in a real AgentSession (text mode) against the scripted model server."""

from __future__ import annotations

import json

import pytest
from livekit.agents import AgentSession, APIConnectionError, ErrorEvent, llm
from livekit.plugins import openai

from conversation import (
    Channel,
    ChannelSwitchEvent,
    ConversationStore,
    MessageEvent,
    Role,
    ToolCallEvent,
    ToolResultEvent,
)
from conversation.history import DEFAULT_BUDGET
from deploy.processes import free_port
from modelserver import ChatReply, ModelServer, ToolCall, message_text
from tests.worker.conftest import CountingBackend, Seed, TextSession
from worker.agent import BatonAgent, OpeningKind, opening_for
from worker.entrypoint import restore
from worker.tools import CallData

CLAIM = "Hi, my January claim for the broken phone screen was rejected and I want to know why"


def chat_about_the_claim() -> list[MessageEvent | ToolCallEvent | ToolResultEvent]:
    return [
        MessageEvent(role=Role.USER, channel=Channel.CHAT, text=CLAIM),
        MessageEvent(role=Role.ASSISTANT, channel=Channel.CHAT,
                     text="I'm sorry to hear that. Let me check your claim."),
    ]


def order_lookup_in_chat(order_id: str, output: str) -> list[ToolCallEvent | ToolResultEvent]:
    return [
        ToolCallEvent(event_id="chat-call-1", call_id="call_chat_1", name="lookup_order",
                      arguments=json.dumps({"order_id": order_id}), channel=Channel.CHAT),
        ToolResultEvent(event_id="chat-result-1", call_id="call_chat_1", name="lookup_order",
                        output=output),
    ]


def switch_to_voice() -> ChannelSwitchEvent:
    return ChannelSwitchEvent(from_channel=Channel.CHAT, to_channel=Channel.VOICE,
                              trigger="visitor_clicked")


async def test_first_words_refer_to_what_the_chat_was_about(
        seed: Seed, store: ConversationStore, text_session: TextSession,
        model_server: ModelServer) -> None:
    await seed("c-claim", [*chat_about_the_claim(), switch_to_voice()])
    agent, _ = await restore(store, "c-claim", DEFAULT_BUDGET)

    async with text_session("c-claim") as session:
        run = await session.start(agent, capture_run=True)

    first_words = run.expect.contains_message(role="assistant").event().item.text_content
    assert first_words is not None and "january claim" in first_words.lower()
    instruction = model_server.chat_requests[0]["messages"][-1]
    assert instruction["role"] == "system"
    assert "switched from the text chat" in message_text(instruction)


async def test_first_request_carries_the_restored_history_with_tool_items(
        seed: Seed, store: ConversationStore, text_session: TextSession,
        model_server: ModelServer) -> None:
    found = json.dumps({"order_id": "A1234", "status": "shipped"})
    await seed("c-history", [*chat_about_the_claim(), *order_lookup_in_chat("A1234", found),
                             switch_to_voice()])
    agent, _ = await restore(store, "c-history", DEFAULT_BUDGET)

    async with text_session("c-history") as session:
        await session.start(agent, capture_run=True)

    messages = model_server.chat_requests[0]["messages"]
    assert any(m["role"] == "user" and message_text(m) == CLAIM for m in messages)
    calls = [call for m in messages for call in m.get("tool_calls") or []]
    assert [(c["id"], c["function"]["name"]) for c in calls] == [("call_chat_1", "lookup_order")]
    results = [m for m in messages if m["role"] == "tool"]
    assert [(r["tool_call_id"], message_text(r)) for r in results] == [("call_chat_1", found)]
    offered = {tool["function"]["name"] for tool in model_server.chat_requests[0]["tools"]}
    assert "lookup_order" in offered


async def test_a_tool_result_cached_for_the_same_arguments_is_not_fetched_again(
        seed: Seed, store: ConversationStore, text_session: TextSession,
        model_server: ModelServer, backend: CountingBackend) -> None:
    from_chat = json.dumps({"order_id": "A1234", "status": "delivered"})
    await seed("c-cached", [*chat_about_the_claim(), switch_to_voice()])
    await store.cache_tool_result("c-cached", "lookup_order", {"order_id": "A1234"}, from_chat)
    agent, _ = await restore(store, "c-cached", DEFAULT_BUDGET)
    model_server.script_chat(ChatReply("Hello again."),
                             ChatReply(tool_calls=[ToolCall("lookup_order",
                                                            {"order_id": "A1234"})]))

    async with text_session("c-cached") as session:
        await session.start(agent, capture_run=True)
        run = await session.run(user_input="Where is my order A1234?")

    run.expect.next_event().is_function_call(name="lookup_order")
    output = run.expect.next_event().is_function_call_output().event().item.output
    assert output == from_chat
    assert backend.calls == []


async def test_a_fetched_tool_result_is_cached_for_the_next_call(
        seed: Seed, store: ConversationStore, text_session: TextSession,
        model_server: ModelServer, backend: CountingBackend) -> None:
    await seed("c-fetch", [*chat_about_the_claim(), switch_to_voice()])
    agent, _ = await restore(store, "c-fetch", DEFAULT_BUDGET)
    ask = ChatReply(tool_calls=[ToolCall("quote_price", {"plan": "plus", "months": 12})])
    model_server.script_chat(ChatReply("Hello again."), ask, ChatReply("That is the price."),
                             ask)

    async with text_session("c-fetch") as session:
        await session.start(agent, capture_run=True)
        first = await session.run(user_input="What does plus cost for a year?")
        second = await session.run(user_input="Sorry, what was the price again?")

    assert backend.calls == [("quote_price", {"plan": "plus", "months": 12})]
    outputs = [run.expect.contains_function_call_output().event().item.output
               for run in (first, second)]
    assert outputs[0] == outputs[1]
    assert await store.cached_tool_result("c-fetch", "quote_price",
                                          {"months": 12, "plan": "plus"}) == outputs[0]


async def test_an_empty_log_gets_a_normal_greeting(
        seed: Seed, store: ConversationStore, text_session: TextSession,
        model_server: ModelServer) -> None:
    await seed("c-empty", [switch_to_voice()])
    agent, _ = await restore(store, "c-empty", DEFAULT_BUDGET)

    async with text_session("c-empty") as session:
        run = await session.start(agent, capture_run=True)

    assert agent.opening.kind is OpeningKind.GREET
    run.expect.contains_message(role="assistant")
    instruction = message_text(model_server.chat_requests[0]["messages"][-1])
    assert "no earlier conversation" in instruction


async def test_a_redispatched_agent_continues_the_call_instead_of_greeting(
        seed: Seed, store: ConversationStore, text_session: TextSession) -> None:
    await seed("c-resume", [
        *chat_about_the_claim(), switch_to_voice(),
        MessageEvent(role=Role.ASSISTANT, channel=Channel.VOICE,
                     text="I see you were asking about your claim."),
        MessageEvent(role=Role.USER, channel=Channel.VOICE,
                     text="Yes, the repair shop said the screen was water damaged"),
    ])
    agent, _ = await restore(store, "c-resume", DEFAULT_BUDGET)

    async with text_session("c-resume") as session:
        run = await session.start(agent, capture_run=True)

    assert agent.opening.kind is OpeningKind.RESUME_CALL
    words = run.expect.contains_message(role="assistant").event().item.text_content
    assert words is not None and words.startswith("Sorry, we were cut off")
    assert "water damaged" in words


async def test_restored_items_keep_their_log_ids(
        seed: Seed, store: ConversationStore) -> None:
    await seed("c-ids", [*chat_about_the_claim(), *order_lookup_in_chat("A1", "{}")])

    agent, _ = await restore(store, "c-ids", DEFAULT_BUDGET)

    logged = [stored.event.event_id for stored in await store.read("c-ids")]
    restored = [item.id for item in agent.chat_ctx.items
                if isinstance(item, llm.ChatMessage | llm.FunctionCall | llm.FunctionCallOutput)
                and item.id in logged]
    assert restored == logged


def ask_early(agent: BatonAgent, session: AgentSession[CallData]) -> None:
    """Ask the session's model for the agent's opening before the session starts."""
    assert session.llm is not None and isinstance(session.llm, llm.LLM)
    agent.ask_for_opening(session.llm)


async def test_an_opening_asked_for_before_the_session_starts_is_the_one_it_speaks(
        seed: Seed, store: ConversationStore, text_session: TextSession,
        model_server: ModelServer) -> None:
    await seed("c-early", [*chat_about_the_claim(), switch_to_voice()])
    agent, _ = await restore(store, "c-early", DEFAULT_BUDGET)
    model_server.script_chat(ChatReply("I see you were asking about your January claim."))

    async with text_session("c-early") as session:
        ask_early(agent, session)
        await model_server.wait_for_requests("/chat/completions")
        run = await session.start(agent, capture_run=True)

    said = run.expect.contains_message(role="assistant").event().item.text_content
    assert said == "I see you were asking about your January claim."
    assert len(model_server.chat_requests) == 1


async def test_a_prefetched_opening_asks_for_tools_as_any_reply_does(
        seed: Seed, store: ConversationStore, text_session: TextSession,
        model_server: ModelServer, backend: CountingBackend) -> None:
    await seed("c-early-tool", [*chat_about_the_claim(), switch_to_voice()])
    agent, _ = await restore(store, "c-early-tool", DEFAULT_BUDGET)
    model_server.script_chat(
        ChatReply(tool_calls=[ToolCall("quote_price", {"plan": "plus", "months": 12})]),
        ChatReply("The yearly plus plan is what you asked about."))

    async with text_session("c-early-tool") as session:
        ask_early(agent, session)
        run = await session.start(agent, capture_run=True)

    run.expect.contains_function_call(name="quote_price")
    said = run.expect.contains_message(role="assistant").event().item.text_content
    assert said == "The yearly plus plan is what you asked about."
    assert backend.calls == [("quote_price", {"plan": "plus", "months": 12})]


async def test_a_prefetched_opening_for_another_context_is_dropped_unspoken(
        seed: Seed, store: ConversationStore, text_session: TextSession,
        model_server: ModelServer) -> None:
    await seed("c-early-stale", [*chat_about_the_claim(), switch_to_voice()])
    agent, _ = await restore(store, "c-early-stale", DEFAULT_BUDGET)
    model_server.script_chat(ChatReply("Words for a context the session never asks for."),
                             ChatReply("Hello, how can I help?"))

    async with text_session("c-early-stale") as session:
        ask_early(agent, session)
        await model_server.wait_for_requests("/chat/completions")
        agent.opening = opening_for(OpeningKind.GREET)
        run = await session.start(agent, capture_run=True)

    said = run.expect.contains_message(role="assistant").event().item.text_content
    assert said == "Hello, how can I help?"
    assert len(model_server.chat_requests) == 2


async def test_a_prefetched_opening_the_model_fails_fails_as_the_sessions_own_request_would(
        seed: Seed, store: ConversationStore) -> None:
    await seed("c-early-down", [*chat_about_the_claim(), switch_to_voice()])
    agent, _ = await restore(store, "c-early-down", DEFAULT_BUDGET)
    reported: list[ErrorEvent] = []

    async with openai.LLM(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="test") as down, \
            AgentSession[None](llm=down) as session:
        session.on("error", reported.append)
        agent.ask_for_opening(down)
        with pytest.raises(APIConnectionError):
            await session.start(agent, capture_run=True)

    assert [event.error.recoverable for event in reported] == [True, True, True, False]
