"""The shared tools: results reused only while fresh, actions always done, and every call made
for the conversation's verified customer, who sees only their own orders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from livekit.agents import llm

from conversation import ConversationStore, HandoffTrigger, VerifiedIdentity
from conversation.toolcache import cache_field
from modelserver import ChatReply, ModelServer, ToolCall
from tests.worker.conftest import CountingBackend, Seed, TextSession
from worker.agent import BatonAgent, OpeningKind, opening_for

CUSTOMER = VerifiedIdentity(subject="demo-customer-1", method="password",
                            verified_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC))


def fresh_agent() -> BatonAgent:
    return BatonAgent(chat_ctx=llm.ChatContext(), opening=opening_for(OpeningKind.GREET))


async def _outputs(text_session: TextSession, conversation_id: str, model_server: ModelServer,
                   *calls: ToolCall, caller: VerifiedIdentity | None = CUSTOMER) -> list[str]:
    """After the greeting, one turn per tool call, each asking for the tool once; the tools'
    outputs."""
    model_server.script_chat(ChatReply("Hello."))
    for call in calls:
        model_server.script_chat(ChatReply(tool_calls=[call]), ChatReply("Done."))
    outputs = []
    async with text_session(conversation_id, caller=caller) as session:
        await session.start(fresh_agent(), capture_run=True)
        for _ in calls:
            run = await session.run(user_input="please")
            outputs.append(run.expect.contains_function_call_output().event().item.output)
    return outputs


async def test_a_stale_cached_result_is_fetched_again(
        seed: Seed, store: ConversationStore, redis: aioredis.Redis, text_session: TextSession,
        model_server: ModelServer, backend: CountingBackend) -> None:
    """Bug: the tool cache never expired, so an order status fetched at the start of a long
    conversation was repeated as current hours later."""
    await seed("c-stale", [])
    await store.cache_tool_result("c-stale", "lookup_order", {"order_id": "A1234"},
                                  json.dumps({"status": "processing"}))
    field = cache_field("lookup_order", {"order_id": "A1234"})
    entry = json.loads(await redis.hget("conv:{c-stale}:tools", field))
    entry["at"] = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    await redis.hset("conv:{c-stale}:tools", field, json.dumps(entry))

    [output] = await _outputs(text_session, "c-stale", model_server,
                              ToolCall("lookup_order", {"order_id": "A1234"}))

    assert backend.calls == [("lookup_order", {"order_id": "A1234"})]
    assert json.loads(output)["order_id"] == "A1234"


async def test_an_action_asked_twice_with_the_same_arguments_is_done_twice(
        seed: Seed, text_session: TextSession, model_server: ModelServer,
        backend: CountingBackend) -> None:
    """Bug: `book_callback` was cached like a lookup, so the same request could never book
    again."""
    await seed("c-book", [])
    book = ToolCall("book_callback", {"when": "tomorrow at 10"})

    outputs = await _outputs(text_session, "c-book", model_server, book, book)

    assert [name for name, _ in backend.calls] == ["book_callback", "book_callback"]
    references = {json.loads(output)["reference"] for output in outputs}
    assert len(references) == 2


async def test_the_backend_is_asked_for_the_conversations_verified_customer(
        seed: Seed, text_session: TextSession, model_server: ModelServer,
        backend: CountingBackend) -> None:
    await seed("c-owner", [])

    [output] = await _outputs(text_session, "c-owner", model_server,
                              ToolCall("lookup_order", {"order_id": "A1234"}))

    assert backend.callers == [CUSTOMER]
    assert json.loads(output)["status"] in ("processing", "shipped", "delivered")


async def test_another_customers_order_is_not_shown(
        seed: Seed, text_session: TextSession, model_server: ModelServer) -> None:
    """Bug: `lookup_order` answered for any order id, whoever asked."""
    await seed("c-other", [])

    [output] = await _outputs(text_session, "c-other", model_server,
                              ToolCall("lookup_order", {"order_id": "B2001"}))

    assert "no order B2001 on this customer's account" in output
    assert "status" not in output


async def test_an_unverified_visitor_is_asked_to_sign_in_before_an_order_lookup(
        seed: Seed, text_session: TextSession, model_server: ModelServer,
        backend: CountingBackend) -> None:
    await seed("c-anonymous", [])

    [output] = await _outputs(text_session, "c-anonymous", model_server,
                              ToolCall("lookup_order", {"order_id": "A1234"}), caller=None)

    assert "sign in" in output


class Requests:
    """Records the handoffs asked for: the transfer's own interface, as the tool sees it."""

    def __init__(self) -> None:
        self.asked: list[tuple[HandoffTrigger, str]] = []

    def request(self, trigger: HandoffTrigger, reason: str) -> bool:
        self.asked.append((trigger, reason))
        return True


async def test_the_agent_hands_the_call_to_a_person_with_its_tool_and_says_nothing_itself(
        seed: Seed, text_session: TextSession, model_server: ModelServer) -> None:
    await seed("c-transfer", [])
    requests = Requests()
    model_server.script_chat(ChatReply("Hello."), ChatReply(tool_calls=[
        ToolCall("transfer_to_human", {"reason": "refund over the limit"})]))

    async with text_session("c-transfer", handoff=requests) as session:
        await session.start(fresh_agent(), capture_run=True)
        run = await session.run(user_input="I want a refund of 900 euros")

    assert requests.asked == [(HandoffTrigger.TOOL, "refund over the limit")]
    run.expect.contains_function_call(name="transfer_to_human")
    assert len(model_server.chat_requests) == 2


async def test_a_verified_visitor_is_told_they_need_not_verify_again(
        seed: Seed, text_session: TextSession, model_server: ModelServer) -> None:
    await seed("c-verified", [])
    model_server.script_chat(ChatReply("Hello."),
                             ChatReply(tool_calls=[ToolCall("verify_identity", {})]),
                             ChatReply("You are verified already."))

    async with text_session("c-verified", caller=CUSTOMER) as session:
        await session.start(fresh_agent(), capture_run=True)
        run = await session.run(user_input="Do I need to verify again?")

    output = run.expect.contains_function_call_output().event().item.output
    assert "already verified" in output and "do not ask them to verify again" in output
