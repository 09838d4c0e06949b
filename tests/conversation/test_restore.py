"""Restoring a conversation for the model from its newest end, however long the log."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis
from livekit.agents import llm

from conversation import (
    Channel,
    ConversationNotFound,
    ConversationStore,
    MessageEvent,
    Role,
    ToolCallEvent,
    ToolResultEvent,
)
from conversation.chatctx import to_chat_context
from conversation.history import HistoryBudget
from conversation.restore import load_chat_context


@pytest.fixture
def store(redis: aioredis.Redis) -> ConversationStore:
    return ConversationStore(redis)


async def say(store: ConversationStore, n: int) -> None:
    role = Role.USER if n % 2 == 0 else Role.ASSISTANT
    await store.append("c1", MessageEvent(event_id=f"m{n}", role=role, channel=Channel.CHAT,
                                          text=f"turn number {n}"))


async def test_a_short_log_is_restored_whole(store: ConversationStore):
    await store.create("c1")
    for n in range(5):
        await say(store, n)

    ctx = await load_chat_context(store, "c1")

    assert [item.id for item in ctx.items] == [f"m{n}" for n in range(5)]


async def test_a_long_log_keeps_the_same_newest_items_as_a_full_read(store: ConversationStore):
    await store.create("c1")
    for n in range(300):
        await say(store, n)
    budget = HistoryBudget(max_items=20)

    partial = await load_chat_context(store, "c1", budget=budget)
    full = to_chat_context(await store.read("c1"), budget=budget)

    assert [item.id for item in partial.items[1:]] == [item.id for item in full.items[1:]]


async def test_the_summary_of_a_long_log_quotes_its_start_and_counts_the_rest(
        store: ConversationStore):
    await store.create("c1")
    for n in range(300):
        await say(store, n)

    ctx = await load_chat_context(store, "c1", budget=HistoryBudget(max_items=20))

    summary = ctx.items[0]
    assert isinstance(summary, llm.ChatMessage) and summary.role == "system"
    text = summary.text_content or ""
    assert "280 earlier events" in text
    assert "turn number 0" in text and "turn number 279" in text
    assert "turn number 150" not in text


async def test_a_tool_round_trip_at_the_edge_of_what_was_read_stays_whole(
        store: ConversationStore):
    await store.create("c1")
    for n in range(50):
        await say(store, n)
    await store.append("c1", ToolCallEvent(call_id="k", name="lookup_order", channel=Channel.CHAT,
                                           arguments=json.dumps({"order_id": "A1"})))
    await store.append("c1", ToolResultEvent(call_id="k", name="lookup_order", output="shipped"))
    await say(store, 99)

    ctx = await load_chat_context(store, "c1", budget=HistoryBudget(max_items=2))

    kept = ctx.items[1:]
    assert [type(item) for item in kept] == [llm.ChatMessage]


async def test_restoring_an_unknown_conversation_says_so(store: ConversationStore):
    with pytest.raises(ConversationNotFound):
        await load_chat_context(store, "ghost")
