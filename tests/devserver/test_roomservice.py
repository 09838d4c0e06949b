"""RoomService through livekit-api: every method, and LiveKit's answers to wrong grants."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from livekit import api, rtc

from devserver.process import DevServer
from tests.devserver.rtc_helpers import WAIT, joined, next_remote_audio, publishing_sine, settle


@pytest.fixture
def room() -> str:
    return f"rs-{uuid.uuid4().hex[:8]}"


async def test_create_room_returns_the_room_with_its_settings(
    devserver: DevServer, room: str
) -> None:
    async with devserver.api() as lk:
        created = await lk.room.create_room(
            api.CreateRoomRequest(name=room, empty_timeout=60, departure_timeout=5, metadata="m")
        )
    assert created.name == room
    assert created.sid.startswith("RM_")
    assert (created.empty_timeout, created.departure_timeout, created.metadata) == (60, 5, "m")


async def test_create_room_twice_gives_the_same_room(devserver: DevServer, room: str) -> None:
    async with devserver.api() as lk:
        first = await lk.room.create_room(api.CreateRoomRequest(name=room))
        second = await lk.room.create_room(api.CreateRoomRequest(name=room))
    assert first.sid == second.sid


async def test_list_rooms_filters_by_name(devserver: DevServer, room: str) -> None:
    async with devserver.api() as lk:
        await lk.room.create_room(api.CreateRoomRequest(name=room))
        await lk.room.create_room(api.CreateRoomRequest(name=room + "-other"))
        listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
        everything = await lk.room.list_rooms(api.ListRoomsRequest())
    assert [r.name for r in listed.rooms] == [room]
    assert {room, room + "-other"} <= {r.name for r in everything.rooms}


async def test_delete_room_disconnects_everyone(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room) as alice:
        gone: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        alice.on("disconnected", lambda reason: settle(gone, reason))
        async with devserver.api() as lk:
            await lk.room.delete_room(api.DeleteRoomRequest(room=room))
            assert await asyncio.wait_for(gone, WAIT) == rtc.DisconnectReason.ROOM_DELETED
            listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
    assert list(listed.rooms) == []


async def test_delete_unknown_room_is_not_found(devserver: DevServer, room: str) -> None:
    async with devserver.api() as lk:
        with pytest.raises(api.TwirpError) as err:
            await lk.room.delete_room(api.DeleteRoomRequest(room=room))
    assert (err.value.code, err.value.status) == ("not_found", 404)


async def test_list_and_get_participants_show_identity_kind_and_attributes(
    devserver: DevServer, room: str
) -> None:
    token = devserver.token("agent-7", room, kind="agent", attributes={"role": "ai"})
    agent = rtc.Room()
    await agent.connect(devserver.url, token)
    try:
        async with joined(devserver, "visitor", room), devserver.api() as lk:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            one = await lk.room.get_participant(
                api.RoomParticipantIdentity(room=room, identity="agent-7")
            )
    finally:
        await agent.disconnect()
    assert sorted(p.identity for p in listed.participants) == ["agent-7", "visitor"]
    assert one.kind == api.ParticipantInfo.Kind.AGENT
    assert dict(one.attributes) == {"role": "ai"}
    assert one.sid.startswith("PA_")


async def test_get_unknown_participant_is_not_found(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room), devserver.api() as lk:
        with pytest.raises(api.TwirpError) as err:
            await lk.room.get_participant(api.RoomParticipantIdentity(room=room, identity="nobody"))
    assert err.value.code == "not_found"


async def test_remove_participant_disconnects_it(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room) as alice:
        gone: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        alice.on("disconnected", lambda reason: settle(gone, reason))
        async with devserver.api() as lk:
            await lk.room.remove_participant(
                api.RoomParticipantIdentity(room=room, identity="alice")
            )
        assert await asyncio.wait_for(gone, WAIT) == rtc.DisconnectReason.PARTICIPANT_REMOVED


async def test_update_participant_changes_name_metadata_and_attributes(
    devserver: DevServer, room: str
) -> None:
    async with (
        joined(
            devserver,
            "alice",
            room,
        ),
        devserver.api() as lk,
    ):
        await lk.room.update_participant(
            api.UpdateParticipantRequest(
                room=room, identity="alice", attributes={"a": "1", "b": "2"}
            )
        )
        updated = await lk.room.update_participant(
            api.UpdateParticipantRequest(
                room=room, identity="alice", name="Alice", metadata="vip", attributes={"b": ""}
            )
        )
    assert (updated.name, updated.metadata) == ("Alice", "vip")
    assert dict(updated.attributes) == {"a": "1"}


async def test_update_subscriptions_subscribes_a_participant_that_does_not_auto_subscribe(
    devserver: DevServer, room: str
) -> None:
    async with joined(devserver, "alice", room) as alice, publishing_sine(alice) as publication:
        manual = rtc.Room()
        await manual.connect(
            devserver.url,
            devserver.token("manual", room),
            rtc.RoomOptions(auto_subscribe=False),
        )
        try:
            async with devserver.api() as lk:
                await lk.room.update_subscriptions(
                    api.UpdateSubscriptionsRequest(
                        room=room, identity="manual", track_sids=[publication.sid], subscribe=True
                    )
                )
            track = await next_remote_audio(manual)
            assert track.sid == publication.sid
        finally:
            await manual.disconnect()


async def test_update_room_metadata_reaches_clients(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room) as alice:
        changed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        alice.on("room_metadata_changed", lambda old, new: settle(changed, new))
        async with devserver.api() as lk:
            updated = await lk.room.update_room_metadata(
                api.UpdateRoomMetadataRequest(room=room, metadata="phase 2")
            )
        assert updated.metadata == "phase 2"
        assert await asyncio.wait_for(changed, WAIT) == "phase 2"


async def test_send_data_reaches_only_the_named_participants(
    devserver: DevServer, room: str
) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        to_alice: asyncio.Future[rtc.DataPacket] = asyncio.get_running_loop().create_future()
        to_bob: list[bytes] = []
        alice.on("data_received", lambda p: settle(to_alice, p))
        bob.on("data_received", lambda p: to_bob.append(p.data))
        async with devserver.api() as lk:
            await lk.room.send_data(
                api.SendDataRequest(
                    room=room,
                    data=b"from the server",
                    kind=api.DataPacket.Kind.RELIABLE,
                    topic="notice",
                    destination_identities=["alice"],
                )
            )
        packet = await asyncio.wait_for(to_alice, WAIT)
    assert (packet.data, packet.topic, packet.participant) == (b"from the server", "notice", None)
    assert to_bob == []


async def test_mute_published_track_mutes_it_for_everyone(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        muted = asyncio.Event()
        bob.on("track_muted", lambda p, pub: muted.set())
        async with publishing_sine(alice) as publication, devserver.api() as lk:
            await next_remote_audio(bob)
            await lk.room.mute_published_track(
                api.MuteRoomTrackRequest(
                    room=room, identity="alice", track_sid=publication.sid, muted=True
                )
            )
            await asyncio.wait_for(muted.wait(), WAIT)


async def test_admin_of_one_room_cannot_administer_another(devserver: DevServer, room: str) -> None:
    token = devserver.grant_token(room_admin=True, room=room + "-a")
    async with joined(devserver, "alice", room), devserver.api(token) as lk:
        with pytest.raises(api.TwirpError) as err:
            await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    assert (err.value.code, err.value.status) == ("unauthenticated", 401)


@pytest.mark.parametrize(
    ("grants", "call"),
    [
        ({"room_join": True}, "create_room"),
        ({"room_admin": True}, "list_rooms"),
        ({"room_list": True}, "delete_room"),
        ({"room_create": True}, "update_room_metadata"),
        ({"room_create": True, "room_list": True}, "send_data"),
    ],
)
async def test_calls_without_their_grant_are_refused(
    devserver: DevServer, room: str, grants: dict[str, object], call: str
) -> None:
    requests = {
        "create_room": api.CreateRoomRequest(name=room),
        "list_rooms": api.ListRoomsRequest(),
        "delete_room": api.DeleteRoomRequest(room=room),
        "update_room_metadata": api.UpdateRoomMetadataRequest(room=room, metadata="x"),
        "send_data": api.SendDataRequest(room=room, data=b"x"),
    }
    async with devserver.api(devserver.grant_token(room=room, **grants)) as lk:
        with pytest.raises(api.TwirpError) as err:
            await getattr(lk.room, call)(requests[call])
    assert (err.value.code, err.value.message) == ("unauthenticated", "permissions denied")


async def test_a_token_signed_with_another_secret_is_refused(
    devserver: DevServer, room: str
) -> None:
    forged = (
        api.AccessToken(devserver.api_key, "not-the-secret")
        .with_grants(api.VideoGrants(room_create=True))
        .to_jwt()
    )
    async with devserver.api(forged) as lk:
        with pytest.raises(api.TwirpError) as err:
            await lk.room.create_room(api.CreateRoomRequest(name=room))
    assert (err.value.code, err.value.status) == ("unauthenticated", 401)
