"""LiveKit webhooks: verified before use, handled once, turned into the log's channel switches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from livekit import api, rtc
from livekit.protocol import models, webhook
from pydantic import SecretStr

from conversation import Channel, ConversationStore, StoredEvent, attributes, calls
from conversation.redisclient import RedisClient
from deploy.processes import free_port
from devserver.process import DevServer
from orchestrator.probes import probe_room_name, webhooks_noted
from orchestrator.settings import Settings
from tests.conftest import DevServerFactory, OrchestratorClientFactory
from tests.orchestrator.support import (
    AUTH,
    VISITOR,
    WAIT,
    create_conversation,
    events,
    signed_webhook,
    visitor_token,
)

WEBHOOK = "/v1/livekit/webhook"


def _participant_event(name: str, room: str, identity: str, *, event_id: str,
                       kind: models.ParticipantInfo.Kind.ValueType =
                       models.ParticipantInfo.Kind.STANDARD,
                       visitor: bool = False) -> webhook.WebhookEvent:
    return webhook.WebhookEvent(
        event=name, id=event_id, room=models.Room(name=room, sid="RM_test"),
        participant=models.ParticipantInfo(sid=f"PA_{identity}", identity=identity, kind=kind,
                                           attributes=VISITOR if visitor else {}))


async def _post(client: httpx.AsyncClient, body: bytes,
                headers: dict[str, str]) -> httpx.Response:
    return await client.post(WEBHOOK, content=body, headers=headers)


async def _status(client: httpx.AsyncClient, conversation_id: str) -> str:
    response = await client.get(f"/v1/conversations/{conversation_id}", headers=AUTH)
    status: str = response.json()["status"]
    return status


@pytest.fixture
async def livekit(devserver: DevServer) -> AsyncIterator[api.LiveKitAPI]:
    client = devserver.api()
    yield client
    await client.aclose()


async def _next_switch(log: AsyncIterator[StoredEvent], trigger: str) -> StoredEvent:
    async with asyncio.timeout(WAIT):
        async for stored in log:
            if stored.event.kind == "channel_switch" and stored.event.trigger == trigger:
                return stored
    raise AssertionError("the log ended")


@pytest.mark.server_and_cluster
async def test_devserver_webhooks_record_the_visitor_joining_and_leaving_the_call(
        devserver_factory: DevServerFactory, orchestrator_server: Callable[..., Any],
        orchestrator_settings: Settings, redis: RedisClient) -> None:
    port = free_port()
    livekit = devserver_factory(webhooks=[f"http://127.0.0.1:{port}{WEBHOOK}"])
    settings = orchestrator_settings.model_copy(update={
        "livekit_url": livekit.url, "livekit_api_key": livekit.api_key,
        "livekit_api_secret": SecretStr(livekit.api_secret)})
    url = await orchestrator_server(settings, port=port)
    async with httpx.AsyncClient(base_url=url, timeout=WAIT) as client:
        conversation_id = await create_conversation(client)
        session = (await client.post(f"/v1/conversations/{conversation_id}/voice",
                                     headers=AUTH)).json()
        log = ConversationStore(redis).follow(conversation_id)
        visitor = rtc.Room()
        await asyncio.wait_for(visitor.connect(session["url"], session["token"]), WAIT)
        try:
            joined = await _next_switch(log, "visitor_joined")
        finally:
            await visitor.disconnect()
        left = await _next_switch(log, "visitor_left")

        assert joined.event.event_id.startswith("joined-PA_")
        assert left.event.event_id == attributes.visitor_left_event_id(
            joined.event.event_id.removeprefix("joined-"))
        assert await _status(client, conversation_id) == "chat"


async def _join(client: httpx.AsyncClient, settings: Settings, conversation_id: str,
                identity: str) -> None:
    joined = _participant_event("participant_joined", conversation_id, identity,
                                event_id=f"EV_joined_{identity}", visitor=True)
    response = await _post(client, *signed_webhook(joined, settings))
    assert response.json()["outcome"] == "recorded"


@pytest.mark.server_and_cluster
async def test_a_visitor_leaving_switches_the_conversation_back_to_chat(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    await orchestrator_client.post(f"/v1/conversations/{conversation_id}/voice", headers=AUTH)
    await _join(orchestrator_client, orchestrator_settings, conversation_id, "visitor-1")
    event = _participant_event("participant_left", conversation_id, "visitor-1",
                               event_id="EV_left", visitor=True)

    response = await _post(orchestrator_client, *signed_webhook(event, orchestrator_settings))

    assert response.json()["outcome"] == "recorded"
    last = (await events(orchestrator_client, conversation_id))[-1]
    assert (last["event_id"], last["from_channel"], last["to_channel"]) == (
        attributes.visitor_left_event_id("PA_visitor-1"), "voice", "chat")
    assert await _status(orchestrator_client, conversation_id) == "chat"


@pytest.mark.server_and_cluster
async def test_a_late_leave_of_an_earlier_calls_visitor_does_not_end_the_call_in_progress(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    """Bug: status writes were last-writer-wins on stale reads, so the delayed
    `participant_left` of an earlier call's visitor set an active call back to chat."""
    conversation_id = await create_conversation(orchestrator_client)
    await orchestrator_client.post(f"/v1/conversations/{conversation_id}/voice", headers=AUTH)
    await _join(orchestrator_client, orchestrator_settings, conversation_id, "visitor-first")
    await _join(orchestrator_client, orchestrator_settings, conversation_id, "visitor-second")
    late = _participant_event("participant_left", conversation_id, "visitor-first",
                              event_id="EV_late_left", visitor=True)

    await _post(orchestrator_client, *signed_webhook(late, orchestrator_settings))

    assert await _status(orchestrator_client, conversation_id) == "voice"


