"""A visitor's posted message asks Baton's chat agent for a reply, unless the site's own bot
answers (BATON_CHAT_AGENT off)."""

from __future__ import annotations

import httpx
import redis.asyncio as aioredis

from conversation.chatturns import KEY, Turn
from orchestrator.settings import Settings
from tests.conftest import OrchestratorClientFactory
from tests.orchestrator.support import create_conversation, post_message


async def queued(redis: aioredis.Redis) -> list[Turn]:
    return [Turn.of(fields) for _id, fields in await redis.xrange(KEY)]


async def test_a_visitor_message_asks_the_chat_agent_for_a_reply(
        orchestrator_client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    posted = await post_message(orchestrator_client, conversation_id, "Where is my parcel?")

    assert await queued(redis) == [Turn(conversation_id, posted["event_id"], posted["seq"])]


async def test_an_agent_message_asks_for_no_reply(
        orchestrator_client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    await post_message(orchestrator_client, conversation_id, "It left the depot today.",
                       role="assistant")

    assert await queued(redis) == []


async def test_a_retried_post_asks_again_for_the_same_turn(
        orchestrator_client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    """Its first request may have failed after the message was written; the chat agent
    answers a turn once however often it is asked."""
    conversation_id = await create_conversation(orchestrator_client)

    first = await post_message(orchestrator_client, conversation_id, "Hi", event_id="typed-1")
    again = await post_message(orchestrator_client, conversation_id, "Hi", event_id="typed-1")

    assert again["duplicate"] and again["seq"] == first["seq"]
    assert [turn.seq for turn in await queued(redis)] == [first["seq"], first["seq"]]


async def test_with_the_chat_agent_off_nothing_is_queued(
        orchestrator_client_factory: OrchestratorClientFactory,
        orchestrator_settings: Settings, redis: aioredis.Redis) -> None:
    own_bot = orchestrator_settings.model_copy(update={"chat_agent": False})
    async with orchestrator_client_factory(own_bot) as client:
        conversation_id = await create_conversation(client)

        await post_message(client, conversation_id, "Where is my parcel?")

    assert await queued(redis) == []
