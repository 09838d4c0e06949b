"""The state of one call that outlives the entrypoint: the visitor, the write-back, the end."""

from __future__ import annotations

import asyncio
import logging
import time

from livekit import rtc
from livekit.agents import AgentSession, CloseEvent, JobContext

from conversation import Channel, ConversationStore, StoreUnavailable, attributes, calls
from conversation.redisclient import RedisClient
from worker import metrics
from worker.models import HandoffModels
from worker.settings import WorkerSettings
from worker.tools import CallData
from worker.transfer import Transfer
from worker.writeback import WriteBack, record_session

logger = logging.getLogger("baton.worker")

CLOSE_HANDOFF_WAIT = 10.0
"""Seconds the end of a job gives the handoff to close before flushing the transcript."""


def is_visitor(participant: rtc.RemoteParticipant) -> bool:
    """The person the call is for, as the orchestrator decides it too."""
    return attributes.is_visitor(participant.kind, participant.attributes)


async def wait_for_visitor(room: rtc.Room, patience: float) -> rtc.RemoteParticipant:
    """The visitor, once in the call: a dialled phone joins the room while it still rings,
    and is talked to only once answered (LiveKit SIP's `active`), or the first words would
    be spoken to a ringing phone."""
    arrived: asyncio.Future[rtc.RemoteParticipant] = asyncio.get_running_loop().create_future()

    def consider(participant: rtc.RemoteParticipant) -> None:
        if is_visitor(participant) and not arrived.done() \
                and attributes.answered(participant.kind, participant.attributes):
            arrived.set_result(participant)

    def on_attributes_changed(_changed: dict[str, str],
                              participant: rtc.Participant) -> None:
        if isinstance(participant, rtc.RemoteParticipant):
            consider(participant)

    room.on("participant_connected", consider)
    room.on("participant_attributes_changed", on_attributes_changed)
    try:
        for participant in room.remote_participants.values():
            consider(participant)
        return await asyncio.wait_for(arrived, patience)
    finally:
        room.off("participant_connected", consider)
        room.off("participant_attributes_changed", on_attributes_changed)


class Call:
    """The state of one call that outlives the entrypoint: the visitor and the write-back."""

    def __init__(self, ctx: JobContext, store: ConversationStore, redis: RedisClient,
                 conversation_id: str, settings: WorkerSettings,
                 handoff_models: HandoffModels) -> None:
        self.ctx = ctx
        self.redis = redis
        self.conversation_id = conversation_id
        self.settings = settings
        self.writeback = WriteBack(store, conversation_id)
        self.transfer = Transfer(ctx, store, self.writeback, settings, models=handoff_models)
        self.channel = Channel.VOICE
        self.visitor: rtc.RemoteParticipant | None = None
        self.visitor_left_sid: str | None = None
        self.started = time.monotonic()

    def link(self, visitor: rtc.RemoteParticipant) -> None:
        self.visitor = visitor
        if attributes.is_phone(visitor.kind):
            self.channel = Channel.PHONE
        # The orchestrator records the same event from LiveKit's webhook; whichever comes
        # first binds the call to this visitor, so the call ends when they leave even if the
        # webhooks are lost.
        joined = calls.visitor_joined(self.channel, visitor.identity, visitor.sid)
        self.writeback.add(joined.event, transition=joined.transition)
        # The widget stops saying "connecting you to an agent" when it reads this.
        self.writeback.add(calls.agent_joined(self.ctx.room.local_participant.sid))
        self.ctx.room.on("participant_disconnected", self._on_participant_disconnected)
        if visitor.identity not in self.ctx.room.remote_participants:
            # Gone before the handler was in place: its event was already emitted.
            self._on_participant_disconnected(visitor)

    def attach(self, session: AgentSession[CallData]) -> None:
        # The channel is read as each turn comes: the session starts before the visitor is found.
        record_session(session, self.writeback, channel=lambda: self.channel)
        session.on("close", self._on_close)

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if self.visitor is None or participant.identity != self.visitor.identity:
            return
        self.visitor_left_sid = participant.sid
        logger.info("the visitor left the call; ending the job")
        # The session closes first (committing any last turn), then `finish` writes the switch.
        self.ctx.shutdown(reason="visitor left")

    def _on_close(self, event: CloseEvent) -> None:
        if event.error is not None:
            logger.error("the voice session failed: %s", type(event.error).__name__)
        self.ctx.shutdown(reason=f"session closed: {event.reason.value}")

    async def finish(self, reason: str) -> None:
        """The job's last step: record the visitor leaving, then flush everything to the log."""
        try:
            try:
                await asyncio.wait_for(
                    self.transfer.close(visitor_left=self.visitor_left_sid is not None),
                    CLOSE_HANDOFF_WAIT)
            except (TimeoutError, StoreUnavailable) as exc:
                # Whatever holds the handoff up, the transcript below is still flushed.
                logger.error("the handoff could not be closed (%s)", type(exc).__name__)
            if self.visitor is not None and self.visitor_left_sid is not None:
                left = calls.visitor_left(self.channel, self.visitor.identity,
                                          self.visitor_left_sid)
                self.writeback.add(left.event, transition=left.transition)
            await self.writeback.aclose(grace=self.settings.flush_timeout)
        finally:
            await self.redis.aclose()
            metrics.JOB_SECONDS.observe(time.monotonic() - self.started)
            logger.info("job ended", extra={"reason": reason})
