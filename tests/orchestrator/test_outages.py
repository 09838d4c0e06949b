"""Redis or LiveKit down: 503 naming which, and the log exactly as it was."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from deploy.processes import RedisClusterNodes, free_port
from orchestrator.settings import Settings
from tests.conftest import LogRedis, OrchestratorClientFactory
from tests.orchestrator.support import (
    AUTH,
    WAIT,
    create_conversation,
    events,
    metric_sample,
    post_message,
)


@pytest.mark.server_and_cluster
async def test_redis_down_gives_503_for_every_write_and_loses_nothing(
        orchestrator_client_factory: OrchestratorClientFactory,
        orchestrator_settings: Settings, own_redis: LogRedis) -> None:
    settings = orchestrator_settings.model_copy(update={"redis_url": own_redis.url})
    async with orchestrator_client_factory(settings) as client:
        conversation_id = await create_conversation(client)
        await post_message(client, conversation_id, "before the outage")
        own_redis.stop()

        attempts = [
            await client.post(f"/v1/conversations/{conversation_id}/messages",
                              json={"role": "user", "text": "during"}, headers=AUTH),
            await client.post(f"/v1/conversations/{conversation_id}/voice", headers=AUTH),
            await client.post("/v1/conversations", json={}, headers=AUTH),
            await client.get(f"/v1/conversations/{conversation_id}/events", headers=AUTH),
        ]

        assert [r.status_code for r in attempts] == [503] * 4
        assert {r.json()["message"] for r in attempts} == {"Redis unavailable"}
        own_redis.start()
        assert [e["text"] for e in await events(client, conversation_id)] == ["before the outage"]
        record = (await client.get(f"/v1/conversations/{conversation_id}", headers=AUTH)).json()
        assert record["status"] == "chat"


@pytest.mark.server_and_cluster
async def test_readiness_fails_and_names_redis_when_it_is_down(
        orchestrator_client_factory: OrchestratorClientFactory,
        orchestrator_settings: Settings, own_redis: LogRedis) -> None:
    settings = orchestrator_settings.model_copy(update={"redis_url": own_redis.url})
    async with orchestrator_client_factory(settings) as client:
        own_redis.stop()

        response = await client.get("/readyz")
        scraped = (await client.get("/metrics")).text

    assert response.status_code == 503
    assert response.json() == {"ready": False, "redis": "down", "livekit": "ok",
                               "message": "Redis unavailable"}
    assert metric_sample(scraped, 'baton_dependency_up{dependency="redis"}') == 0


@pytest.mark.parametrize("redis_kind", ["cluster"], indirect=True)
async def test_readiness_fails_when_the_cluster_has_lost_a_primary(
        orchestrator_client_factory: OrchestratorClientFactory,
        orchestrator_settings: Settings, own_redis: LogRedis) -> None:
    """Regression: readiness asked one node for PING, which a cluster without one of its
    primaries still answers while it refuses every key."""
    assert isinstance(own_redis, RedisClusterNodes)
    settings = orchestrator_settings.model_copy(update={"redis_url": own_redis.url})
    async with orchestrator_client_factory(settings) as client:
        assert (await client.get("/readyz")).status_code == 200
        own_redis.nodes[-1].stop()

        # The other nodes declare the cluster down after the node timeout.
        async with asyncio.timeout(WAIT):
            while (response := await client.get("/readyz")).status_code == 200:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        write = await client.post("/v1/conversations", json={}, headers=AUTH)

    assert response.status_code == 503 and response.json()["redis"] == "down"
    assert (write.status_code, write.json()["message"]) == (503, "Redis unavailable")


async def test_a_replica_stays_ready_when_livekit_is_down_and_reports_it(
        orchestrator_client_factory: OrchestratorClientFactory,
        orchestrator_settings: Settings) -> None:
    """Regression: /readyz failed while LiveKit was down, so a LiveKit outage took chat and
    live streams out of service on every replica."""
    settings = orchestrator_settings.model_copy(
        update={"livekit_url": f"ws://127.0.0.1:{free_port()}"})
    async with orchestrator_client_factory(settings) as client:
        response = await client.get("/readyz")
        scraped = (await client.get("/metrics")).text

    assert response.status_code == 200
    assert response.json() == {"ready": True, "redis": "ok", "livekit": "down",
                               "message": "LiveKit unavailable"}
    assert metric_sample(scraped, 'baton_dependency_up{dependency="livekit"}') == 0
    assert metric_sample(scraped, 'baton_dependency_up{dependency="redis"}') == 1


async def test_readiness_with_both_up(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["ready"] is True


async def test_livekit_refusing_the_orchestrator_key_is_a_502_not_a_retryable_503(
        orchestrator_client_factory: OrchestratorClientFactory,
        orchestrator_settings: Settings) -> None:
    misconfigured = orchestrator_settings.model_copy(
        update={"livekit_api_secret": SecretStr("not-the-devserver-secret-0123456789")})
    async with orchestrator_client_factory(misconfigured) as client:
        conversation_id = await create_conversation(client)

        response = await client.post(f"/v1/conversations/{conversation_id}/voice", headers=AUTH)

        assert response.status_code == 502
        assert await events(client, conversation_id) == []
