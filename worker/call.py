"""The state of one call that outlives the entrypoint: the visitor, the write-back, the end."""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from livekit import rtc
from livekit.agents import AgentSession, CloseEvent, JobContext

from conversation import (
    Channel,
    ChannelSwitchEvent,
    ConversationStore,
    Status,
    attributes,
)
from worker import metrics
from worker.settings import WorkerSettings
from worker.tools import CallData
from worker.writeback import WriteBack, record_session

logger = logging.getLogger("baton.worker")


def is_visitor(participant: rtc.RemoteParticipant) -> bool:
    """The person the call is for: the widget's visitor, or the visitor reached by phone."""
    role = participant.attributes.get(attributes.ROLE)
    if role == attributes.ROLE_VISITOR:
        return True
    return participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP and \
        role != attributes.ROLE_HUMAN


async def wait_for_visitor(room: rtc.Room, patience: float) -> rtc.RemoteParticipant:
    arrived: asyncio.Future[rtc.RemoteParticipant] = asyncio.get_running_loop().create_future()

    def on_connected(participant: rtc.RemoteParticipant) -> None:
        if is_visitor(participant) and not arrived.done():
            arrived.set_result(participant)

    room.on("participant_connected", on_connected)
    try:
        for participant in room.remote_participants.values():
            on_connected(participant)
        return await asyncio.wait_for(arrived, patience)
    finally:
        room.off("participant_connected", on_connected)


class Call:
    """The visitor of the call, once found, and everything written to the log for it."""

    def __init__(self, ctx: JobContext, store: ConversationStore, redis: aioredis.Redis,
                 conversation_id: str, settings: WorkerSettings) -> None:
        self.ctx = ctx
        self.redis = redis
        self.conversation_id = conversation_id
        self.settings = settings
        self.writeback = WriteBack(store, conversation_id)
        self.channel = Channel.VOICE
        self.visitor: rtc.RemoteParticipant | None = None
        self.visitor_left_sid: str | None = None
        self.started = time.monotonic()

    def attach(self, session: AgentSession[CallData]) -> None:
        """Write the session's turns back and end the job with it; the channel is read as
        each turn comes, since the session starts before the visitor is found."""
        record_session(session, self.writeback, channel=lambda: self.channel)
        session.on("close", self._on_close)

    def link(self, visitor: rtc.RemoteParticipant) -> None:
        self.visitor = visitor
        if visitor.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
            self.channel = Channel.PHONE
        self.ctx.room.on("participant_disconnected", self._on_participant_disconnected)
        if visitor.identity not in self.ctx.room.remote_participants:
            # Gone before the handler was in place: its event was already emitted.
            self._on_participant_disconnected(visitor)

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
            if self.visitor_left_sid is not None:
                self.writeback.add(ChannelSwitchEvent(
                    event_id=attributes.visitor_left_event_id(self.visitor_left_sid),
                    from_channel=self.channel, to_channel=Channel.CHAT, trigger="visitor_left",
                ), status=Status.CHAT)
            await self.writeback.aclose(grace=self.settings.flush_timeout)
        finally:
            await self.redis.aclose()
            metrics.JOB_SECONDS.observe(time.monotonic() - self.started)
            logger.info("job ended", extra={"reason": reason})
