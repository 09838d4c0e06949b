"""The AgentServer: explicit dispatch by agent name, one VAD per process, drain on SIGTERM."""

from __future__ import annotations

import tempfile
from typing import Any

from livekit.agents import AgentServer, JobExecutorType

from worker.entrypoint import entrypoint, setup_process
from worker.settings import WorkerSettings


def build_server(settings: WorkerSettings) -> AgentServer:
    metrics_dir = settings.metrics_dir
    if settings.metrics_port is not None and metrics_dir is None \
            and settings.job_executor == "process":
        # Jobs run in child processes; their metrics reach the port through this directory.
        metrics_dir = tempfile.mkdtemp(prefix="baton-worker-metrics-")
    options: dict[str, Any] = {}
    if settings.idle_processes is not None:
        options["num_idle_processes"] = settings.idle_processes
    server = AgentServer(
        ws_url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
        setup_fnc=setup_process,
        drain_timeout=settings.drain_timeout,
        load_threshold=settings.load_threshold,
        prometheus_port=settings.metrics_port,
        prometheus_multiproc_dir=metrics_dir,
        port=settings.health_port,
        job_executor_type=JobExecutorType(settings.job_executor),
        **options,
    )
    server.rtc_session(entrypoint, agent_name=settings.agent_name)
    return server
