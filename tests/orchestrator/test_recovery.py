"""Every visitor in a call gets an agent: lost dispatches replaced, the visitor told while they
wait, the call back in chat when nobody comes; one room's trouble never stops the others."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import TypeVar

import httpx
import pytest
from livekit import api, rtc
from livekit.protocol import models, sip

from conversation import (
    AgentEvent,
    AgentState,
    ChannelSwitchEvent,
    ConversationStore,
    Status,
    attributes,
)
from conversation.redisclient import RedisClient
from conversation.settings import StoreSettings
from devserver.process import DevServer
from orchestrator.dispatch import Presence
from orchestrator.errors import LiveKitUnavailable
from orchestrator.metrics import Metrics
from orchestrator.reconcile import reconcile_forever, reconcile_once
from orchestrator.recovery import check_waiting_calls, watch_waiting_calls
from orchestrator.services import Services, open_services
from orchestrator.settings import Settings
from tests.conftest import OrchestratorClientFactory
from tests.orchestrator.support import (
    AUTH,
    WAIT,
    SlowLiveKit,
    create_conversation,
    visitor_token,
)
from worker.server import announce
from worker.settings import WorkerSettings

T = TypeVar("T")


@pytest.fixture
def nobody_serves(orchestrator_settings: Settings) -> Settings:
    """An agent name no worker registers, quick to give up, with the background checks on."""
    return orchestrator_settings.model_copy(update={
        "agent_name": f"nobody-{uuid.uuid4().hex[:8]}", "reconcile_interval": 30.0,
        "dispatch_grace": timedelta(seconds=0.3), "agent_wait": timedelta(seconds=1.5),
        "waiting_check_interval": 0.2})


@pytest.fixture
async def livekit(devserver: DevServer) -> AsyncIterator[api.LiveKitAPI]:
    client = devserver.api()
    yield client
    await client.aclose()


async def _ours(livekit: api.LiveKitAPI, room: str, agent_name: str) -> list[str]:
    return [d.id for d in await livekit.agent_dispatch.list_dispatch(room)
            if d.agent_name == agent_name]


async def _switch_and_join(client: httpx.AsyncClient, conversation_id: str) -> rtc.Room:
    session = (await client.post(f"/v1/conversations/{conversation_id}/voice",
                                 headers=AUTH)).json()
    visitor = rtc.Room()
    await asyncio.wait_for(visitor.connect(session["url"], session["token"]), WAIT)
    return visitor


@pytest.mark.server_and_cluster
async def test_a_visitor_waiting_for_an_agent_that_never_comes_is_told_and_back_in_chat(
        orchestrator_client_factory: OrchestratorClientFactory, nobody_serves: Settings,
        redis: RedisClient) -> None:
    """Bug: a visitor who switched while no worker was registered waited forever, told
    nothing: LiveKit keeps such a dispatch without a job and never retries it."""
    async with orchestrator_client_factory(nobody_serves) as client:
        conversation_id = await create_conversation(client)
        visitor = await _switch_and_join(client, conversation_id)
        disconnected = asyncio.Event()
        visitor.on("disconnected", lambda *_: disconnected.set())
        seen: list[object] = []
        async with asyncio.timeout(WAIT):
            async for stored in ConversationStore(redis).follow(conversation_id):
                seen.append(stored.event)
                if isinstance(stored.event, ChannelSwitchEvent) \
                        and stored.event.trigger == "no_agent":
                    break
            await disconnected.wait()

    told = [e.state for e in seen if isinstance(e, AgentEvent)]
    assert told == [AgentState.WAITING, AgentState.UNAVAILABLE]
    assert (await ConversationStore(redis).get(conversation_id)).status is Status.CHAT


async def test_a_dispatch_no_worker_took_is_replaced_as_soon_as_a_worker_registers(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        livekit: api.LiveKitAPI) -> None:
    """Bug: re-dispatch took a dispatch without jobs for "an agent on its way", so when the
    workers came back nothing dispatched again."""
    conversation_id = await create_conversation(orchestrator_client)
    visitor = await _switch_and_join(orchestrator_client, conversation_id)
    try:
        [lost] = await _ours(livekit, conversation_id, orchestrator_settings.agent_name)
        async with open_services(orchestrator_settings, Metrics()) as services:
            report = await check_waiting_calls(services, workers_registered_at_ns=time.time_ns())
        now = await _ours(livekit, conversation_id, orchestrator_settings.agent_name)
    finally:
        await visitor.disconnect()

    assert report.dispatched == 1
    assert len(now) == 1 and now != [lost]


@pytest.mark.server_and_cluster
async def test_a_worker_announcing_its_registration_has_a_lost_dispatch_replaced_at_once(
        orchestrator_client_factory: OrchestratorClientFactory, orchestrator_settings: Settings,
        store_settings: StoreSettings, redis: RedisClient) -> None:
    """The worker publishes on one client and the watcher listens on another: on a cluster,
    a subscription lives on one node and a publish reaches it from any. Regression: on a
    cluster, the watcher's subscription failed (a fresh client knows no slots yet) and the
    watcher stopped for good."""
    settings = orchestrator_settings.model_copy(update={
        "agent_name": f"nobody-{uuid.uuid4().hex[:8]}", "waiting_check_interval": 600.0})
    worker = WorkerSettings(redis_url=store_settings.redis_url,
                            redis_cluster=store_settings.redis_cluster,
                            agent_name=settings.agent_name)
    async with orchestrator_client_factory(settings) as client, \
            open_services(settings, Metrics()) as services:
        conversation_id = await create_conversation(client)
        visitor = await _switch_and_join(client, conversation_id)
        watcher = asyncio.create_task(watch_waiting_calls(services))
        try:
            await _until_listened_to(redis, attributes.WORKER_REGISTERED_CHANNEL)
            await announce(worker)
            async with asyncio.timeout(WAIT):
                async for stored in ConversationStore(redis).follow(conversation_id):
                    if isinstance(stored.event, AgentEvent):
                        break
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await visitor.disconnect()

    assert stored.event.state is AgentState.WAITING


async def _until_listened_to(redis: RedisClient, channel: str) -> None:
    """Nothing announces a subscription; a publish says how many heard it."""
    async with asyncio.timeout(WAIT):
        while not await redis.publish(channel, "is anyone listening"):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_phone_visitor_left_alone_is_dispatched_again(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        livekit: api.LiveKitAPI) -> None:
    """Bug: the orchestrator recognised a visitor by the web identity prefix, so a visitor on
    the phone whose agent crashed was never given another."""
    conversation_id = await create_conversation(orchestrator_client)
    trunk = await livekit.sip.create_outbound_trunk(sip.CreateSIPOutboundTrunkRequest(
        trunk=sip.SIPOutboundTrunkInfo(name="carrier", address="sip.example",
                                       numbers=["+15550000000"])))
    try:
        await livekit.sip.create_sip_participant(sip.CreateSIPParticipantRequest(
            sip_trunk_id=trunk.sip_trunk_id, sip_call_to="+15550100001",
            room_name=conversation_id, participant_identity="caller"))
        async with open_services(orchestrator_settings, Metrics()) as services:
            recovery = await services.dispatcher.recover(conversation_id, conversation_id)
    finally:
        await livekit.sip.delete_trunk(sip.DeleteSIPTrunkRequest(
            sip_trunk_id=trunk.sip_trunk_id))
        await livekit.room.delete_room(api.DeleteRoomRequest(room=conversation_id))

    assert recovery.presence is Presence.DISPATCHED


async def test_a_slow_livekit_cannot_let_two_replicas_dispatch_to_one_room(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        devserver: DevServer, livekit: api.LiveKitAPI) -> None:
    """Bug: the dispatch lock lived a fixed 10 s while the work under it could take three
    LiveKit calls of up to BATON_LIVEKIT_TIMEOUT each; with LiveKit slow, the lock expired
    while held, a second replica found no dispatch yet and created a duplicate agent.

    The first replica's three calls each take 4.5 s (within the 5 s timeout); the second
    replica's go through at once."""
    conversation_id = await create_conversation(orchestrator_client)
    visitor = rtc.Room()
    await asyncio.wait_for(visitor.connect(devserver.url, visitor_token(
        devserver, "visitor-alone", conversation_id)), WAIT)
    try:
        async with SlowLiveKit(devserver, delays=[4.5, 4.5, 4.5]) as slow:
            settings = orchestrator_settings.model_copy(update={"livekit_api_url": slow.url})
            async with open_services(settings, Metrics()) as first, \
                    open_services(settings, Metrics()) as second:
                outcomes = await asyncio.gather(
                    first.dispatcher.recover(conversation_id, conversation_id),
                    _after(0.5, second.dispatcher.recover(conversation_id, conversation_id)))
        dispatched = await _ours(livekit, conversation_id, orchestrator_settings.agent_name)
    finally:
        await visitor.disconnect()

    assert sorted(o.presence for o in outcomes) == [Presence.DISPATCHED, Presence.ON_ITS_WAY]
    assert len(dispatched) == 1


