"""The voice agent: its instructions, its tools, and how it opens a call from the log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from livekit import rtc
from livekit.agents import Agent, AgentSession, ModelSettings, StopResponse, llm, room_io
from livekit.agents.types import FlushSentinel, TimedString
from livekit.agents.voice import SpeechHandle

from conversation import (
    Channel,
    ChannelSwitchEvent,
    HandoffTrigger,
    MessageEvent,
    Role,
    StoredEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from worker.audiopath import after
from worker.instructions import VOICE
from worker.prefetch import PrefetchedReply
from worker.tools import VOICE_TOOLS

INSTRUCTIONS = VOICE
"""The voice agent's instructions; the chat agent shares all but its last part."""


class OpeningKind(StrEnum):
    GREET = "greet"
    CONTINUE_CHAT = "continue_chat"
    RESUME_CALL = "resume_call"


@dataclass(frozen=True, slots=True)
class Opening:
    kind: OpeningKind
    instructions: str
    """What the model is asked for the first words; the words themselves are generated."""
    basis: tuple[StoredEvent, ...] = ()
    """The newest events of the log it was planned from, oldest first."""

    @property
    def position(self) -> str | None:
        """The log position it was planned at: later events may make it stale."""
        return self.basis[-1].seq if self.basis else None


_OPENING_INSTRUCTIONS = {
    OpeningKind.GREET: (
        "The visitor has just started a voice call and there is no earlier conversation. "
        "Greet them warmly in one sentence, say you are the shop's AI assistant, and ask how "
        "you can help."),
    OpeningKind.CONTINUE_CHAT: (
        "The visitor has just switched from the text chat to this voice call. Do not greet them "
        "as a stranger and do not ask them to repeat anything. In one or two short sentences, "
        "say what you understand they were asking about in the chat, for example \"I see you "
        "were asking about your January claim, let me pull that up\", and carry on from there."),
    OpeningKind.RESUME_CALL: (
        "The call dropped and you have just rejoined the same voice call; the visitor is still "
        "there. Do not greet them again. Apologise briefly for being cut off, recall in one "
        "sentence what they were telling you, for example \"Sorry, we were cut off; you were "
        "telling me about your order\", and continue where you left off."),
}

_CALL_CHANNELS = (Channel.VOICE, Channel.PHONE)


def plan_opening(recent: Sequence[StoredEvent]) -> Opening:
    """Decide how to open from the newest events of the log.

    A call is in progress when turns were spoken after the last switch to a call channel and
    no switch back (the visitor leaving) came since: then the agent was re-dispatched and
    resumes. Otherwise it continues the chat if there was one, or greets.
    """
    return opening_for(_opening_kind(recent), basis=recent)


def _opening_kind(recent: Sequence[StoredEvent]) -> OpeningKind:
    spoken_since_switch = False
    for stored in reversed(recent):
        event = stored.event
        if isinstance(event, MessageEvent) and event.channel in _CALL_CHANNELS:
            spoken_since_switch = True
        elif isinstance(event, ChannelSwitchEvent):
            if event.to_channel in _CALL_CHANNELS and spoken_since_switch:
                return OpeningKind.RESUME_CALL
            break
    else:
        # The switch is older than the events read; spoken turns mean a call is in progress.
        if spoken_since_switch:
            return OpeningKind.RESUME_CALL
    if any(isinstance(s.event, MessageEvent) and s.event.role is not Role.SYSTEM for s in recent):
        return OpeningKind.CONTINUE_CHAT
    return OpeningKind.GREET


def opening_for(kind: OpeningKind, *, basis: Sequence[StoredEvent] = ()) -> Opening:
    return Opening(kind, _OPENING_INSTRUCTIONS[kind], tuple(basis))


_CONVERSATION_EVENTS = (MessageEvent, ToolCallEvent, ToolResultEvent)


def outdated(opening: Opening, since: Sequence[StoredEvent]) -> bool:
    """Whether events logged after an opening was planned make it stale: something was said or
    done in the conversation (its words came from a history that is no longer the whole
    history), or the way to open changed (a call was resumed or left meanwhile). A visitor
    joining, recorded as a switch to voice, changes neither."""
    if any(isinstance(stored.event, _CONVERSATION_EVENTS) for stored in since):
        return True
    return bool(since) and _opening_kind([*opening.basis, *since]) is not opening.kind


Scribe = Callable[[llm.ChatMessage], Awaitable[None]]


