"""The AgentServer: explicit dispatch by agent name, one VAD per process, drain on SIGTERM."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

from livekit.agents import AgentServer, JobExecutorType

from worker.entrypoint import entrypoint, setup_process
from worker.settings import WorkerSettings


def calls_load(max_jobs: int) -> Callable[[AgentServer], float]:
    """Load as the share of call slots in use. The servers weigh workers by 1 - load, so a
    worker on a busy CPU that still has call slots keeps being offered calls."""

    def load(server: AgentServer) -> float:
        return min(1.0, len(server.active_jobs) / max_jobs)

    return load


def build_server(settings: WorkerSettings) -> AgentServer:
    metrics_dir = settings.metrics_dir
    if settings.metrics_port is not None and metrics_dir is None \
            and settings.job_executor == "process":
        # Jobs run in child processes; their metrics reach the port through this directory.
        metrics_dir = tempfile.mkdtemp(prefix="baton-worker-metrics-")
    options: dict[str, Any] = {"load_threshold": settings.load_threshold}
    if settings.idle_processes is not None:
        options["num_idle_processes"] = settings.idle_processes
    if settings.max_jobs is not None:
        options["load_fnc"] = calls_load(settings.max_jobs)
        options["load_threshold"] = 1.0
    server = AgentServer(
        ws_url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
        setup_fnc=setup_process,
        drain_timeout=settings.drain_timeout,
        prometheus_port=settings.metrics_port,
        prometheus_multiproc_dir=metrics_dir,
        port=settings.health_port,
        job_executor_type=JobExecutorType(settings.job_executor),
        # Imported once in the forkserver, so every job process starts with them loaded.
        preload_modules=["worker.entrypoint", "worker.preload"],
        **options,
    )
    server.rtc_session(entrypoint, agent_name=settings.agent_name)
    return server
