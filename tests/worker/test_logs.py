"""End to end, both services' logs: JSON lines with the conversation, job and trace ids, and
never what the visitor typed or said, nor a phone number."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conversation.tracing import is_trace_id
from deploy.processes import RedisServer
from deploy.visitor import Visitor
from devserver.process import DevServer
from modelserver import DEFAULT_TRANSCRIPT
from orchestrator.logs import TRACE_HEADER
from orchestrator.settings import Settings
from tests.orchestrator.support import AUTH, create_conversation, events, post_message
from tests.worker.conftest import WorkerProcess, start_worker, worker_environment
from tests.worker.test_call import WAIT, logged_until_visitor_left, within

pytestmark = pytest.mark.realtime

PHONE = "+447700900123"
TYPED_IN_CHAT = f"Please ring me on {PHONE} about the tangerine xylophone refund"
TYPED_IN_CALL = "Also quote the periwinkle walrus plan for twelve months"
SPOKEN = DEFAULT_TRANSCRIPT
"""What the visitor says: the scripted transcription returns these words for any audio."""
SECRETS = [TYPED_IN_CHAT, "tangerine xylophone", TYPED_IN_CALL, "periwinkle walrus", SPOKEN,
           "change my plan to the yearly", PHONE, PHONE.removeprefix("+"), "7700 900123"]
TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE}-b7ad6b7169203331-01"


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a log, each of which must be one JSON object."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            lines.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"{path.name}:{number} is not JSON: {line[:200]}") from None
    return lines


def wait_for_job_end(worker: WorkerProcess, conversation_id: str) -> None:
    """The worker logs "job ended" last, after its final writes."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if any(line.get("conversation_id") == conversation_id
               and line["message"] == "job ended" for line in json_lines(worker.log_path)):
            return
        time.sleep(0.1)
    raise AssertionError(f"the job of {conversation_id} did not end within {WAIT:.0f}s")


@pytest.fixture
def own_worker(tmp_path: Path, devserver: DevServer, redis_server: RedisServer,
               model_server_process: str) -> Iterator[WorkerProcess]:
    """A worker of this test alone, so its log holds this run and nothing else."""
    worker = start_worker(tmp_path, worker_environment(
        devserver, redis_server.url, model_server_process,
        f"baton-voice-{uuid.uuid4().hex[:8]}"))
    yield worker
    worker.process.stop()


async def test_both_services_log_json_lines_with_ids_and_never_what_was_said_typed_or_a_number(
        orchestrator_process: Callable[..., str], orchestrator_settings: Settings,
        own_worker: WorkerProcess, redis_server: RedisServer, tmp_path: Path) -> None:
    url = orchestrator_process(orchestrator_settings.model_copy(
        update={"agent_name": own_worker.agent_name}))
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        conversation_id = await create_conversation(client)
        await post_message(client, conversation_id, TYPED_IN_CHAT)
        switch = await client.post(f"/v1/conversations/{conversation_id}/voice",
                                   headers=AUTH | {"traceparent": TRACEPARENT})
        visitor = Visitor()
        await within(visitor.join(switch.json()["url"], switch.json()["token"]), visitor,
                     "joining")
        await within(visitor.agent_spoke_since(0), visitor, "the first words")
        mark = visitor.mark()
        await visitor.say(SPOKEN)
        await within(visitor.agent_spoke_since(mark), visitor, "the reply")
        mark = visitor.mark()
        await visitor.room.local_participant.send_text(TYPED_IN_CALL, topic="lk.chat")
        await within(visitor.agent_spoke_since(mark), visitor, "the answer to the typed text")
        await visitor.leave()
        await asyncio.wait_for(logged_until_visitor_left(redis_server.url, conversation_id), WAIT)
        await asyncio.to_thread(wait_for_job_end, own_worker, conversation_id)
        logged = [e.get("text", "") for e in await events(client, conversation_id)]

    # Everything that must stay out of the logs did reach the conversation.
    assert {TYPED_IN_CHAT, SPOKEN, TYPED_IN_CALL} <= set(logged)
    orchestrator = json_lines(tmp_path / "orchestrator-0.log")
    worker = json_lines(own_worker.log_path)
    requests = [line for line in orchestrator if line["logger"] == "orchestrator.requests"]
    assert {line["path"] for line in requests} >= {
        f"/v1/conversations/{conversation_id}/messages",
        f"/v1/conversations/{conversation_id}/voice"}
    for line in requests:
        assert is_trace_id(line["trace_id"])
        if line["path"].startswith(f"/v1/conversations/{conversation_id}"):
            assert line["conversation_id"] == conversation_id
    assert switch.headers[TRACE_HEADER] == TRACE
    job = [line for line in worker if line.get("conversation_id") == conversation_id]
    assert job and all(line["job_id"].startswith("AJ_") and line["trace_id"] == TRACE
                       for line in job)
    for name, lines in (("orchestrator", orchestrator), ("worker", worker)):
        text = json.dumps(lines, ensure_ascii=False).lower()
        found = [secret for secret in SECRETS if secret.lower() in text]
        assert found == [], f"the {name}'s log holds {found}"
