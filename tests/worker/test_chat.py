"""The chat agent answers typed turns with the voice agent's brain, against real Redis and the
real OpenAI plugin talking to the scripted model server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from livekit.plugins import openai

from conversation import (
    Channel,
    ConversationStore,
    MessageEvent,
    Role,
    Status,
    SuggestionEvent,
    ToolCallEvent,
    VerifiedIdentity,
    calls,
)
from conversation.chatturns import Turn, reply_event_id
from conversation.history import DEFAULT_BUDGET
from deploy.processes import free_port
from modelserver import ChatReply, ModelServer, ToolCall, message_text
from modelserver.replies import OFFERED
from tests.worker.conftest import CountingBackend, TextSession
from worker.chat.answer import APOLOGY, Answerer, Outcome
from worker.entrypoint import restore

CUSTOMER = VerifiedIdentity(subject="demo-customer-1", method="password",
                            verified_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC))

AnswererFactory = Callable[..., contextlib.AbstractAsyncContextManager[Answerer]]


@pytest.fixture
def answerer(store: ConversationStore, model_server: ModelServer,
             backend: CountingBackend) -> AnswererFactory:
    """`async with answerer() as chat:` the chat agent of one process, its model the scripted
    server (or `base_url=` another)."""

    @contextlib.asynccontextmanager
    async def build(*, base_url: str | None = None, turn_timeout: float = 30.0,
                    ) -> AsyncIterator[Answerer]:
        async with openai.LLM(base_url=base_url or model_server.url, api_key="test") as model:
            yield Answerer(store, model, backend, budget=DEFAULT_BUDGET,
                           timeout=turn_timeout)

    return build


async def typed(store: ConversationStore, conversation_id: str, text: str) -> Turn:
    """The visitor types `text`: the message in the log, and the turn that asks for a reply."""
    event = MessageEvent(role=Role.USER, channel=Channel.CHAT, text=text)
    appended = await store.append(conversation_id, event)
    return Turn(conversation_id, event.event_id, appended.seq)


async def logged(store: ConversationStore, conversation_id: str) -> list[object]:
    return [stored.event for stored in await store.read(conversation_id)]


async def test_a_typed_message_gets_a_reply_on_the_chat_channel(
        store: ConversationStore, answerer: AnswererFactory) -> None:
    await store.create("c-typed")
    turn = await typed(store, "c-typed", "Where can I see my invoices?")

    async with answerer() as chat:
        outcome = await chat.answer(turn)

    assert outcome is Outcome.ANSWERED
    reply = (await logged(store, "c-typed"))[-1]
    assert isinstance(reply, MessageEvent)
    assert (reply.role, reply.channel) == (Role.ASSISTANT, Channel.CHAT)
    assert reply.text == "Sure, I can help with that: where can I see my invoices."
    assert reply.event_id == reply_event_id(turn.event_id, 1)


async def test_the_model_is_sent_the_chat_instructions_the_history_and_every_tool(
        store: ConversationStore, answerer: AnswererFactory, model_server: ModelServer) -> None:
    await store.create("c-context")
    await typed(store, "c-context", "Hi, I have a question about my order")
    await store.append("c-context", MessageEvent(role=Role.ASSISTANT, channel=Channel.CHAT,
                                                 text="Of course, what is it?"))
    turn = await typed(store, "c-context", "When will it arrive?")

    async with answerer() as chat:
        await chat.answer(turn)

    request = model_server.chat_requests[0]
    said = [(m["role"], message_text(m)) for m in request["messages"] if m["role"] != "system"]
    assert said == [("user", "Hi, I have a question about my order"),
                    ("assistant", "Of course, what is it?"), ("user", "When will it arrive?")]
    assert "text chat" in message_text(request["messages"][0])
    offered = {tool["function"]["name"] for tool in request["tools"]}
    assert offered == {"lookup_order", "quote_price", "book_callback", "verify_identity",
                       "offer_voice_call"}


async def test_a_turn_answered_twice_writes_one_reply_and_asks_the_model_once(
        store: ConversationStore, answerer: AnswererFactory, model_server: ModelServer) -> None:
    await store.create("c-twice")
    turn = await typed(store, "c-twice", "Do you ship to Norway?")

    async with answerer() as chat:
        first = await chat.answer(turn)
        again = await chat.answer(turn)

    assert (first, again) == (Outcome.ANSWERED, Outcome.ALREADY_ANSWERED)
    replies = [e for e in await logged(store, "c-twice")
               if isinstance(e, MessageEvent) and e.role is Role.ASSISTANT]
    assert len(replies) == 1
    assert len(model_server.chat_requests) == 1


async def test_a_message_followed_by_another_is_answered_with_the_newer_one(
        store: ConversationStore, answerer: AnswererFactory, model_server: ModelServer) -> None:
    await store.create("c-two-lines")
    first = await typed(store, "c-two-lines", "Hello")
    second = await typed(store, "c-two-lines", "I need a new charger")

    async with answerer() as chat:
        outcomes = [await chat.answer(first), await chat.answer(second)]

    assert outcomes == [Outcome.SUPERSEDED, Outcome.ANSWERED]
    sent = [message_text(m) for m in model_server.chat_requests[0]["messages"]
            if m["role"] == "user"]
    assert sent == ["Hello", "I need a new charger"]


async def test_a_visitor_who_would_rather_talk_is_offered_a_voice_call(
        store: ConversationStore, answerer: AnswererFactory) -> None:
    await store.create("c-offer")
    turn = await typed(store, "c-offer", "This is a lot to type, can I talk to someone?")

    async with answerer() as chat:
        await chat.answer(turn)

    suggestion, reply = (await logged(store, "c-offer"))[-2:]
    assert isinstance(suggestion, SuggestionEvent)
    assert suggestion.suggestion.value == "switch_to_voice"
    assert suggestion.reason == "to talk it through"
    assert isinstance(reply, MessageEvent) and reply.text == OFFERED
    assert not any(isinstance(e, ToolCallEvent) for e in await logged(store, "c-offer"))


async def test_no_reply_is_written_while_a_call_is_up(
        store: ConversationStore, answerer: AnswererFactory, model_server: ModelServer) -> None:
    record = await store.create("c-in-call")
    step = calls.switch_into_call(record, Channel.VOICE, "visitor", "c-in-call")
    await store.append("c-in-call", step.event, transition=step.transition)
    turn = await typed(store, "c-in-call", "Are you still there?")

    async with answerer() as chat:
        outcome = await chat.answer(turn)

    assert outcome is Outcome.IN_CALL
    assert model_server.chat_requests == []
    last = (await logged(store, "c-in-call"))[-1]
    assert isinstance(last, MessageEvent) and last.event_id == turn.event_id


async def test_a_message_typed_after_the_call_ended_is_answered(
        store: ConversationStore, answerer: AnswererFactory) -> None:
    record = await store.create("c-after-call")
    into = calls.switch_into_call(record, Channel.VOICE, "visitor", "c-after-call")
    await store.append("c-after-call", into.event, transition=into.transition)
    joined = calls.visitor_joined(Channel.VOICE, "visitor-1", "PA_1")
    await store.append("c-after-call", joined.event, transition=joined.transition)
    left = calls.visitor_left(Channel.VOICE, "visitor-1", "PA_1")
    await store.append("c-after-call", left.event, transition=left.transition)
    assert (await store.get("c-after-call")).status is Status.CHAT
    turn = await typed(store, "c-after-call", "Thanks for the call, one more thing")

    async with answerer() as chat:
        outcome = await chat.answer(turn)

    assert outcome is Outcome.ANSWERED


async def test_a_tool_result_fetched_in_chat_is_reused_by_the_voice_agent(
        store: ConversationStore, answerer: AnswererFactory, model_server: ModelServer,
        backend: CountingBackend, text_session: TextSession) -> None:
    await store.create("c-tool", identity=CUSTOMER)
    lookup = ChatReply(tool_calls=[ToolCall("lookup_order", {"order_id": "A1234"})])
    model_server.script_chat(lookup, ChatReply("It has shipped."))
    turn = await typed(store, "c-tool", "Where is my order A1234?")
    async with answerer() as chat:
        await chat.answer(turn)
    assert backend.calls == [("lookup_order", {"order_id": "A1234"})]
    fetched = (await store.read("c-tool"))[-2].event

    record = await store.get("c-tool")
    step = calls.switch_into_call(record, Channel.VOICE, "visitor", "c-tool")
    await store.append("c-tool", step.event, transition=step.transition)
    agent, _ = await restore(store, "c-tool", DEFAULT_BUDGET)
    model_server.script_chat(ChatReply("Hello again."), lookup)
    async with text_session("c-tool") as session:
        session.userdata.caller = CUSTOMER
        await session.start(agent, capture_run=True)
        run = await session.run(user_input="Can you check A1234 once more?")

    run.expect.next_event().is_function_call(name="lookup_order")
    output = run.expect.next_event().is_function_call_output().event().item.output
    assert output == getattr(fetched, "output", None)
    assert backend.calls == [("lookup_order", {"order_id": "A1234"})]


async def test_a_model_that_fails_gets_an_apology_written_instead_of_silence(
        store: ConversationStore, answerer: AnswererFactory) -> None:
    await store.create("c-model-down")
    turn = await typed(store, "c-model-down", "Hello?")
    nowhere = f"http://127.0.0.1:{free_port()}/v1"

    async with answerer(base_url=nowhere, turn_timeout=1.0) as chat:
        outcome = await chat.answer(turn)

    assert outcome is Outcome.FAILED
    reply = (await logged(store, "c-model-down"))[-1]
    assert isinstance(reply, MessageEvent) and reply.text == APOLOGY
    assert reply.event_id == reply_event_id(turn.event_id, 1)
