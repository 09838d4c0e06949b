"""Fixtures of the worker tests: a store, seeded conversations, text-mode sessions and, for
the end-to-end tests, a scripted model server process and a worker process."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from livekit.agents import AgentSession
from livekit.plugins import openai

from conversation import ConversationStore, Event, VerifiedIdentity
from conversation.redisclient import RedisClient, open_client
from deploy.processes import ManagedProcess, RedisServer, free_port, wait_for_port
from devserver.process import DevServer
from modelserver import ModelServer
from tests.conftest import TEST_SPEAKING_RATE
from worker.backends import ExampleBackend
from worker.tools import CallData, HandoffRequester

CHAT_START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class CountingBackend(ExampleBackend):
    """The example backend, counting the calls that reach it and who they were for."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.callers: list[VerifiedIdentity | None] = []

    async def lookup_order(self, order_id: str, *,
                           caller: VerifiedIdentity | None) -> dict[str, Any]:
        self._count("lookup_order", {"order_id": order_id}, caller)
        return await super().lookup_order(order_id, caller=caller)

    async def quote_price(self, plan: str, months: int, *,
                          caller: VerifiedIdentity | None) -> dict[str, Any]:
        self._count("quote_price", {"plan": plan, "months": months}, caller)
        return await super().quote_price(plan, months, caller=caller)

    async def book_callback(self, when: str, phone: str | None, *,
                            caller: VerifiedIdentity | None,
                            idempotency_key: str) -> dict[str, Any]:
        self._count("book_callback", {"when": when, "phone": phone}, caller)
        return await super().book_callback(when, phone, caller=caller,
                                           idempotency_key=idempotency_key)

    def _count(self, name: str, arguments: dict[str, Any],
               caller: VerifiedIdentity | None) -> None:
        self.calls.append((name, arguments))
        self.callers.append(caller)


@pytest.fixture
def store(redis: RedisClient) -> ConversationStore:
    return ConversationStore(redis)


@pytest.fixture
def backend() -> CountingBackend:
    return CountingBackend()


Seed = Callable[[str, Sequence[Event]], Any]


@pytest.fixture
def seed(store: ConversationStore) -> Callable[[str, Sequence[Event]], Any]:
    """`await seed(conversation_id, events)`: create the conversation and append the events,
    a minute apart from CHAT_START so their order is their time order."""

    async def create(conversation_id: str, events: Sequence[Event]) -> None:
        await store.create(conversation_id)
        for index, event in enumerate(events):
            at = CHAT_START + timedelta(minutes=index)
            await store.append(conversation_id, event.model_copy(update={"at": at}))

    return create


TextSession = Callable[..., contextlib.AbstractAsyncContextManager[AgentSession[CallData]]]


@pytest.fixture
def text_session(model_server: ModelServer, store: ConversationStore,
                 backend: CountingBackend) -> TextSession:
    """`async with text_session(conversation_id, caller=None, handoff=None) as session:` an
    AgentSession in text mode whose LLM is the real OpenAI plugin talking to the scripted model
    server; its tools act for `caller`, the conversation's verified identity, and hand the
    call to a person through `handoff`."""

    @contextlib.asynccontextmanager
    async def open_session(conversation_id: str, caller: VerifiedIdentity | None = None,
                           handoff: HandoffRequester | None = None,
                           ) -> AsyncIterator[AgentSession[CallData]]:
        async with openai.LLM(base_url=model_server.url, api_key="test") as model, \
                AgentSession[CallData](llm=model, userdata=CallData(
                    conversation_id, store, backend, caller=caller,
                    handoff=handoff)) as session:
            yield session

    return open_session


@dataclass
class WorkerProcess:
    """`python -m worker start` against the test stack, and what tests need to reach it."""

    process: ManagedProcess
    agent_name: str
    log_path: Path
    metrics_port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def voice_messages(log: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["role"], e["text"]) for e in log
            if e["kind"] == "message" and e["channel"] == "voice"]


def visitor_left(log: list[dict[str, Any]]) -> bool:
    return any(e["kind"] == "channel_switch" and e["to_channel"] == "chat" for e in log)


