"""End to end on the devserver: the orchestrator switches a chat to voice, a real worker process
takes the job, and a visitor made with the rtc SDK hears, speaks and is heard."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from livekit import api

from conversation import attributes
from deploy.processes import RedisServer
from deploy.visitor import Visitor
from devserver.process import DevServer
from modelserver import ModelServer
from orchestrator.settings import Settings
from tests.orchestrator.support import AUTH, create_conversation, events, post_message
from tests.worker.conftest import (
    WorkerProcess,
    logged_until_visitor_left,
    start_worker,
    visitor_left,
    voice_messages,
    wait_for_log_line,
    worker_environment,
)

pytestmark = pytest.mark.realtime

WAIT = 90.0  # generous: other suites may load the machine
SPOKEN = "I would like to change my plan to the yearly one"
"""What the visitor says; the scripted transcription returns these words for any audio."""


class SseLog:
    """The conversation's SSE stream read in the background, reconnecting with Last-Event-ID
    as a browser's EventSource does when the server ends the stream."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._last_id: str | None = None
        self._changed = asyncio.Event()

    async def follow(self, client: httpx.AsyncClient, conversation_id: str) -> None:
        while True:
            headers = AUTH | ({"Last-Event-ID": self._last_id} if self._last_id else {})
            async with client.stream("GET", f"/v1/conversations/{conversation_id}/stream",
                                     headers=headers, timeout=None) as response:
                await self._read(response)

    async def _read(self, response: httpx.Response) -> None:
        data: list[str] = []
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                self._last_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                self.events.append(json.loads("\n".join(data)))
                data = []
                self._changed.set()

    async def wait_for(self, found: Callable[[list[dict[str, Any]]], bool]) -> None:
        while not found(self.events):
            self._changed.clear()
            await self._changed.wait()


@contextlib.asynccontextmanager
async def streamed(client: httpx.AsyncClient, conversation_id: str) -> AsyncIterator[SseLog]:
    log = SseLog()
    reader = asyncio.create_task(log.follow(client, conversation_id))
    try:
        yield log
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def within(step: Awaitable[None], visitor: Visitor, what: str) -> None:
    try:
        await asyncio.wait_for(step, WAIT)
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {WAIT:.0f}s: "
                             f"{visitor.describe()}") from None


