"""Every route refuses callers without the right credentials, and refused writes store nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from orchestrator.settings import Settings
from orchestrator.tokens import widget_token
from tests.conftest import ORCHESTRATOR_API_KEY
from tests.orchestrator.support import AUTH, create_conversation, events

# (method, path template, JSON body) of every route that needs an API key.
API_KEY_ROUTES = [
    ("POST", "/v1/conversations", {"id": "someone-else"}),
    ("GET", "/v1/conversations/{id}", None),
    ("POST", "/v1/conversations/{id}/widget-token", None),
    ("POST", "/v1/conversations/{id}/identity",
     {"subject": "x", "method": "otp", "verified_at": "2026-01-01T00:00:00+00:00"}),
    ("POST", "/v1/conversations/{id}/resolution", {"resolved": True}),
    ("POST", "/v1/conversations/{id}/csat", {"score": 5}),
]
# Routes the visitor's widget calls with its token for its own conversation (header only).
WIDGET_ROUTES = [
    ("POST", "/v1/conversations/{id}/messages", {"role": "user", "text": "hi"}),
    ("GET", "/v1/conversations/{id}/events", None),
    ("POST", "/v1/conversations/{id}/voice", None),
]
STREAM = "/v1/conversations/{id}/stream"
HANDOFF_REQUEST = ("POST", "/v1/conversations/{id}/handoffs", {"reason": "x"})
ALL_ROUTES = [*API_KEY_ROUTES, *WIDGET_ROUTES, ("GET", STREAM, None), HANDOFF_REQUEST]


def _ids(routes: list[tuple[str, str, object]]) -> list[str]:
    return [f"{method} {path}" for method, path, _ in routes]


async def _call(client: httpx.AsyncClient, route: tuple[str, str, object], conversation_id: str,
                headers: dict[str, str], **params: str) -> httpx.Response:
    method, path, body = route
    return await client.request(method, path.format(id=conversation_id), json=body,
                                headers=headers, params=params)


@pytest.mark.parametrize("route", ALL_ROUTES, ids=_ids(ALL_ROUTES))
async def test_a_request_without_credentials_is_unauthorized(
        orchestrator_client: httpx.AsyncClient, route: tuple[str, str, object]) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await _call(orchestrator_client, route, conversation_id, {})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await events(orchestrator_client, conversation_id) == []


@pytest.mark.parametrize("route", ALL_ROUTES, ids=_ids(ALL_ROUTES))
async def test_a_request_with_a_wrong_api_key_is_unauthorized(
        orchestrator_client: httpx.AsyncClient, route: tuple[str, str, object]) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    wrong = {"Authorization": "Bearer test-orchestrator-api-key-0123456789abcdeX"}

    response = await _call(orchestrator_client, route, conversation_id, wrong)

    assert response.status_code == 401
    assert await events(orchestrator_client, conversation_id) == []


@pytest.mark.parametrize("route", API_KEY_ROUTES, ids=_ids(API_KEY_ROUTES))
async def test_a_widget_token_does_not_open_server_to_server_routes(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        route: tuple[str, str, object]) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    own = widget_token(orchestrator_settings, conversation_id).token

    response = await _call(orchestrator_client, route, conversation_id,
                           {"Authorization": f"Bearer {own}"})

    assert response.status_code == 401
    assert await events(orchestrator_client, conversation_id) == []


@pytest.mark.parametrize("route", WIDGET_ROUTES, ids=_ids(WIDGET_ROUTES))
async def test_a_widget_token_opens_the_widget_routes_of_its_own_conversation(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        route: tuple[str, str, object]) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    own = widget_token(orchestrator_settings, conversation_id).token

    response = await _call(orchestrator_client, route, conversation_id,
                           {"Authorization": f"Bearer {own}"})

    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize("route", WIDGET_ROUTES, ids=_ids(WIDGET_ROUTES))
async def test_a_widget_token_for_another_conversation_is_forbidden(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        route: tuple[str, str, object]) -> None:
    mine = await create_conversation(orchestrator_client)
    theirs = await create_conversation(orchestrator_client)
    token = widget_token(orchestrator_settings, mine).token

    response = await _call(orchestrator_client, route, theirs,
                           {"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert await events(orchestrator_client, theirs) == []


@pytest.mark.parametrize("route", WIDGET_ROUTES, ids=_ids(WIDGET_ROUTES))
async def test_a_widget_token_in_the_query_does_not_open_the_widget_routes(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        route: tuple[str, str, object]) -> None:
    """Only EventSource cannot send a header; the other routes take the token there only."""
    conversation_id = await create_conversation(orchestrator_client)
    own = widget_token(orchestrator_settings, conversation_id).token

    response = await _call(orchestrator_client, route, conversation_id, {}, token=own)

    assert response.status_code == 401
    assert await events(orchestrator_client, conversation_id) == []


@pytest.mark.parametrize("body", [{"role": "assistant", "text": "I am the agent"},
                                  {"role": "human", "text": "I am staff"},
                                  {"role": "user", "text": "hi", "author": "someone"}],
                         ids=["assistant", "human", "author"])
async def test_a_widget_token_posts_only_the_visitors_own_messages(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        body: dict[str, str]) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    own = widget_token(orchestrator_settings, conversation_id).token

    response = await orchestrator_client.post(f"/v1/conversations/{conversation_id}/messages",
                                              json=body, headers={"Authorization": f"Bearer {own}"})

    assert response.status_code == 403
    assert await events(orchestrator_client, conversation_id) == []


async def test_a_widget_token_cannot_switch_to_voice_for_an_operator(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    own = widget_token(orchestrator_settings, conversation_id).token

    response = await orchestrator_client.post(f"/v1/conversations/{conversation_id}/voice",
                                              json={"trigger": "operator"},
                                              headers={"Authorization": f"Bearer {own}"})

    assert response.status_code == 403
    assert await events(orchestrator_client, conversation_id) == []


async def test_a_widget_token_for_another_conversation_cannot_read_the_stream(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    mine = await create_conversation(orchestrator_client)
    theirs = await create_conversation(orchestrator_client)
    token = widget_token(orchestrator_settings, mine).token

    response = await orchestrator_client.get(STREAM.format(id=theirs),
                                             headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403


async def test_a_widget_token_for_another_conversation_in_the_query_cannot_read_the_stream(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    mine = await create_conversation(orchestrator_client)
    theirs = await create_conversation(orchestrator_client)
    token = widget_token(orchestrator_settings, mine).token

    response = await orchestrator_client.get(STREAM.format(id=theirs), params={"token": token})

    assert response.status_code == 403


async def test_an_expired_widget_token_is_unauthorized(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    expired = orchestrator_settings.model_copy(update={"widget_token_ttl": timedelta(minutes=-5)})
    token = widget_token(expired, conversation_id).token

    response = await orchestrator_client.get(STREAM.format(id=conversation_id),
                                             params={"token": token})

    assert response.status_code == 401


async def test_a_widget_token_signed_with_another_secret_is_unauthorized(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    forged = orchestrator_settings.model_copy(
        update={"widget_secret": orchestrator_settings.livekit_api_secret})
    token = widget_token(forged, conversation_id).token

    response = await orchestrator_client.get(STREAM.format(id=conversation_id),
                                             params={"token": token})

    assert response.status_code == 401


async def test_a_visitor_livekit_token_is_not_a_widget_token(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    switched = await orchestrator_client.post(f"/v1/conversations/{conversation_id}/voice",
                                              headers=AUTH)

    response = await orchestrator_client.get(STREAM.format(id=conversation_id),
                                             params={"token": switched.json()["token"]})

    assert response.status_code == 401


async def test_an_api_key_in_the_query_is_unauthorized_while_the_header_opens_the_stream(
        orchestrator_server: Callable[..., Any], orchestrator_settings: Settings) -> None:
    """Regression: the stream took an API key in `?token=`, where proxies and browsers log
    URLs; the query is for widget tokens only."""
    url = await orchestrator_server(orchestrator_settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        conversation_id = await create_conversation(client)
        path = STREAM.format(id=conversation_id)

        async with client.stream("GET", path, params={"token": ORCHESTRATOR_API_KEY}) as queried:
            assert queried.status_code == 401
        async with client.stream("GET", path, headers=AUTH) as headed:
            assert headed.status_code == 200


async def test_health_and_metrics_are_open_to_probes_and_scrapers(
        orchestrator_client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        response = await orchestrator_client.get(path)
        assert response.status_code == 200, path


async def test_credentials_are_checked_before_the_input(
        orchestrator_client: httpx.AsyncClient) -> None:
    """An anonymous caller learns nothing about what input would be accepted."""
    response = await orchestrator_client.post("/v1/conversations/not%20valid/messages",
                                              json={"role": "nobody"})

    assert response.status_code == 401
