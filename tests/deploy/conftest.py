"""A deployment on loopback, wired as production is: LiveKit (the devserver) with real keys and
its webhooks sent to an orchestrator process in production mode, Redis with AOF, and a worker
registered for the agent name."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from deploy.processes import ManagedProcess, RedisServer, free_port, wait_for_port
from devserver.process import DevServer
from orchestrator.settings import Settings
from tests.worker.conftest import WorkerProcess, start_worker, worker_environment

LIVEKIT_KEY = "APIdeployment01"
LIVEKIT_SECRET = "deployment-livekit-secret-0123456789abcdef"
NO_MODELS = "http://127.0.0.1:9/v1"
"""The worker's model endpoint: nothing answers there, and no test here needs a model."""


@dataclass
class Deployment:
    devserver: DevServer
    settings: Settings
    """The orchestrator's settings, as its environment holds them."""
    orchestrator_url: str
    worker: WorkerProcess


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory,
               redis_server: RedisServer) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("deployment")
    port = free_port()
    orchestrator_url = f"http://127.0.0.1:{port}"
    devserver = DevServer(keys={LIVEKIT_KEY: LIVEKIT_SECRET},
                          webhooks=[f"{orchestrator_url}/v1/livekit/webhook"],
                          log_path=folder / "devserver.log")
    devserver.start()
    settings = Settings(
        env="production", redis_url=redis_server.url, livekit_url=devserver.url,
        livekit_api_key=LIVEKIT_KEY, livekit_api_secret=LIVEKIT_SECRET,
        api_keys="deployment-api-key-0123456789abcdef0123",
        widget_secret="deployment-widget-secret-0123456789abcdef",
        agent_name=f"baton-voice-{uuid.uuid4().hex[:8]}", reconcile_interval=0)
    orchestrator = ManagedProcess(
        "orchestrator", [sys.executable, "-m", "orchestrator"],
        env=settings.environment() | {"BATON_HOST": "127.0.0.1", "BATON_PORT": str(port)},
        log_path=folder / "orchestrator.log")
    orchestrator.start()
    try:
        wait_for_port(port, process=orchestrator.process, timeout=60)
        worker = start_worker(folder, worker_environment(
            devserver, redis_server.url, NO_MODELS, settings.agent_name))
        try:
            yield Deployment(devserver, settings, orchestrator_url, worker)
        finally:
            worker.process.stop()
    finally:
        orchestrator.stop()
        devserver.stop()
