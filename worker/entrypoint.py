"""One job: restore the conversation named by the room, run the call, write every turn back.

The first words are on the critical path of every call, so the job does the slow steps side by
side: it starts connecting to the room first, restores the history from Redis meanwhile, and
starts the session as soon as the history is in, before the room is connected and before the
visitor's audio path is up. The agent's opening is asked of the model the moment the history is
in, before the session that will speak it has started (`worker.prefetch`); its words, then the
first sentence's speech, are generated while the room connects, held by the agent until the
visitor can hear it (`worker.audiopath`), and played the moment they can. The agent's track is
published as soon as the room is connected, while the agent waits for the visitor. Before the
visitor is linked, the opening is checked against the log: one the conversation has moved past
is replaced unheard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, JobContext, JobProcess, llm, room_io
from livekit.plugins import silero

from conversation import (
    ConversationNotFound,
    ConversationStore,
    InvalidInput,
    StoreUnavailable,
    validate_conversation_id,
)
from conversation.history import HistoryBudget
from conversation.restore import load_chat_context
from conversation.tracing import from_dispatch, new_trace_id
from worker import metrics
from worker.agent import BatonAgent, Opening, outdated, plan_opening, text_typed
from worker.audiopath import AgentVoice
from worker.backends import load_backend
from worker.background import at_low_priority
from worker.call import Call, wait_for_visitor
from worker.models import (
    END_OF_SPEECH_SILENCE,
    OPENAI_BASE_URL,
    SPEECH_PADDING,
    handoff_models,
    model_client,
    session_models,
)
from worker.settings import current_settings
from worker.timeline import FirstWords
from worker.tools import CallData
from worker.warmup import warm_up

logger = logging.getLogger("baton.worker")

RECENT_EVENTS = 64
"""Newest log events read to tell a fresh switch from a call already in progress."""

OPENING_HEAD_START = 0.25
"""Seconds the session waits, at most, for the opening's request to be built and sent first."""

LINKED_BY_BATON = [rtc.ParticipantKind.PARTICIPANT_KIND_EGRESS]
"""The participant kinds the room input links by itself: only one that never appears in a
room's participants (egress recorders join hidden). The session starts before the room is
connected, when it cannot be told the visitor's identity, and the first participant of the
framework's default kinds could be a human agent; Baton links the visitor itself once it has
found them (`RoomIO.set_participant`)."""


def setup_process(proc: JobProcess) -> None:
    """Load the models before a job needs them: a process runs one job, and anything built
    here (the VAD, the model clients and their TLS context) is off the first words' path. It
    is built at a low CPU priority (`worker.background`): a process is readied while the call
    that took the last one is making its first words. A job process's warnings go to the log
    as its records do, not to stderr as text."""
    logging.captureWarnings(True)

    def build() -> dict[str, Any]:
        warm_up()
        settings = current_settings()
        voice_activity = silero.VAD.load(min_silence_duration=END_OF_SPEECH_SILENCE,
                                         prefix_padding_duration=SPEECH_PADDING)
        client = model_client(settings.openai_api_key.get_secret_value(),
                              settings.openai_base_url or OPENAI_BASE_URL)
        return {"models": session_models(settings, voice_activity, client),
                "handoff": handoff_models(settings, voice_activity, client)}

    proc.userdata.update(at_low_priority(build))


async def load_history(store: ConversationStore, conversation_id: str,
                       budget: HistoryBudget) -> tuple[llm.ChatContext, Opening]:
    """The model's context and how to open, from the log as it is now."""
    chat_ctx, (recent, _total) = await asyncio.gather(
        load_chat_context(store, conversation_id, budget=budget),
        store.read_tail(conversation_id, RECENT_EVENTS))
    return chat_ctx, plan_opening(recent)


async def restore(store: ConversationStore, conversation_id: str,
                  budget: HistoryBudget) -> tuple[BatonAgent, float]:
    """Build the agent from the log: the model's context and how to open. Returns the agent
    and the seconds the restore took."""
    started = time.perf_counter()
    chat_ctx, opening = await load_history(store, conversation_id, budget)
    return BatonAgent(chat_ctx=chat_ctx, opening=opening), time.perf_counter() - started