async def logged_until_visitor_left(redis_url: str, conversation_id: str,
                                    ) -> list[dict[str, Any]]:
    """The log up to the visitor leaving, read as Redis delivers it."""
    client = open_client(redis_url)
    try:
        logged: list[dict[str, Any]] = []
        async for stored in ConversationStore(client).follow(conversation_id):
            logged.append(stored.event.model_dump(mode="json"))
            if visitor_left(logged):
                return logged
        raise AssertionError("the log ended")
    finally:
        await client.aclose()


def wait_for_log_line(path: Path, text: str, process: ManagedProcess,
                      timeout: float = 90.0) -> None:
    """Block until the process logs `text`; the worker reports registration nowhere else."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if not process.running:
            raise RuntimeError(f"{process.name} exited:\n{path.read_text(errors='replace')}")
        time.sleep(0.1)
    raise TimeoutError(f"{process.name} did not log {text!r} within {timeout:.0f}s")


@pytest.fixture(scope="session")
def model_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The scripted model server as a child process for the whole run (default script); its
    base URL. Workers outlive single tests, so their models must too."""
    port = free_port()
    process = ManagedProcess("modelserver", [sys.executable, "-m", "modelserver",
                                             "--port", str(port), "--words-per-minute",
                                             str(TEST_SPEAKING_RATE)],
                             log_path=tmp_path_factory.mktemp("models") / "modelserver.log")
    process.start()
    wait_for_port(port, process=process.process)
    yield f"http://127.0.0.1:{port}/v1"
    process.stop()


def worker_environment(devserver: DevServer, redis_url: str, models_url: str,
                       agent_name: str, **extra: str) -> dict[str, str]:
    return {
        "LIVEKIT_URL": devserver.url, "LIVEKIT_API_KEY": devserver.api_key,
        "LIVEKIT_API_SECRET": devserver.api_secret, "BATON_ENV": "development",
        "REDIS_URL": redis_url, "OPENAI_API_KEY": "test", "OPENAI_BASE_URL": models_url,
        "BATON_AGENT_NAME": agent_name, "BATON_JOB_EXECUTOR": "thread",
        "BATON_HEALTH_PORT": "0", "BATON_FLUSH_TIMEOUT": "30",
        # Other suites load the machine: capacity in calls, so a busy CPU turns no call away.
        "BATON_MAX_JOBS": "8", **extra,
    }


def start_worker(directory: Path, environment: dict[str, str]) -> WorkerProcess:
    metrics_port = free_port()
    log_path = directory / "worker.log"
    process = ManagedProcess("worker", [sys.executable, "-m", "worker", "start"],
                             env=environment | {"BATON_METRICS_PORT": str(metrics_port)},
                             log_path=log_path)
    process.start()
    wait_for_log_line(log_path, "registered worker", process)
    return WorkerProcess(process, environment["BATON_AGENT_NAME"], log_path, metrics_port)


@pytest.fixture
async def scripted_worker(tmp_path: Path, devserver: DevServer, redis_server: RedisServer,
                          model_server: ModelServer) -> AsyncIterator[WorkerProcess]:
    """A worker of this test alone whose models are this test's `model_server`, so the test
    can script the models and see when the agent called them."""
    environment = worker_environment(devserver, redis_server.url, model_server.url,
                                     f"baton-voice-{uuid.uuid4().hex[:8]}")
    worker = await asyncio.to_thread(start_worker, tmp_path, environment)
    yield worker
    await asyncio.to_thread(worker.process.stop)


@pytest.fixture(scope="session")
def voice_worker(tmp_path_factory: pytest.TempPathFactory, devserver: DevServer,
                 redis_server: RedisServer, model_server_process: str,
                 ) -> Iterator[WorkerProcess]:
    """One worker process shared by the end-to-end tests, under an agent name of its own so
    no other suite's worker takes its jobs."""
    environment = worker_environment(devserver, redis_server.url, model_server_process,
                                     f"baton-voice-{uuid.uuid4().hex[:8]}")
    worker = start_worker(tmp_path_factory.mktemp("worker"), environment)
    yield worker
    worker.process.stop()