@pytest.fixture
async def orchestrator(orchestrator_server: Callable[..., Any],
                       orchestrator_settings: Settings, voice_worker: WorkerProcess,
                       ) -> AsyncIterator[httpx.AsyncClient]:
    """The orchestrator over HTTP (SSE needs a real server), dispatching to the shared worker."""
    settings = orchestrator_settings.model_copy(update={"agent_name": voice_worker.agent_name})
    url = await orchestrator_server(settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        yield client


@pytest.fixture
def own_worker(tmp_path: Path, devserver: DevServer, own_redis_server: RedisServer,
               model_server_process: str) -> Iterator[WorkerProcess]:
    """A worker of this test alone, on this test's own Redis, for tests that stop one or
    the other."""
    worker = start_worker(tmp_path, worker_environment(
        devserver, own_redis_server.url, model_server_process,
        f"baton-voice-{uuid.uuid4().hex[:8]}"))
    yield worker
    worker.process.stop()


@pytest.fixture
async def own_orchestrator(orchestrator_server: Callable[..., Any],
                           orchestrator_settings: Settings, own_redis_server: RedisServer,
                           own_worker: WorkerProcess) -> AsyncIterator[httpx.AsyncClient]:
    settings = orchestrator_settings.model_copy(update={
        "agent_name": own_worker.agent_name, "redis_url": own_redis_server.url})
    url = await orchestrator_server(settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        yield client


async def call_with_first_words(client: httpx.AsyncClient) -> tuple[str, Visitor]:
    """A conversation with a chat turn, switched to voice, whose first words were heard."""
    conversation_id = await create_conversation(client)
    await post_message(client, conversation_id, "Can you tell me where my order A1234 is?")
    session = await switch_to_voice(client, conversation_id)
    visitor = Visitor()
    await within(visitor.join(session["url"], session["token"]), visitor, "joining")
    await within(visitor.agent_spoke_since(0), visitor, "the first words")
    return conversation_id, visitor


async def switch_to_voice(client: httpx.AsyncClient, conversation_id: str) -> dict[str, Any]:
    response = await client.post(f"/v1/conversations/{conversation_id}/voice", headers=AUTH)
    assert response.status_code in (200, 201), response.text
    session: dict[str, Any] = response.json()
    return session


async def test_a_chat_continues_by_voice_and_both_voice_turns_reach_the_thread(
        orchestrator: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator)
    await post_message(orchestrator, conversation_id,
                       "My January claim for the broken screen was rejected")

    async with streamed(orchestrator, conversation_id) as sse:
        session = await switch_to_voice(orchestrator, conversation_id)
        visitor = Visitor()
        await asyncio.wait_for(visitor.join(session["url"], session["token"]), WAIT)
        await within(visitor.agent_spoke_since(0), visitor, "the first words")
        await within(visitor.hears_speech(), visitor, "hearing the first words")

        mark = visitor.mark()
        visitor.expect_speech()
        await visitor.say(SPOKEN)
        await within(visitor.agent_spoke_since(mark), visitor, "the reply")
        await within(visitor.hears_speech(), visitor, "hearing the reply")
        await within(sse.wait_for(lambda log: len(voice_messages(log)) >= 3), visitor,
                     "three voice turns in the stream")
        visitor_sid = visitor.room.local_participant.sid
        await visitor.leave()
        await asyncio.wait_for(sse.wait_for(visitor_left), WAIT)

    logged = await events(orchestrator, conversation_id)
    first_words, question, answer = voice_messages(logged)
    assert first_words[0] == "assistant" and "january claim" in first_words[1].lower()
    assert question == ("user", SPOKEN)
    assert answer[0] == "assistant" and SPOKEN.lower() in answer[1].lower()
    assert voice_messages(sse.events) == voice_messages(logged)
    [left] = [e for e in logged if e["kind"] == "channel_switch" and e["to_channel"] == "chat"]
    assert left["event_id"] == attributes.visitor_left_event_id(visitor_sid)
    record = (await orchestrator.get(f"/v1/conversations/{conversation_id}",
                                     headers=AUTH)).json()
    assert record["status"] == "chat"


async def test_every_turn_of_a_call_is_logged_once_across_a_redis_outage(
        own_orchestrator: httpx.AsyncClient, own_redis_server: RedisServer) -> None:
    conversation_id, visitor = await call_with_first_words(own_orchestrator)

    own_redis_server.stop()
    mark = visitor.mark()
    await visitor.say(SPOKEN)
    await within(visitor.agent_spoke_since(mark), visitor, "the reply while Redis is down")
    own_redis_server.start()
    await visitor.leave()
    logged = await asyncio.wait_for(
        logged_until_visitor_left(own_redis_server.url, conversation_id), WAIT)

    spoken = voice_messages(logged)
    assert [role for role, _ in spoken] == ["assistant", "user", "assistant"]
    assert spoken[1] == ("user", SPOKEN)
    ids = [e["event_id"] for e in logged]
    assert len(ids) == len(set(ids))


async def test_a_sigterm_lets_the_call_in_progress_finish(
        own_orchestrator: httpx.AsyncClient, own_worker: WorkerProcess,
        own_redis_server: RedisServer) -> None:
    conversation_id, visitor = await call_with_first_words(own_orchestrator)
    assert own_worker.process.process is not None

    own_worker.process.process.send_signal(signal.SIGTERM)
    mark = visitor.mark()
    visitor.expect_speech()
    await visitor.say(SPOKEN)
    await within(visitor.agent_spoke_since(mark), visitor, "the reply after SIGTERM")
    await within(visitor.hears_speech(), visitor, "hearing the reply after SIGTERM")
    assert own_worker.process.running
    await visitor.leave()
    logged = await asyncio.wait_for(
        logged_until_visitor_left(own_redis_server.url, conversation_id), WAIT)

    assert [role for role, _ in voice_messages(logged)] == ["assistant", "user", "assistant"]
    exit_code = await asyncio.to_thread(own_worker.process.process.wait, WAIT)
    assert exit_code == 0


async def test_text_typed_during_the_call_is_answered_and_logged_like_a_spoken_turn(
        orchestrator: httpx.AsyncClient, redis_server: RedisServer) -> None:
    typed = "Also, please quote the plus plan for twelve months"
    conversation_id, visitor = await call_with_first_words(orchestrator)

    mark = visitor.mark()
    await visitor.room.local_participant.send_text(typed, topic="lk.chat")
    await within(visitor.agent_spoke_since(mark), visitor, "the answer to the typed text")
    await visitor.leave()
    logged = await asyncio.wait_for(
        logged_until_visitor_left(redis_server.url, conversation_id), WAIT)

    _first_words, question, answer = voice_messages(logged)
    assert question == ("user", typed)
    assert answer[0] == "assistant" and typed.lower() in answer[1].lower()


async def test_turns_written_are_counted_on_the_metrics_port(
        orchestrator: httpx.AsyncClient, voice_worker: WorkerProcess,
        redis_server: RedisServer) -> None:
    conversation_id, visitor = await call_with_first_words(orchestrator)
    await visitor.leave()
    await asyncio.wait_for(logged_until_visitor_left(redis_server.url, conversation_id), WAIT)

    async with httpx.AsyncClient() as client:
        exposed = (await client.get(
            f"http://127.0.0.1:{voice_worker.metrics_port}/metrics")).text

    written = [line for line in exposed.splitlines()
               if line.startswith('baton_worker_events_written_total{kind="message"}')]
    assert written and float(written[0].split()[-1]) >= 1


async def test_the_first_words_are_timed_on_the_metrics_port(
        orchestrator: httpx.AsyncClient, voice_worker: WorkerProcess) -> None:
    before = await first_words_timed(voice_worker)

    _conversation_id, visitor = await call_with_first_words(orchestrator)
    await visitor.leave()

    assert await first_words_timed(voice_worker) == before + 1


async def first_words_timed(worker: WorkerProcess) -> int:
    """How many calls' first words the worker has timed (baton_worker_first_words_seconds)."""
    async with httpx.AsyncClient() as client:
        exposed = (await client.get(f"http://127.0.0.1:{worker.metrics_port}/metrics")).text
    counts = [line for line in exposed.splitlines()
              if line.startswith("baton_worker_first_words_seconds_count")]
    return int(float(counts[0].split()[-1])) if counts else 0


@pytest.mark.parametrize(("room", "reason"), [
    ("lobby.main", "is not named by a Baton conversation id"),
    ("c-nobody-created-this", "no such conversation in the log"),
])
async def test_a_job_for_a_room_that_is_not_a_conversation_ends_with_a_clear_log_line(
        devserver: DevServer, voice_worker: WorkerProcess, room: str, reason: str) -> None:
    room = f"{room}-{uuid.uuid4().hex[:6]}"
    async with devserver.api() as livekit:
        await livekit.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
            agent_name=voice_worker.agent_name, room=room))

        await asyncio.to_thread(wait_for_log_line, voice_worker.log_path, reason,
                                voice_worker.process)

    [record] = [json.loads(line) for line in voice_worker.log().splitlines()
                if reason in line and room in line]
    assert "ending the job" in record["message"]
    assert record["conversation_id"] == room and record["job_id"].startswith("AJ_")


