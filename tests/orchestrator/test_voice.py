"""Switch to voice against the devserver: the room, one dispatch, the visitor token, the event."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from livekit import api, rtc

from conversation import ConversationStore, Status, Transition, attributes, calls
from conversation.redisclient import RedisClient
from deploy.processes import free_port
from devserver.process import DevServer
from orchestrator.settings import Settings
from tests.conftest import OrchestratorClientFactory
from tests.orchestrator.support import AUTH, create_conversation, events

WAIT = 30.0  # generous: other suites may load the machine


@pytest.fixture
async def livekit(devserver: DevServer) -> AsyncIterator[api.LiveKitAPI]:
    client = devserver.api()
    yield client
    await client.aclose()


async def _switch(client: httpx.AsyncClient, conversation_id: str,
                  **body: str) -> httpx.Response:
    return await client.post(f"/v1/conversations/{conversation_id}/voice", json=body or None,
                             headers=AUTH)


async def _agent_dispatches(livekit: api.LiveKitAPI, room: str, agent_name: str) -> list[str]:
    dispatches = await livekit.agent_dispatch.list_dispatch(room)
    return [d.id for d in dispatches if d.agent_name == agent_name]


async def test_the_returned_token_joins_the_conversation_room(
        orchestrator_client: httpx.AsyncClient, livekit: api.LiveKitAPI) -> None:
    conversation_id = await create_conversation(orchestrator_client, identity={
        "subject": "cust-42", "method": "otp", "verified_at": "2026-01-05T10:00:00+00:00"})
    session = (await _switch(orchestrator_client, conversation_id)).json()

    visitor = rtc.Room()
    await asyncio.wait_for(visitor.connect(session["url"], session["token"]), WAIT)
    try:
        assert visitor.name == conversation_id
        reply = await livekit.room.list_participants(
            api.ListParticipantsRequest(room=conversation_id))
        [joined] = [p for p in reply.participants if p.identity == session["identity"]]
        assert dict(joined.attributes) == {
            attributes.CONVERSATION_ID: conversation_id,
            attributes.ROLE: attributes.ROLE_VISITOR,
            attributes.SUBJECT: "cust-42",
            attributes.VERIFICATION_METHOD: "otp",
            attributes.VERIFIED_AT: "2026-01-05T10:00:00+00:00",
        }
    finally:
        await visitor.disconnect()


async def test_the_token_grants_this_room_microphone_and_data_only(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    session = (await _switch(orchestrator_client, conversation_id)).json()

    claims = api.TokenVerifier(orchestrator_settings.livekit_api_key,
                               orchestrator_settings.livekit_api_secret.get_secret_value()
                               ).verify(session["token"])

    assert claims.identity == session["identity"]
    assert claims.identity.startswith(attributes.VISITOR_IDENTITY_PREFIX)
    assert claims.kind == "standard"
    video = claims.video
    assert video is not None
    assert (video.room, video.room_join) == (conversation_id, True)
    assert video.can_publish_sources == ["microphone"]
    assert (video.can_subscribe, video.can_publish_data) == (True, True)
    assert not any([video.room_admin, video.room_create, video.room_list, video.room_record,
                    video.agent, video.can_update_own_metadata, video.hidden])


async def test_the_token_expires_after_the_configured_ttl(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    session = (await _switch(orchestrator_client, conversation_id)).json()

    payload = session["token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    assert timedelta(seconds=claims["exp"] - claims["nbf"]) == timedelta(minutes=10)


async def test_every_switch_gets_its_own_visitor_identity(
        orchestrator_client: httpx.AsyncClient) -> None:
    """A second join with the same identity would evict the first participant."""
    conversation_id = await create_conversation(orchestrator_client)

    first = (await _switch(orchestrator_client, conversation_id)).json()
    second = (await _switch(orchestrator_client, conversation_id)).json()

    assert first["identity"] != second["identity"]


async def test_the_token_cannot_join_another_room(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    session = (await _switch(orchestrator_client, conversation_id)).json()
    header, payload, signature = session["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["video"]["room"] = "someone-elses-room"
    retargeted = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    intruder = rtc.Room()
    with pytest.raises(rtc.ConnectError):
        await asyncio.wait_for(
            intruder.connect(session["url"], f"{header}.{retargeted}.{signature}"), WAIT)


async def test_the_token_cannot_administer_rooms(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    session = (await _switch(orchestrator_client, conversation_id)).json()

    async with api.LiveKitAPI.with_token(session["token"], session["url"]) as visitor_api:
        with pytest.raises(api.TwirpError) as refused:
            await visitor_api.room.list_participants(
                api.ListParticipantsRequest(room="someone-elses-room"))

    assert refused.value.status in (401, 403)


@pytest.mark.server_and_cluster
async def test_the_switch_is_recorded_with_the_new_status_and_room(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await _switch(orchestrator_client, conversation_id, trigger="visitor")

    assert response.status_code == 200
    assert response.json()["room"] == conversation_id
    [switch] = await events(orchestrator_client, conversation_id)
    assert (switch["kind"], switch["from_channel"], switch["to_channel"], switch["trigger"]) == (
        "channel_switch", "chat", "voice", "visitor")
    record = (await orchestrator_client.get(f"/v1/conversations/{conversation_id}",
                                            headers=AUTH)).json()
    assert (record["status"], record["room"]) == ("voice", conversation_id)


@pytest.mark.server_and_cluster
async def test_switching_twice_leaves_one_dispatch_and_one_switch_event(
        orchestrator_client: httpx.AsyncClient, livekit: api.LiveKitAPI,
        orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    for _ in range(2):
        assert (await _switch(orchestrator_client, conversation_id)).status_code == 200

    assert len(await _agent_dispatches(livekit, conversation_id,
                                       orchestrator_settings.agent_name)) == 1
    assert len(await events(orchestrator_client, conversation_id)) == 1


@pytest.mark.server_and_cluster
async def test_concurrent_switches_leave_one_dispatch(
        orchestrator_client: httpx.AsyncClient, livekit: api.LiveKitAPI,
        orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    responses = await asyncio.gather(*(_switch(orchestrator_client, conversation_id)
                                       for _ in range(4)))

    assert [r.status_code for r in responses] == [200] * 4
    assert len(await _agent_dispatches(livekit, conversation_id,
                                       orchestrator_settings.agent_name)) == 1


@pytest.mark.server_and_cluster
async def test_concurrent_switches_write_one_switch_event(
        orchestrator_client_factory: OrchestratorClientFactory,
        orchestrator_settings: Settings) -> None:
    """Bug: the status was read outside the lock and the switch event had a random id, so a
    double click on two replicas wrote two `channel_switch` events."""
    async with orchestrator_client_factory(orchestrator_settings) as first, \
            orchestrator_client_factory(orchestrator_settings) as second:
        conversation_id = await create_conversation(first)

        await asyncio.gather(*(_switch(replica, conversation_id)
                               for replica in (first, second, first, second)))

        logged = await events(first, conversation_id)
    assert [(e["kind"], e["event_id"]) for e in logged] == [("channel_switch", "call-1-switch")]


@pytest.mark.server_and_cluster
async def test_a_new_call_after_the_last_one_ended_is_recorded_again(
        orchestrator_client: httpx.AsyncClient, redis: RedisClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    await _switch(orchestrator_client, conversation_id)
    record = await ConversationStore(redis).get(conversation_id)
    await ConversationStore(redis).transition(conversation_id, calls.call_over(record))

    await _switch(orchestrator_client, conversation_id)

    switches = [e["event_id"] for e in await events(orchestrator_client, conversation_id)]
    assert switches == ["call-1-switch", "call-2-switch"]


@pytest.mark.server_and_cluster
async def test_two_replicas_switching_at_once_leave_one_dispatch(
        orchestrator_client_factory: OrchestratorClientFactory, livekit: api.LiveKitAPI,
        orchestrator_settings: Settings) -> None:
    async with orchestrator_client_factory(orchestrator_settings) as first, \
            orchestrator_client_factory(orchestrator_settings) as second:
        conversation_id = await create_conversation(first)

        responses = await asyncio.gather(_switch(first, conversation_id),
                                         _switch(second, conversation_id))

    assert [r.status_code for r in responses] == [200, 200]
    assert len(await _agent_dispatches(livekit, conversation_id,
                                       orchestrator_settings.agent_name)) == 1


async def test_switching_an_unknown_conversation_is_not_found(
        orchestrator_client: httpx.AsyncClient) -> None:
    response = await _switch(orchestrator_client, "nobody-here")

    assert response.status_code == 404


async def test_livekit_down_gives_503_and_records_no_switch(
        orchestrator_client_factory: OrchestratorClientFactory,
        orchestrator_settings: Settings) -> None:
    closed = f"ws://127.0.0.1:{free_port()}"
    livekit_down = orchestrator_settings.model_copy(update={"livekit_url": closed})
    async with orchestrator_client_factory(livekit_down) as client:
        conversation_id = await create_conversation(client)

        response = await _switch(client, conversation_id)

        assert response.status_code == 503
        assert response.json()["message"] == "LiveKit unavailable"
        assert await events(client, conversation_id) == []
        record = (await client.get(f"/v1/conversations/{conversation_id}", headers=AUTH)).json()
        assert (record["status"], record["room"]) == ("chat", None)


async def test_the_switch_reports_time_spent_outside_livekit_and_redis(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await _switch(orchestrator_client, conversation_id)

    timings = dict(part.strip().split(";dur=")
                   for part in response.headers["Server-Timing"].split(","))
    assert {"own", "cpu", "livekit", "redis", "total"} <= set(timings)
    assert float(timings["own"]) <= float(timings["total"])


@pytest.mark.server_and_cluster
async def test_a_closed_conversation_cannot_switch_to_voice(
        orchestrator_client: httpx.AsyncClient, redis: RedisClient,
        livekit: api.LiveKitAPI) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    await ConversationStore(redis).transition(conversation_id, Transition(
        to=Status.CLOSED, from_=frozenset(Status)))

    response = await _switch(orchestrator_client, conversation_id)

    assert response.status_code == 409
    rooms = await livekit.room.list_rooms(api.ListRoomsRequest(names=[conversation_id]))
    assert list(rooms.rooms) == []
