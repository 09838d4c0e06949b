"""AgentDispatchService: explicit dispatches, token and room dispatches, and their jobs."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from google.protobuf.message import Message
from livekit.protocol import agent_dispatch

from devserver.agents import AGENTS_KEY, AgentService
from devserver.auth import Claims, require_room_admin
from devserver.context import ServerContext
from devserver.ids import new_id
from devserver.rooms import Room, RoomManager
from devserver.twirp import Handler, TwirpError, TwirpRouter

log = logging.getLogger("devserver.dispatch")

SERVICE = "livekit.AgentDispatchService"

Req = TypeVar("Req", bound=Message)


def install(app: web.Application, ctx: ServerContext) -> None:
    """Serve AgentDispatchService; needs the agent service installed first."""
    DispatchService(ctx.rooms, app[AGENTS_KEY]).install(ctx.router)


def typed(request_type: type[Req], handler: Callable[[Req, Claims], Awaitable[Message]]) -> Handler:
    """Adapt a handler of one request type to the router's generic signature."""

    async def handle(request: Message, claims: Claims) -> Message:
        if not isinstance(request, request_type):
            raise TwirpError("malformed", f"expected {request_type.DESCRIPTOR.full_name}")
        return await handler(request, claims)

    return handle


class DispatchService:
    """Dispatches per room; each one launches a job through the agent service."""

    def __init__(self, rooms: RoomManager, agents: AgentService) -> None:
        self._rooms = rooms
        self._agents = agents
        self._by_room: dict[str, dict[str, agent_dispatch.AgentDispatch]] = {}
        rooms.on("room_started", self._on_room_started)
        rooms.on("room_finished", self._on_room_finished)

    def install(self, router: TwirpRouter) -> None:
        router.add_service(
            SERVICE,
            {
                "CreateDispatch": typed(
                    agent_dispatch.CreateAgentDispatchRequest, self.create_dispatch
                ),
                "ListDispatch": typed(agent_dispatch.ListAgentDispatchRequest, self.list_dispatch),
                "DeleteDispatch": typed(
                    agent_dispatch.DeleteAgentDispatchRequest, self.delete_dispatch
                ),
            },
        )

    async def create_dispatch(
        self, req: agent_dispatch.CreateAgentDispatchRequest, claims: Claims
    ) -> agent_dispatch.AgentDispatch:
        require_room_admin(claims, req.room)
        # LiveKit creates the room first (auto-create is on by default).
        room, _ = await self._rooms.create_room(req.room)
        return self._add(room, _dispatch_for(room.name, req))

    async def list_dispatch(
        self, req: agent_dispatch.ListAgentDispatchRequest, claims: Claims
    ) -> agent_dispatch.ListAgentDispatchResponse:
        require_room_admin(claims, req.room)
        dispatches = self._dispatches_of(req.room)
        return agent_dispatch.ListAgentDispatchResponse(
            agent_dispatches=[
                self._with_jobs(d)
                for d in dispatches.values()
                if not req.dispatch_id or d.id == req.dispatch_id
            ]
        )

    async def delete_dispatch(
        self, req: agent_dispatch.DeleteAgentDispatchRequest, claims: Claims
    ) -> agent_dispatch.AgentDispatch:
        require_room_admin(claims, req.room)
        dispatches = self._dispatches_of(req.room)
        dispatch = dispatches.pop(req.dispatch_id, None)
        if dispatch is None:
            raise TwirpError("not_found", "dispatch ID not found")
        room = self._rooms.get(req.room)
        log.info(
            "dispatch %s deleted (room %s, agent %r)", dispatch.id, req.room, dispatch.agent_name
        )
        if room is not None:
            # As in LiveKit, the reply does not wait for the jobs to end.
            self._agents.spawn(self._agents.end_dispatch(room, dispatch.id))
        return self._with_jobs(dispatch)

    def _dispatches_of(self, room_name: str) -> dict[str, agent_dispatch.AgentDispatch]:
        room = self._rooms.get(room_name)
        if room is None or room.closed:
            raise TwirpError("not_found", "requested room does not exist")
        return self._by_room.setdefault(room_name, {})

    def _add(
        self, room: Room, dispatch: agent_dispatch.AgentDispatch
    ) -> agent_dispatch.AgentDispatch:
        dispatch.state.created_at = time.time_ns()
        self._by_room.setdefault(room.name, {})[dispatch.id] = dispatch
        log.info(
            "dispatch %s created (room %s, agent %r)", dispatch.id, room.name, dispatch.agent_name
        )
        self._agents.spawn(self._agents.launch(room, dispatch))
        return dispatch

    def _with_jobs(self, dispatch: agent_dispatch.AgentDispatch) -> agent_dispatch.AgentDispatch:
        reply = agent_dispatch.AgentDispatch()
        reply.CopyFrom(dispatch)
        reply.state.jobs.extend(self._agents.jobs_of(dispatch.id))
        return reply

    def _on_room_started(self, room: Room) -> None:
        """A new room gets its configured dispatches, or one for unnamed workers if none."""
        configured = room.agents or [agent_dispatch.RoomAgentDispatch()]
        for rad in configured:
            self._add(room, _dispatch_for(room.name, rad))

    def _on_room_finished(self, room: Room) -> None:
        self._by_room.pop(room.name, None)


def _dispatch_for(
    room: str,
    spec: agent_dispatch.CreateAgentDispatchRequest | agent_dispatch.RoomAgentDispatch,
) -> agent_dispatch.AgentDispatch:
    """A new dispatch from an API request or a room's configured agents (same fields)."""
    return agent_dispatch.AgentDispatch(
        id=new_id("AD_"),
        agent_name=spec.agent_name,
        room=room,
        metadata=spec.metadata,
        restart_policy=spec.restart_policy,
        deployment=spec.deployment,
        attributes=dict(spec.attributes),
    )
