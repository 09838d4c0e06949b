"""Answering one typed turn: decide whether it still wants an answer, run the chat agent on the
conversation restored from the log, and write the reply in one transaction."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from livekit.agents import AgentSession, llm
from livekit.agents.voice.run_result import RunEvent, RunResult

from conversation import (
    Channel,
    ConversationNotFound,
    ConversationStore,
    Event,
    MessageEvent,
    Role,
    Status,
    StoredEvent,
    Suggestion,
    SuggestionEvent,
)
from conversation.chatctx import events_from_item
from conversation.chatturns import Turn, reply_event_id
from conversation.history import DEFAULT_BUDGET, HistoryBudget
from conversation.record import OPEN
from conversation.restore import load_chat_context
from worker.backends import Backend
from worker.chat.agent import OFFER_VOICE_CALL, ChatAgent
from worker.tools import CallData

logger = logging.getLogger("baton.chat")

APOLOGY = "Sorry, I could not answer that just now. Could you say it again?"
"""Written in place of a reply the model failed to give, so the visitor is not left waiting."""


class Outcome(StrEnum):
    ANSWERED = "answered"
    ALREADY_ANSWERED = "already_answered"
    """The reply is in the log already (a redelivered or repeated turn), or someone (the voice
    agent, a person) answered after the message."""
    SUPERSEDED = "superseded"
    """The visitor wrote again since; the newest message's turn answers both."""
    IN_CALL = "in_call"
    """A call is up: the voice agent (or a person) answers, not the chat."""
    NOT_A_VISITOR_MESSAGE = "not_a_visitor_message"
    GONE = "gone"
    """The conversation or the message no longer exists."""
    FAILED = "failed"
    """The model failed; an apology was written instead of a reply."""


@dataclass(frozen=True, slots=True)
class Answerer:
    """Everything a turn needs, shared by all the turns of a process."""

    store: ConversationStore
    model: llm.LLM[Any]
    backend: Backend
    budget: HistoryBudget = DEFAULT_BUDGET
    timeout: float = 60.0
    """Seconds the model and tools get for one turn before it is cut off and apologised for."""

    async def answer(self, turn: Turn) -> Outcome:
        """Answer the turn unless it no longer wants an answer; never raises for the model
        failing (StoreUnavailable passes through, so the turn is tried again)."""
        cid = turn.conversation_id
        try:
            record = await self.store.get(cid)
            if record.status is not Status.CHAT:
                return Outcome.IN_CALL if record.status in OPEN else Outcome.GONE
            if await self.store.position_of(cid, reply_event_id(turn.event_id, 1)):
                return Outcome.ALREADY_ANSWERED
            later = await self.store.read(cid, after=turn.seq)
            if waiting := _no_longer_waiting(later):
                return waiting
            chat_ctx = await load_chat_context(self.store, cid, budget=self.budget)
        except ConversationNotFound:
            return Outcome.GONE
        message = chat_ctx.get_by_id(turn.event_id)
        if not isinstance(message, llm.ChatMessage) or message.role != "user" \
                or not message.text_content:
            return Outcome.NOT_A_VISITOR_MESSAGE if message else Outcome.GONE
        position = chat_ctx.index_by_id(turn.event_id)
        # The model gets the message as this run's input, so the context stops before it.
        chat_ctx.items = chat_ctx.items[:position]
        data = CallData(cid, self.store, self.backend, caller=record.identity)
        try:
            async with asyncio.timeout(self.timeout):
                events = await self._run(ChatAgent(chat_ctx=chat_ctx), data,
                                         message.text_content)
            outcome = Outcome.ANSWERED
        except Exception as exc:  # the model or a tool failed: apologise rather than go silent
            logger.error("the chat agent could not answer a turn (%s)", type(exc).__name__,
                         extra={"conversation_id": cid})
            events = [MessageEvent(role=Role.ASSISTANT, channel=Channel.CHAT, text=APOLOGY)]
            outcome = Outcome.FAILED
        try:
            if (await self.store.get(cid)).status is not Status.CHAT:
                # The visitor switched to a call while the model was thinking; the voice
                # agent has the conversation now, and a late chat reply would talk over it.
                return Outcome.IN_CALL
            await self.store.append_all(cid, reply_events(events, turn.event_id))
        except ConversationNotFound:
            return Outcome.GONE
        return outcome

    async def _run(self, agent: ChatAgent, data: CallData, text: str) -> list[Event]:
        async with AgentSession[CallData](llm=self.model, userdata=data) as session:
            await session.start(agent, record=False)
            result: RunResult[None] = await session.run(user_input=text)
        return turn_events(result.events)


def _no_longer_waiting(later: Sequence[StoredEvent]) -> Outcome | None:
    """Why a message needs no answer, judging by what the log holds after it."""
    for stored in later:
        event = stored.event
        if isinstance(event, MessageEvent):
            if event.role is Role.USER:
                return Outcome.SUPERSEDED
            if event.role in (Role.ASSISTANT, Role.HUMAN):
                return Outcome.ALREADY_ANSWERED
    return None


def turn_events(run: Sequence[RunEvent]) -> list[Event]:
    """The log events of a run, in order: the agent's messages and tool round trips, with the
    offer of a call as a suggestion event in place of its tool's call and result."""
    events: list[Event] = []
    for run_event in run:
        item = run_event.item
        if isinstance(item, llm.FunctionCall) and item.name == OFFER_VOICE_CALL:
            events.append(SuggestionEvent(suggestion=Suggestion.SWITCH_TO_VOICE,
                                          reason=_reason(item.arguments)))
        elif isinstance(item, llm.FunctionCallOutput) and item.name == OFFER_VOICE_CALL:
            continue
        elif isinstance(item, llm.ChatMessage) and item.role != "assistant":
            continue
        elif isinstance(item, llm.ChatMessage | llm.FunctionCall | llm.FunctionCallOutput):
            events.extend(events_from_item(item, channel=Channel.CHAT))
    return events


def reply_events(events: Sequence[Event], message_event_id: str) -> list[Event]:
    """The events with ids derived from the message they answer, so a turn answered twice
    writes its reply once."""
    return [event.model_copy(update={"event_id": reply_event_id(message_event_id, index)})
            for index, event in enumerate(events, 1)]


def _reason(arguments: str) -> str:
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return ""
    reason = parsed.get("reason") if isinstance(parsed, dict) else None
    return reason[:256] if isinstance(reason, str) else ""
