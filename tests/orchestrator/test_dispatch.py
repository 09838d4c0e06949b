"""One agent per room even when replicas race: the check-then-create runs under a Redis lock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from livekit import api
from livekit.protocol import agent_dispatch

from conversation.redisclient import RedisClient
from conversation.settings import StoreSettings
from devserver.process import DevServer
from orchestrator.dispatch import Dispatcher
from orchestrator.livekit import LiveKit
from orchestrator.settings import Settings
from tests.orchestrator.support import new_conversation_id

pytestmark = pytest.mark.server_and_cluster


class Overlap:
    """Holds each caller after it has listed dispatches until every racer has listed, or until
    `hold` passes, so that racing callers really check before any of them creates."""

    def __init__(self, racers: int, hold: float = 0.5) -> None:
        self.racers = racers
        self.hold = hold
        self.listed = 0
        self.everyone_listed = asyncio.Event()

    async def after_listing(self) -> None:
        self.listed += 1
        if self.listed >= self.racers:
            self.everyone_listed.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.everyone_listed.wait(), self.hold)


class RacingLiveKit(LiveKit):
    """The real client; only the moment after ListDispatch is stretched."""

    def __init__(self, settings: Settings, overlap: Overlap) -> None:
        super().__init__(settings)
        self.overlap = overlap

    async def list_dispatches(self, room: str) -> list[agent_dispatch.AgentDispatch]:
        dispatches = await super().list_dispatches(room)
        await self.overlap.after_listing()
        return dispatches


@pytest.fixture
async def replicas(orchestrator_settings: Settings, store_settings: StoreSettings,
                   redis: RedisClient) -> AsyncIterator[list[Dispatcher]]:
    """Two dispatchers with their own LiveKit and Redis clients, as two orchestrator replicas."""
    overlap = Overlap(racers=2)
    async with contextlib.AsyncExitStack() as stack:
        dispatchers = []
        for _ in range(2):
            livekit = RacingLiveKit(orchestrator_settings, overlap)
            stack.push_async_callback(livekit.aclose)
            client = store_settings.redis_client()
            stack.push_async_callback(client.aclose)
            dispatchers.append(Dispatcher(livekit, client, orchestrator_settings.agent_name,
                                          livekit_timeout=orchestrator_settings.livekit_timeout))
        yield dispatchers


async def test_replicas_racing_to_dispatch_the_same_room_create_one_dispatch(
        replicas: list[Dispatcher], devserver: DevServer,
        orchestrator_settings: Settings) -> None:
    room = new_conversation_id()
    async with devserver.api() as livekit:
        await livekit.room.create_room(api.CreateRoomRequest(name=room))

        results = await asyncio.gather(*(replica.ensure(room, room) for replica in replicas))

        dispatches = await livekit.agent_dispatch.list_dispatch(room)
    ours = [d for d in dispatches if d.agent_name == orchestrator_settings.agent_name]
    assert len(ours) == 1
    assert sorted(r.created for r in results) == [False, True]
    assert {r.dispatch_id for r in results} == {ours[0].id}


async def test_a_room_with_a_live_dispatch_gets_no_second_one(
        replicas: list[Dispatcher], devserver: DevServer) -> None:
    room = new_conversation_id()
    first, second = replicas

    created = await first.ensure(room, room)
    again = await second.ensure(room, room)

    assert (created.created, again.created) == (True, False)
    assert again.dispatch_id == created.dispatch_id
