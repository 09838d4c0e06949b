"""An on-call human reached by phone: dialled through the outbound trunk into the visitor's
room, their SIP answer turned into a typed handoff failure when they do not pick up."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from livekit import api, rtc
from livekit.agents import JobContext

from conversation import attributes
from conversation.events import HandoffFailure
from conversation.handoffs import Handoff
from worker.settings import WorkerSettings

logger = logging.getLogger("baton.worker.phonehuman")

BUSY = frozenset({486, 600})
DECLINED = frozenset({603, 607, 608})
NO_ANSWER = frozenset({408, 480, 487})


class Failed(Exception):
    """The handoff failed for this reason; `written` when its event is in the log already."""

    def __init__(self, reason: HandoffFailure, *, sip_status: int | None = None,
                 written: bool = False) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.sip_status = sip_status
        self.written = written


def failure_of(status: int) -> HandoffFailure:
    if status in BUSY:
        return HandoffFailure.BUSY
    if status in DECLINED:
        return HandoffFailure.DECLINED
    if status in NO_ANSWER:
        return HandoffFailure.NO_ANSWER
    return HandoffFailure.FAILED


async def dial_human(ctx: JobContext, settings: WorkerSettings, handoff: Handoff,
                     identity: str, turn: int) -> rtc.RemoteParticipant:
    """Ring the on-call numbers, starting at this handoff's turn, until one answers, as
    participant `identity`; the participant who answered, or Failed with the last number's
    answer."""
    numbers = settings.oncall_numbers
    last = Failed(HandoffFailure.FAILED)
    for offset in range(len(numbers)):
        number = numbers[(turn + offset) % len(numbers)]
        try:
            await ctx.api.sip.create_sip_participant(api.CreateSIPParticipantRequest(
                sip_trunk_id=settings.sip_outbound_trunk, sip_call_to=number,
                room_name=ctx.room.name, participant_identity=identity,
                participant_name="On-call specialist",
                participant_attributes={attributes.ROLE: attributes.ROLE_HUMAN,
                                        attributes.CONVERSATION_ID: ctx.room.name,
                                        attributes.HANDOFF_ID: handoff.id},
                headers={"X-Baton-Conversation": ctx.room.name},
                hide_phone_number=True, wait_until_answered=True,
                ringing_timeout=_seconds(settings.handoff_accept_timeout)))
        except api.SipCallError as exc:
            status = exc.sip_status_code or 0
            last = Failed(failure_of(status), sip_status=status or None)
            logger.info("the on-call phone did not answer (SIP %s)", status)
            continue
        except api.TwirpError as exc:
            last = Failed(HandoffFailure.FAILED)
            logger.warning("could not dial the on-call phone: %s", exc.code)
            continue
        participant = ctx.room.remote_participants.get(identity)
        if participant is None:
            participant = await _joined(ctx.room, identity)
        return participant
    raise last


async def _joined(room: rtc.Room, identity: str) -> rtc.RemoteParticipant:
    arrived: asyncio.Future[rtc.RemoteParticipant] = asyncio.get_running_loop().create_future()

    def connected(participant: rtc.RemoteParticipant) -> None:
        if participant.identity == identity and not arrived.done():
            arrived.set_result(participant)

    room.on("participant_connected", connected)
    try:
        if identity in room.remote_participants:
            return room.remote_participants[identity]
        return await asyncio.wait_for(arrived, 10.0)
    finally:
        room.off("participant_connected", connected)


def _seconds(value: float) -> Duration:
    duration = Duration()
    duration.FromTimedelta(timedelta(seconds=value))
    return duration
