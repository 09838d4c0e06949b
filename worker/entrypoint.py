"""One job: restore the conversation named by the room, run the call, write every turn back."""

from __future__ import annotations

import asyncio
import logging
import time

from livekit import rtc
from livekit.agents import (
    AgentSession,
    CloseEvent,
    JobContext,
    JobProcess,
    room_io,
)
from livekit.plugins import silero

from conversation import (
    Channel,
    ConversationNotFound,
    ConversationStore,
    InvalidInput,
    StoreUnavailable,
    attributes,
    calls,
    validate_conversation_id,
)
from conversation.history import HistoryBudget
from conversation.redisclient import RedisClient
from conversation.restore import load_chat_context
from conversation.tracing import from_dispatch, new_trace_id
from worker import metrics
from worker.agent import BatonAgent, plan_opening, text_typed
from worker.backends import load_backend
from worker.models import HandoffModels, handoff_models, session_models
from worker.settings import WorkerSettings, current_settings
from worker.tools import CallData
from worker.transfer import Transfer
from worker.writeback import WriteBack, record_session

logger = logging.getLogger("baton.worker")

CLOSE_HANDOFF_WAIT = 10.0
"""Seconds the end of a job gives the handoff to close before flushing the transcript."""

RECENT_EVENTS = 64
"""Newest log events read to tell a fresh switch from a call already in progress."""


def setup_process(proc: JobProcess) -> None:
    """Load the models before a job needs them: a process runs one job, and anything built
    here (the VAD, the model clients and their TLS contexts) is off the first words' path.
    A job process's warnings go to the log as its records do, not to stderr as text."""
    logging.captureWarnings(True)
    settings = current_settings()
    voice_activity = silero.VAD.load()
    proc.userdata["models"] = session_models(settings, voice_activity)
    proc.userdata["handoff"] = handoff_models(settings, voice_activity)


async def restore(store: ConversationStore, conversation_id: str,
                  budget: HistoryBudget) -> tuple[BatonAgent, float]:
    """Build the agent from the log: the model's context and how to open. Returns the agent
    and the seconds the restore took."""
    started = time.perf_counter()
    chat_ctx, (recent, _total) = await asyncio.gather(
        load_chat_context(store, conversation_id, budget=budget),
        store.read_tail(conversation_id, RECENT_EVENTS))
    agent = BatonAgent(chat_ctx=chat_ctx, opening=plan_opening(recent))
    return agent, time.perf_counter() - started


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
        record_session(session, self.writeback, channel=self.channel)
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


async def entrypoint(ctx: JobContext) -> None:
    """Run the call for the conversation the room is named after."""
    started = time.time()
    settings = current_settings()
    room_name = ctx.job.room.name
    # The trace id of the switch that dispatched the job, when a request did; one of its own
    # for a job dispatched by the orchestrator's checks or by LiveKit's dispatch rule.
    ctx.log_context_fields = {"conversation_id": room_name, "job_id": ctx.job.id,
                              "trace_id": from_dispatch(ctx.job.metadata) or new_trace_id()}
    try:
        conversation_id = validate_conversation_id(room_name)
    except InvalidInput:
        logger.error("room %r is not named by a Baton conversation id; ending the job",
                     room_name[:80])
        ctx.shutdown(reason="not a Baton conversation")
        return

    redis = settings.redis_client(socket_timeout=2.0, socket_connect_timeout=2.0)
    store = settings.store(redis)
    try:
        (agent, restore_seconds), record, _ = await asyncio.gather(
            restore(store, conversation_id, settings.history_budget),
            store.get(conversation_id), ctx.connect())
    except (ConversationNotFound, StoreUnavailable) as exc:
        await redis.aclose()
        if isinstance(exc, ConversationNotFound):
            logger.error("room is not a Baton conversation (no such conversation in the log); "
                         "ending the job")
        else:
            logger.error("the conversation log is unreachable, so the history cannot be "
                         "restored; ending the job")
        ctx.shutdown(reason="conversation not restorable")
        return
    metrics.HISTORY_RESTORE_SECONDS.observe(restore_seconds)
    logger.info("history restored", extra={"opening": agent.opening.kind.value,
                                            "restore_ms": round(restore_seconds * 1000, 2)})

    agent.handoff_phrases = tuple(p.lower() for p in settings.handoff_phrases)
    call = Call(ctx, store, redis, conversation_id, settings, ctx.proc.userdata["handoff"])
    ctx.add_shutdown_callback(call.finish)
    call.writeback.start()
    try:
        visitor = await wait_for_visitor(ctx.room, settings.visitor_wait)
    except TimeoutError:
        logger.warning("no visitor joined within %.0f s; ending the job", settings.visitor_wait)
        ctx.shutdown(reason="no visitor")
        return
    call.link(visitor)
    if call.visitor_left_sid is not None:
        return

    session = AgentSession[CallData](
        userdata=CallData(conversation_id, store, load_backend(settings.tool_backend),
                          caller=record.identity, handoff=call.transfer),
        user_away_timeout=None,
        **ctx.proc.userdata["models"],
    )
    call.attach(session)
    metrics.time_first_words(session, started)
    await session.start(
        agent=agent, room=ctx.room,
        room_options=room_io.RoomOptions(
            participant_identity=visitor.identity,
            # Leaving is handled by `Call`, which records it before the job ends.
            close_on_disconnect=False,
            # Word-synchronised captions estimate the speaking rate from the audio, which
            # blocked the loop for ~0.4 s as the first words started; the widget's thread
            # shows each committed turn from the log anyway.
            text_output=room_io.TextOutputOptions(sync_transcription=False),
            text_input=room_io.TextInputOptions(text_input_cb=text_typed),
        ),
        record=False,
    )
    await call.transfer.attach(session, agent, visitor, call.channel, record.identity)