async def keep_opening_current(agent: BatonAgent, store: ConversationStore,
                               conversation_id: str, budget: HistoryBudget) -> bool:
    """Before anyone hears the opening generated at the start of the job, check it against
    the log: if the conversation went on meanwhile (the visitor kept typing, another agent
    resumed the call), replace it with one generated from the log as it is now. Returns
    whether it was replaced."""
    try:
        since = await store.read(conversation_id, after=agent.opening.position)
    except StoreUnavailable:
        logger.warning("the conversation log is unreachable; opening with what it held when "
                       "the job started")
        return False
    if not outdated(agent.opening, since):
        return False
    chat_ctx, opening = await load_history(store, conversation_id, budget)
    logger.info("the conversation went on while the agent joined; opening again",
                extra={"opening": opening.kind.value})
    await agent.reopen(chat_ctx, opening)
    return True


async def entrypoint(ctx: JobContext) -> None:
    """Run the call for the conversation the room is named after."""
    timeline = FirstWords()
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

    # Signalling is the longest step before the first words: it starts before anything else.
    connecting = asyncio.create_task(ctx.connect(), name="baton-connect")
    connecting.add_done_callback(lambda _: timeline.mark("connected"))
    redis = settings.redis_client(socket_timeout=2.0, socket_connect_timeout=2.0)
    store = settings.store(redis)
    try:
        (agent, restore_seconds), record = await asyncio.gather(
            restore(store, conversation_id, settings.history_budget),
            store.get(conversation_id))
    except (ConversationNotFound, StoreUnavailable) as exc:
        connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)
        await redis.aclose()
        if isinstance(exc, ConversationNotFound):
            logger.error("room is not a Baton conversation (no such conversation in the log); "
                         "ending the job")
        else:
            logger.error("the conversation log is unreachable, so the history cannot be "
                         "restored; ending the job")
        ctx.shutdown(reason="conversation not restorable")
        return
    timeline.mark("restored")
    models = ctx.proc.userdata["models"]
    if isinstance(models["llm"], llm.LLM):
        # With a hosted model's latency, asking for the opening is the first words' longest
        # step: it starts now, while the session and the room are still starting.
        opening = agent.ask_for_opening(models["llm"])
        ctx.add_shutdown_callback(agent.drop_prefetched_opening)
        # Building the request is CPU work, and starting the session is more: done side by
        # side on one loop, the request would wait for the session, and it matters more.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(OPENING_HEAD_START):
                await opening.on_its_way()
    metrics.HISTORY_RESTORE_SECONDS.observe(restore_seconds)
    logger.info("history restored", extra={"opening": agent.opening.kind.value,
                                            "restore_ms": round(restore_seconds * 1000, 2)})

    agent.handoff_phrases = tuple(p.lower() for p in settings.handoff_phrases)
    call = Call(ctx, store, redis, conversation_id, settings, ctx.proc.userdata["handoff"])
    ctx.add_shutdown_callback(call.finish)
    call.writeback.start()
    session = AgentSession[CallData](
        userdata=CallData(conversation_id, store, load_backend(settings.tool_backend),
                          caller=record.identity, handoff=call.transfer),
        user_away_timeout=None,
        **models,
    )
    call.attach(session)
    timeline.watch(session)
    voice = AgentVoice(ctx.room)
    ctx.add_shutdown_callback(voice.aclose)
    agent.audible = voice.audible
    session.output.audio = voice.output
    # Returns once the room is connected; the opening is being generated by then.
    await session.start(
        agent=agent, room=ctx.room,
        room_options=room_io.RoomOptions(
            participant_kinds=LINKED_BY_BATON,
            audio_output=False,
            # Leaving is handled by `Call`, which records it before the job ends.
            close_on_disconnect=False,
            # Word-synchronised captions estimate the speaking rate from the audio (an STFT
            # in Python per tenth of a second): ~0.2 s of CPU on the loop for a few seconds
            # of speech, in one go whenever speech arrives faster than it plays, as the held
            # opening does. The widget's thread shows each committed turn from the log.
            text_output=room_io.TextOutputOptions(sync_transcription=False),
            text_input=room_io.TextInputOptions(text_input_cb=text_typed),
        ),
        record=False,
    )
    await connecting
    voice.publish()
    try:
        visitor = await wait_for_visitor(ctx.room, settings.visitor_wait)
    except TimeoutError:
        logger.warning("no visitor joined within %.0f s; ending the job", settings.visitor_wait)
        ctx.shutdown(reason="no visitor")
        return
    timeline.mark("visitor")
    call.link(visitor)
    if call.visitor_left_sid is not None:
        return
    await keep_opening_current(agent, store, conversation_id, settings.history_budget)
    # The held opening plays once the visitor is linked and subscribed to the agent's track.
    session.room_io.set_participant(visitor.identity)
    voice.link()
    timeline.mark("linked")
    voice.audible.add_done_callback(lambda _: timeline.mark("audio_path"))
    await call.transfer.attach(session, agent, visitor, call.channel, record.identity)
