"""Bad input gets LiveKit's answer, and the server keeps serving everyone else."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import aiohttp
import pytest
from livekit import api, rtc
from livekit.protocol import rtc as proto_rtc

from devserver.process import DevServer
from tests.devserver.rtc_helpers import WAIT, joined, set_if, settle


@pytest.fixture
def room() -> str:
    return f"bad-{uuid.uuid4().hex[:8]}"


async def still_serving(devserver: DevServer, room: str) -> None:
    """Two fresh participants can still exchange a data packet."""
    async with joined(devserver, "ok-a", room) as a, joined(devserver, "ok-b", room) as b:
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        b.on("data_received", lambda p: settle(got, p.data))
        await a.local_participant.publish_data(b"still here")
        assert await asyncio.wait_for(got, WAIT) == b"still here"


async def test_a_malformed_protobuf_body_is_answered_malformed(
    devserver: DevServer, room: str
) -> None:
    token = devserver.grant_token(room_create=True)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{devserver.http_url}/twirp/livekit.RoomService/CreateRoom",
            data=b"\xff\xff\xff\xff",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/protobuf"},
        ) as resp:
            body = await resp.json()
    assert resp.status == 400
    assert body["code"] == "malformed"
    await still_serving(devserver, room)


async def test_a_json_body_is_understood(devserver: DevServer, room: str) -> None:
    token = devserver.grant_token(room_create=True)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{devserver.http_url}/twirp/livekit.RoomService/CreateRoom",
            json={"name": room, "emptyTimeout": 30},
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            body = await resp.json()
    assert resp.status == 200
    assert (body["name"], body["emptyTimeout"]) == (room, 30)


async def test_an_unknown_method_is_a_bad_route(devserver: DevServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{devserver.http_url}/twirp/livekit.RoomService/Nope",
            data=b"",
            headers={"Content-Type": "application/protobuf"},
        ) as resp:
            body = await resp.json()
    assert (resp.status, body["code"]) == (404, "bad_route")


async def test_an_expired_token_is_refused_by_the_api(devserver: DevServer, room: str) -> None:
    expired = devserver.grant_token(room_create=True, ttl=timedelta(minutes=-5))
    async with devserver.api(expired) as lk:
        with pytest.raises(api.TwirpError) as err:
            await lk.room.create_room(api.CreateRoomRequest(name=room))
    assert (err.value.code, err.value.status) == ("unauthenticated", 401)


async def test_garbage_instead_of_a_token_is_refused(devserver: DevServer, room: str) -> None:
    async with devserver.api("not-a-jwt") as lk:
        with pytest.raises(api.TwirpError) as err:
            await lk.room.list_rooms(api.ListRoomsRequest())
    assert err.value.code == "unauthenticated"


async def test_an_expired_token_cannot_join(devserver: DevServer, room: str) -> None:
    client = rtc.Room()
    with pytest.raises(rtc.ConnectError):
        await client.connect(
            devserver.url, devserver.token("late", room, ttl=timedelta(minutes=-5))
        )
    await still_serving(devserver, room)


async def test_a_token_without_join_cannot_join(devserver: DevServer, room: str) -> None:
    client = rtc.Room()
    token = devserver.grant_token(identity="nosy", room=room, room_admin=True)
    with pytest.raises(rtc.ConnectError):
        await client.connect(devserver.url, token)


async def test_unknown_rooms_are_not_found(devserver: DevServer, room: str) -> None:
    async with devserver.api() as lk:
        with pytest.raises(api.TwirpError) as metadata_err:
            await lk.room.update_room_metadata(
                api.UpdateRoomMetadataRequest(room=room, metadata="x")
            )
        with pytest.raises(api.TwirpError) as data_err:
            await lk.room.send_data(api.SendDataRequest(room=room, data=b"x"))
        with pytest.raises(api.TwirpError) as remove_err:
            await lk.room.remove_participant(api.RoomParticipantIdentity(room=room, identity="x"))
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    assert [metadata_err.value.code, data_err.value.code, remove_err.value.code] == [
        "not_found"
    ] * 3
    assert list(listed.participants) == []


async def test_validate_endpoints_lead_clients_to_the_two_connection_flow(
    devserver: DevServer, room: str
) -> None:
    token = devserver.token("v", room)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{devserver.http_url}/rtc/v1/validate?access_token={token}") as v1:
            v1_text = await v1.text()
        async with http.get(f"{devserver.http_url}/rtc/validate?access_token={token}") as v0:
            v0_text = await v0.text()
        async with http.get(f"{devserver.http_url}/rtc/validate?access_token=bad") as bad:
            pass
        async with http.get(f"{devserver.http_url}/settings/regions") as regions:
            regions_body = await regions.json()
    assert v1.status == 404 and "requested room does not exist" not in v1_text
    assert (v0.status, v0_text) == (200, "success")
    assert bad.status == 401
    assert (regions.status, regions_body) == (200, {"regions": []})


async def test_a_client_dropping_mid_negotiation_is_removed_and_others_carry_on(
    devserver: DevServer, room: str
) -> None:
    async with joined(devserver, "watcher", room) as watcher:
        arrived, left = asyncio.Event(), asyncio.Event()
        watcher.on("participant_connected", lambda p: set_if(arrived, p.identity == "dropper"))
        watcher.on("participant_disconnected", lambda p: set_if(left, p.identity == "dropper"))
        # A socket that joins, takes the server's offer, and vanishes without answering.
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(
                f"{devserver.url}/rtc?access_token={devserver.token('dropper', room)}&protocol=16"
            )
            while True:
                message = proto_rtc.SignalResponse.FromString(await ws.receive_bytes(timeout=WAIT))
                if message.WhichOneof("message") == "offer":
                    break
            await ws.close()
        await asyncio.wait_for(arrived.wait(), WAIT)
        await asyncio.wait_for(left.wait(), WAIT)
    await still_serving(devserver, room)


async def test_a_client_that_goes_silent_is_disconnected_after_the_ping_timeout(
    devserver: DevServer, room: str
) -> None:
    async with joined(devserver, "watcher", room) as watcher:
        left = asyncio.Event()
        watcher.on("participant_disconnected", lambda p: set_if(left, p.identity == "silent"))
        # A socket that joins, then never pings nor answers (a frozen client or a dead network).
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(
                f"{devserver.url}/rtc?access_token={devserver.token('silent', room)}",
                autoping=False,
            )
            first = proto_rtc.SignalResponse.FromString(await ws.receive_bytes(timeout=WAIT))
            assert first.WhichOneof("message") == "join"
            assert first.join.ping_timeout > 0
            await asyncio.wait_for(left.wait(), first.join.ping_timeout + WAIT)
            await ws.close()
