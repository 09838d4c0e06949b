"""Simulated SIP through livekit-api and the rtc SDK: trunks, every call outcome, transfers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from google.protobuf.duration_pb2 import Duration
from livekit import api, rtc
from livekit.protocol import sip

from devserver.process import DevServer
from tests.devserver.agent_helpers import write_tone_wav
from tests.devserver.conftest import LkApi
from tests.devserver.rtc_helpers import (
    WAIT,
    joined,
    listen,
    next_remote_audio,
    publishing_sine,
    settle,
)

pytestmark = pytest.mark.realtime

ANSWERS = "+15550100001"
BUSY = "+15550100486"
DECLINES = "+15550100603"
NO_ANSWER = "+15550100408"
UNAVAILABLE = "+15550100480"
HANGS_UP = "+15550100201"  # matched by the pattern +1555010020?
PLAYS_TONE = "+15550100300"
SENDS_DTMF = "+15550100700"
TRANSFER_OK = "tel:+15550109999"
TRANSFER_BUSY = "tel:+15550108486"
TRANSFER_REPORTED = "tel:+15550107480"
TRANSFER_EMPTY = "tel:+15550106200"

SCRIPT = f"""
default: {{answer_after_ms: 50}}
numbers:
  "{ANSWERS}": {{ring_after_ms: 50, answer_after_ms: 400}}
  "{BUSY}": {{ring_after_ms: 50, answer_after_ms: 200, status: 486}}
  "{DECLINES}": {{answer_after_ms: 100, status: 603}}
  "{NO_ANSWER}": {{ring_after_ms: 50, no_answer: true}}
  "{UNAVAILABLE}": {{answer_after_ms: 50, status: 480}}
  "+1555010020?": {{answer_after_ms: 100, hangup_after_s: 1}}
  "{PLAYS_TONE}": {{answer_after_ms: 100, audio: tone.wav, audio_loop: true}}
  "{SENDS_DTMF}": {{answer_after_ms: 100, dtmf: "12#", dtmf_after_ms: 300}}
transfers:
  "{TRANSFER_OK}": {{status: 200}}
  "{TRANSFER_REPORTED}": {{status: 480, as_response: true}}
  "{TRANSFER_EMPTY}": {{status: 200, empty_response: true}}
  "*": {{status: 486}}
