"""End to end on the devserver's simulated phone: the orchestrator dials the visitor, a real
worker greets whoever answers about the chat, their words land in the thread as phone turns,
and hanging up returns the conversation to chat."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from deploy.processes import RedisServer
from devserver.process import DevServer
from orchestrator.settings import Settings
from tests.orchestrator.phone_support import SPEAKS, SPOKEN
from tests.orchestrator.support import AUTH, create_conversation, events, post_message
from tests.worker.conftest import WorkerProcess, start_worker, worker_environment
from tests.worker.test_call import streamed

pytestmark = [pytest.mark.realtime, pytest.mark.usefixtures("no_phone_number_logged")]

WAIT = 120.0  # the phone rings, then speaks after a pause; other suites may load the machine


@pytest.fixture(scope="module")
def phone_worker(tmp_path_factory: pytest.TempPathFactory, phone_devserver: DevServer,
                 redis_server: RedisServer, model_server_process: str,
                 ) -> Iterator[WorkerProcess]:
    worker = start_worker(tmp_path_factory.mktemp("phone-worker"), worker_environment(
        phone_devserver, redis_server.url, model_server_process,
        f"baton-voice-{uuid.uuid4().hex[:8]}"))
    yield worker
    worker.process.stop()


@pytest.fixture
async def orchestrator(orchestrator_server: Callable[..., Any], phone_settings: Settings,
                       phone_worker: WorkerProcess) -> AsyncIterator[httpx.AsyncClient]:
    settings = phone_settings.model_copy(update={
        "agent_name": phone_worker.agent_name, "dial_ringing_timeout": 20})
    url = await orchestrator_server(settings)
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        yield client


def _phone_turns(log: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["role"], e["text"]) for e in log
            if e["kind"] == "message" and e["channel"] == "phone"]


def _back_in_chat(log: list[dict[str, Any]]) -> bool:
    return any(e["kind"] == "channel_switch" and e["to_channel"] == "chat" for e in log)


async def test_the_dialled_visitor_is_greeted_about_the_chat_heard_and_back_in_chat_on_hang_up(
        orchestrator: httpx.AsyncClient, phone_worker: WorkerProcess) -> None:
    conversation_id = await create_conversation(orchestrator)
    await post_message(orchestrator, conversation_id,
                       "My January claim for the broken screen was rejected")

    async with streamed(orchestrator, conversation_id) as sse:
        answered = await orchestrator.post(f"/v1/conversations/{conversation_id}/dial-out",
                                           json={"phone_number": SPEAKS}, headers=AUTH)
        await asyncio.wait_for(sse.wait_for(_back_in_chat), WAIT)

    log = await events(orchestrator, conversation_id)
    assert answered.json()["outcome"] == "answered", answered.text
    first_words, *_ = turns = _phone_turns(log)
    assert first_words[0] == "assistant" and "january claim" in first_words[1].lower()
    assert ("user", SPOKEN) in turns
    kinds = [(e["kind"], e.get("outcome") or e.get("state") or e.get("trigger")) for e in log]
    # The agent was in the room while the phone rang, and took the call only once answered.
    assert kinds.index(("call", "answered")) < kinds.index(("agent", "joined"))
    [left] = [e for e in log if e["kind"] == "channel_switch" and e["to_channel"] == "chat"]
    assert (left["from_channel"], left["trigger"]) == ("phone", "visitor_left")
    assert [e["outcome"] for e in sse.events if e["kind"] == "call"] == ["dialing", "answered"]
    record = (await orchestrator.get(f"/v1/conversations/{conversation_id}",
                                     headers=AUTH)).json()
    assert record["status"] == "chat"
    assert SPEAKS[-7:] not in phone_worker.log()