@pytest.mark.server_and_cluster
async def test_a_visitor_leave_already_written_by_the_worker_is_not_written_twice(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        redis: RedisClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    await orchestrator_client.post(f"/v1/conversations/{conversation_id}/voice", headers=AUTH)
    await _join(orchestrator_client, orchestrator_settings, conversation_id, "visitor-1")
    by_the_worker = calls.visitor_left(Channel.VOICE, "visitor-1", "PA_visitor-1")
    await ConversationStore(redis).append(conversation_id, by_the_worker.event,
                                          transition=by_the_worker.transition)
    event = _participant_event("participant_left", conversation_id, "visitor-1",
                               event_id="EV_left", visitor=True)

    await _post(orchestrator_client, *signed_webhook(event, orchestrator_settings))

    switches = [e for e in await events(orchestrator_client, conversation_id)
                if e["trigger"] == "visitor_left"]
    assert len(switches) == 1
    assert await _status(orchestrator_client, conversation_id) == "chat"


async def test_a_webhook_signed_with_another_secret_is_refused_and_changes_nothing(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    await orchestrator_client.post(f"/v1/conversations/{conversation_id}/voice", headers=AUTH)
    before = await events(orchestrator_client, conversation_id)
    event = _participant_event("participant_left", conversation_id, "visitor-1",
                               event_id="EV_forged")

    response = await _post(orchestrator_client, *signed_webhook(
        event, orchestrator_settings, secret="not-the-livekit-secret-0123456789abcdef"))

    assert response.status_code == 401
    assert await events(orchestrator_client, conversation_id) == before
    assert await _status(orchestrator_client, conversation_id) == "voice"


async def test_a_webhook_whose_body_was_tampered_with_is_refused_and_changes_nothing(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    await orchestrator_client.post(f"/v1/conversations/{conversation_id}/voice", headers=AUTH)
    before = await events(orchestrator_client, conversation_id)
    harmless = _participant_event("participant_joined", "another-room", "visitor-1",
                                  event_id="EV_tampered")
    body, headers = signed_webhook(harmless, orchestrator_settings)

    response = await _post(orchestrator_client,
                           body.replace(b"another-room", conversation_id.encode())
                           .replace(b"participant_joined", b"participant_left"), headers)

    assert response.status_code == 401
    assert await events(orchestrator_client, conversation_id) == before


async def test_a_webhook_without_a_signature_is_refused(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    event = _participant_event("participant_left", "anything", "visitor-1", event_id="EV_x")
    body, _ = signed_webhook(event, orchestrator_settings)

    response = await _post(orchestrator_client, body, {"Content-Type": "application/json"})

    assert response.status_code == 401


@pytest.mark.server_and_cluster
async def test_a_replayed_webhook_is_handled_once(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    event = _participant_event("participant_joined", conversation_id, "visitor-1",
                               event_id="EV_replayed", visitor=True)
    body, headers = signed_webhook(event, orchestrator_settings)

    first = await _post(orchestrator_client, body, headers)
    replay = await _post(orchestrator_client, body, headers)

    assert (first.json()["outcome"], replay.json()["outcome"]) == ("recorded", "duplicate")
    assert len(await events(orchestrator_client, conversation_id)) == 1


async def test_a_webhook_for_a_room_that_is_not_a_conversation_is_acknowledged_and_ignored(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    event = _participant_event("participant_left", "somebody-elses:room", "visitor-1",
                               event_id="EV_foreign")

    response = await _post(orchestrator_client, *signed_webhook(event, orchestrator_settings))

    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"


async def test_a_webhook_for_a_preflight_probe_room_is_noted_for_the_check(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        redis: RedisClient) -> None:
    room = probe_room_name()
    event = webhook.WebhookEvent(event="room_started", id="EV_probe", room=models.Room(name=room))

    response = await _post(orchestrator_client, *signed_webhook(event, orchestrator_settings))

    assert response.json() == {"event": "room_started", "outcome": "probe"}
    assert await webhooks_noted(redis, room) == {"room_started"}


async def test_a_probe_webhook_signed_with_another_secret_is_not_noted(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        redis: RedisClient) -> None:
    room = probe_room_name()
    event = webhook.WebhookEvent(event="room_started", id="EV_probe", room=models.Room(name=room))

    response = await _post(orchestrator_client, *signed_webhook(
        event, orchestrator_settings, secret="not-the-livekit-secret-0123456789abcdef"))

    assert response.status_code == 401
    assert await webhooks_noted(redis, room) == set()


@pytest.mark.server_and_cluster
async def test_the_room_finishing_returns_a_voice_conversation_to_chat(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    await orchestrator_client.post(f"/v1/conversations/{conversation_id}/voice", headers=AUTH)
    event = webhook.WebhookEvent(event="room_finished", id="EV_finished",
                                 room=models.Room(name=conversation_id, sid="RM_x"))

    await _post(orchestrator_client, *signed_webhook(event, orchestrator_settings))

    assert await _status(orchestrator_client, conversation_id) == "chat"


async def _agent_dispatches(livekit: api.LiveKitAPI, room: str, agent_name: str) -> int:
    try:
        dispatches = await livekit.agent_dispatch.list_dispatch(room)
    except api.TwirpError as exc:
        assert exc.code == api.TwirpErrorCode.NOT_FOUND
        return 0
    return sum(d.agent_name == agent_name for d in dispatches)


@pytest.mark.server_and_cluster
async def test_the_agent_leaving_while_the_visitor_stays_is_dispatched_again_once(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        devserver: DevServer, livekit: api.LiveKitAPI) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    visitor = rtc.Room()
    await asyncio.wait_for(visitor.connect(devserver.url, visitor_token(
        devserver, "visitor-stays", conversation_id)), WAIT)
    try:
        crashed = _participant_event("participant_left", conversation_id, "agent-AJ_1",
                                     event_id="EV_agent_left",
                                     kind=models.ParticipantInfo.Kind.AGENT)
        body, headers = signed_webhook(crashed, orchestrator_settings)
        another = _participant_event("participant_left", conversation_id, "agent-AJ_2",
                                     event_id="EV_other_agent_left",
                                     kind=models.ParticipantInfo.Kind.AGENT)

        first = await _post(orchestrator_client, body, headers)
        replay = await _post(orchestrator_client, body, headers)
        while_on_its_way = await _post(orchestrator_client,
                                       *signed_webhook(another, orchestrator_settings))
    finally:
        await visitor.disconnect()

    assert [r.json()["outcome"] for r in (first, replay, while_on_its_way)] == [
        "redispatched", "duplicate", "ignored"]
    assert await _agent_dispatches(livekit, conversation_id, orchestrator_settings.agent_name) == 1


async def test_the_agent_leaving_an_empty_room_is_not_dispatched_again(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        livekit: api.LiveKitAPI) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    left = _participant_event("participant_left", conversation_id, "agent-AJ_1",
                              event_id="EV_agent_alone", kind=models.ParticipantInfo.Kind.AGENT)

    response = await _post(orchestrator_client, *signed_webhook(left, orchestrator_settings))

    assert response.json()["outcome"] == "ignored"
    assert await _agent_dispatches(livekit, conversation_id, orchestrator_settings.agent_name) == 0


@pytest.mark.server_and_cluster
async def test_a_webhook_that_failed_is_handled_when_livekit_retries_it(
        orchestrator_client: httpx.AsyncClient,
        orchestrator_client_factory: OrchestratorClientFactory,
        orchestrator_settings: Settings, devserver: DevServer) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    agent_left = _participant_event("participant_left", conversation_id, "agent-AJ_1",
                                    event_id="EV_retried", kind=models.ParticipantInfo.Kind.AGENT)
    body, headers = signed_webhook(agent_left, orchestrator_settings)
    livekit_down = orchestrator_settings.model_copy(
        update={"livekit_url": f"ws://127.0.0.1:{free_port()}"})
    visitor = rtc.Room()
    await asyncio.wait_for(visitor.connect(devserver.url, visitor_token(
        devserver, "visitor-waiting", conversation_id)), WAIT)
    try:
        async with orchestrator_client_factory(livekit_down) as replica_without_livekit:
            failed = await _post(replica_without_livekit, body, headers)

        retried = await _post(orchestrator_client, body, headers)
    finally:
        await visitor.disconnect()

    assert failed.status_code == 503
    assert retried.json()["outcome"] == "redispatched"
