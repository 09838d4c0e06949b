"""A call that started while no worker was registered gets its agent once one registers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from conversation import AgentEvent, AgentState, ConversationStore
from deploy.processes import RedisServer
from deploy.visitor import Visitor
from devserver.process import DevServer
from orchestrator.settings import Settings
from tests.orchestrator.support import AUTH, create_conversation, post_message
from tests.worker.conftest import start_worker, worker_environment
from tests.worker.test_call import WAIT, within

pytestmark = pytest.mark.realtime


async def _agent_states(redis_url: str, conversation_id: str,
                        until: AgentState) -> list[AgentState]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        states = []
        async for stored in ConversationStore(client).follow(conversation_id):
            if isinstance(stored.event, AgentEvent):
                states.append(stored.event.state)
                if stored.event.state is until:
                    return states
        raise AssertionError("the log ended")
    finally:
        await client.aclose()


async def test_a_visitor_who_switched_while_no_worker_was_up_gets_an_agent_when_one_registers(
        orchestrator_server: Callable[..., Any], orchestrator_settings: Settings,
        devserver: DevServer, redis_server: RedisServer, model_server_process: str,
        tmp_path: Path) -> None:
    """Bug: with the worker fleet down at the moment of the switch, LiveKit kept the dispatch
    with no job; when workers came back nothing dispatched again and the visitor waited
    forever (observed 50 s with no agent after the worker started)."""
    agent_name = f"baton-voice-{uuid.uuid4().hex[:8]}"
    settings = orchestrator_settings.model_copy(update={
        "agent_name": agent_name, "reconcile_interval": 30.0,
        "dispatch_grace": timedelta(seconds=1), "agent_wait": timedelta(minutes=5),
        "waiting_check_interval": 0.5})
    url = await orchestrator_server(settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        conversation_id = await create_conversation(client)
        await post_message(client, conversation_id, "Where is my order A1234?")
        session = (await client.post(f"/v1/conversations/{conversation_id}/voice",
                                     headers=AUTH)).json()
        visitor = Visitor()
        await within(visitor.join(session["url"], session["token"]), visitor, "joining")
        worker = None
        try:
            await asyncio.wait_for(_agent_states(redis_server.url, conversation_id,
                                                 AgentState.WAITING), WAIT)

            worker = await asyncio.to_thread(start_worker, tmp_path, worker_environment(
                devserver, redis_server.url, model_server_process, agent_name))

            await within(visitor.agent_spoke_since(0), visitor, "the first words")
            states = await asyncio.wait_for(_agent_states(
                redis_server.url, conversation_id, AgentState.JOINED), WAIT)
        finally:
            await visitor.leave()
            if worker is not None:
                await asyncio.to_thread(worker.process.stop)

    assert states == [AgentState.WAITING, AgentState.JOINED]
