"""Agent workers on /agent: registration, job offers weighted by load, assignment, termination."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from livekit.protocol import agent, agent_dispatch

from devserver.agentworker import Worker, WorkerGone, agent_token, pong, receive, register
from devserver.auth import require_agent, verify_token
from devserver.context import ServerContext
from devserver.ids import new_id
from devserver.rooms import Room, RoomManager
from devserver.twirp import TwirpError

log = logging.getLogger("devserver.agents")

# LiveKit's AssignJobTimeout.
AVAILABILITY_TIMEOUT = 10.0
# How long a terminated job's participant may take to leave before it is removed (LiveKit: 3 s).
LEAVE_GRACE = 3.0
# Set to 1 to re-offer a dead worker's jobs as LiveKit Cloud does (JRP_ON_FAILURE).
RESTART_POLICY_ENV = "DEVSERVER_HONOUR_RESTART_POLICY"
STATUS_PATH = "/devserver/agents"
KEEP_ENDED_JOBS = 200
LEFT_ROOM = "agent worker left the room"
CRASH_WINDOW_S = 5.0

ENDED = (agent.JobStatus.JS_SUCCESS, agent.JobStatus.JS_FAILED)


def install(app: web.Application, ctx: ServerContext) -> None:
    service = AgentService(
        ctx.config.keys, ctx.rooms, honour_restart_policy=os.environ.get(RESTART_POLICY_ENV) == "1"
    )
    service.install(app)
    app[AGENTS_KEY] = service


@dataclass(eq=False)
class JobRecord:
    """A job the server assigned, the dispatch it serves and the worker running it."""

    job: agent.Job
    dispatch: agent_dispatch.AgentDispatch
    worker: Worker | None
    left: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ended(self) -> bool:
        return self.job.state.status in ENDED


class AgentService:
    """The worker registry and the lifecycle of every job offered through it."""

    def __init__(
        self, keys: Mapping[str, str], rooms: RoomManager, *, honour_restart_policy: bool = False
    ) -> None:
        self._keys = keys
        self._rooms = rooms
        # Off by default: open-source LiveKit stores the restart policy but never acts on it.
        self.honour_restart_policy = honour_restart_policy
        self.workers: dict[str, Worker] = {}
        self.jobs: dict[str, JobRecord] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        rooms.on("participant_left", self._on_participant_left)
        rooms.on("room_finished", self._on_room_finished)

    def install(self, app: web.Application) -> None:
        app.router.add_get("/agent", self.handle)
        app.router.add_get(STATUS_PATH, self.status)
        app.on_shutdown.append(self._shutdown)

    # Jobs, as the dispatch service asks for them

    async def launch(
        self,
        room: Room,
        dispatch: agent_dispatch.AgentDispatch,
        *,
        resuming: bool = False,
        exclude: frozenset[Worker] = frozenset(),
    ) -> agent.Job | None:
        """Offer a room job to workers until one takes it; None when nobody can."""
        job = agent.Job(
            id=new_id("AJ_"),
            dispatch_id=dispatch.id,
            type=agent.JobType.JT_ROOM,
            room=room.to_proto(),
            agent_name=dispatch.agent_name,
            metadata=dispatch.metadata,
            attributes=dict(dispatch.attributes),
        )
        attempted = set(exclude)
        while True:
            worker = self._pick(dispatch.agent_name, attempted)
            if worker is None:
                log.info(
                    "job %s for room %s agent %r: no worker available",
                    job.id,
                    room.name,
                    dispatch.agent_name,
                )
                return None
            attempted.add(worker)
            now = time.time_ns()
            job.state.CopyFrom(
                agent.JobState(
                    status=agent.JobStatus.JS_RUNNING,
                    worker_id=worker.id,
                    started_at=now,
                    updated_at=now,
                )
            )
            try:
                answer = await self._offer(worker, job, resuming)
                if answer.terminate:
                    job.state.status = agent.JobStatus.JS_SUCCESS
                    job.state.ended_at = time.time_ns()
                    log.info("job %s: worker %s ended it at once", job.id, worker.id)
                    return job
                if not answer.available:
                    log.info("job %s: worker %s refused, offering elsewhere", job.id, worker.id)
                    continue
                await self._assign(worker, job, answer, dispatch)
                return job
            except WorkerGone:
                log.info("job %s: worker %s went away, offering elsewhere", job.id, worker.id)
            except TimeoutError:
                # LiveKit gives up on the job rather than retrying after a silent worker.
                log.warning(
                    "job %s: worker %s did not answer in %.0f s",
                    job.id,
                    worker.id,
                    AVAILABILITY_TIMEOUT,
                )
                return None

    def jobs_of(self, dispatch_id: str) -> list[agent.Job]:
        return [r.job for r in self.jobs.values() if r.dispatch.id == dispatch_id]

    async def end_dispatch(self, room: Room, dispatch_id: str) -> None:
        """Terminate a deleted dispatch's jobs and remove their participants from the room."""
        records = [r for r in self.jobs.values() if r.dispatch.id == dispatch_id and not r.ended]
        for record in records:
            await self._terminate(record, agent.JobStatus.JS_SUCCESS, "")
        for record in records:
            identity = record.job.state.participant_identity
            if not identity or room.get_participant(identity) is None:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(record.left.wait(), LEAVE_GRACE)
            if room.get_participant(identity) is not None:
                log.info(
                    "job %s: participant did not leave in %.0f s, removing it",
                    record.job.id,
                    LEAVE_GRACE,
                )
                with contextlib.suppress(TwirpError):
                    await room.remove_participant(identity)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background step of a job's lifecycle, cancelled when the server stops."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("agent task failed", exc_info=task.exception())

    def _pick(self, agent_name: str, attempted: set[Worker]) -> Worker | None:
        """Choose at random, weighted by spare capacity (1 - load), as LiveKit does."""
        weights = {
            w: max(0.0, 1.0 - w.load)
            for w in self.workers.values()
            if w.agent_name == agent_name
            and w.job_type == agent.JobType.JT_ROOM
            and w not in attempted
            and w.status == agent.WorkerStatus.WS_AVAILABLE
        }
        total = sum(weights.values())
        if total <= 0:
            return None
        point = random.uniform(0, total)
        for worker, weight in weights.items():
            point -= weight
            if point <= 0 and weight > 0:
                return worker
        return next(w for w, weight in weights.items() if weight > 0)

    async def _offer(
        self, worker: Worker, job: agent.Job, resuming: bool
    ) -> agent.AvailabilityResponse:
        answer: asyncio.Future[agent.AvailabilityResponse] = (
            asyncio.get_running_loop().create_future()
        )
        worker.offers[job.id] = answer
        log.info("job %s offered to worker %s (room %s)", job.id, worker.id, job.room.name)
        try:
            await worker.send(
                agent.ServerMessage(
                    availability=agent.AvailabilityRequest(job=job, resuming=resuming)
                )
            )
            return await asyncio.wait_for(answer, AVAILABILITY_TIMEOUT)
        finally:
            worker.offers.pop(job.id, None)

    async def _assign(
        self,
        worker: Worker,
        job: agent.Job,
        answer: agent.AvailabilityResponse,
        dispatch: agent_dispatch.AgentDispatch,
    ) -> None:
        job.state.participant_identity = answer.participant_identity
        record = JobRecord(job=job, dispatch=dispatch, worker=worker)
        self.jobs[job.id] = record
        worker.jobs.add(job.id)
        try:
            await worker.send(
                agent.ServerMessage(
                    assignment=agent.JobAssignment(
                        job=job, token=agent_token(worker, self._keys[worker.api_key], job, answer)
                    )
                )
            )
        except WorkerGone:
            del self.jobs[job.id]
            raise
        log.info(
            "job %s assigned to worker %s as %s", job.id, worker.id, answer.participant_identity
        )

    async def _terminate(self, record: JobRecord, status: agent.JobStatus, error: str) -> None:
        if record.ended:
            return
        self._end(record, status, error)
        worker = record.worker
        if worker is not None:
            with contextlib.suppress(WorkerGone):
                await worker.send(
                    agent.ServerMessage(termination=agent.JobTermination(job_id=record.job.id))
                )
        log.info("job %s terminated (%s)", record.job.id, error or "requested")

    def _end(self, record: JobRecord, status: agent.JobStatus, error: str) -> None:
        now = time.time_ns()
        record.job.state.status = status
        record.job.state.error = error
        record.job.state.ended_at = now
        record.job.state.updated_at = now
        if record.worker is not None:
            record.worker.jobs.discard(record.job.id)

    # Room events

    def _on_participant_left(self, room: Room, participant: Any) -> None:
        for record in self.jobs.values():
            if (
                record.job.room.name == room.name
                and record.job.state.participant_identity == participant.identity
            ):
                record.left.set()
                if not record.ended and not room.closed:
                    self.spawn(self._terminate(record, agent.JobStatus.JS_FAILED, LEFT_ROOM))

    def _on_room_finished(self, room: Room) -> None:
        for record in list(self.jobs.values()):
            if record.job.room.name == room.name and not record.ended:
                self.spawn(self._terminate(record, agent.JobStatus.JS_SUCCESS, "room closed"))
        # Ended jobs stay listed for a while; keep the newest only.
        ended = [job_id for job_id, r in self.jobs.items() if r.ended]
        for job_id in ended[: max(0, len(ended) - KEEP_ENDED_JOBS)]:
            del self.jobs[job_id]

    async def status(self, request: web.Request) -> web.Response:
        """Dev-only: the workers and jobs as the server sees them (needs a room_list grant)."""
        header = request.headers.get("Authorization", "")
        try:
            claims = verify_token(header.removeprefix("Bearer "), self._keys)
        except TwirpError as err:
            raise web.HTTPUnauthorized(text=err.msg) from err
        if not claims.video.room_list:
            raise web.HTTPUnauthorized(text="permissions denied")
        workers = [
            {
                "id": w.id,
                "agent_name": w.agent_name,
                "status": agent.WorkerStatus.Name(w.status),
                "load": w.load,
                "job_count": w.job_count,
                "jobs": sorted(w.jobs),
                "offers": sorted(w.offers),
            }
            for w in self.workers.values()
        ]
        jobs = [
            {
                "id": r.job.id,
                "dispatch_id": r.dispatch.id,
                "room": r.job.room.name,
                "agent_name": r.job.agent_name,
                "worker_id": r.job.state.worker_id,
                "status": agent.JobStatus.Name(r.job.state.status),
                "error": r.job.state.error,
                "participant_identity": r.job.state.participant_identity,
            }
            for r in self.jobs.values()
        ]
        return web.json_response({"workers": workers, "jobs": jobs})

    # The worker connection

    async def handle(self, request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header else request.query.get("access_token", "")
        try:
            claims = verify_token(token, self._keys)
            require_agent(claims)
        except TwirpError as err:
            return web.Response(status=401, text=err.msg)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        worker = Worker(id=new_id("AW_"), ws=ws, api_key=claims.api_key)
        try:
            if await register(worker):
                self.workers[worker.id] = worker
                await self._serve(worker)
        finally:
            await self._drop(worker)
            await ws.close()
        return ws

    async def _serve(self, worker: Worker) -> None:
        while (message := await receive(worker)) is not None:
            which = message.WhichOneof("message")
            if which == "availability":
                answer = worker.offers.get(message.availability.job_id)
                if answer is not None and not answer.done():
                    answer.set_result(message.availability)
            elif which == "update_worker":
                update = message.update_worker
                if update.HasField("status"):
                    worker.status = update.status
                worker.load = update.load
                worker.job_count = update.job_count
            elif which == "update_job":
                self._update_job(worker, message.update_job)
            elif which == "ping":
                await pong(worker, message.ping)
            else:
                # migrate_job and simulate_job: open-source LiveKit ignores the first too.
                log.info("worker %s sent %s; not supported, ignored", worker.id, which)

    def _update_job(self, worker: Worker, update: agent.UpdateJobStatus) -> None:
        record = self.jobs.get(update.job_id)
        if record is None or record.worker is not worker or record.ended:
            return
        now = time.time_ns()
        record.job.state.status = update.status
        record.job.state.error = update.error
        record.job.state.updated_at = now
        if update.status in ENDED:
            self._end(record, update.status, update.error)
        log.info(
            "job %s is %s%s",
            update.job_id,
            agent.JobStatus.Name(update.status),
            f" ({update.error})" if update.error else "",
        )

    async def _drop(self, worker: Worker) -> None:
        """Forget a closed worker: pending offers fail over; running jobs follow the policy."""
        worker.closed = True
        if self.workers.pop(worker.id, None) is None:
            return
        log.info("worker %s disconnected", worker.id)
        for answer in worker.offers.values():
            if not answer.done():
                answer.set_exception(WorkerGone(worker.id))
        now = time.time_ns()
        for record in list(self.jobs.values()):
            if record.worker is not worker:
                continue
            # A crash drops the agent's room connection and the worker's socket together, in
            # either order: a job whose agent just left the room failed with its worker.
            left_just_now = (
                record.job.state.error == LEFT_ROOM
                and now - record.job.state.ended_at < CRASH_WINDOW_S * 1e9
            )
            if record.ended and not left_just_now:
                continue
            self._end(record, agent.JobStatus.JS_FAILED, "worker connection lost")
            log.info("job %s failed: its worker %s disconnected", record.job.id, worker.id)
            if (
                self.honour_restart_policy
                and not self._closing
                and record.dispatch.restart_policy == agent_dispatch.JobRestartPolicy.JRP_ON_FAILURE
            ):
                self.spawn(self._restart(record, worker))

    async def _restart(self, record: JobRecord, dead: Worker) -> None:
        room = self._rooms.get(record.job.room.name)
        if room is None or room.closed:
            return
        log.info(
            "job %s: restarting dispatch %s (restart policy)", record.job.id, record.dispatch.id
        )
        await self.launch(room, record.dispatch, resuming=True, exclude=frozenset({dead}))

    async def _shutdown(self, app: web.Application) -> None:
        self._closing = True
        for worker in list(self.workers.values()):
            await worker.ws.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


AGENTS_KEY = web.AppKey("devserver_agents", AgentService)
