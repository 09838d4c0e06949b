"""The conversations API: create, read, append messages and page through the log."""

from __future__ import annotations

import httpx
import pytest

from tests.orchestrator.support import AUTH, create_conversation, events, post_message

pytestmark = pytest.mark.server_and_cluster


async def test_creating_a_conversation_returns_its_record(
        orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post("/v1/conversations", json={
        "id": "order-1234",
        "identity": {"subject": "cust-42", "method": "password",
                     "verified_at": "2026-01-05T10:00:00Z"}}, headers=AUTH)

    assert response.status_code == 201
    record = response.json()
    assert record["id"] == "order-1234"
    assert record["status"] == "chat"
    assert record["identity"]["subject"] == "cust-42"
    assert record["room"] is None


async def test_a_conversation_without_an_id_gets_one(
        orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post("/v1/conversations", json={}, headers=AUTH)

    assert response.status_code == 201
    assert response.json()["id"]


async def test_reading_a_conversation_returns_what_was_created(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.get(f"/v1/conversations/{conversation_id}",
                                             headers=AUTH)

    assert response.status_code == 200
    assert response.json()["id"] == conversation_id


async def test_creating_an_existing_conversation_is_a_conflict(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.post("/v1/conversations", json={"id": conversation_id},
                                              headers=AUTH)

    assert response.status_code == 409
    assert response.json()["error"] == "ConversationExists"


async def test_an_unknown_conversation_is_not_found(
        orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.get("/v1/conversations/nobody-here", headers=AUTH)

    assert response.status_code == 404
    assert response.json()["error"] == "ConversationNotFound"


async def test_a_message_is_appended_to_the_log(orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    appended = await post_message(orchestrator_client, conversation_id, "Where is my order?")

    assert appended["duplicate"] is False
    logged = await events(orchestrator_client, conversation_id)
    assert [(e["kind"], e["role"], e["channel"], e["text"]) for e in logged] == [
        ("message", "user", "chat", "Where is my order?")]


async def test_a_retried_message_is_stored_once_and_returns_the_original_position(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    first = await post_message(orchestrator_client, conversation_id, "hello", event_id="chat-1")

    retry = await post_message(orchestrator_client, conversation_id, "hello", event_id="chat-1")

    assert retry == {**first, "duplicate": True}
    assert len(await events(orchestrator_client, conversation_id)) == 1


async def test_a_message_to_an_unknown_conversation_is_not_found(
        orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post("/v1/conversations/nobody-here/messages",
                                              json={"role": "user", "text": "hi"}, headers=AUTH)

    assert response.status_code == 404


async def test_events_are_paged_with_a_cursor_without_gaps_or_repeats(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    for number in range(5):
        await post_message(orchestrator_client, conversation_id, f"message {number}")

    texts: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"after": after} if after else {})}
        response = await orchestrator_client.get(f"/v1/conversations/{conversation_id}/events",
                                                 params=params, headers=AUTH)
        page = response.json()
        texts += [item["event"]["text"] for item in page["events"]]
        pages += 1
        after = page["next"]
        if after is None:
            break

    assert texts == [f"message {number}" for number in range(5)]
    assert pages == 3


async def test_a_widget_token_is_issued_for_an_existing_conversation(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.post(
        f"/v1/conversations/{conversation_id}/widget-token", headers=AUTH)

    assert response.status_code == 201
    assert response.json()["token"]


async def test_no_widget_token_is_issued_for_an_unknown_conversation(
        orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post("/v1/conversations/nobody-here/widget-token",
                                              headers=AUTH)

    assert response.status_code == 404
