"""Phone fallback: the visitor's phone dialled into the conversation through the devserver's
simulated SIP; every outcome returned and logged, bad numbers and abuse refused."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from livekit import api

from conversation import CallEvent, CallOutcome, ConversationStore
from devserver.process import DevServer
from orchestrator.settings import Settings
from orchestrator.tokens import widget_token
from tests.conftest import OrchestratorClientFactory
from tests.orchestrator.phone_support import (
    ANSWERS,
    ANSWERS_IN_GB,
    RINGS_OUT,
    SLOW_TO_ANSWER,
    failing,
)
from tests.orchestrator.support import AUTH, WAIT, create_conversation, events, metric_sample

pytestmark = pytest.mark.usefixtures("no_phone_number_logged")


async def _dial(client: httpx.AsyncClient, conversation_id: str, number: str, *,
                headers: dict[str, str] = AUTH, **body: Any) -> httpx.Response:
    return await client.post(f"/v1/conversations/{conversation_id}/dial-out",
                             json={"phone_number": number, **body}, headers=headers)


def _calls(log: list[dict[str, Any]]) -> list[tuple[str, int | None, str | None]]:
    return [(e["outcome"], e["sip_status"], e["number_ending"]) for e in log
            if e["kind"] == "call"]


async def _status(client: httpx.AsyncClient, conversation_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/conversations/{conversation_id}", headers=AUTH)
    record: dict[str, Any] = response.json()
    return record


async def test_an_answered_call_puts_the_conversation_on_the_phone_with_its_visitor(
        orchestrator_client_factory: OrchestratorClientFactory,
        phone_settings: Settings) -> None:
    async with orchestrator_client_factory(phone_settings) as client:
        conversation_id = await create_conversation(client)

        response = await _dial(client, conversation_id, ANSWERS)
        log = await events(client, conversation_id)
        record = await _status(client, conversation_id)

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["outcome"], result["number_ending"]) == ("answered", "00")
    assert result["participant_identity"].startswith("phone-")
    assert _calls(log) == [("dialing", None, "00"), ("answered", None, "00")]
    switches = [(e["from_channel"], e["to_channel"], e["trigger"]) for e in log
                if e["kind"] == "channel_switch"]
    assert switches == [("chat", "phone", "visitor"), (None, "phone", "visitor_joined")]
    assert record["status"] == "phone"


@pytest.mark.parametrize(("number", "outcome", "status", "reason"), [
    (failing(486), "busy", 486, "Busy Here"),
    (failing(600), "busy", 600, "Busy Everywhere"),
    (failing(603), "declined", 603, "Decline"),
    (failing(607), "declined", 607, "Unwanted"),
    (failing(608), "declined", 608, "Rejected"),
    (RINGS_OUT, "no_answer", 408, "Request Timeout"),
    (failing(487), "no_answer", 487, "Request Terminated"),
    (failing(480), "unreachable", 480, "Temporarily Unavailable"),
    (failing(404), "unreachable", 404, "Not Found"),
    (failing(410), "unreachable", 410, "Gone"),
    (failing(484), "unreachable", 484, "Address Incomplete"),
    (failing(604), "unreachable", 604, "Does Not Exist Anywhere"),
    (failing(500), "failed", 500, "Server Internal Error"),
    (failing(503), "failed", 503, "Service Unavailable"),
    (failing(488), "failed", 488, "Not Acceptable Here"),
])
async def test_a_call_not_answered_is_returned_and_logged_and_the_chat_goes_on(
        orchestrator_client_factory: OrchestratorClientFactory, phone_settings: Settings,
        number: str, outcome: str, status: int, reason: str) -> None:
    async with orchestrator_client_factory(phone_settings) as client:
        conversation_id = await create_conversation(client)

        response = await _dial(client, conversation_id, number)
        log = await events(client, conversation_id)
        record = await _status(client, conversation_id)

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["outcome"], result["sip_status"], result["sip_reason"]) == \
        (outcome, status, reason)
    assert result["participant_identity"] is None
    ending = number[-2:]
    assert _calls(log) == [("dialing", None, ending), (outcome, status, ending)]
    assert [e["sip_reason"] for e in log if e["kind"] == "call"] == [None, reason]
    assert [e for e in log if e["kind"] == "channel_switch"] == []
    assert record["status"] == "chat"


async def test_the_conversation_id_reaches_the_carrier_as_a_header_and_the_room_as_attributes(
        orchestrator_client_factory: OrchestratorClientFactory, phone_settings: Settings,
        phone_devserver: DevServer) -> None:
    async with orchestrator_client_factory(phone_settings) as client:
        conversation_id = await create_conversation(client)
        identity = (await _dial(client, conversation_id, ANSWERS)).json()["participant_identity"]

    [call] = [c for c in await asyncio.to_thread(phone_devserver.sip_calls)
              if c["room"] == conversation_id]
    async with phone_devserver.api() as livekit:
        phone = await livekit.room.get_participant(
            api.RoomParticipantIdentity(room=conversation_id, identity=identity))
        dispatches = await livekit.agent_dispatch.list_dispatch(conversation_id)
    assert call["headers"] == {"X-Baton-Conversation": conversation_id}
    assert (call["to"], call["trunk_id"]) == (ANSWERS, phone_settings.sip_outbound_trunk)
    assert phone.attributes["baton.conversation_id"] == conversation_id
    assert phone.attributes["baton.role"] == "visitor"
    assert "sip.phoneNumber" not in phone.attributes
    assert phone.kind == api.ParticipantInfo.Kind.SIP
    assert [d.agent_name for d in dispatches].count(phone_settings.agent_name) == 1


async def test_a_number_is_dialled_in_e164_however_it_was_typed(
        orchestrator_client_factory: OrchestratorClientFactory, phone_settings: Settings,
        phone_devserver: DevServer) -> None:
    async with orchestrator_client_factory(phone_settings) as client:
        conversation_id = await create_conversation(client)
        response = await _dial(client, conversation_id, "+44 (20) 7946-0100")

    [call] = [c for c in await asyncio.to_thread(phone_devserver.sip_calls)
              if c["room"] == conversation_id]
    assert response.json()["outcome"] == "answered"
    assert call["to"] == ANSWERS_IN_GB


@pytest.mark.parametrize(("number", "reason"), [
    ("2025550100", "must be an international number"),
    ("+1-202-CALL-NOW", "must be an international number"),
    ("+1 202", "not a valid number for its country code"),
    ("+33 6 12 34 56 78", "numbers in FR may not be dialled (countries allowed: GB, US)"),
    ("+1 900 555 0100", "premium-rate numbers are never dialled"),
    ("+1" + "2" * 40, "at most 32 characters"),
])
async def test_a_number_that_may_not_be_dialled_is_422_and_nothing_happens(
        orchestrator_client_factory: OrchestratorClientFactory, phone_settings: Settings,
        phone_devserver: DevServer, number: str, reason: str) -> None:
    async with orchestrator_client_factory(phone_settings) as client:
        conversation_id = await create_conversation(client)

        response = await _dial(client, conversation_id, number)
        log = await events(client, conversation_id)

    assert response.status_code == 422
    assert response.json()["field"] == "phone_number"
    assert reason in response.json()["message"]
    assert log == []
    assert [c for c in await asyncio.to_thread(phone_devserver.sip_calls)
            if c["room"] == conversation_id] == []


@pytest.mark.parametrize(("update", "setting"), [
    ({"sip_outbound_trunk": None}, "BATON_SIP_OUTBOUND_TRUNK"),
    ({"dial_countries": ()}, "BATON_DIAL_COUNTRIES"),
])
async def test_dial_out_without_a_trunk_or_countries_is_off_and_says_which_setting(
        orchestrator_client_factory: OrchestratorClientFactory, phone_settings: Settings,
        update: dict[str, object], setting: str) -> None:
    async with orchestrator_client_factory(phone_settings.model_copy(update=update)) as client:
        conversation_id = await create_conversation(client)

        response = await _dial(client, conversation_id, ANSWERS)
        log = await events(client, conversation_id)

    assert response.status_code == 409
    assert response.json()["error"] == "DialOutDisabled"
    assert setting in response.json()["message"]
    assert log == []


async def test_a_conversation_in_a_call_is_not_dialled(
        orchestrator_client_factory: OrchestratorClientFactory,
        phone_settings: Settings) -> None:
    async with orchestrator_client_factory(phone_settings) as client:
        conversation_id = await create_conversation(client)
        await client.post(f"/v1/conversations/{conversation_id}/voice", headers=AUTH)

        response = await _dial(client, conversation_id, ANSWERS)

    assert response.status_code == 409
    assert response.json()["error"] == "CallInProgress"


async def test_a_second_dial_while_the_first_rings_is_refused(
        orchestrator_client_factory: OrchestratorClientFactory, phone_settings: Settings,
        redis: aioredis.Redis) -> None:
    """A double click must not make two phones ring, nor one phone twice."""
    async with orchestrator_client_factory(phone_settings) as client, \
            orchestrator_client_factory(phone_settings) as other_replica:
        conversation_id = await create_conversation(client)
        ringing = asyncio.create_task(_dial(client, conversation_id, SLOW_TO_ANSWER))
        async with asyncio.timeout(WAIT):
            dialing = await anext(ConversationStore(redis).follow(conversation_id))

        second = await _dial(other_replica, conversation_id, ANSWERS)
        first = await ringing

    assert isinstance(dialing.event, CallEvent)
    assert dialing.event.outcome is CallOutcome.DIALING
    assert second.status_code == 409
    assert second.json()["error"] == "CallInProgress"
    assert first.json()["outcome"] == "answered"


async def test_attempts_beyond_the_conversations_limit_are_429_with_retry_after(
        orchestrator_client_factory: OrchestratorClientFactory,
        phone_settings: Settings) -> None:
    settings = phone_settings.model_copy(update={
        "dial_attempts_per_conversation": 2, "dial_conversation_window": timedelta(minutes=10)})
    async with orchestrator_client_factory(settings) as client:
        conversation_id = await create_conversation(client)
        allowed = [await _dial(client, conversation_id, failing(486)) for _ in range(2)]
        logged = len(await events(client, conversation_id))

        refused = await _dial(client, conversation_id, failing(486))
        other = await _dial(client, await create_conversation(client), failing(486))
        log = await events(client, conversation_id)

    assert [r.json()["outcome"] for r in allowed] == ["busy", "busy"]
    assert refused.status_code == 429
    assert refused.json()["error"] == "TooManyDialAttempts"
    assert 0 < int(refused.headers["Retry-After"]) <= 600
    assert len(log) == logged
    assert other.json()["outcome"] == "busy"


async def test_attempts_beyond_the_fleets_limit_are_429_on_every_replica(
        orchestrator_client_factory: OrchestratorClientFactory,
        phone_settings: Settings) -> None:
    settings = phone_settings.model_copy(update={
        "dial_attempts_per_window": 3, "dial_window": timedelta(minutes=5)})
    async with orchestrator_client_factory(settings) as first, \
            orchestrator_client_factory(settings) as second:
        replicas = [first, second, first]
        allowed = [await _dial(replica, await create_conversation(replica), failing(486))
                   for replica in replicas]

        refused = [await _dial(replica, await create_conversation(replica), failing(486))
                   for replica in (first, second)]

    assert [r.json()["outcome"] for r in allowed] == ["busy"] * 3
    assert [r.status_code for r in refused] == [429, 429]
    assert all(0 < int(r.headers["Retry-After"]) <= 300 for r in refused)
    assert "all conversations together" in refused[0].json()["message"]


async def test_livekit_down_is_503_with_nothing_written_and_no_attempt_counted(
        orchestrator_client_factory: OrchestratorClientFactory,
        phone_settings: Settings) -> None:
    settings = phone_settings.model_copy(update={"dial_attempts_per_conversation": 1})
    down = settings.model_copy(update={"livekit_api_url": "http://127.0.0.1:9"})
    async with orchestrator_client_factory(down) as broken, \
            orchestrator_client_factory(settings) as client:
        conversation_id = await create_conversation(client)

        refused = await _dial(broken, conversation_id, ANSWERS)
        log = await events(client, conversation_id)
        after = await _dial(client, conversation_id, ANSWERS)

    assert refused.status_code == 503
    assert refused.json()["message"] == "LiveKit unavailable"
    assert log == []
    assert after.json()["outcome"] == "answered"


async def test_outcomes_are_counted_in_the_metrics(
        orchestrator_client_factory: OrchestratorClientFactory,
        phone_settings: Settings) -> None:
    async with orchestrator_client_factory(phone_settings) as client:
        await _dial(client, await create_conversation(client), failing(486))
        await _dial(client, await create_conversation(client), ANSWERS)
        exposed = (await client.get("/metrics")).text

    assert metric_sample(exposed, 'baton_dialouts_total{outcome="busy"}') == 1
    assert metric_sample(exposed, 'baton_dialouts_total{outcome="answered"}') == 1


async def test_without_credentials_dial_out_is_401(
        orchestrator_client_factory: OrchestratorClientFactory,
        phone_settings: Settings) -> None:
    async with orchestrator_client_factory(phone_settings) as client:
        conversation_id = await create_conversation(client)

        response = await _dial(client, conversation_id, ANSWERS, headers={})
        log = await events(client, conversation_id)

    assert response.status_code == 401
    assert log == []


async def test_another_conversations_widget_token_is_403(
        orchestrator_client_factory: OrchestratorClientFactory,
        phone_settings: Settings) -> None:
    async with orchestrator_client_factory(phone_settings) as client:
        mine = await create_conversation(client)
        theirs = await create_conversation(client)
        token = widget_token(phone_settings, mine).token

        response = await _dial(client, theirs, ANSWERS,
                               headers={"Authorization": f"Bearer {token}"})
        log = await events(client, theirs)

    assert response.status_code == 403
    assert log == []


async def test_the_widget_asks_for_a_call_to_its_own_visitor_with_its_token(
        orchestrator_client_factory: OrchestratorClientFactory,
        phone_settings: Settings) -> None:
    async with orchestrator_client_factory(phone_settings) as client:
        conversation_id = await create_conversation(client)
        token = widget_token(phone_settings, conversation_id).token

        response = await _dial(client, conversation_id, ANSWERS,
                               headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json()["outcome"] == "answered"
