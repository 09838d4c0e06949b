"""Python rtc SDK participants talk through the devserver: data, text streams, RPC and audio."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest
from livekit import api, rtc
from livekit.protocol import rtc as proto_rtc
from livekit.rtc._proto.stats_pb2 import DtlsTransportState

from devserver.process import DevServer
from tests.devserver.rtc_helpers import (
    WAIT,
    goes_quiet,
    joined,
    listen,
    next_remote_audio,
    publishing_sine,
    set_if,
    settle,
)

pytestmark = pytest.mark.realtime


@pytest.fixture
def room() -> str:
    return f"rtc-{uuid.uuid4().hex[:8]}"


async def test_a_data_packet_reaches_the_other_participant(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        received: asyncio.Future[rtc.DataPacket] = asyncio.get_running_loop().create_future()
        bob.on("data_received", lambda p: settle(received, p))
        await alice.local_participant.publish_data(b"hello", reliable=True, topic="greeting")
        packet = await asyncio.wait_for(received, WAIT)
    assert packet.data == b"hello"
    assert packet.topic == "greeting"
    assert packet.participant is not None and packet.participant.identity == "alice"


async def test_a_data_packet_goes_only_to_its_destination(devserver: DevServer, room: str) -> None:
    async with (
        joined(devserver, "alice", room) as alice,
        joined(devserver, "bob", room) as bob,
        joined(devserver, "carol", room) as carol,
    ):
        to_bob: list[bytes] = []
        bob_has_all = asyncio.Event()
        carol_has_all = asyncio.Event()
        to_carol: list[bytes] = []

        def on_bob(packet: rtc.DataPacket) -> None:
            to_bob.append(packet.data)
            if packet.data == b"for all":
                bob_has_all.set()

        def on_carol(packet: rtc.DataPacket) -> None:
            to_carol.append(packet.data)
            if packet.data == b"for all":
                carol_has_all.set()

        bob.on("data_received", on_bob)
        carol.on("data_received", on_carol)
        await alice.local_participant.publish_data(b"secret", destination_identities=["carol"])
        # The reliable channel keeps order: once "for all" is in, "secret" would have been too.
        await alice.local_participant.publish_data(b"for all")
        await asyncio.wait_for(asyncio.gather(bob_has_all.wait(), carol_has_all.wait()), WAIT)
    assert to_carol == [b"secret", b"for all"]
    assert to_bob == [b"for all"]


async def test_a_chat_text_stream_arrives_whole(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        text: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

        async def read(reader: rtc.TextStreamReader, sender: str) -> None:
            text.set_result((await reader.read_all(), sender))

        tasks: set[asyncio.Task[None]] = set()
        bob.register_text_stream_handler(
            "lk.chat", lambda r, s: tasks.add(asyncio.create_task(read(r, s)))
        )
        long_text = "hello " * 5000  # several chunks
        await alice.local_participant.send_text(long_text, topic="lk.chat")
        assert await asyncio.wait_for(text, WAIT) == (long_text, "alice")


async def test_a_byte_stream_arrives_whole(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        payload = bytes(range(256)) * 200
        got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def read(reader: rtc.ByteStreamReader, sender: str) -> None:
            got.set_result(b"".join([chunk async for chunk in reader]))

        tasks: set[asyncio.Task[None]] = set()
        bob.register_byte_stream_handler(
            "files", lambda r, s: tasks.add(asyncio.create_task(read(r, s)))
        )
        writer = await alice.local_participant.stream_bytes("blob.bin", topic="files")
        await writer.write(payload)
        await writer.aclose()
        assert await asyncio.wait_for(got, WAIT) == payload


async def test_an_rpc_call_returns_the_callee_answer(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:

        @bob.local_participant.register_rpc_method("shout")
        async def shout(data: rtc.RpcInvocationData) -> str:
            return f"{data.payload.upper()} from {data.caller_identity}"

        answer = await alice.local_participant.perform_rpc(
            destination_identity="bob", method="shout", payload="hi", response_timeout=WAIT
        )
    assert answer == "HI from alice"


async def test_published_audio_arrives_with_its_frequency(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        async with publishing_sine(alice, 440.0):
            heard = await listen(await next_remote_audio(bob))
    assert heard.rms > 1000
    assert abs(heard.dominant_hz - 440.0) < 10


async def test_a_late_joiner_receives_audio_published_before_it_came(
    devserver: DevServer, room: str
) -> None:
    async with joined(devserver, "alice", room) as alice, publishing_sine(alice, 660.0):
        async with joined(devserver, "late", room) as late:
            heard = await listen(await next_remote_audio(late))
    assert heard.rms > 1000
    assert abs(heard.dominant_hz - 660.0) < 10


async def test_audio_comes_with_the_publisher_identity(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        subscribed: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        bob.on(
            "track_subscribed",
            lambda t, pub, p: settle(subscribed, (p.identity, pub.sid)),
        )
        async with publishing_sine(alice) as publication:
            identity, sid = await asyncio.wait_for(subscribed, WAIT)
    assert (identity, sid) == ("alice", publication.sid)


async def test_a_token_without_subscribe_gets_no_audio(devserver: DevServer, room: str) -> None:
    async with (
        joined(devserver, "alice", room) as alice,
        joined(devserver, "deaf", room, can_subscribe=False) as deaf,
        joined(devserver, "bob", room) as bob,
        publishing_sine(alice),
    ):
        await next_remote_audio(bob)
        # The publication is announced to both; only the one allowed to subscribe gets media.
        publications = deaf.remote_participants["alice"].track_publications.values()
        assert [p.subscribed for p in publications] == [False]


async def test_revoking_subscribe_stops_audio_at_once(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        async with publishing_sine(alice):
            track = await next_remote_audio(bob)
            revoked = asyncio.Event()
            bob.on("participant_permissions_changed", lambda *_: revoked.set())
            async with devserver.api() as lk:
                await lk.room.update_participant(
                    api.UpdateParticipantRequest(
                        room=room,
                        identity="bob",
                        permission=api.ParticipantPermission(
                            can_subscribe=False, can_publish=True, can_publish_data=True
                        ),
                    )
                )
            await asyncio.wait_for(revoked.wait(), WAIT)
            assert not bob.local_participant.permissions.can_subscribe
            await goes_quiet(track)


async def test_a_second_join_with_the_same_identity_evicts_the_first(
    devserver: DevServer, room: str
) -> None:
    async with joined(devserver, "alice", room) as first:
        gone: asyncio.Future[rtc.DisconnectReason.ValueType] = (
            asyncio.get_running_loop().create_future()
        )
        first.on("disconnected", lambda reason: settle(gone, reason))
        async with joined(devserver, "alice", room) as second:
            reason = await asyncio.wait_for(gone, WAIT)
            assert second.isconnected()
    assert reason == rtc.DisconnectReason.DUPLICATE_IDENTITY


async def test_token_identity_kind_and_attributes_reach_other_participants(
    devserver: DevServer, room: str
) -> None:
    token = devserver.token(
        "agent-1",
        room,
        kind="agent",
        name="Assistant",
        metadata="m",
        attributes={"lk.agent.state": "listening"},
    )
    agent = rtc.Room()
    await agent.connect(devserver.url, token)
    try:
        async with joined(devserver, "visitor", room) as visitor:
            seen = visitor.remote_participants["agent-1"]
            assert seen.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
            assert (seen.name, seen.metadata) == ("Assistant", "m")
            assert seen.attributes == {"lk.agent.state": "listening"}
    finally:
        await agent.disconnect()


async def test_server_side_attribute_updates_reach_every_client(
    devserver: DevServer, room: str
) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        changed: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        bob.on(
            "participant_attributes_changed",
            lambda attrs, p: settle(changed, dict(p.attributes)),
        )
        own = asyncio.Event()
        alice.on("participant_metadata_changed", lambda p, old, new: own.set())
        async with devserver.api() as lk:
            await lk.room.update_participant(
                api.UpdateParticipantRequest(
                    room=room, identity="alice", attributes={"conv": "c-1"}, metadata="meta"
                )
            )
        assert await asyncio.wait_for(changed, WAIT) == {"conv": "c-1"}
        await asyncio.wait_for(own.wait(), WAIT)
        assert alice.local_participant.metadata == "meta"


async def test_a_client_may_set_its_own_attributes_when_its_token_allows(
    devserver: DevServer, room: str
) -> None:
    async with (
        joined(devserver, "alice", room, can_update_own_metadata=True) as alice,
        joined(devserver, "bob", room) as bob,
    ):
        changed: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        bob.on(
            "participant_attributes_changed",
            lambda attrs, p: settle(changed, dict(p.attributes)),
        )
        await alice.local_participant.set_attributes({"mood": "happy"})
        assert await asyncio.wait_for(changed, WAIT) == {"mood": "happy"}


async def test_a_hidden_participant_is_not_seen(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "ghost", room, hidden=True), joined(devserver, "bob", room) as bob:
        assert "ghost" not in bob.remote_participants


async def test_a_participant_that_leaves_is_gone_for_the_others(
    devserver: DevServer, room: str
) -> None:
    async with joined(devserver, "bob", room) as bob:
        left = asyncio.Event()
        bob.on("participant_disconnected", lambda p: set_if(left, p.identity == "alice"))
        async with joined(devserver, "alice", room):
            pass
        await asyncio.wait_for(left.wait(), WAIT)
        assert "alice" not in bob.remote_participants


async def test_unpublishing_removes_the_track_for_subscribers(
    devserver: DevServer, room: str
) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        unpublished = asyncio.Event()
        bob.on("track_unpublished", lambda pub, p: unpublished.set())
        async with publishing_sine(alice) as publication:
            await next_remote_audio(bob)
            await alice.local_participant.unpublish_track(publication.sid)
            await asyncio.wait_for(unpublished.wait(), WAIT)
        assert list(bob.remote_participants["alice"].track_publications) == []


async def test_muting_is_seen_by_subscribers(devserver: DevServer, room: str) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        muted = asyncio.Event()
        bob.on("track_muted", lambda p, pub: muted.set())
        async with publishing_sine(alice) as publication:
            await next_remote_audio(bob)
            assert publication.track is not None
            publication.track.mute()
            await asyncio.wait_for(muted.wait(), WAIT)


async def test_a_publisher_can_limit_its_audio_to_chosen_participants(
    devserver: DevServer, room: str
) -> None:
    async with (
        joined(devserver, "alice", room) as alice,
        joined(devserver, "bob", room) as bob,
        joined(devserver, "carol", room) as carol,
    ):
        alice.local_participant.set_track_subscription_permissions(
            allow_all_participants=False,
            participant_permissions=[
                rtc.ParticipantTrackPermission(participant_identity="bob", allow_all=True)
            ],
        )
        async with publishing_sine(alice, 440.0):
            heard = await listen(await next_remote_audio(bob))
            publications = carol.remote_participants["alice"].track_publications.values()
            assert [p.subscribed for p in publications] == [False]
            carol_track = asyncio.ensure_future(next_remote_audio(carol))
            # Opening the track to everyone lets carol in too.
            alice.local_participant.set_track_subscription_permissions(allow_all_participants=True)
            carol_heard = await listen(await carol_track)
    assert abs(heard.dominant_hz - 440.0) < 10
    assert abs(carol_heard.dominant_hz - 440.0) < 10


async def test_a_publisher_revoking_permission_stops_that_subscriber(
    devserver: DevServer, room: str
) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        async with publishing_sine(alice):
            track = await next_remote_audio(bob)
            alice.local_participant.set_track_subscription_permissions(allow_all_participants=False)
            await goes_quiet(track)


async def test_the_publisher_learns_when_its_track_is_first_subscribed(
    devserver: DevServer, room: str
) -> None:
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room) as bob:
        subscribed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        alice.on("local_track_subscribed", lambda track: settle(subscribed, track.sid))
        async with publishing_sine(alice) as publication:
            await next_remote_audio(bob)
            assert await asyncio.wait_for(subscribed, WAIT) == publication.sid


async def publisher_transport_states(client: rtc.Room) -> list[int]:
    stats = await client.get_rtc_stats()
    return [s.transport.transport.dtls_state for s in stats.publisher_stats
            if s.WhichOneof("stats") == "transport"]


async def test_a_track_is_subscribed_only_once_its_publisher_can_send_media(
    devserver: DevServer, room: str
) -> None:
    """Regression: the devserver published a track, and told its publisher that it was
    subscribed, as soon as the offer announced it, before the publisher's connection was up.
    An agent speaks the moment its track is subscribed, so the start of its first words was
    dropped by its own SDK. LiveKit's server learns of a track from its first packet."""
    async with joined(devserver, "alice", room) as alice, joined(devserver, "bob", room):
        transport_then: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        asking: list[asyncio.Task[None]] = []

        async def ask_for_the_transport() -> None:
            settle(transport_then, await publisher_transport_states(alice))

        alice.on("local_track_subscribed",
                 lambda _track: asking.append(asyncio.create_task(ask_for_the_transport())))
        async with publishing_sine(alice):
            states = await asyncio.wait_for(transport_then, WAIT)
            await asyncio.gather(*asking)

        assert states and all(state == DtlsTransportState.DTLS_TRANSPORT_CONNECTED
                              for state in states)


async def test_a_publisher_connection_is_up_when_joined_before_any_track(
    devserver: DevServer, room: str
) -> None:
    """LiveKit's join response says `fast_publish` to a participant that may publish: its SDK
    brings the publisher connection up while it joins, and offers a track the moment it is
    published instead of after the 150 ms the Rust SDK otherwise debounces negotiation by.
    Without it, an agent's first words waited for that debounce and a connection set up."""
    async with joined(devserver, "alice", room) as alice:
        assert await publisher_transport_states(alice) == [
            DtlsTransportState.DTLS_TRANSPORT_CONNECTED]


@pytest.mark.parametrize("can_publish", [True, False])
async def test_the_join_response_offers_fast_publish_only_to_who_may_publish(
    devserver: DevServer, room: str, can_publish: bool
) -> None:
    url = f"{devserver.url}/rtc?access_token={devserver.token('a', room, can_publish=can_publish)}"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        first = proto_rtc.SignalResponse.FromString(await ws.receive_bytes(timeout=WAIT))
    assert first.join.fast_publish is can_publish