"""


@pytest.fixture(scope="module")
def server(module_dir: Path) -> Iterator[DevServer]:
    """A devserver of its own, so replacing its SIP script touches no other suite."""
    folder = module_dir / "sip"
    folder.mkdir()
    write_tone_wav(folder / "tone.wav", frequency=1000.0, seconds=1.0, rate=8000)
    (folder / "script.yaml").write_text(SCRIPT)
    devserver = DevServer(sip_script=folder / "script.yaml", log_path=folder / "devserver.log")
    devserver.start()
    yield devserver
    devserver.stop()


@pytest.fixture
async def lk(server: DevServer, lkapi_factory: LkApi) -> api.LiveKitAPI:
    return lkapi_factory(server)


@pytest.fixture
async def trunk_id(lk: api.LiveKitAPI) -> AsyncIterator[str]:
    trunk = await lk.sip.create_outbound_trunk(
        sip.CreateSIPOutboundTrunkRequest(
            trunk=sip.SIPOutboundTrunkInfo(
                name="carrier", address="sip.carrier.example", numbers=["+15550000000"]
            )
        )
    )
    yield trunk.sip_trunk_id
    await lk.sip.delete_trunk(sip.DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))


def dial(trunk: str, number: str, room: str, **fields: Any) -> sip.CreateSIPParticipantRequest:
    return sip.CreateSIPParticipantRequest(
        sip_trunk_id=trunk,
        sip_call_to=number,
        room_name=room,
        participant_identity="phone",
        **fields,
    )


async def raw_call(server: DevServer, method: str, request: Any, response: Any, token: str) -> Any:
    """A Twirp call through livekit-api's client with a token of the test's choosing."""
    async with aiohttp.ClientSession() as session:
        client = api.twirp_client.TwirpClient(session, server.http_url, "livekit")
        return await client.request(
            "SIP", method, request, {"Authorization": f"Bearer {token}"}, response
        )


def token_with(server: DevServer, *, video: api.VideoGrants, sip_grants: api.SIPGrants) -> str:
    return (
        api.AccessToken(server.api_key, server.api_secret)
        .with_grants(video)
        .with_sip_grants(sip_grants)
        .to_jwt()
    )


class CallWatcher:
    """What an SDK participant sees of the SIP participant: statuses, DTMF, leaving."""

    def __init__(self, room: rtc.Room) -> None:
        self.statuses: list[str] = []
        self.status_changed = asyncio.Event()
        self.left = asyncio.Event()
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        room.on("participant_connected", self._on_participant)
        room.on("participant_attributes_changed", lambda _, p: self._on_participant(p))
        room.on("participant_disconnected", lambda p: p.identity == "phone" and self.left.set())
        room.on("sip_dtmf_received", lambda dtmf: self.digits.put_nowait(dtmf.digit))

    def _on_participant(self, participant: rtc.RemoteParticipant) -> None:
        status = participant.attributes.get("sip.callStatus")
        if participant.identity == "phone" and status and status not in self.statuses[-1:]:
            self.statuses.append(status)
            self.status_changed.set()

    async def reaches(self, status: str) -> None:
        async with asyncio.timeout(WAIT):
            while status not in self.statuses:
                self.status_changed.clear()
                await self.status_changed.wait()


@contextlib.asynccontextmanager
async def watching(server: DevServer, room: str) -> AsyncIterator[CallWatcher]:
    async with joined(server, "visitor", room) as client:
        yield CallWatcher(client)


async def test_trunks_can_be_created_listed_and_deleted(lk: api.LiveKitAPI) -> None:
    info = sip.SIPOutboundTrunkInfo(name="t", address="sip.example.com", numbers=["+15551112222"])
    created = await lk.sip.create_outbound_trunk(sip.CreateSIPOutboundTrunkRequest(trunk=info))
    listed = await lk.sip.list_outbound_trunk(sip.ListSIPOutboundTrunkRequest())
    await lk.sip.delete_trunk(sip.DeleteSIPTrunkRequest(sip_trunk_id=created.sip_trunk_id))
    after = await lk.sip.list_outbound_trunk(sip.ListSIPOutboundTrunkRequest())
    assert created.sip_trunk_id.startswith("ST_")
    assert created.sip_trunk_id in [t.sip_trunk_id for t in listed.items]
    assert created.sip_trunk_id not in [t.sip_trunk_id for t in after.items]


async def test_a_trunk_needs_numbers_and_an_address(lk: api.LiveKitAPI) -> None:
    with pytest.raises(api.TwirpError) as refused:
        await lk.sip.create_outbound_trunk(
            sip.CreateSIPOutboundTrunkRequest(trunk=sip.SIPOutboundTrunkInfo(name="t"))
        )
    assert refused.value.code == "invalid_argument"


async def test_trunk_calls_need_the_sip_admin_grant(server: DevServer) -> None:
    token = token_with(server, video=api.VideoGrants(), sip_grants=api.SIPGrants(call=True))
    request = sip.CreateSIPOutboundTrunkRequest(
        trunk=sip.SIPOutboundTrunkInfo(address="sip.example.com", numbers=["+15551112222"])
    )
    with pytest.raises(api.TwirpError) as refused:
        await raw_call(server, "CreateSIPOutboundTrunk", request, sip.SIPOutboundTrunkInfo, token)
    assert refused.value.code == "unauthenticated"


async def test_dialling_needs_the_sip_call_grant(
    server: DevServer, trunk_id: str, room_name: str
) -> None:
    token = token_with(server, video=api.VideoGrants(), sip_grants=api.SIPGrants(admin=True))
    request = dial(trunk_id, ANSWERS, room_name)
    with pytest.raises(api.TwirpError) as refused:
        await raw_call(server, "CreateSIPParticipant", request, sip.SIPParticipantInfo, token)
    assert refused.value.code == "unauthenticated"


async def test_dialling_through_an_unknown_trunk_is_not_found(
    lk: api.LiveKitAPI, room_name: str
) -> None:
    with pytest.raises(api.TwirpError) as refused:
        await lk.sip.create_sip_participant(dial("ST_unknown", ANSWERS, room_name))
    assert refused.value.code == "not_found"


async def test_waiting_until_answered_returns_an_active_sip_participant(
    lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    created = await lk.sip.create_sip_participant(
        dial(
            trunk_id,
            ANSWERS,
            room_name,
            wait_until_answered=True,
            participant_attributes={"a": "b"},
        )
    )
    phone = await lk.room.get_participant(
        api.RoomParticipantIdentity(room=room_name, identity="phone")
    )
    assert created.participant_identity == "phone" and created.sip_call_id.startswith("SCL_")
    assert phone.kind == api.ParticipantInfo.Kind.SIP
    assert phone.attributes["sip.callStatus"] == "active"
    assert phone.attributes["sip.callID"] == created.sip_call_id
    assert phone.attributes["sip.phoneNumber"] == ANSWERS
    assert phone.attributes["sip.trunkID"] == trunk_id
    assert phone.attributes["sip.trunkPhoneNumber"] == "+15550000000"
    assert phone.attributes["a"] == "b"


async def test_without_waiting_the_participant_joins_dialling_and_turns_active_on_answer(
    server: DevServer, lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    async with watching(server, room_name) as call:
        await lk.sip.create_sip_participant(dial(trunk_id, ANSWERS, room_name))
        await call.reaches("active")
    assert call.statuses == ["dialing", "ringing", "active"]


async def test_a_busy_number_fails_with_486_as_resource_exhausted(
    lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    with pytest.raises(api.SipCallError) as failed:
        await lk.sip.create_sip_participant(
            dial(trunk_id, BUSY, room_name, wait_until_answered=True)
        )
    assert (failed.value.code, failed.value.sip_status_code) == ("resource_exhausted", 486)
    assert failed.value.sip_status == "Busy Here"


async def test_a_declined_call_fails_with_603_as_permission_denied(
    lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    with pytest.raises(api.SipCallError) as failed:
        await lk.sip.create_sip_participant(
            dial(trunk_id, DECLINES, room_name, wait_until_answered=True)
        )
    assert (failed.value.code, failed.value.sip_status_code) == ("permission_denied", 603)


async def test_an_unanswered_call_fails_with_408_after_the_ringing_timeout(
    lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    with pytest.raises(api.SipCallError) as failed:
        await lk.sip.create_sip_participant(
            dial(
                trunk_id,
                NO_ANSWER,
                room_name,
                wait_until_answered=True,
                ringing_timeout=Duration(seconds=1),
            )
        )
    assert (failed.value.code, failed.value.sip_status_code) == ("deadline_exceeded", 408)


async def test_an_unavailable_number_fails_with_its_own_status(
    lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    with pytest.raises(api.SipCallError) as failed:
        await lk.sip.create_sip_participant(
            dial(trunk_id, UNAVAILABLE, room_name, wait_until_answered=True)
        )
    assert (failed.value.code, failed.value.sip_status_code) == ("resource_exhausted", 480)
    assert failed.value.sip_status == "Temporarily Unavailable"


async def test_a_failed_call_without_waiting_takes_the_participant_out_of_the_room(
    server: DevServer, lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    async with watching(server, room_name) as call:
        created = await lk.sip.create_sip_participant(dial(trunk_id, BUSY, room_name))
        await asyncio.wait_for(call.left.wait(), WAIT)
    assert created.participant_identity == "phone"
    assert "active" not in call.statuses


async def test_the_far_end_hangs_up_after_its_scripted_time(
    server: DevServer, lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    async with watching(server, room_name) as call:
        await lk.sip.create_sip_participant(dial(trunk_id, HANGS_UP, room_name))
        await asyncio.wait_for(call.left.wait(), WAIT)
    assert call.statuses[-2:] == ["active", "hangup"]


async def test_the_far_ends_audio_is_heard_in_the_room(
    server: DevServer, lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    async with joined(server, "visitor", room_name) as client:
        await lk.sip.create_sip_participant(
            dial(trunk_id, PLAYS_TONE, room_name, wait_until_answered=True)
        )
        heard = await listen(await next_remote_audio(client), 1.0)
    assert heard.rms > 1000
    assert abs(heard.dominant_hz - 1000.0) < 20


async def test_dtmf_from_the_far_end_reaches_participants(
    server: DevServer, lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    async with watching(server, room_name) as call:
        await lk.sip.create_sip_participant(dial(trunk_id, SENDS_DTMF, room_name))
        digits = [await asyncio.wait_for(call.digits.get(), WAIT) for _ in range(3)]
    assert digits == ["1", "2", "#"]


async def test_a_successful_transfer_reports_success_and_ends_the_call(
    server: DevServer, lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    async with watching(server, room_name) as call:
        await lk.sip.create_sip_participant(
            dial(trunk_id, ANSWERS, room_name, wait_until_answered=True)
        )
        result = await lk.sip.transfer_sip_participant(
            sip.TransferSIPParticipantRequest(
                room_name=room_name, participant_identity="phone", transfer_to=TRANSFER_OK
            )
        )
        await asyncio.wait_for(call.left.wait(), WAIT)
    assert result.status == sip.SIPTransferStatus.STS_TRANSFER_SUCCESSFUL
    assert result.transfer_id.startswith("STR_")


async def test_a_rejected_transfer_fails_with_its_sip_status(
    lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    await lk.sip.create_sip_participant(
        dial(trunk_id, ANSWERS, room_name, wait_until_answered=True)
    )
    with pytest.raises(api.SipCallError) as failed:
        await lk.sip.transfer_sip_participant(
            sip.TransferSIPParticipantRequest(
                room_name=room_name, participant_identity="phone", transfer_to=TRANSFER_BUSY
            )
        )
    assert (failed.value.code, failed.value.sip_status_code) == ("resource_exhausted", 486)


async def test_a_transfer_can_fail_in_its_response_without_an_error(
    lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    await lk.sip.create_sip_participant(
        dial(trunk_id, ANSWERS, room_name, wait_until_answered=True)
    )
    result = await lk.sip.transfer_sip_participant(
        sip.TransferSIPParticipantRequest(
            room_name=room_name, participant_identity="phone", transfer_to=TRANSFER_REPORTED
        )
    )
    assert result.status == sip.SIPTransferStatus.STS_TRANSFER_FAILED
    assert result.sip_status.code == 480


async def test_a_transfer_needs_room_admin_for_the_calls_room(
    server: DevServer, lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    await lk.sip.create_sip_participant(
        dial(trunk_id, ANSWERS, room_name, wait_until_answered=True)
    )
    token = token_with(
        server,
        video=api.VideoGrants(room_admin=True, room="another-room"),
        sip_grants=api.SIPGrants(call=True),
    )
    request = sip.TransferSIPParticipantRequest(
        room_name=room_name, participant_identity="phone", transfer_to=TRANSFER_OK
    )
    with pytest.raises(api.TwirpError) as refused:
        await raw_call(
            server, "TransferSIPParticipant", request, sip.TransferSIPParticipantResponse, token
        )
    assert refused.value.code == "unauthenticated"


async def post_script(server: DevServer, script: dict[str, Any], token: str) -> int:
    async with aiohttp.ClientSession() as session:
        reply = await session.post(
            f"{server.http_url}/devserver/sip/script",
            data=json.dumps(script),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        return reply.status


async def test_a_test_can_replace_the_script_at_run_time(
    server: DevServer, lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    admin = token_with(server, video=api.VideoGrants(), sip_grants=api.SIPGrants(admin=True))
    async with aiohttp.ClientSession() as session:
        reply = await session.get(
            f"{server.http_url}/devserver/sip/script",
            headers={"Authorization": f"Bearer {admin}"},
        )
        original = await reply.json()
    try:
        assert await post_script(server, {"numbers": {ANSWERS: {"status": 603}}}, admin) == 200
        with pytest.raises(api.SipCallError) as failed:
            await lk.sip.create_sip_participant(
                dial(trunk_id, ANSWERS, room_name, wait_until_answered=True)
            )
    finally:
        assert await post_script(server, original, admin) == 200
    assert failed.value.sip_status_code == 603


async def test_replacing_the_script_needs_the_sip_admin_grant(server: DevServer) -> None:
    caller = token_with(server, video=api.VideoGrants(), sip_grants=api.SIPGrants(call=True))
    assert await post_script(server, {}, caller) == 401


async def test_a_hidden_phone_number_is_left_out_of_the_attributes(
    lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    await lk.sip.create_sip_participant(
        dial(trunk_id, ANSWERS, room_name, wait_until_answered=True, hide_phone_number=True)
    )
    phone = await lk.room.get_participant(
        api.RoomParticipantIdentity(room=room_name, identity="phone")
    )
    assert "sip.phoneNumber" not in phone.attributes
    assert "sip.trunkPhoneNumber" not in phone.attributes
    assert phone.attributes["sip.callStatus"] == "active"


async def test_a_call_ends_at_its_max_call_duration(
    server: DevServer, lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    async with watching(server, room_name) as call:
        await lk.sip.create_sip_participant(
            dial(trunk_id, ANSWERS, room_name, max_call_duration=Duration(seconds=1))
        )
        await asyncio.wait_for(call.left.wait(), WAIT)
    assert call.statuses[-2:] == ["active", "hangup"]


async def test_a_transfer_can_succeed_with_an_empty_response_as_livekit_v1_13_5_answers(
    lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    await lk.sip.create_sip_participant(
        dial(trunk_id, ANSWERS, room_name, wait_until_answered=True)
    )
    result = await lk.sip.transfer_sip_participant(
        sip.TransferSIPParticipantRequest(
            room_name=room_name, participant_identity="phone", transfer_to=TRANSFER_EMPTY
        )
    )
    assert result == sip.TransferSIPParticipantResponse()


async def test_the_calls_listing_shows_each_calls_room_number_and_request_headers(
    server: DevServer, lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    headers = {"X-Baton-Conversation": room_name}
    await lk.sip.create_sip_participant(
        dial(trunk_id, ANSWERS, room_name, wait_until_answered=True, headers=headers)
    )
    busy_request = dial(trunk_id, BUSY, room_name, wait_until_answered=True)
    busy_request.participant_identity = "busy-phone"
    with pytest.raises(api.SipCallError):
        await lk.sip.create_sip_participant(busy_request)

    calls = [c for c in await asyncio.to_thread(server.sip_calls) if c["room"] == room_name]

    answered, busy = calls
    assert (answered["to"], answered["trunk_id"]) == (ANSWERS, trunk_id)
    assert answered["headers"] == headers
    assert answered["participant_identity"] == "phone"
    assert (answered["status"], answered["ended"]) == ("active", False)
    assert (busy["to"], busy["headers"], busy["ended"]) == (BUSY, {}, True)


async def test_the_calls_listing_needs_the_sip_admin_grant(server: DevServer) -> None:
    caller = token_with(server, video=api.VideoGrants(), sip_grants=api.SIPGrants(call=True))
    async with aiohttp.ClientSession() as session:
        reply = await session.get(
            f"{server.http_url}/devserver/sip/calls",
            headers={"Authorization": f"Bearer {caller}"},
        )
    assert reply.status == 401


async def test_an_answered_call_hears_the_room_so_publishers_see_their_tracks_subscribed(
    server: DevServer, lk: api.LiveKitAPI, trunk_id: str, room_name: str
) -> None:
    """LiveKit SIP subscribes to the room's audio once the call is established; an agent
    waits for its track to be subscribed before it speaks."""
    async with joined(server, "agent", room_name) as agent:
        subscribed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        agent.on("local_track_subscribed", lambda track: settle(subscribed, track.sid))
        async with publishing_sine(agent) as publication:
            await lk.sip.create_sip_participant(
                dial(trunk_id, ANSWERS, room_name, wait_until_answered=True)
            )
            assert await asyncio.wait_for(subscribed, WAIT) == publication.sid
