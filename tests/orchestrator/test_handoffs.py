"""Human agents and the handoffs offered to them: sign-in, sessions, the queue, accept, decline
and connect; only the human a handoff was offered to may see or act on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as aioredis

from conversation import ConversationStore, HandoffTrigger, Status, Transition
from conversation import handoffs as steps
from conversation.card import HandoffCard
from conversation.desk import Desk
from conversation.handoffs import HandoffStore
from orchestrator.humans import HumanAccount, hash_password
from orchestrator.settings import Settings
from orchestrator.tokens import widget_token
from tests.conftest import OrchestratorClientFactory
from tests.orchestrator.support import AUTH, create_conversation, events

PASSWORDS = {"dana": "dana-password-0123", "bob": "bob-password-0123"}
HUMANS = tuple(HumanAccount(username=u, name=u.title(), password_hash=hash_password(p))
               for u, p in PASSWORDS.items())


@pytest.fixture
def settings(orchestrator_settings: Settings) -> Settings:
    return orchestrator_settings.model_copy(update={"humans": HUMANS})


@pytest.fixture
async def client(orchestrator_client_factory: OrchestratorClientFactory,
                 settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with orchestrator_client_factory(settings) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, username: str,
                  password: str | None = None) -> httpx.Response:
    return await client.post("/v1/humans/sign-in", json={
        "username": username, "password": password or PASSWORDS.get(username, "x" * 12)})


async def session_of(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await sign_in(client, username)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def in_a_call(client: httpx.AsyncClient, redis: aioredis.Redis) -> str:
    conversation_id = await create_conversation(client)
    await ConversationStore(redis).transition(conversation_id, Transition(
        to=Status.VOICE, from_=frozenset({Status.CHAT})))
    return conversation_id


async def offered_to(redis: aioredis.Redis, client: httpx.AsyncClient, username: str) -> str:
    """A handoff offered to `username`, as the voice agent offers it."""
    conversation_id = await in_a_call(client, redis)
    store = HandoffStore(ConversationStore(redis))
    desk = Desk(redis)
    handoff = await steps.start(store, desk, conversation_id, HandoffTrigger.API, "refund")
    card = HandoffCard(summary="Wants a refund", order_number="A1234")
    assert await store.take(conversation_id, steps.offered(
        handoff, human=username, human_name=username.title(), card=card))
    await desk.queue_add(username, handoff.id)
    return handoff.id


async def test_a_human_signs_in_with_the_operators_credentials(
        client: httpx.AsyncClient) -> None:
    response = await sign_in(client, "dana")

    assert response.status_code == 200
    assert response.json()["name"] == "Dana"
    cookie = response.headers["set-cookie"]
    assert "baton_human=hs_" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    me = await client.get("/v1/humans/me",
                          headers={"Authorization": f"Bearer {response.json()['token']}"})
    assert me.json() == {"username": "dana", "name": "Dana"}


@pytest.mark.parametrize(("username", "password"), [("dana", "wrong-password-12"),
                                                    ("nobody", "dana-password-0123")])
async def test_a_wrong_password_and_an_unknown_human_get_the_same_answer(
        client: httpx.AsyncClient, username: str, password: str) -> None:
    response = await sign_in(client, username, password)

    assert response.status_code == 401
    assert response.json()["message"] == "wrong username or password"


async def test_repeated_wrong_passwords_are_slowed_down(client: httpx.AsyncClient) -> None:
    for _ in range(10):
        await sign_in(client, "dana", "wrong-password-12")

    response = await sign_in(client, "dana")

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0


async def test_a_session_expires_and_is_gone_after_signing_out(
        client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis) -> None:
    auth = await session_of(client, "dana")
    [key] = await redis.keys("baton:human-session:*")
    assert 0 < await redis.ttl(key) <= settings.human_session_ttl.total_seconds()

    out = await client.post("/v1/humans/sign-out", headers=auth)

    assert out.status_code == 204
    assert (await client.get("/v1/humans/me", headers=auth)).status_code == 401
    assert await redis.keys("baton:human-session:*") == []


async def test_passwords_are_kept_hashed(settings: Settings) -> None:
    assert all(PASSWORDS[h.username] not in h.password_hash for h in settings.humans)
    assert all(h.password_hash.startswith("scrypt$") for h in settings.humans)


HUMAN_ROUTES = [("GET", "/v1/handoffs"), ("GET", "/v1/handoffs/{h}"),
                ("POST", "/v1/handoffs/{h}/accept"), ("POST", "/v1/handoffs/{h}/decline"),
                ("POST", "/v1/handoffs/{h}/connect"), ("GET", "/v1/handoffs/{h}/events"),
                ("GET", "/v1/humans/me")]


@pytest.mark.parametrize(("method", "path"), HUMAN_ROUTES)
async def test_neither_an_api_key_nor_a_widget_token_is_a_human(
        client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis,
        method: str, path: str) -> None:
    handoff_id = await offered_to(redis, client, "dana")
    widget = widget_token(settings, handoff_id.rpartition(".")[0]).token

    for headers in ({}, AUTH, {"Authorization": f"Bearer {widget}"}):
        response = await client.request(method, path.format(h=handoff_id), headers=headers)
        assert response.status_code == 401, (headers, response.text)


@pytest.mark.parametrize(("method", "path"), HUMAN_ROUTES[1:-1])
async def test_a_human_cannot_see_or_take_a_handoff_offered_to_another(
        client: httpx.AsyncClient, redis: aioredis.Redis, method: str, path: str) -> None:
    handoff_id = await offered_to(redis, client, "dana")
    bob = await session_of(client, "bob")

    response = await client.request(method, path.format(h=handoff_id), headers=bob)

    assert response.status_code == 404
    assert (await client.get("/v1/handoffs", headers=bob)).json()["handoffs"] == []


async def test_the_queue_shows_the_card_of_each_handoff_offered_to_the_human(
        client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    handoff_id = await offered_to(redis, client, "dana")

    queue = (await client.get("/v1/handoffs", headers=await session_of(client, "dana"))).json()

    [shown] = queue["handoffs"]
    assert (shown["id"], shown["state"], shown["human_name"]) == (handoff_id, "offered", "Dana")
    assert (shown["card"]["summary"], shown["card"]["order_number"]) == (
        "Wants a refund", "A1234")


async def test_accepting_gives_a_consult_token_for_the_visitors_room_only(
        client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis) -> None:
    handoff_id = await offered_to(redis, client, "dana")

    response = await client.post(f"/v1/handoffs/{handoff_id}/accept",
                                 headers=await session_of(client, "dana"))

    assert response.status_code == 200
    session: dict[str, Any] = response.json()
    claims = jwt.decode(session["token"], options={"verify_signature": False})
    assert claims["video"]["room"] == handoff_id.rpartition(".")[0]
    # In consult the human only listens: the microphone is granted on connect.
    assert claims["video"]["canPublish"] is False
    assert claims["attributes"]["baton.role"] == "human"
    assert session["handoff"]["state"] == "accepted"


async def test_a_step_that_no_longer_applies_is_a_conflict_and_changes_nothing(
        client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    handoff_id = await offered_to(redis, client, "dana")
    dana = await session_of(client, "dana")
    await client.post(f"/v1/handoffs/{handoff_id}/decline", headers=dana)

    late = await client.post(f"/v1/handoffs/{handoff_id}/accept", headers=dana)

    assert late.status_code == 409
    logged = [e["state"] for e in await events(client, handoff_id.rpartition(".")[0])
              if e["kind"] == "handoff"]
    assert logged == ["requested", "offered", "declined"]


async def test_a_handoff_is_requested_for_a_call_in_progress_only_once(
        client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis) -> None:
    chatting = await create_conversation(client)
    calling = await in_a_call(client, redis)
    widget = {"Authorization": f"Bearer {widget_token(settings, calling).token}"}

    not_in_call = await client.post(f"/v1/conversations/{chatting}/handoffs", headers=AUTH)
    first = await client.post(f"/v1/conversations/{calling}/handoffs", headers=widget,
                              json={"reason": "I want a person"})
    again = await client.post(f"/v1/conversations/{calling}/handoffs", headers=AUTH)

    assert (not_in_call.status_code, first.status_code, again.status_code) == (409, 202, 409)
    assert first.json()["trigger"] == "api" and first.json()["reason"] == "I want a person"


async def test_another_conversations_widget_token_cannot_ask_for_a_person(
        client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis) -> None:
    mine = await create_conversation(client)
    theirs = await in_a_call(client, redis)
    token = widget_token(settings, mine).token

    response = await client.post(f"/v1/conversations/{theirs}/handoffs",
                                 headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert [e["kind"] for e in await events(client, theirs)] == []


async def test_the_queue_depth_and_wait_are_exported(
        client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    await in_a_call(client, redis)
    calling = await in_a_call(client, redis)
    await client.post(f"/v1/conversations/{calling}/handoffs", headers=AUTH)

    exposed = (await client.get("/metrics")).text

    assert "baton_handoff_queue_depth 1.0" in exposed
    assert "baton_handoff_oldest_wait_seconds" in exposed


async def test_a_second_verification_counts_as_a_reverification(
        client: httpx.AsyncClient) -> None:
    """The chat side verified the visitor, then verified again although the record had it:
    what carrying identity across channels should make rare."""
    identity = {"subject": "cust-1", "method": "otp", "verified_at": "2026-12-01T10:00:00Z"}
    first = await create_conversation(client, identity=identity)
    second = await create_conversation(client)

    await client.post(f"/v1/conversations/{first}/identity", json=identity, headers=AUTH)
    await client.post(f"/v1/conversations/{second}/identity", json=identity, headers=AUTH)

    exposed = (await client.get("/metrics")).text
    assert "baton_reverifications_total 1.0" in exposed
    record = (await client.get(f"/v1/conversations/{second}", headers=AUTH)).json()
    assert record["identity"]["subject"] == "cust-1"


async def test_resolution_and_satisfaction_are_logged_by_the_channel_path(
        client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    conversation_id = await create_conversation(client)
    await client.post(f"/v1/conversations/{conversation_id}/voice", headers=AUTH)

    resolved = await client.post(f"/v1/conversations/{conversation_id}/resolution",
                                 json={"resolved": True}, headers=AUTH)
    scored = await client.post(f"/v1/conversations/{conversation_id}/csat", json={"score": 4},
                               headers=AUTH)
    bad = await client.post(f"/v1/conversations/{conversation_id}/csat", json={"score": 9},
                            headers=AUTH)

    assert (resolved.status_code, scored.status_code, bad.status_code) == (201, 201, 422)
    assert resolved.json()["path"] == "chat>voice"
    exposed = (await client.get("/metrics")).text
    assert 'baton_post_switch_resolutions_total{path="chat>voice",resolved="true"} 1.0' \
        in exposed
    assert 'baton_switch_csat_sum{path="chat>voice"} 4.0' in exposed
    kinds = [e["kind"] for e in await events(client, conversation_id)]
    assert kinds[-2:] == ["resolution", "csat"]

