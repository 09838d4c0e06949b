"""The chat agent's consumer group on real Redis: every turn answered once, by whichever
process is alive."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from livekit.plugins import openai

from conversation import Channel, ConversationStore, MessageEvent, Role
from conversation.chatturns import GROUP, KEY, Turn, request_reply
from conversation.history import DEFAULT_BUDGET
from modelserver import ChatReply, ModelServer, ToolCall
from tests.worker.conftest import CountingBackend
from worker.chat.answer import Answerer
from worker.chat.consumer import TurnConsumer
from worker.chat.settings import ChatSettings

WAIT = 30.0

Running = Callable[..., contextlib.AbstractAsyncContextManager[TurnConsumer]]


@pytest.fixture
def running(redis: aioredis.Redis, store: ConversationStore, model_server: ModelServer,
            backend: CountingBackend) -> Running:
    """`async with running(**settings) as consumer:` a consumer taking turns until the block
    ends."""

    @contextlib.asynccontextmanager
    async def start(*, backend: CountingBackend = backend,
                    **settings: Any) -> AsyncIterator[TurnConsumer]:
        async with openai.LLM(base_url=model_server.url, api_key="test") as model:
            consumer = TurnConsumer(
                redis, Answerer(store, model, backend, budget=DEFAULT_BUDGET),
                # A short takeover time also shortens each blocking read, so stopping is quick.
                ChatSettings(openai_api_key="test",
                             **{"consumer": "alive", "claim_after": 0.6, **settings}))
            task = asyncio.create_task(consumer.run())
            try:
                yield consumer
            finally:
                consumer.stop()
                await task

    return start


async def typed(store: ConversationStore, conversation_id: str, text: str) -> Turn:
    event = MessageEvent(role=Role.USER, channel=Channel.CHAT, text=text)
    appended = await store.append(conversation_id, event)
    return Turn(conversation_id, event.event_id, appended.seq)


async def replies(store: ConversationStore, conversation_id: str) -> list[MessageEvent]:
    return [s.event for s in await store.read(conversation_id)
            if isinstance(s.event, MessageEvent) and s.event.role is Role.ASSISTANT]


async def all_acknowledged(redis: aioredis.Redis, entries: int) -> None:
    """Wait until the group has read `entries` turns and none is pending. Redis announces
    neither, so this looks every few milliseconds."""
    async with asyncio.timeout(WAIT):
        while True:
            groups = [g for g in await redis.xinfo_groups(KEY)
                      if g["name"] in (GROUP, GROUP.encode())]
            if groups and groups[0]["entries-read"] == entries and groups[0]["pending"] == 0:
                return
            await asyncio.sleep(0.02)


async def test_a_turn_requested_twice_is_answered_once(
        redis: aioredis.Redis, store: ConversationStore, running: Running,
        model_server: ModelServer) -> None:
    """A post retried after its reply was lost asks for the same turn again."""
    await store.create("c-retried")
    turn = await typed(store, "c-retried", "Do you have this in blue?")
    await request_reply(redis, turn)
    await request_reply(redis, turn)

    async with running():
        await all_acknowledged(redis, 2)

    assert len(await replies(store, "c-retried")) == 1
    assert len(model_server.chat_requests) == 1


async def test_a_turn_taken_by_a_process_that_died_is_answered_by_another(
        redis: aioredis.Redis, store: ConversationStore, running: Running) -> None:
    await store.create("c-orphan")
    turn = await typed(store, "c-orphan", "Is anyone there?")
    consumer = TurnConsumer(redis, Answerer(store, openai.LLM(api_key="unused"),
                                            CountingBackend()),
                            ChatSettings(openai_api_key="test", consumer="died"))
    await consumer.ensure_group()
    await request_reply(redis, turn)
    # It read the turn, and died before answering it.
    taken = await redis.xreadgroup(GROUP, "died", {KEY: ">"}, count=1)
    assert taken

    async with running(claim_after=0.3):
        await all_acknowledged(redis, 1)

    assert len(await replies(store, "c-orphan")) == 1


class GatedBackend(CountingBackend):
    """Order lookups wait until the test opens the gate: a turn as slow as the test wants."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def lookup_order(self, order_id: str, *, caller: Any) -> dict[str, Any]:
        self.entered.set()
        await self.gate.wait()
        return {"order_id": order_id, "status": "shipped"}


async def test_a_slow_turn_is_not_taken_over_while_its_process_is_alive(
        redis: aioredis.Redis, store: ConversationStore, running: Running,
        model_server: ModelServer) -> None:
    """A turn that runs longer than the takeover time is renewed, so it is answered once."""
    await store.create("c-slow")
    turn = await typed(store, "c-slow", "Where is order A1234?")
    model_server.script_chat(ChatReply(tool_calls=[ToolCall("lookup_order",
                                                            {"order_id": "A1234"})]))
    slow = GatedBackend()

    async with running(claim_after=1.0, consumer="first", backend=slow):
        await request_reply(redis, turn)
        await asyncio.wait_for(slow.entered.wait(), WAIT)
        async with running(claim_after=1.0, consumer="second"):
            # Time is what this test is about: several takeover periods pass mid-turn.
            await asyncio.sleep(3.0)
            owners = await redis.xpending_range(KEY, GROUP, min="-", max="+", count=10)
        slow.gate.set()
        await all_acknowledged(redis, 1)

    assert [(o["consumer"], o["times_delivered"]) for o in owners] == [(b"first", 1)]
    assert len(await replies(store, "c-slow")) == 1


async def test_a_malformed_turn_is_dropped_without_stopping_the_others(
        redis: aioredis.Redis, store: ConversationStore, running: Running) -> None:
    await store.create("c-after-junk")
    await redis.xadd(KEY, {"conversation_id": "no such thing!"})
    turn = await typed(store, "c-after-junk", "Hello there")
    await request_reply(redis, turn)

    async with running():
        await all_acknowledged(redis, 2)

    assert len(await replies(store, "c-after-junk")) == 1


async def test_a_turn_older_than_the_maximum_age_is_dropped_unanswered(
        redis: aioredis.Redis, store: ConversationStore, running: Running) -> None:
    await store.create("c-stale")
    turn = await typed(store, "c-stale", "Hello from yesterday")
    await redis.xadd(KEY, turn.fields(), id="1000-0")

    async with running():
        await all_acknowledged(redis, 1)

    assert await replies(store, "c-stale") == []
