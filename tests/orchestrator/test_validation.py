"""Bad input gets a 4xx naming the field at fault, never a 5xx, and writes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.orchestrator.support import AUTH, create_conversation, events


@pytest.mark.parametrize("conversation_id", ["has space", "-leading-dash", "x" * 65, "a:b",
                                             "{braces}", "semi;colon"])
async def test_an_invalid_conversation_id_in_the_path_is_refused(
        orchestrator_client: httpx.AsyncClient, conversation_id: str) -> None:
    response = await orchestrator_client.get(f"/v1/conversations/{conversation_id}",
                                             headers=AUTH)

    assert response.status_code == 422
    assert response.json()["field"] == "conversation_id"


async def test_an_invalid_conversation_id_in_the_body_is_refused(
        orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post("/v1/conversations", json={"id": "no/slashes"},
                                              headers=AUTH)

    assert response.status_code == 422
    assert response.json()["field"] == "id"


async def test_unknown_fields_are_refused(orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"role": "user", "text": "hi", "channel": "voice"}, headers=AUTH)

    assert response.status_code == 422
    assert response.json()["field"] == "channel"
    assert await events(orchestrator_client, conversation_id) == []


async def test_an_unknown_role_is_refused(orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"role": "boss", "text": "hi"}, headers=AUTH)

    assert response.status_code == 422
    assert response.json()["field"] == "role"


async def test_text_over_the_limit_is_refused(orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"role": "user", "text": "x" * 16_001}, headers=AUTH)

    assert response.status_code == 422
    assert response.json()["field"] == "text"
    assert await events(orchestrator_client, conversation_id) == []


async def test_a_naive_verification_time_is_refused(
        orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post("/v1/conversations", json={
        "identity": {"subject": "cust-42", "method": "password",
                     "verified_at": "2026-01-05T10:00:00"}}, headers=AUTH)

    assert response.status_code == 422
    assert response.json()["field"] == "identity.verified_at"


async def test_a_body_that_is_not_json_is_refused(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post(
        "/v1/conversations", content=b"{not json",
        headers={**AUTH, "Content-Type": "application/json"})

    assert response.status_code == 422


async def test_a_body_over_the_size_limit_is_refused_by_its_declared_length(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.post(
        f"/v1/conversations/{conversation_id}/messages",
        content=b'{"role": "user", "text": "' + b"x" * 70_000 + b'"}',
        headers={**AUTH, "Content-Type": "application/json"})

    assert response.status_code == 413
    assert await events(orchestrator_client, conversation_id) == []


async def test_a_streamed_body_over_the_size_limit_is_refused(
        orchestrator_client: httpx.AsyncClient) -> None:
    """A chunked upload declares no length; the limit still applies to what arrives."""
    conversation_id = await create_conversation(orchestrator_client)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"role": "user", "text": "'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"}'

    response = await orchestrator_client.post(
        f"/v1/conversations/{conversation_id}/messages", content=chunks(),
        headers={**AUTH, "Content-Type": "application/json"})

    assert response.status_code == 413
    assert await events(orchestrator_client, conversation_id) == []


async def test_an_invalid_log_position_is_refused(orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.get(f"/v1/conversations/{conversation_id}/events",
                                             params={"after": "yesterday"}, headers=AUTH)

    assert response.status_code == 422
    assert response.json()["field"] == "after"


async def test_a_page_size_over_the_limit_is_refused(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.get(f"/v1/conversations/{conversation_id}/events",
                                             params={"limit": 501}, headers=AUTH)

    assert response.status_code == 422
    assert response.json()["field"] == "limit"


async def test_an_invalid_switch_trigger_is_refused(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.post(f"/v1/conversations/{conversation_id}/voice",
                                              json={"trigger": "DROP TABLE"}, headers=AUTH)

    assert response.status_code == 422
    assert response.json()["field"] == "trigger"
    assert await events(orchestrator_client, conversation_id) == []


async def test_a_log_position_beyond_64_bits_is_refused(
        orchestrator_client: httpx.AsyncClient) -> None:
    """Regression: `after=4-62521783521976616735` matched the pattern, Redis refused the id and
    the orchestrator answered 500 (found by the schemathesis run)."""
    conversation_id = await create_conversation(orchestrator_client)

    for path in ("events", "stream"):
        response = await orchestrator_client.get(
            f"/v1/conversations/{conversation_id}/{path}",
            params={"after": "4-62521783521976616735"}, headers=AUTH)

        assert response.status_code == 422, path
        assert response.json()["field"] == "after"


async def test_a_last_event_id_beyond_64_bits_is_refused(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.get(
        f"/v1/conversations/{conversation_id}/stream",
        headers={**AUTH, "Last-Event-ID": "99999999999999999999-0"})

    assert response.status_code == 422
    assert response.json()["field"] == "Last-Event-ID"


async def test_a_well_formed_but_unknown_trigger_is_refused(
        orchestrator_client: httpx.AsyncClient) -> None:
    """Regression: any `[a-z_]` trigger was accepted and became a metrics label, so a caller
    could grow the switch counter's time series without bound."""
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.post(f"/v1/conversations/{conversation_id}/voice",
                                              json={"trigger": "made_up_1"}, headers=AUTH)

    assert response.status_code == 422
    assert response.json()["field"] == "trigger"
