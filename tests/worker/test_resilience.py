"""Deploys and crashes drop nothing: a draining worker finishes its calls while new ones go
elsewhere; a worker or a job process killed mid-call is replaced by an agent that resumes the
same call; every turn is in the log exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.processes import RedisServer, free_port
from deploy.visitor import Visitor
from devserver.process import DevServer
from orchestrator.settings import Settings
from tests.conftest import DevServerFactory
from tests.orchestrator.support import create_conversation, events, post_message
from tests.worker.conftest import WorkerProcess, start_worker, worker_environment
from tests.worker.test_call import SPOKEN, switch_to_voice, within

pytestmark = pytest.mark.realtime

RECOVERY = 20.0
"""The longest a visitor may be left without an agent after a crash."""


@dataclass
class Fleet:
    """An orchestrator that hears the devserver's webhooks, and workers started on demand."""

    client: httpx.AsyncClient
    devserver: DevServer
    redis_url: str
    models_url: str
    agent_name: str
    directory: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, **extra: str) -> WorkerProcess:
        folder = self.directory / f"worker-{len(self.workers)}"
        folder.mkdir()
        worker = start_worker(folder, worker_environment(
            self.devserver, self.redis_url, self.models_url, self.agent_name, **extra))
        self.workers.append(worker)
        return worker

    async def call(self) -> tuple[str, Visitor]:
        """A chat continued by voice, once the agent's first words were heard."""
        conversation_id = await create_conversation(self.client)
        await post_message(self.client, conversation_id, "Where is my order A1234?")
        session = await switch_to_voice(self.client, conversation_id)
        visitor = Visitor()
        await within(visitor.join(session["url"], session["token"]), visitor, "joining")
        await within(visitor.agent_spoke_since(0), visitor, "the first words")
        return conversation_id, visitor


@pytest.fixture
async def fleet(orchestrator_server: Callable[..., Any], orchestrator_settings: Settings,
                devserver_factory: DevServerFactory, redis_server: RedisServer,
                model_server_process: str, tmp_path: Path) -> AsyncIterator[Fleet]:
    port = free_port()
    devserver = devserver_factory(webhooks=[f"http://127.0.0.1:{port}/v1/livekit/webhook"])
    agent_name = f"baton-voice-{uuid.uuid4().hex[:8]}"
    settings = orchestrator_settings.model_copy(update={
        "livekit_url": devserver.url, "agent_name": agent_name, "reconcile_interval": 30.0,
        "dispatch_grace": timedelta(seconds=2), "waiting_check_interval": 0.5})
    url = await orchestrator_server(settings, port=port)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        fleet = Fleet(client, devserver, redis_server.url, model_server_process, agent_name,
                      tmp_path)
        yield fleet
        for worker in fleet.workers:
            await asyncio.to_thread(worker.process.stop)


def took(worker: WorkerProcess, conversation_id: str) -> bool:
    return f'"room": "{conversation_id}"' in worker.log() or \
        f'"conversation_id": "{conversation_id}"' in worker.log()


async def said_and_answered(visitor: Visitor) -> None:
    mark = visitor.mark()
    await visitor.say(SPOKEN)
    await within(visitor.agent_spoke_since(mark), visitor, "the reply")


def spoken(logged: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["role"], e["text"]) for e in logged if e["kind"] == "message"
            and e["channel"] == "voice"]


def once_each(logged: list[dict[str, Any]]) -> bool:
    ids = [e["event_id"] for e in logged]
    return len(ids) == len(set(ids))


@pytest.mark.timeout(300)
async def test_a_draining_worker_finishes_its_calls_while_new_ones_go_elsewhere(
        fleet: Fleet) -> None:
    draining = await asyncio.to_thread(fleet.start_worker)
    calls = [await fleet.call() for _ in range(3)]
    assert all(took(draining, conversation_id) for conversation_id, _ in calls)
    other = await asyncio.to_thread(fleet.start_worker)
    assert draining.process.process is not None

    draining.process.process.send_signal(signal.SIGTERM)
    await asyncio.gather(*(said_and_answered(visitor) for _, visitor in calls))
    new_id, newcomer = await fleet.call()
    for _, visitor in [*calls, (new_id, newcomer)]:
        await visitor.leave()
    exit_code = await asyncio.to_thread(draining.process.process.wait, 60)

    assert exit_code == 0
    assert took(other, new_id) and not took(draining, new_id)
    for conversation_id, _ in calls:
        logged = await events(fleet.client, conversation_id)
        assert [role for role, _ in spoken(logged)] == ["assistant", "user", "assistant"]
        assert once_each(logged)


async def _resumed(fleet: Fleet, conversation_id: str, visitor: Visitor) -> list[dict[str, Any]]:
    """Wait for a new agent to speak in the call without the visitor doing anything."""
    mark = visitor.mark()
    try:
        await asyncio.wait_for(visitor.agent_spoke_since(mark), RECOVERY)
    except TimeoutError:
        raise AssertionError(f"no agent resumed the call within {RECOVERY:.0f}s: "
                             f"{visitor.describe()}") from None
    await visitor.leave()
    return await events(fleet.client, conversation_id)


async def test_a_worker_killed_mid_call_is_replaced_by_an_agent_that_resumes_it(
        fleet: Fleet) -> None:
    crashing = await asyncio.to_thread(fleet.start_worker)
    conversation_id, visitor = await fleet.call()
    await said_and_answered(visitor)
    await asyncio.to_thread(fleet.start_worker)
    assert crashing.process.process is not None

    crashing.process.process.kill()
    logged = await _resumed(fleet, conversation_id, visitor)

    turns = spoken(logged)
    assert [role for role, _ in turns] == ["assistant", "user", "assistant", "assistant"]
    assert turns[-1][1].startswith("Sorry, we were cut off")
    assert once_each(logged)


async def test_a_job_process_killed_mid_call_is_replaced_by_an_agent_that_resumes_it(
        fleet: Fleet) -> None:
    worker = await asyncio.to_thread(fleet.start_worker, BATON_JOB_EXECUTOR="process")
    conversation_id, visitor = await fleet.call()
    await said_and_answered(visitor)
    [pid] = {record["pid"] for record in map(json.loads, (
        line for line in worker.log().splitlines() if line.startswith("{")))
        if record.get("conversation_id") == conversation_id and "pid" in record}
    assert pid != worker.process.process.pid if worker.process.process else True

    os.kill(pid, signal.SIGKILL)
    logged = await _resumed(fleet, conversation_id, visitor)

    turns = spoken(logged)
    assert turns[-1][1].startswith("Sorry, we were cut off")
    assert [role for role, _ in turns[:3]] == ["assistant", "user", "assistant"]
    assert once_each(logged)
