"""The AgentServer: explicit dispatch by agent name, one VAD per process, drain on SIGTERM,
readiness on the health port."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from livekit.agents import AgentServer, JobExecutorType

from conversation import StoreUnavailable, attributes, redaction
from conversation.errors import redis_errors
from worker import metrics
from worker.entrypoint import entrypoint, setup_process
from worker.health import ReadyAgentServer
from worker.settings import WorkerSettings

logger = logging.getLogger("baton.worker")


def calls_load(max_jobs: int, agent_name: str) -> Callable[[AgentServer], float]:
    """Load as the share of call slots in use, also exported for the autoscaler. The servers
    weigh workers by 1 - load, so a worker on a busy CPU that still has call slots keeps being
    offered calls."""

    def load(server: AgentServer) -> float:
        active = len(server.active_jobs)
        share = min(1.0, active / max_jobs)
        metrics.ACTIVE_JOBS.labels(agent_name).set(active)
        metrics.LOAD.labels(agent_name).set(share)
        return share

    return load


class BatonAgentServer(ReadyAgentServer):
    """The worker's server, whose log lines are masked for phone and card numbers.

    The framework builds its JSON log handler just before it runs the server, in the worker
    process; job processes send their records to it, so the filter on it covers them too.
    """

    async def run(self, *, devmode: bool = False, unregistered: bool = False) -> None:
        redaction.guard()
        await super().run(devmode=devmode, unregistered=unregistered)


def build_server(settings: WorkerSettings) -> AgentServer:
    options: dict[str, Any] = {"load_threshold": settings.load_threshold}
    if settings.idle_processes is not None:
        options["num_idle_processes"] = settings.idle_processes
    if settings.max_jobs is not None:
        options["load_fnc"] = calls_load(settings.max_jobs, settings.agent_name)
        options["load_threshold"] = 1.0
    server = BatonAgentServer(
        ws_url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
        setup_fnc=setup_process,
        drain_timeout=settings.drain_timeout,
        prometheus_port=settings.metrics_port,
        # No prometheus_multiproc_dir: worker/__main__.py names it before prometheus_client is
        # imported, which is too late for the framework to do.
        port=settings.health_port,
        job_executor_type=JobExecutorType(settings.job_executor),
        # Imported once in the forkserver, so every job process starts with them loaded.
        preload_modules=["worker.entrypoint", "worker.preload"],
        **options,
    )
    server.rtc_session(entrypoint, agent_name=settings.agent_name)
    announce_registrations(server, settings)
    return server


def announce_registrations(server: AgentServer, settings: WorkerSettings) -> None:
    """Tell the orchestrators on Redis each time LiveKit registers this worker: calls that
    waited through a worker outage are dispatched again at once instead of at the next
    check."""
    pending: set[asyncio.Task[None]] = set()

    def registered(_worker_id: str, _server_info: object) -> None:
        task = asyncio.create_task(announce(settings), name="baton-announce-registration")
        pending.add(task)
        task.add_done_callback(pending.discard)

    server.on("worker_registered", registered)


async def announce(settings: WorkerSettings) -> None:
    redis = settings.redis_client(socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        with redis_errors():
            await redis.publish(attributes.WORKER_REGISTERED_CHANNEL, settings.agent_name)
    except StoreUnavailable:
        # The orchestrators' periodic checks find waiting calls anyway, a little later.
        logger.warning("could not announce the registration on Redis")
    finally:
        await redis.aclose()
