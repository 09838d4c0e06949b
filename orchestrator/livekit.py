"""A thin LiveKit server-API client: typed failures and time accounted as waiting on LiveKit."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from livekit import api
from livekit.protocol import agent_dispatch, models, sip
from livekit.protocol import room as proto_room

from orchestrator.errors import LiveKitRejected, LiveKitUnavailable
from orchestrator.settings import Settings
from orchestrator.timing import waiting

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SipAnswer:
    """How a dial or a transfer ended at the far end: done, or not with the SIP final status
    (and reason phrase) when there was one."""

    succeeded: bool
    sip_status: int | None = None
    sip_reason: str | None = None
    participant: sip.SIPParticipantInfo | None = None
    """The phone's participant, for an answered dial."""


class LiveKit:
    """The calls the orchestrator makes, each mapped to LiveKitUnavailable or LiveKitRejected."""

    def __init__(self, settings: Settings) -> None:
        self.api = api.LiveKitAPI(
            settings.livekit_api_endpoint, settings.livekit_api_key,
            settings.livekit_api_secret.get_secret_value(),
            timeout=aiohttp.ClientTimeout(total=settings.livekit_timeout),
            # Region failover is for LiveKit Cloud; a self-hosted server has one origin.
            failover=False)

    async def aclose(self) -> None:
        await self.api.aclose()

    async def create_room(self, name: str, *, empty_timeout: int,
                          departure_timeout: int) -> models.Room:
        """Create the room, or return it if it exists (LiveKit's CreateRoom is idempotent)."""
        return await _call("CreateRoom", self.api.room.create_room(proto_room.CreateRoomRequest(
            name=name, empty_timeout=empty_timeout, departure_timeout=departure_timeout)))

    async def delete_room(self, name: str) -> None:
        """Close the room, disconnecting everyone in it; a room already gone is no error."""
        try:
            await _call("DeleteRoom", self.api.room.delete_room(
                proto_room.DeleteRoomRequest(room=name)))
        except LiveKitRejected as exc:
            if exc.code != api.TwirpErrorCode.NOT_FOUND:
                raise

    async def list_rooms(self, names: list[str] | None = None) -> list[models.Room]:
        reply = await _call("ListRooms", self.api.room.list_rooms(
            proto_room.ListRoomsRequest(names=names or [])))
        return list(reply.rooms)

    async def list_participants(self, room: str) -> list[models.ParticipantInfo]:
        """Nobody, also when the room is gone (LiveKit answers not_found then)."""
        try:
            reply = await _call("ListParticipants", self.api.room.list_participants(
                proto_room.ListParticipantsRequest(room=room)))
        except LiveKitRejected as exc:
            if exc.code == api.TwirpErrorCode.NOT_FOUND:
                return []
            raise
        return list(reply.participants)

    async def list_dispatches(self, room: str) -> list[agent_dispatch.AgentDispatch]:
        """None, also when the room is gone."""
        try:
            return await _call("ListDispatch", self.api.agent_dispatch.list_dispatch(room))
        except LiveKitRejected as exc:
            if exc.code == api.TwirpErrorCode.NOT_FOUND:
                return []
            raise

    async def delete_dispatch(self, room: str, dispatch_id: str) -> None:
        """Delete a dispatch and end its jobs; one already gone is no error."""
        try:
            await _call("DeleteDispatch", self.api.agent_dispatch.delete_dispatch(dispatch_id,
                                                                                  room))
        except LiveKitRejected as exc:
            if exc.code != api.TwirpErrorCode.NOT_FOUND:
                raise

    async def create_dispatch(self, room: str, agent_name: str,
                              metadata: str) -> agent_dispatch.AgentDispatch:
        return await _call("CreateDispatch", self.api.agent_dispatch.create_dispatch(
            agent_dispatch.CreateAgentDispatchRequest(agent_name=agent_name, room=room,
                                                      metadata=metadata)))


    async def dial(self, request: sip.CreateSIPParticipantRequest) -> SipAnswer:
        """Place a call and wait for its final answer (`wait_until_answered`): a call the far
        end did not take is an answer with its SIP status, not an error."""
        outcome = await _call("CreateSIPParticipant",
                              _sip_outcome(self.api.sip.create_sip_participant(request)))
        if isinstance(outcome, api.SipCallError):
            return _failed(outcome)
        return SipAnswer(True, participant=outcome)

    async def transfer(self, request: sip.TransferSIPParticipantRequest) -> SipAnswer:
        """Transfer a phone participant (SIP REFER) and say whether it was done.

        Only a response saying so is success: a status other than successful is a failure
        though no error was raised. LiveKit server v1.13.5 answers every transfer that did not
        fail with an empty response (the outcome fields came later), so an empty response
        without an error counts as success.
        """
        outcome = await _call("TransferSIPParticipant",
                              _sip_outcome(self.api.sip.transfer_sip_participant(request)))
        if isinstance(outcome, api.SipCallError):
            return _failed(outcome)
        if outcome.ByteSize() == 0 \
                or outcome.status == sip.SIPTransferStatus.STS_TRANSFER_SUCCESSFUL:
            return SipAnswer(True)
        return SipAnswer(False, sip_status=int(outcome.sip_status.code) or None,
                         sip_reason=outcome.sip_status.status or None)


async def _sip_outcome(call: Awaitable[T]) -> T | api.SipCallError:
    """A SIP failure (the far end's final status) as a value, for the caller to record."""
    try:
        return await call
    except api.SipCallError as exc:
        return exc


def _failed(error: api.SipCallError) -> SipAnswer:
    return SipAnswer(False, sip_status=error.sip_status_code, sip_reason=error.sip_status)


async def _call(operation: str, call: Awaitable[T]) -> T:
    with waiting("livekit"):
        try:
            return await call
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise LiveKitUnavailable(
                f"LiveKit is unreachable ({operation}: {type(exc).__name__})") from exc
        except api.TwirpError as exc:
            if exc.status >= 500 or exc.code == api.TwirpErrorCode.UNAVAILABLE:
                raise LiveKitUnavailable(f"LiveKit failed {operation}: {exc.code}") from exc
            raise LiveKitRejected(operation, exc.code) from exc
