"""One agent worker's connection: registration, messages, pings and its job tokens."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import WSMsgType, web
from google.protobuf.message import DecodeError
from livekit import api
from livekit.protocol import agent, models

log = logging.getLogger("devserver.agents")

# LiveKit's RegisterTimeout.
REGISTER_TIMEOUT = 10.0
# The attribute LiveKit's server adds to every agent token.
AGENT_NAME_ATTRIBUTE = "lk.agent_name"
AGENT_PROTOCOL = 1
SERVER_VERSION = "1.9.0-devserver"


class WorkerGone(Exception):
    """The worker's connection closed while a job was being offered to it."""


def _default_permissions() -> models.ParticipantPermission:
    return models.ParticipantPermission(
        can_subscribe=True, can_publish=True, can_publish_data=True, can_update_metadata=True
    )


@dataclass(eq=False)
class Worker:
    """One registered worker connection and what it last reported."""

    id: str
    ws: web.WebSocketResponse
    api_key: str
    agent_name: str = ""
    job_type: agent.JobType = agent.JobType.JT_ROOM
    permissions: models.ParticipantPermission = field(default_factory=_default_permissions)
    status: agent.WorkerStatus = agent.WorkerStatus.WS_AVAILABLE
    load: float = 0.0
    job_count: int = 0
    offers: dict[str, asyncio.Future[agent.AvailabilityResponse]] = field(default_factory=dict)
    jobs: set[str] = field(default_factory=set)
    closed: bool = False

    async def send(self, message: agent.ServerMessage) -> None:
        if self.closed or self.ws.closed:
            raise WorkerGone(self.id)
        try:
            await self.ws.send_bytes(message.SerializeToString())
        except ConnectionError as err:
            raise WorkerGone(self.id) from err


async def register(worker: Worker) -> bool:
    """Read messages until the worker registers; the first server message is the reply."""
    deadline = time.monotonic() + REGISTER_TIMEOUT
    while True:
        message = await receive(worker, within=deadline - time.monotonic())
        if message is None:
            return False
        which = message.WhichOneof("message")
        if which == "ping":
            await pong(worker, message.ping)
            continue
        if which != "register":
            log.warning("worker sent %s before registering; closing", which)
            return False
        req = message.register
        worker.agent_name = req.agent_name
        worker.job_type = req.type
        if req.HasField("allowed_permissions"):
            worker.permissions = req.allowed_permissions
        info = models.ServerInfo(
            edition=models.ServerInfo.Edition.Standard,
            version=SERVER_VERSION,
            protocol=16,
            agent_protocol=AGENT_PROTOCOL,
            node_id="ND_devserver",
        )
        await worker.send(
            agent.ServerMessage(
                register=agent.RegisterWorkerResponse(worker_id=worker.id, server_info=info)
            )
        )
        log.info(
            "worker %s registered (agent %r, %s, version %s)",
            worker.id,
            worker.agent_name,
            agent.JobType.Name(worker.job_type),
            req.version,
        )
        return True


async def receive(worker: Worker, *, within: float | None = None) -> agent.WorkerMessage | None:
    """The next worker message, or None when the connection ends or sends garbage."""
    try:
        frame = await worker.ws.receive(timeout=within)
    except TimeoutError:
        log.warning("worker %s did not register in %.0f s", worker.id, REGISTER_TIMEOUT)
        return None
    if frame.type != WSMsgType.BINARY:
        return None
    message = agent.WorkerMessage()
    try:
        message.ParseFromString(frame.data)
    except DecodeError:
        log.warning("worker %s sent an undecodable message; closing", worker.id)
        return None
    return message


async def pong(worker: Worker, ping: agent.WorkerPing) -> None:
    await worker.send(
        agent.ServerMessage(
            pong=agent.WorkerPong(last_timestamp=ping.timestamp, timestamp=int(time.time() * 1000))
        )
    )


def agent_token(
    worker: Worker, secret: str, job: agent.Job, answer: agent.AvailabilityResponse
) -> str:
    """A room-join token like LiveKit's BuildAgentToken: kind agent, worker's permissions."""
    perms = worker.permissions
    attributes = dict(answer.participant_attributes)
    attributes[AGENT_NAME_ATTRIBUTE] = worker.agent_name
    grants = api.VideoGrants(
        room_join=True,
        agent=True,
        room=job.room.name,
        can_subscribe=perms.can_subscribe,
        can_publish=perms.can_publish,
        can_publish_data=perms.can_publish_data,
        hidden=perms.hidden,
        can_update_own_metadata=perms.can_update_metadata,
        can_subscribe_metrics=perms.can_subscribe_metrics,
    )
    return (
        api.AccessToken(worker.api_key, secret)
        .with_identity(answer.participant_identity)
        .with_name(answer.participant_name)
        .with_kind("agent")
        .with_metadata(answer.participant_metadata)
        .with_attributes(attributes)
        .with_grants(grants)
        .with_ttl(timedelta(hours=1))
        .to_jwt()
    )