async def _after(delay: float, step: Awaitable[T]) -> T:
    await asyncio.sleep(delay)
    return await step


class _FailsOnce:
    """The real LiveKit client, whose first ListRooms fails with an unexpected error."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self.failed = False
        self.passes = 0
        self.passed = asyncio.Event()

    async def list_rooms(self, names: list[str] | None = None) -> list[models.Room]:
        self.passes += 1
        if not self.failed:
            self.failed = True
            raise RuntimeError("a bug in one pass")
        rooms = await self._services.livekit.list_rooms(names)
        self.passed.set()
        return rooms


async def test_reconciliation_goes_on_after_a_pass_fails_unexpectedly(
        orchestrator_settings: Settings) -> None:
    """Bug: any exception other than a BatonError ended the reconciliation task silently."""
    async with open_services(orchestrator_settings, Metrics()) as services:
        flaky = _FailsOnce(services)
        loop = asyncio.create_task(reconcile_forever(
            dataclasses.replace(services, livekit=flaky), interval=0.05))  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(flaky.passed.wait(), WAIT)
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)

    assert flaky.failed and flaky.passes >= 2


@pytest.mark.server_and_cluster
async def test_one_room_that_cannot_be_reconciled_does_not_stop_the_others(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        devserver: DevServer, redis: RedisClient, livekit: api.LiveKitAPI) -> None:
    """Bug: one `DispatchBusy` skipped the whole reconciliation pass."""
    busy = await create_conversation(orchestrator_client)
    alone = await create_conversation(orchestrator_client)
    visitors = [rtc.Room(), rtc.Room()]
    for visitor, room in zip(visitors, (busy, alone), strict=True):
        await asyncio.wait_for(visitor.connect(devserver.url, visitor_token(
            devserver, f"visitor-{room}", room)), WAIT)
    # Another replica holds the busy room's lock for longer than anyone waits for it.
    await redis.set(f"baton:dispatch-lock:{{{busy}}}", "elsewhere", px=60_000)
    quick = orchestrator_settings.model_copy(update={"livekit_timeout": 0.2})
    try:
        async with open_services(quick, Metrics()) as services:
            result = await reconcile_once(services)
        dispatched = await _ours(livekit, alone, orchestrator_settings.agent_name)
    finally:
        for visitor in visitors:
            await visitor.disconnect()

    assert result.failed >= 1
    assert len(dispatched) == 1


async def test_reconciliation_with_livekit_down_raises_the_typed_error_for_the_pass(
        orchestrator_settings: Settings) -> None:
    down = orchestrator_settings.model_copy(update={"livekit_url": "ws://127.0.0.1:9"})
    async with open_services(down, Metrics()) as services:
        with pytest.raises(LiveKitUnavailable):
            await reconcile_once(services)
