"""A prefetched reply knows when its request is on its way, through the worker's model client."""

from __future__ import annotations

import asyncio

import pytest
from livekit.agents import llm
from livekit.plugins import openai

from modelserver import ModelServer
from worker.models import model_client
from worker.prefetch import PrefetchedReply

WAIT = 30.0


def hello() -> llm.ChatContext:
    chat_ctx = llm.ChatContext()
    chat_ctx.add_message(role="user", content="Hello")
    return chat_ctx


async def test_the_worker_model_client_tells_a_prefetch_its_request_is_on_its_way(
        model_server: ModelServer) -> None:
    client = model_client("test", model_server.url)
    async with openai.LLM(client=client) as model:
        reply = PrefetchedReply(model, hello(), [])
        await asyncio.wait_for(reply.on_its_way(), WAIT)
        await asyncio.wait_for(model_server.wait_for_requests("/chat/completions"), WAIT)
        await reply.aclose()


async def test_only_the_prefetch_own_request_announces_it(model_server: ModelServer) -> None:
    async with openai.LLM(base_url=model_server.url, api_key="test") as without_the_hook:
        reply = PrefetchedReply(without_the_hook, hello(), [])
        await model_server.wait_for_requests("/chat/completions")
        await model_client("test", model_server.url).models.list()

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply.on_its_way(), 0.2)
        await reply.aclose()