@pytest.fixture(params=["true", "false"], ids=["streaming", "cut-by-the-worker"])
async def recognizing_worker(request: pytest.FixtureRequest, tmp_path: Path,
                             devserver: DevServer, redis_server: RedisServer,
                             model_server: ModelServer) -> AsyncIterator[WorkerProcess]:
    """A worker on this test's models with BATON_STT_STREAMING one way or the other."""
    environment = worker_environment(devserver, redis_server.url, model_server.url,
                                     f"baton-voice-{uuid.uuid4().hex[:8]}",
                                     BATON_STT_STREAMING=request.param)
    worker = await asyncio.to_thread(start_worker, tmp_path, environment)
    yield worker
    await asyncio.to_thread(worker.process.stop)


async def test_the_visitor_is_heard_whether_the_recognizer_streams_or_not(
        orchestrator_server: Callable[..., Any], orchestrator_settings: Settings,
        recognizing_worker: WorkerProcess, model_server: ModelServer,
        redis_server: RedisServer) -> None:
    streaming = (recognizing_worker.process.env or {})["BATON_STT_STREAMING"] == "true"
    settings = orchestrator_settings.model_copy(
        update={"agent_name": recognizing_worker.agent_name})
    async with httpx.AsyncClient(base_url=await orchestrator_server(settings),
                                 timeout=30.0) as client:
        conversation_id, visitor = await call_with_first_words(client)
        mark = visitor.mark()
        await visitor.say(SPOKEN)
        await within(visitor.agent_spoke_since(mark), visitor, "the reply")
        await visitor.leave()
    logged = await asyncio.wait_for(
        logged_until_visitor_left(redis_server.url, conversation_id), WAIT)

    assert voice_messages(logged)[1] == ("user", SPOKEN)
    streamed = [r.body["type"] for r in model_server.requests_to("/realtime")]
    uploaded = model_server.requests_to("/audio/transcriptions")
    if streaming:
        assert "input_audio_buffer.committed" in streamed and not uploaded
    else:
        assert uploaded and not streamed
