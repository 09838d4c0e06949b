"""Webhooks: signed WebhookEvents that livekit-api's WebhookReceiver accepts, in order, retried."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from livekit import api, rtc

from deploy.processes import free_port
from devserver.process import DevServer
from tests.devserver.rtc_helpers import WAIT, joined, publishing_sine, settle


class WebhookSink:
    """An HTTP endpoint that checks each delivery with WebhookReceiver and keeps the events."""

    def __init__(self, key: str, secret: str, *, fail_first: int = 0) -> None:
        self.receiver = api.WebhookReceiver(api.TokenVerifier(key, secret))
        self.events: list[api.WebhookEvent] = []
        self.failures_left = fail_first
        self.refused = 0
        self._changed = asyncio.Condition()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        if self.failures_left:
            self.failures_left -= 1
            self.refused += 1
            return web.Response(status=503)
        event = self.receiver.receive(
            (await request.read()).decode(), request.headers["Authorization"]
        )
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        return web.Response()

    async def wait_for(self, predicate: Callable[[list[api.WebhookEvent]], bool]) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self.events)), WAIT)

    def names(self, room: str) -> list[str]:
        return [e.event for e in self.events if e.room.name == room]


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    hooks = WebhookSink("devkey", "secret", fail_first=1)
    app = web.Application()
    app.router.add_post("/hook", hooks.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    hooks.url = f"http://127.0.0.1:{port}/hook"
    yield hooks
    await runner.cleanup()


async def test_a_room_lifetime_is_reported_in_order_and_signed(
    devserver_factory: Callable[..., DevServer], sink: WebhookSink
) -> None:
    server = devserver_factory(webhooks=[sink.url])
    room = f"wh-{uuid.uuid4().hex[:8]}"
    async with server.api() as lk:
        await lk.room.create_room(api.CreateRoomRequest(name=room, departure_timeout=1))
    async with joined(server, "alice", room) as alice:
        async with publishing_sine(alice):
            await sink.wait_for(lambda _: "track_published" in sink.names(room))
    await sink.wait_for(lambda _: "room_finished" in sink.names(room))
    assert sink.names(room) == [
        "room_started",
        "participant_joined",
        "track_published",
        "track_unpublished",
        "participant_left",
        "room_finished",
    ]
    # The first delivery was refused with a 503 and retried.
    assert sink.refused == 1
    joined_event = sink.events[1]
    assert joined_event.id.startswith("EV_") and joined_event.created_at > 0
    assert joined_event.participant.identity == "alice"
    assert sink.events[2].track.sid.startswith("TR_")


async def test_a_room_nobody_joins_finishes_after_its_empty_timeout(
    devserver_factory: Callable[..., DevServer], sink: WebhookSink
) -> None:
    server = devserver_factory(webhooks=[sink.url])
    room = f"wh-{uuid.uuid4().hex[:8]}"
    async with server.api() as lk:
        await lk.room.create_room(api.CreateRoomRequest(name=room, empty_timeout=1))
        await sink.wait_for(lambda _: "room_finished" in sink.names(room))
        listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
    assert list(listed.rooms) == []
    assert sink.names(room) == ["room_started", "room_finished"]


async def test_a_room_left_with_only_an_agent_finishes_after_its_departure_timeout(
    devserver_factory: Callable[..., DevServer], sink: WebhookSink
) -> None:
    server = devserver_factory(webhooks=[sink.url])
    room = f"wh-{uuid.uuid4().hex[:8]}"
    async with server.api() as lk:
        await lk.room.create_room(api.CreateRoomRequest(name=room, departure_timeout=1))
    agent = rtc.Room()
    await agent.connect(server.url, server.token("agent-1", room, kind="agent"))
    try:
        closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        agent.on("disconnected", lambda reason: settle(closed, reason))
        async with joined(server, "visitor", room):
            pass
        await sink.wait_for(lambda _: "room_finished" in sink.names(room))
        assert await asyncio.wait_for(closed, WAIT) == rtc.DisconnectReason.ROOM_CLOSED
    finally:
        await agent.disconnect()
    assert sink.names(room)[-2:] == ["participant_left", "room_finished"]
