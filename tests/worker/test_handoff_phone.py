"""Warm transfer to an on-call human reached by phone: dialled over the devserver's simulated
SIP, kept from the visitor until they press 1, their words logged; a busy line is typed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from livekit import api
from livekit.protocol import sip

from conversation import HandoffEvent, MessageEvent, Role
from deploy.processes import RedisServer
from deploy.visitor import Visitor
from devserver.process import DevServer
from orchestrator.settings import Settings
from tests.orchestrator.support import AUTH, create_conversation, post_message
from tests.worker.conftest import WorkerProcess, start_worker, worker_environment
from tests.worker.test_call import switch_to_voice, within
from tests.worker.test_handoff import _failure, _logged_until, _took_back

pytestmark = pytest.mark.realtime

ON_CALL = "+15550107001"


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence, then three seconds of quiet, so each loop of it ends a turn."""
    folder = tmp_path_factory.mktemp("phone-speech")
    subprocess.run(["espeak-ng", "-w", str(folder / "said.wav"),
                    "Hello, this is the on call specialist speaking"], check=True)
    subprocess.run(["sox", str(folder / "said.wav"), str(folder / "speech.wav"), "pad", "0", "3"],
                   check=True)
    return folder / "speech.wav"


@pytest.fixture(scope="module")
def answers(speech: Path) -> dict[str, Any]:
    """The on-call human answers, speaks (looping), and presses 1 after 4 s."""
    return {"answer_after_ms": 300, "audio": str(speech), "audio_loop": True, "dtmf": "1",
            "dtmf_after_ms": 4000}


@pytest.fixture(scope="module")
def phone_devserver(tmp_path_factory: pytest.TempPathFactory,
                    answers: dict[str, Any]) -> Iterator[DevServer]:
    folder = tmp_path_factory.mktemp("phone-sip")
    (folder / "script.json").write_text(json.dumps({"numbers": {ON_CALL: answers}}))
    server = DevServer(sip_script=folder / "script.json", log_path=folder / "devserver.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def trunk(phone_devserver: DevServer) -> str:
    async def create() -> str:
        async with phone_devserver.api() as livekit:
            created = await livekit.sip.create_outbound_trunk(sip.CreateSIPOutboundTrunkRequest(
                trunk=sip.SIPOutboundTrunkInfo(name="carrier", address="sip.example",
                                               numbers=["+15550000000"])))
        return created.sip_trunk_id

    return asyncio.run(create())


@pytest.fixture(scope="module")
def phone_worker(tmp_path_factory: pytest.TempPathFactory, phone_devserver: DevServer,
                 trunk: str, redis_server: RedisServer, model_server_process: str,
                 ) -> Iterator[WorkerProcess]:
    worker = start_worker(tmp_path_factory.mktemp("phone-worker"), worker_environment(
        phone_devserver, redis_server.url, model_server_process,
        f"baton-voice-{uuid.uuid4().hex[:8]}", BATON_SIP_OUTBOUND_TRUNK=trunk,
        BATON_ONCALL_NUMBERS=ON_CALL))
    yield worker
    worker.process.stop()


@pytest.fixture
async def orchestrator(orchestrator_server: Callable[..., Any], orchestrator_settings: Settings,
                       phone_devserver: DevServer, phone_worker: WorkerProcess,
                       ) -> AsyncIterator[httpx.AsyncClient]:
    settings = orchestrator_settings.model_copy(update={
        "agent_name": phone_worker.agent_name, "livekit_url": phone_devserver.url})
    url = await orchestrator_server(settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        yield client


def _script(server: DevServer, behaviour: dict[str, Any]) -> None:
    """Replace the far end's behaviour through the devserver's dev-only script endpoint."""
    token = server.grant_token(sip=api.SIPGrants(admin=True))
    request = urllib.request.Request(
        f"{server.http_url}/devserver/sip/script", method="POST",
        data=json.dumps({"numbers": {ON_CALL: behaviour}}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


async def _call(client: httpx.AsyncClient) -> tuple[str, Visitor]:
    conversation_id = await create_conversation(client)
    await post_message(client, conversation_id, "My order A1234 never arrived")
    session = await switch_to_voice(client, conversation_id)
    visitor = Visitor()
    await within(visitor.join(session["url"], session["token"]), visitor, "joining")
    await within(visitor.agent_spoke_since(0), visitor, "the first words")
    return conversation_id, visitor


async def test_an_on_call_phone_human_is_kept_apart_until_they_press_1(
        orchestrator: httpx.AsyncClient, phone_devserver: DevServer,
        redis_server: RedisServer, answers: dict[str, Any]) -> None:
    _script(phone_devserver, answers)
    conversation_id, visitor = await _call(orchestrator)
    try:
        await orchestrator.post(f"/v1/conversations/{conversation_id}/handoffs",
                                json={"reason": "wants a person"}, headers=AUTH)
        logged = await _logged_until(redis_server.url, conversation_id, lambda seen: any(
            isinstance(s.event, HandoffEvent) and s.event.state.value == "accepted"
            for s in seen))
        before_connect = visitor.heard("human-phone-")
        logged = await _logged_until(redis_server.url, conversation_id, lambda seen: any(
            isinstance(s.event, HandoffEvent) and s.event.state.value == "connected"
            for s in seen))
        await within(visitor.hears("human-phone-", 25), visitor, "the phone human's voice")
        logged = await _logged_until(redis_server.url, conversation_id, lambda seen: any(
            isinstance(s.event, MessageEvent) and s.event.role is Role.HUMAN for s in seen))
    finally:
        await visitor.leave()

    assert before_connect == 0
    offered = next(s.event for s in logged if isinstance(s.event, HandoffEvent)
                   and s.event.state.value == "offered")
    assert offered.human == "our on-call specialist"
    assert ON_CALL not in json.dumps([s.event.model_dump(mode="json") for s in logged])


async def test_a_busy_on_call_phone_fails_as_busy_and_the_agent_takes_back(
        orchestrator: httpx.AsyncClient, phone_devserver: DevServer,
        redis_server: RedisServer) -> None:
    _script(phone_devserver, {"ring_after_ms": 50, "answer_after_ms": 200, "status": 486})
    conversation_id, visitor = await _call(orchestrator)
    try:
        await orchestrator.post(f"/v1/conversations/{conversation_id}/handoffs",
                                headers=AUTH)
        logged = await _logged_until(redis_server.url, conversation_id, _took_back)
    finally:
        await visitor.leave()

    assert _failure(logged) == "busy"
    [failed] = [s.event for s in logged if isinstance(s.event, HandoffEvent)
                and s.event.state.value == "failed"]
    assert failed.sip_status == 486
