"""Fixtures of the worker tests: a store, seeded conversations and text-mode sessions."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from livekit.agents import AgentSession
from livekit.plugins import openai

from conversation import ConversationStore, Event
from tests.modelserver import ModelServer
from worker.tools import CallData, ExampleBackend

CHAT_START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class CountingBackend(ExampleBackend):
    """The example backend, counting the calls that reach it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def lookup_order(self, order_id: str) -> dict[str, Any]:
        self.calls.append(("lookup_order", {"order_id": order_id}))
        return await super().lookup_order(order_id)

    async def quote_price(self, plan: str, months: int) -> dict[str, Any]:
        self.calls.append(("quote_price", {"plan": plan, "months": months}))
        return await super().quote_price(plan, months)


@pytest.fixture
def store(redis: aioredis.Redis) -> ConversationStore:
    return ConversationStore(redis)


@pytest.fixture
def backend() -> CountingBackend:
    return CountingBackend()


Seed = Callable[[str, Sequence[Event]], Any]


@pytest.fixture
def seed(store: ConversationStore) -> Callable[[str, Sequence[Event]], Any]:
    """`await seed(conversation_id, events)`: create the conversation and append the events,
    a minute apart from CHAT_START so their order is their time order."""

    async def create(conversation_id: str, events: Sequence[Event]) -> None:
        await store.create(conversation_id)
        for index, event in enumerate(events):
            at = CHAT_START + timedelta(minutes=index)
            await store.append(conversation_id, event.model_copy(update={"at": at}))

    return create


TextSession = Callable[[str], contextlib.AbstractAsyncContextManager[AgentSession[CallData]]]


@pytest.fixture
def text_session(model_server: ModelServer, store: ConversationStore,
                 backend: CountingBackend) -> TextSession:
    """`async with text_session(conversation_id) as session:` an AgentSession in text mode
    whose LLM is the real OpenAI plugin talking to the scripted model server."""

    @contextlib.asynccontextmanager
    async def open_session(conversation_id: str) -> AsyncIterator[AgentSession[CallData]]:
        async with openai.LLM(base_url=model_server.url, api_key="test") as model, \
                AgentSession[CallData](llm=model, userdata=CallData(
                    conversation_id, store, backend)) as session:
            yield session

    return open_session
