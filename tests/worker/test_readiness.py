"""A worker pod is Ready only while it takes jobs, and exports the load the autoscaler scales on:
a real `python -m worker start` on the devserver, probed on its health and metrics ports."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deploy.processes import ManagedProcess, RedisServer, free_port, wait_for_port
from devserver.process import DevServer
from orchestrator.settings import Settings
from tests.conftest import OrchestratorClientFactory
from tests.worker.conftest import (
    WorkerProcess,
    start_worker,
    wait_for_log_line,
    worker_environment,
)
from tests.worker.test_call import WAIT, call_with_first_words
from worker.health import READY_PATH

pytestmark = pytest.mark.realtime

MAX_JOBS = 8  # worker_environment's BATON_MAX_JOBS


@dataclass
class ProbedWorker:
    worker: WorkerProcess
    health_port: int

    async def ready(self) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.get(f"http://127.0.0.1:{self.health_port}{READY_PATH}")

    async def samples(self) -> dict[str, float]:
        """Every sample on the metrics port, by name without labels (one series each here)."""
        async with httpx.AsyncClient() as client:
            exposed = (await client.get(
                f"http://127.0.0.1:{self.worker.metrics_port}/metrics")).text
        return {line.split("{")[0].split()[0]: float(line.split()[-1])
                for line in exposed.splitlines() if line and not line.startswith("#")}

    async def metric(self, name: str) -> float | None:
        return (await self.samples()).get(name)

    async def gauges(self) -> dict[str, float]:
        """The worker's load gauges, by name."""
        return {name: value for name, value in (await self.samples()).items()
                if name in ("baton_worker_load", "baton_worker_active_jobs")}

    async def gauges_reach(self, wanted: dict[str, float]) -> None:
        """Wait until the gauges read `wanted`: the framework samples the load twice a second,
        and nothing announces a sample."""
        deadline = time.monotonic() + WAIT
        while (seen := await self.gauges()) != wanted:
            if time.monotonic() > deadline:
                raise AssertionError(f"gauges stayed at {seen}, expected {wanted}")
            await asyncio.sleep(0.1)


def probed_worker(directory: Path, devserver: DevServer, redis_url: str, models_url: str,
                  **extra: str) -> ProbedWorker:
    health_port = free_port()
    worker = start_worker(directory, worker_environment(
        devserver, redis_url, models_url, f"baton-voice-{uuid.uuid4().hex[:8]}",
        BATON_HEALTH_PORT=str(health_port), **extra))
    return ProbedWorker(worker, health_port)


@pytest.fixture
def probed(tmp_path: Path, devserver: DevServer, redis_server: RedisServer,
           model_server_process: str) -> Iterator[ProbedWorker]:
    """A registered worker of this test alone, its health port known."""
    probed = probed_worker(tmp_path, devserver, redis_server.url, model_server_process)
    yield probed
    probed.worker.process.stop()


@pytest.fixture
async def orchestrator(orchestrator_client_factory: OrchestratorClientFactory,
                       orchestrator_settings: Settings, probed: ProbedWorker,
                       ) -> AsyncIterator[httpx.AsyncClient]:
    settings = orchestrator_settings.model_copy(update={"agent_name": probed.worker.agent_name})
    async with orchestrator_client_factory(settings) as client:
        yield client


def test_a_worker_that_has_not_registered_with_livekit_is_alive_but_not_ready(
        tmp_path: Path, devserver: DevServer, redis_server: RedisServer) -> None:
    health_port = free_port()
    environment = worker_environment(devserver, redis_server.url, "http://127.0.0.1:9/v1",
                                     "baton-voice-unregistered",
                                     BATON_HEALTH_PORT=str(health_port))
    # Nothing listens there: the worker keeps trying to connect and never registers.
    environment["LIVEKIT_URL"] = f"ws://127.0.0.1:{free_port()}"
    process = ManagedProcess("worker", [sys.executable, "-m", "worker", "start"],
                             env=environment, log_path=tmp_path / "worker.log")
    process.start()
    try:
        wait_for_port(health_port, process=process.process, timeout=60)
        alive = httpx.get(f"http://127.0.0.1:{health_port}/")
        ready = httpx.get(f"http://127.0.0.1:{health_port}{READY_PATH}")
    finally:
        process.stop()

    assert alive.status_code == 200
    assert ready.status_code == 503 and "not registered" in ready.text


async def test_a_registered_worker_is_ready(probed: ProbedWorker) -> None:
    response = await probed.ready()

    assert response.status_code == 200


async def test_a_draining_worker_is_not_ready_while_its_call_goes_on(
        orchestrator: httpx.AsyncClient, probed: ProbedWorker) -> None:
    _conversation_id, visitor = await call_with_first_words(orchestrator)
    process = probed.worker.process.process
    assert process is not None

    process.send_signal(signal.SIGTERM)
    # The framework sets its draining flag in the same step as it logs this line.
    await asyncio.to_thread(wait_for_log_line, probed.worker.log_path, "draining worker",
                            probed.worker.process)
    draining = await probed.ready()
    still_in_call = probed.worker.process.running
    await visitor.leave()
    exit_code = await asyncio.to_thread(process.wait, WAIT)

    assert draining.status_code == 503 and "draining" in draining.text
    assert still_in_call and exit_code == 0


async def test_the_exported_load_counts_live_calls_against_max_jobs(
        orchestrator: httpx.AsyncClient, probed: ProbedWorker) -> None:
    await probed.gauges_reach({"baton_worker_active_jobs": 0, "baton_worker_load": 0})

    _conversation_id, visitor = await call_with_first_words(orchestrator)
    await probed.gauges_reach({"baton_worker_active_jobs": 1,
                               "baton_worker_load": 1 / MAX_JOBS})
    await visitor.leave()

    await probed.gauges_reach({"baton_worker_active_jobs": 0, "baton_worker_load": 0})


async def test_with_jobs_in_their_own_processes_the_load_and_the_jobs_metrics_are_exported(
        tmp_path: Path, devserver: DevServer, redis_server: RedisServer,
        model_server_process: str, orchestrator_client_factory: OrchestratorClientFactory,
        orchestrator_settings: Settings) -> None:
    """Regression: with jobs in child processes the framework named the metrics directory after
    prometheus_client was imported, so the main process's gauges never reached the port."""
    probed = probed_worker(tmp_path, devserver, redis_server.url, model_server_process,
                           BATON_JOB_EXECUTOR="process", BATON_IDLE_PROCESSES="1")
    settings = orchestrator_settings.model_copy(update={"agent_name": probed.worker.agent_name})
    try:
        async with orchestrator_client_factory(settings) as orchestrator:
            _conversation_id, visitor = await call_with_first_words(orchestrator)
            await probed.gauges_reach({"baton_worker_active_jobs": 1,
                                       "baton_worker_load": 1 / MAX_JOBS})
            restores = await probed.metric("baton_worker_history_restore_seconds_count")
            await visitor.leave()
    finally:
        probed.worker.process.stop()

    assert restores == 1
