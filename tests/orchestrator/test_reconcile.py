"""Reconciliation: a visitor left alone in a Baton room gets an agent, once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from livekit import rtc

from deploy.processes import free_port
from devserver.process import DevServer
from orchestrator.errors import LiveKitUnavailable
from orchestrator.metrics import Metrics
from orchestrator.reconcile import reconcile_once
from orchestrator.services import open_services
from orchestrator.settings import Settings
from tests.orchestrator.support import WAIT, create_conversation, new_conversation_id, visitor_token


@pytest.mark.server_and_cluster
async def test_a_visitor_alone_in_a_conversation_room_gets_one_agent_dispatched(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        devserver: DevServer) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    visitor = rtc.Room()
    await asyncio.wait_for(visitor.connect(devserver.url, visitor_token(
        devserver, "visitor-alone", conversation_id)), WAIT)
    try:
        async with open_services(orchestrator_settings, Metrics()) as services:
            first = await reconcile_once(services)
            second = await reconcile_once(services)
            dispatches = await services.livekit.list_dispatches(conversation_id)
    finally:
        await visitor.disconnect()

    assert (first.dispatched, second.dispatched) == (1, 0)
    assert [d.agent_name for d in dispatches].count(orchestrator_settings.agent_name) == 1


async def test_rooms_that_are_not_conversations_are_left_alone(
        orchestrator_settings: Settings, devserver: DevServer) -> None:
    stranger_room = new_conversation_id()
    someone = rtc.Room()
    await asyncio.wait_for(someone.connect(devserver.url, visitor_token(
        devserver, "visitor-elsewhere", stranger_room)), WAIT)
    try:
        async with open_services(orchestrator_settings, Metrics()) as services:
            created = await reconcile_once(services)
            dispatches = await services.livekit.list_dispatches(stranger_room)
    finally:
        await someone.disconnect()

    assert created.dispatched == 0
    assert orchestrator_settings.agent_name not in [d.agent_name for d in dispatches]


async def test_reconciliation_with_livekit_down_raises_the_typed_error(
        orchestrator_settings: Settings) -> None:
    down = orchestrator_settings.model_copy(
        update={"livekit_url": f"ws://127.0.0.1:{free_port()}"})
    async with open_services(down, Metrics()) as services:
        with pytest.raises(LiveKitUnavailable):
            await reconcile_once(services)
