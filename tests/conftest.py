"""Shared fixtures: real processes on loopback ports, started once and cleaned between tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
import uvicorn
from livekit.protocol import sip

from conversation.redisclient import RedisClient
from conversation.settings import StoreSettings
from deploy.processes import (
    ManagedProcess,
    RedisClusterNodes,
    RedisServer,
    free_port,
    wait_for_port,
)
from devserver.process import DevServer
from modelserver import ModelServer
from orchestrator.app import create_app
from orchestrator.settings import Settings
from tests.orchestrator.phone_support import NUMBERS, write_script


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole run; each test gets it flushed."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for this test alone, for tests that stop and restart it."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


REDIS_KINDS = ("server", "cluster")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `server_and_cluster` that use the log's Redis run once against each kind."""
    if "redis_kind" in metafunc.fixturenames and \
            metafunc.definition.get_closest_marker("server_and_cluster"):
        metafunc.parametrize("redis_kind", REDIS_KINDS, indirect=True)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    """One 3-primary Redis Cluster for the whole run, started by the first test that asks for
    it; each test gets it flushed."""
    cluster = RedisClusterNodes(tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_kind(request: pytest.FixtureRequest) -> str:
    """The kind of Redis this test's log lives in: one server, unless the test is marked
    `server_and_cluster`."""
    kind: str = getattr(request, "param", "server")
    return kind


LogRedis = RedisServer | RedisClusterNodes


def log_settings(redis: LogRedis) -> StoreSettings:
    """The settings both services would be given for a log in `redis`."""
    return StoreSettings(redis_url=redis.url, redis_cluster=isinstance(redis, RedisClusterNodes))


@pytest.fixture
def store_settings(redis_kind: str, request: pytest.FixtureRequest) -> StoreSettings:
    """Where this test's conversation log lives, as both services would be configured."""
    shared = "redis_cluster" if redis_kind == "cluster" else "redis_server"
    return log_settings(request.getfixturevalue(shared))


@pytest.fixture
def own_redis(redis_kind: str, tmp_path: Path) -> Iterator[LogRedis]:
    """A Redis of this test's kind for this test alone, for tests that stop and restart it."""
    own: LogRedis = RedisClusterNodes(tmp_path / "redis-cluster") if redis_kind == "cluster" \
        else RedisServer(tmp_path / "redis")
    own.start()
    yield own
    own.stop()


@pytest.fixture
async def redis(store_settings: StoreSettings) -> AsyncIterator[RedisClient]:
    """A client of this test's log Redis, flushed (every node of a cluster)."""
    client = store_settings.redis_client()
    await client.flushdb()
    yield client
    await client.aclose()


async def all_keys(redis: RedisClient, pattern: str = "*") -> list[bytes]:
    """The keys matching `pattern` on every node (KEYS asks one node of a cluster)."""
    return [key async for key in redis.scan_iter(match=pattern)]


DevServerFactory = Callable[..., DevServer]


@pytest.fixture(scope="session")
def devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One devserver for the whole run; tests keep apart by using their own room names."""
    server = DevServer(log_path=tmp_path_factory.mktemp("devserver") / "devserver.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def devserver_factory(tmp_path: Path) -> Iterator[DevServerFactory]:
    """Start devservers with this test's own arguments: factory(webhooks=[url], sip_script=path)."""
    started: list[DevServer] = []

    def start(*, webhooks: Sequence[str] = (), sip_script: Path | None = None) -> DevServer:
        server = DevServer(
            webhooks=webhooks,
            sip_script=sip_script,
            log_path=tmp_path / f"devserver-{len(started)}.log",
        )
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def phone_devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A devserver whose simulated phones follow `tests/orchestrator/phone_support.py`: one
    number per outcome, a slow one, one that speaks and hangs up, and transfer targets."""
    folder = tmp_path_factory.mktemp("phones")
    server = DevServer(sip_script=write_script(folder), log_path=folder / "devserver.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def phone_trunk(phone_devserver: DevServer) -> AsyncIterator[str]:
    """An outbound trunk on the phone devserver; its id."""
    async with phone_devserver.api() as livekit:
        trunk = await livekit.sip.create_outbound_trunk(sip.CreateSIPOutboundTrunkRequest(
            trunk=sip.SIPOutboundTrunkInfo(name="carrier", address="sip.carrier.example",
                                           numbers=["+12025550000"])))
        yield trunk.sip_trunk_id
        await livekit.sip.delete_trunk(sip.DeleteSIPTrunkRequest(
            sip_trunk_id=trunk.sip_trunk_id))


@pytest.fixture
def no_phone_number_logged(caplog: pytest.LogCaptureFixture,
                           phone_devserver: DevServer) -> Iterator[None]:
    """Fails the test if any phone number of the phone script reached a log line of this
    process (every logger, at every level) or of the phone devserver."""
    caplog.set_level(logging.DEBUG)
    yield
    assert phone_devserver.log_path is not None
    records = caplog.get_records("setup") + caplog.get_records("call")
    logged = [r.getMessage() for r in records] + phone_devserver.log_path.read_text().splitlines()
    for number in NUMBERS:
        # The subscriber part, however it was typed: "+1 202 555 0100" or "2025550100".
        subscriber = number[-7:]
        assert not [line for line in logged if subscriber in re.sub(r"[ ().-]", "", line)], \
            f"a phone number ending {number[-2:]} was logged"


ORCHESTRATOR_API_KEY = "test-orchestrator-api-key-0123456789abcdef"
ORCHESTRATOR_WIDGET_SECRET = "test-widget-secret-0123456789abcdef0123456789"
OrchestratorClientFactory = Callable[[Settings], contextlib.AbstractAsyncContextManager[
    httpx.AsyncClient]]


@pytest.fixture
def orchestrator_settings(store_settings: StoreSettings, devserver: DevServer,
                          redis: RedisClient) -> Settings:
    """Orchestrator settings against this test's log Redis (flushed) and the devserver.

    Variants: `orchestrator_settings.model_copy(update={"livekit_url": ...})`.
    Authorize with `Authorization: Bearer ORCHESTRATOR_API_KEY` (or `orchestrator_auth`).
    The background checks (reconciliation, waiting calls) are off, so nothing acts on a test's
    rooms behind its back; tests of them turn them on with `reconcile_interval`.
    """
    return Settings(env="development", redis_url=store_settings.redis_url,
                    redis_cluster=store_settings.redis_cluster, livekit_url=devserver.url,
                    livekit_api_key=devserver.api_key, livekit_api_secret=devserver.api_secret,
                    api_keys=ORCHESTRATOR_API_KEY, widget_secret=ORCHESTRATOR_WIDGET_SECRET,
                    reconcile_interval=0)


@pytest.fixture
def phone_settings(orchestrator_settings: Settings, phone_devserver: DevServer,
                   phone_trunk: str) -> Settings:
    """Orchestrator settings with dial-out on: the phone devserver, its trunk, numbers in the
    US and GB, and a short ring."""
    return orchestrator_settings.model_copy(update={
        "livekit_url": phone_devserver.url, "sip_outbound_trunk": phone_trunk,
        "dial_countries": ("US", "GB"), "dial_ringing_timeout": 2})


@pytest.fixture
def orchestrator_auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ORCHESTRATOR_API_KEY}"}


@contextlib.asynccontextmanager
async def _in_process_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://orchestrator",
            timeout=30.0) as client:
        yield client


@pytest.fixture
async def orchestrator_client(orchestrator_settings: Settings,
                              ) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling create_app(orchestrator_settings) in process (no streaming:
    ASGITransport buffers whole responses; use `orchestrator_server` for SSE)."""
    async with _in_process_client(orchestrator_settings) as client:
        yield client


@pytest.fixture
def orchestrator_client_factory() -> OrchestratorClientFactory:
    """`async with orchestrator_client_factory(settings) as client:` for variant settings."""
    return _in_process_client


@pytest.fixture
async def orchestrator_server() -> AsyncIterator[Callable[..., object]]:
    """Serve create_app(settings) with uvicorn in this event loop: `url = await
    orchestrator_server(settings, port=None)`; stopped after the test."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(settings: Settings, *, port: int | None = None) -> str:
        port = port or free_port()
        server = uvicorn.Server(uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning",
            lifespan="on", timeout_graceful_shutdown=2))
        task = asyncio.create_task(server.serve())
        running.append((server, task))
        # uvicorn offers no event for "listening"; its flag flips once the socket is bound.
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the orchestrator stopped while starting")
            await asyncio.sleep(0.01)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, task in running:
        server.should_exit = True
        await task


@pytest.fixture
def orchestrator_process(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Run `python -m orchestrator` with these settings: `url = orchestrator_process(settings,
    port=None)`; its log is in the test's tmp_path; stopped after the test."""
    started: list[ManagedProcess] = []

    def start(settings: Settings, *, port: int | None = None) -> str:
        port = port or free_port()
        env = settings.environment() | {"BATON_HOST": "127.0.0.1", "BATON_PORT": str(port)}
        process = ManagedProcess("orchestrator", [sys.executable, "-m", "orchestrator"], env=env,
                                 log_path=tmp_path / f"orchestrator-{len(started)}.log")
        process.start()
        started.append(process)
        wait_for_port(port, process=process.process, timeout=60)
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        process.stop()


TEST_SPEAKING_RATE = 380
"""The scripted voice's words per minute in tests: twice the demo's pace, so the suite spends
half as long listening to the agent."""


@pytest.fixture
async def model_server() -> AsyncIterator[ModelServer]:
    """The scripted OpenAI-compatible server (the `modelserver` package) for this test: point the
    plugins at `model_server.url`; script with `script_chat(...)`, read `chat_requests`."""
    server = ModelServer(words_per_minute=TEST_SPEAKING_RATE)
    await server.start()
    yield server
    await server.aclose()
