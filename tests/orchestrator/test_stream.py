"""The live stream of a conversation's log as server-sent events, with resume."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from orchestrator.settings import Settings
from orchestrator.tokens import widget_token
from tests.conftest import LogRedis
from tests.orchestrator.support import (
    AUTH,
    SseReader,
    create_conversation,
    post_message,
)

pytestmark = pytest.mark.server_and_cluster

ServerFactory = Callable[..., Any]


def _texts(events: list[dict[str, str]]) -> list[str]:
    return [json.loads(event["data"])["text"] for event in events]


async def test_a_follower_sees_appended_messages_in_order(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings) -> None:
    url = await orchestrator_server(orchestrator_settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        conversation_id = await create_conversation(client)
        async with client.stream("GET", f"/v1/conversations/{conversation_id}/stream",
                                 headers=AUTH) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            reader = SseReader(response)
            for number in range(3):
                await post_message(client, conversation_id, f"message {number}")

            received = await reader.events(3)

    assert _texts(received) == ["message 0", "message 1", "message 2"]
    assert [event["event"] for event in received] == ["message"] * 3


async def test_a_reconnecting_follower_resumes_after_last_event_id_without_gaps_or_repeats(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings) -> None:
    url = await orchestrator_server(orchestrator_settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        conversation_id = await create_conversation(client)
        path = f"/v1/conversations/{conversation_id}/stream"
        for number in range(4):
            await post_message(client, conversation_id, f"message {number}")
        async with client.stream("GET", path, headers=AUTH) as response:
            first = await SseReader(response).events(2)
        # Written while the follower was away.
        await post_message(client, conversation_id, "message 4")

        async with client.stream("GET", path,
                                 headers={**AUTH, "Last-Event-ID": first[-1]["id"]}) as response:
            reader = SseReader(response)
            await post_message(client, conversation_id, "message 5")
            rest = await reader.events(4)

    assert _texts(first + rest) == [f"message {number}" for number in range(6)]


async def test_the_after_parameter_starts_the_stream_after_that_position(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings) -> None:
    url = await orchestrator_server(orchestrator_settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        conversation_id = await create_conversation(client)
        seen = await post_message(client, conversation_id, "already seen")
        await post_message(client, conversation_id, "new")

        async with client.stream("GET", f"/v1/conversations/{conversation_id}/stream",
                                 params={"after": seen["seq"]}, headers=AUTH) as response:
            received = await SseReader(response).events(1)

    assert _texts(received) == ["new"]


async def test_the_widget_reads_its_own_stream_with_a_token_in_the_query(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings) -> None:
    url = await orchestrator_server(orchestrator_settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        conversation_id = await create_conversation(client)
        await post_message(client, conversation_id, "hello widget")
        token = widget_token(orchestrator_settings, conversation_id).token

        async with client.stream("GET", f"/v1/conversations/{conversation_id}/stream",
                                 params={"token": token}) as response:
            received = await SseReader(response).events(1)

    assert _texts(received) == ["hello widget"]


async def test_an_idle_stream_sends_heartbeat_comments(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings) -> None:
    quick = orchestrator_settings.model_copy(update={"sse_heartbeat": timedelta(seconds=0.2)})
    url = await orchestrator_server(quick)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        conversation_id = await create_conversation(client)
        async with client.stream("GET", f"/v1/conversations/{conversation_id}/stream",
                                 headers=AUTH) as response:
            reader = SseReader(response)

            assert await reader.comment() == "heartbeat"
            await post_message(client, conversation_id, "after the heartbeat")
            assert _texts(await reader.events(1)) == ["after the heartbeat"]


async def test_streaming_an_unknown_conversation_is_not_found(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings) -> None:
    url = await orchestrator_server(orchestrator_settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        response = await client.get("/v1/conversations/nobody-here/stream", headers=AUTH)

    assert response.status_code == 404


async def test_the_stream_ends_when_redis_goes_away_so_the_client_reconnects(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings,
        own_redis: LogRedis) -> None:
    settings = orchestrator_settings.model_copy(update={"redis_url": own_redis.url})
    url = await orchestrator_server(settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        conversation_id = await create_conversation(client)
        await post_message(client, conversation_id, "before the outage")
        async with client.stream("GET", f"/v1/conversations/{conversation_id}/stream",
                                 headers=AUTH) as response:
            reader = SseReader(response)
            assert _texts(await reader.events(1)) == ["before the outage"]

            own_redis.stop()

            remaining = await reader.until_closed()

    assert not any(line.startswith("data:") for line in remaining)
