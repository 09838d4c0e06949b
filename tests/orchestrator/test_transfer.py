"""Cold transfer of a phone visitor by SIP REFER: only a success is a success, whatever the
far end answered, and every outcome is returned and logged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from orchestrator.settings import Settings
from orchestrator.tokens import widget_token
from tests.conftest import OrchestratorClientFactory
from tests.orchestrator.phone_support import (
    ANSWERS,
    TRANSFER_EMPTY,
    TRANSFER_OK,
    TRANSFER_REFUSED,
    TRANSFER_REPORTED,
)
from tests.orchestrator.support import AUTH, create_conversation, events, metric_sample

pytestmark = pytest.mark.usefixtures("no_phone_number_logged")


@pytest.fixture
async def client(orchestrator_client_factory: OrchestratorClientFactory,
                 phone_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with orchestrator_client_factory(phone_settings) as client:
        yield client


async def _on_the_phone(client: httpx.AsyncClient) -> str:
    """A conversation whose visitor answered a dial-out."""
    conversation_id = await create_conversation(client)
    response = await client.post(f"/v1/conversations/{conversation_id}/dial-out",
                                 json={"phone_number": ANSWERS}, headers=AUTH)
    assert response.json()["outcome"] == "answered", response.text
    return conversation_id


async def _transfer(client: httpx.AsyncClient, conversation_id: str, to: str, *,
                    headers: dict[str, str] = AUTH) -> httpx.Response:
    return await client.post(f"/v1/conversations/{conversation_id}/transfer", json={"to": to},
                             headers=headers)


def _transfers(log: list[dict[str, Any]]) -> list[tuple[str, int | None, str | None]]:
    return [(e["outcome"], e["sip_status"], e["number_ending"]) for e in log
            if e["kind"] == "call" and e["outcome"].startswith("transfer")]


@pytest.mark.parametrize("target", [TRANSFER_OK, TRANSFER_EMPTY])
async def test_a_successful_transfer_is_returned_and_logged(client: httpx.AsyncClient,
                                                            target: str) -> None:
    """The empty response is LiveKit server v1.13.5's answer to every transfer that did not
    fail; with no error raised, it is a success."""
    conversation_id = await _on_the_phone(client)

    response = await _transfer(client, conversation_id, target)
    log = await events(client, conversation_id)

    assert response.status_code == 200, response.text
    assert response.json() == {"outcome": "transferred", "sip_status": None, "sip_reason": None}
    assert _transfers(log) == [("transferred", None, target[-2:])]


async def test_a_transfer_whose_status_is_a_failure_fails_though_no_error_was_raised(
        client: httpx.AsyncClient) -> None:
    conversation_id = await _on_the_phone(client)

    response = await _transfer(client, conversation_id, TRANSFER_REPORTED)
    log = await events(client, conversation_id)

    assert response.json() == {"outcome": "transfer_failed", "sip_status": 480,
                               "sip_reason": "Temporarily Unavailable"}
    assert _transfers(log) == [("transfer_failed", 480, "80")]


async def test_a_transfer_that_errors_fails_with_its_sip_status(
        client: httpx.AsyncClient) -> None:
    conversation_id = await _on_the_phone(client)

    response = await _transfer(client, conversation_id, TRANSFER_REFUSED)
    log = await events(client, conversation_id)

    assert response.json() == {"outcome": "transfer_failed", "sip_status": 486,
                               "sip_reason": "Busy Here"}
    assert _transfers(log) == [("transfer_failed", 486, "86")]


async def test_a_transfer_to_a_sip_uri_carries_no_number_into_the_log(
        client: httpx.AsyncClient) -> None:
    conversation_id = await _on_the_phone(client)

    response = await _transfer(client, conversation_id, "sip:support@pbx.example.com")
    log = await events(client, conversation_id)

    assert response.json()["outcome"] == "transfer_failed"
    assert _transfers(log) == [("transfer_failed", 486, None)]


async def test_transfers_are_counted_in_the_metrics(client: httpx.AsyncClient) -> None:
    conversation_id = await _on_the_phone(client)
    await _transfer(client, conversation_id, TRANSFER_REPORTED)

    exposed = (await client.get("/metrics")).text

    assert metric_sample(exposed, 'baton_transfers_total{outcome="transfer_failed"}') == 1


async def test_a_conversation_without_a_phone_visitor_cannot_be_transferred(
        client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(client)

    response = await _transfer(client, conversation_id, TRANSFER_OK)
    log = await events(client, conversation_id)

    assert response.status_code == 409
    assert response.json()["error"] == "NoPhoneVisitor"
    assert log == []


@pytest.mark.parametrize("target", [
    "sip:support@pbx.example.com;transport=tcp",
    "sip:support@pbx.example.com\r\nContact: <sip:x@evil.example>",
    "tel:+33612345678",
    "+1 900 555 0100",
    "mailto:support@example.com",
    "sip:" + "a" * 300,
])
async def test_an_unsafe_or_disallowed_target_is_422_and_nothing_happens(
        client: httpx.AsyncClient, target: str) -> None:
    conversation_id = await _on_the_phone(client)
    before = await events(client, conversation_id)

    response = await _transfer(client, conversation_id, target)

    assert response.status_code == 422
    assert response.json()["field"] == "to"
    assert await events(client, conversation_id) == before


async def test_without_credentials_a_transfer_is_401(client: httpx.AsyncClient) -> None:
    conversation_id = await _on_the_phone(client)

    response = await _transfer(client, conversation_id, TRANSFER_OK, headers={})

    assert response.status_code == 401
    assert _transfers(await events(client, conversation_id)) == []


async def test_a_widget_token_cannot_transfer_even_its_own_conversation(
        client: httpx.AsyncClient, phone_settings: Settings) -> None:
    conversation_id = await _on_the_phone(client)
    token = widget_token(phone_settings, conversation_id).token

    response = await _transfer(client, conversation_id, TRANSFER_OK,
                               headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert _transfers(await events(client, conversation_id)) == []