class BatonAgent(Agent):
    """Continues the conversation restored from the log, with the tools the chat agent has and
    the transfer to a person.

    It opens as soon as its session starts, which may be before anyone can hear it: until the
    visitor's audio path is up, its speech's audio and text are held (`worker.audiopath`)
    while the models make them.

    While a person is being brought in (`scribe` set) it answers nobody: each visitor turn is
    handed to the scribe, which writes it down. A visitor saying one of `handoff_phrases` is
    handed to a person at once, without a model round trip.
    """

    def __init__(self, *, chat_ctx: llm.ChatContext, opening: Opening,
                 handoff_phrases: Sequence[str] = ()) -> None:
        super().__init__(instructions=INSTRUCTIONS, chat_ctx=chat_ctx, tools=list(VOICE_TOOLS))
        self.opening = opening
        self.opening_speech: SpeechHandle | None = None
        self.audible: asyncio.Future[None] | None = None
        """Done once the visitor can hear the agent (`worker.audiopath.AgentVoice`); speech
        is held until then. None in a session without room audio, which has nothing to wait
        for."""
        self.handoff_phrases = tuple(p.lower() for p in handoff_phrases)
        self.scribe: Scribe | None = None
        self._prefetched: PrefetchedReply | None = None

    def ask_for_opening(self, model: llm.LLM[Any]) -> PrefetchedReply:
        """Ask `model` for the opening now, before the session starts and asks for it itself,
        with the context the session will send: the instructions, the history, then the
        opening's instructions."""
        chat_ctx = self.chat_ctx.copy()
        chat_ctx.items.insert(0, llm.ChatMessage(role="system", content=[INSTRUCTIONS]))
        chat_ctx.add_message(role="system", content=[self.opening.instructions])
        self._prefetched = PrefetchedReply(model, chat_ctx, llm.ToolContext(self.tools).flatten())
        return self._prefetched

    async def drop_prefetched_opening(self) -> None:
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            await prefetched.aclose()

    async def on_enter(self) -> None:
        self.opening_speech = self.session.generate_reply(
            instructions=self.opening.instructions)

    async def llm_node(self, chat_ctx: llm.ChatContext, tools: list[llm.Tool],
                       model_settings: ModelSettings,
                       ) -> AsyncIterator[llm.ChatChunk | str | FlushSentinel]:
        prefetched, self._prefetched = self._prefetched, None
        stream = None if prefetched is None else await prefetched.claim(
            chat_ctx, tools, model_settings)
        if stream is None:
            async for chunk in Agent.default.llm_node(self, chat_ctx, tools, model_settings):
                yield chunk
            return
        async with stream:
            async for chunk in stream:
                yield chunk

    def tts_node(self, text: AsyncIterable[str],
                 model_settings: ModelSettings) -> AsyncIterator[rtc.AudioFrame]:
        return after(self.audible, Agent.default.tts_node(self, text, model_settings))

    def realtime_audio_output_node(self, audio: AsyncIterable[rtc.AudioFrame],
                                   model_settings: ModelSettings,
                                   ) -> AsyncIterator[rtc.AudioFrame]:
        return after(self.audible,
                     Agent.default.realtime_audio_output_node(self, audio, model_settings))

    def transcription_node(self, text: AsyncIterable[str | TimedString],
                           model_settings: ModelSettings) -> AsyncIterator[str | TimedString]:
        return after(self.audible,
                     Agent.default.transcription_node(self, text, model_settings))

    async def reopen(self, chat_ctx: llm.ChatContext, opening: Opening) -> None:
        """Replace an opening nobody has heard yet with one generated from `chat_ctx`.

        The old one is interrupted before any of it played, so the framework commits nothing
        of it to the conversation.
        """
        if self.opening_speech is not None:
            self.opening_speech.interrupt(force=True)
        await self.drop_prefetched_opening()
        await self.update_chat_ctx(chat_ctx)
        self.opening = opening
        self.opening_speech = self.session.generate_reply(instructions=opening.instructions)

    async def on_user_turn_completed(self, turn_ctx: llm.ChatContext,
                                     new_message: llm.ChatMessage) -> None:
        if await self.taken_elsewhere(new_message):
            raise StopResponse()

    async def taken_elsewhere(self, message: llm.ChatMessage) -> bool:
        """True when the visitor's turn is not the agent's to answer: a person is being
        brought in (the turn is written down), or the turn asks for one."""
        if self.scribe is None:
            said = (message.text_content or "").lower()
            handoff = self.session.userdata.handoff if self.session.userdata else None
            if handoff is None or not any(p in said for p in self.handoff_phrases) \
                    or not handoff.request(HandoffTrigger.KEYWORD,
                                           "the visitor asked for a person"):
                return False
        # The transfer answers the visitor; the turn is written by the scribe it installed.
        if self.scribe is not None:
            await self.scribe(message)
        return True


_ANSWER_TYPED = room_io.TextInputOptions().text_input_cb
"""The framework's own handling of typed text: a turn the agent answers."""


async def text_typed(session: AgentSession[Any], event: room_io.TextInputEvent) -> None:
    """Text the visitor types during the call goes where a spoken turn would: to the scribe or
    the transfer when a person is involved, else to the agent."""
    agent = session.current_agent
    if isinstance(agent, BatonAgent) and await agent.taken_elsewhere(
            llm.ChatMessage(role="user", content=[event.text])):
        return
    answered = _ANSWER_TYPED(session, event)
    if answered is not None:
        await answered
