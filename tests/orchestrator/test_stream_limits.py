"""Live streams are bounded per credential and per replica, hold their own Redis connections,
and end when their token expires or their conversation is gone."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from conversation.redisclient import RedisClient
from orchestrator.settings import Settings
from orchestrator.tokens import widget_token
from tests.orchestrator.support import (
    AUTH,
    WAIT,
    SseReader,
    create_conversation,
    metric_sample,
    post_message,
)

ServerFactory = Callable[..., Any]
MANY = httpx.Limits(max_connections=400, max_keepalive_connections=20)


def _stream_path(conversation_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/stream"


async def _open(stack: contextlib.AsyncExitStack, client: httpx.AsyncClient,
                conversation_id: str, **request: Any) -> httpx.Response:
    """A stream kept open until the stack closes; its status is known once this returns."""
    return await stack.enter_async_context(
        client.stream("GET", _stream_path(conversation_id), **request))


async def _status(client: httpx.AsyncClient, conversation_id: str,
                  **request: Any) -> tuple[int, str | None, dict[str, Any]]:
    """Status, Retry-After and body of an attempt to open a stream that is expected to fail."""
    async with client.stream("GET", _stream_path(conversation_id), **request) as response:
        if response.status_code == 200:
            return 200, None, {}
        body = json.loads(await response.aread())
        return response.status_code, response.headers.get("Retry-After"), body


async def _open_streams(client: httpx.AsyncClient) -> float:
    return metric_sample((await client.get("/metrics")).text, "baton_sse_streams")


async def test_a_flood_of_streams_from_one_widget_token_is_refused_and_requests_still_work(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings) -> None:
    """Regression: every stream held a pooled Redis connection and nothing bounded them, so
    EventSources opened with one widget token exhausted the pool and every route, webhook and
    /readyz answered 503."""
    url = await orchestrator_server(orchestrator_settings)
    bound = orchestrator_settings.sse_streams_per_token
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=MANY) as client, \
            contextlib.AsyncExitStack() as stack:
        conversation_id = await create_conversation(client)
        token = {"token": widget_token(orchestrator_settings, conversation_id).token}
        opened = [await _open(stack, client, conversation_id, params=token)
                  for _ in range(bound)]

        flood = await asyncio.gather(*(_status(client, conversation_id, params=token)
                                       for _ in range(150)))
        appended = await post_message(client, conversation_id, "still served")
        ready = await client.get("/readyz")
        received = [await SseReader(response).events(1) for response in opened]

    assert [response.status_code for response in opened] == [200] * bound
    assert {(status, retry, body["error"]) for status, retry, body in flood} == {
        (429, "1", "TooManyStreams")}
    assert appended["duplicate"] is False
    assert ready.status_code == 200
    assert [json.loads(events[0]["data"])["text"] for events in received] == [
        "still served"] * bound


async def test_streams_beyond_the_replicas_bound_are_refused(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings) -> None:
    settings = orchestrator_settings.model_copy(update={"sse_streams_per_replica": 3})
    url = await orchestrator_server(settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client, \
            contextlib.AsyncExitStack() as stack:
        conversations = [await create_conversation(client) for _ in range(4)]
        tokens = [{"token": widget_token(settings, cid).token} for cid in conversations]
        opened = [await _open(stack, client, cid, params=token)
                  for cid, token in zip(conversations[:3], tokens[:3], strict=True)]

        refused = await _status(client, conversations[3], params=tokens[3])

    assert [response.status_code for response in opened] == [200] * 3
    assert refused[:2] == (429, "1")
    assert refused[2]["error"] == "TooManyStreams"


async def test_streams_beyond_an_api_keys_bound_are_refused(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings) -> None:
    settings = orchestrator_settings.model_copy(update={"sse_streams_per_api_key": 2})
    url = await orchestrator_server(settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client, \
            contextlib.AsyncExitStack() as stack:
        conversation_id = await create_conversation(client)
        opened = [await _open(stack, client, conversation_id, headers=AUTH) for _ in range(2)]

        refused = await _status(client, conversation_id, headers=AUTH)

    assert [response.status_code for response in opened] == [200] * 2
    assert refused[:2] == (429, "1")


@pytest.mark.server_and_cluster
async def test_streams_up_to_the_replicas_bound_leave_requests_their_redis_connections(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings) -> None:
    """Regression: blocking reads took connections from the pool requests use (100), so the
    101st stream, and every request after it, failed with 503."""
    settings = orchestrator_settings.model_copy(
        update={"sse_streams_per_replica": 120, "sse_streams_per_api_key": 120})
    url = await orchestrator_server(settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=MANY) as client, \
            contextlib.AsyncExitStack() as stack:
        conversation_id = await create_conversation(client)
        await post_message(client, conversation_id, "before")
        opened = [await _open(stack, client, conversation_id, headers=AUTH) for _ in range(120)]
        readers = [SseReader(response) for response in opened]
        # A stream that delivered the first event waits in its blocking read for the next.
        await asyncio.gather(*(reader.events(1) for reader in readers))

        appended = await post_message(client, conversation_id, "still served")
        ready = await client.get("/readyz")
        received = await asyncio.gather(*(reader.events(1) for reader in readers))

    assert [response.status_code for response in opened] == [200] * 120
    assert appended["duplicate"] is False
    assert ready.status_code == 200
    assert all(json.loads(events[0]["data"])["text"] == "still served" for events in received)


async def test_a_stream_ends_when_its_widget_token_expires(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings) -> None:
    """Regression: a stream outlived its widget token for as long as the client kept it open."""
    url = await orchestrator_server(orchestrator_settings)
    short = orchestrator_settings.model_copy(update={"widget_token_ttl": timedelta(seconds=3)})
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        conversation_id = await create_conversation(client)
        token = widget_token(short, conversation_id).token
        async with client.stream("GET", _stream_path(conversation_id),
                                 params={"token": token}) as response:
            remaining = await SseReader(response).until_closed()

    assert "event: end" in remaining
    assert remaining[remaining.index("event: end") + 1] == 'data: {"reason": "token_expired"}'


@pytest.mark.server_and_cluster
async def test_a_stream_ends_when_its_conversation_is_gone(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings,
        redis: RedisClient) -> None:
    """Regression: a stream of an expired or deleted conversation stayed open forever."""
    quick = orchestrator_settings.model_copy(update={"sse_heartbeat": timedelta(seconds=0.2)})
    url = await orchestrator_server(quick)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        conversation_id = await create_conversation(client)
        async with client.stream("GET", _stream_path(conversation_id),
                                 headers=AUTH) as response:
            reader = SseReader(response)
            assert await reader.comment() == "heartbeat"
            # What the record's retention does when it runs out.
            await redis.delete(*[key async for key in redis.scan_iter(
                match=f"conv:{{{conversation_id}}}*")])

            remaining = await reader.until_closed()

    assert remaining[remaining.index("event: end") + 1] == 'data: {"reason": "conversation_gone"}'


async def test_a_slot_is_freed_when_its_client_disconnects(
        orchestrator_server: ServerFactory, orchestrator_settings: Settings) -> None:
    settings = orchestrator_settings.model_copy(update={"sse_streams_per_token": 1})
    url = await orchestrator_server(settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        conversation_id = await create_conversation(client)
        token = {"token": widget_token(settings, conversation_id).token}
        async with client.stream("GET", _stream_path(conversation_id), params=token) as first:
            assert first.status_code == 200
            assert (await _status(client, conversation_id, params=token))[0] == 429
            assert await _open_streams(client) == 1
        # The server learns of the disconnect from its socket, after the client has moved on,
        # and nothing outside the server can await that: watch its count instead.
        async with asyncio.timeout(WAIT):
            while await _open_streams(client) != 0:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

        async with client.stream("GET", _stream_path(conversation_id), params=token) as again:
            assert again.status_code == 200
