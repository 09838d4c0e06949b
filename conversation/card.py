"""The handoff card: what a human needs to take over without making the visitor repeat a word.

The model fills what only a reading of the conversation gives (summary, intent, sentiment, the
facts the visitor stated); the verified identity and the tool results come from the log, never
from the model. Invariants:
- a stated fact (name, account number, order number) is kept only if it appears in what was
  said or fetched; a field the conversation does not establish stays empty, never invented;
- every field is bounded, so a card always fits in one log event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from conversation.events import MessageEvent, Role, StoredEvent, ToolCallEvent, ToolResultEvent
from conversation.record import VerifiedIdentity

MAX_FIELD = 300
MAX_SUMMARY = 800
MAX_QUESTIONS = 5
MAX_TOOL_FACTS = 10
_SPEAKERS = {Role.USER: "Visitor", Role.ASSISTANT: "AI agent", Role.HUMAN: "Human agent",
             Role.SYSTEM: "System"}


class CardExtraction(BaseModel):
    """What the model is asked to read from the conversation; every field may stay empty."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(description="Two sentences: what the visitor needs and where it stands")
    intent: str = Field(description="What the visitor wants done, in a few words")
    sentiment: Literal["positive", "neutral", "negative", "unknown"]
    name: str = Field(description="The visitor's name exactly as they said it, or empty")
    account_number: str = Field(description="An account number the visitor gave, or empty")
    order_number: str = Field(description="An order number the visitor gave, or empty")
    issue_type: str = Field(description="One of: order, billing, subscription, technical, "
                                        "complaint, other")
    open_questions: list[str] = Field(description="Questions still unanswered, at most five")


class ToolFact(BaseModel):
    name: str
    arguments: str
    output: str


class CardIdentity(BaseModel):
    subject: str
    method: str
    verified_at: datetime


class HandoffCard(BaseModel):
    summary: str = ""
    intent: str = ""
    sentiment: str = "unknown"
    name: str = ""
    account_number: str = ""
    order_number: str = ""
    issue_type: str = ""
    escalation_reason: str = ""
    open_questions: list[str] = Field(default_factory=list)
    verified_identity: CardIdentity | None = None
    tool_results: list[ToolFact] = Field(default_factory=list)


EXTRACTION_INSTRUCTIONS = """\
You prepare a handoff card for a human support agent who is about to take over this
conversation. Read the transcript and fill the fields. Use only what the transcript says: if a
name, account number or order number was not stated, leave the field empty. Never guess."""


def transcript(events: Sequence[StoredEvent]) -> str:
    """The conversation as plain lines for the model: who said what, on which channel."""
    lines = []
    for stored in events:
        event = stored.event
        if isinstance(event, MessageEvent):
            lines.append(f"{_SPEAKERS[event.role]} ({event.channel.value}): {event.text}")
        elif isinstance(event, ToolCallEvent):
            lines.append(f"Tool {event.name} called with {event.arguments}")
        elif isinstance(event, ToolResultEvent):
            lines.append(f"Tool {event.name} returned {event.output}")
    return "\n".join(lines)


def build_card(extraction: CardExtraction | None, events: Sequence[StoredEvent], *,
               identity: VerifiedIdentity | None, reason: str) -> HandoffCard:
    """The card from the model's reading (None when the model failed) and the log's facts."""
    said = _normalised(transcript(events))
    facts = tool_facts(events)
    verified = None if identity is None else CardIdentity(
        subject=identity.subject, method=identity.method, verified_at=identity.verified_at)
    if extraction is None:
        return HandoffCard(summary=_cut(_last_visitor_words(events), MAX_SUMMARY),
                           escalation_reason=_cut(reason, MAX_FIELD),
                           verified_identity=verified, tool_results=facts)
    return HandoffCard(
        summary=_cut(extraction.summary, MAX_SUMMARY),
        intent=_cut(extraction.intent, MAX_FIELD),
        sentiment=extraction.sentiment,
        name=_grounded(extraction.name, said),
        account_number=_grounded(extraction.account_number, said),
        order_number=_grounded(extraction.order_number, said),
        issue_type=_cut(extraction.issue_type, MAX_FIELD),
        escalation_reason=_cut(reason, MAX_FIELD),
        open_questions=[_cut(q, MAX_FIELD) for q in extraction.open_questions
                        if q.strip()][:MAX_QUESTIONS],
        verified_identity=verified, tool_results=facts)


def tool_facts(events: Sequence[StoredEvent]) -> list[ToolFact]:
    """The tool results already fetched in this conversation, newest last, with their calls."""
    calls = {s.event.call_id: s.event for s in events if isinstance(s.event, ToolCallEvent)}
    facts = []
    for stored in events:
        result = stored.event
        if isinstance(result, ToolResultEvent) and not result.is_error:
            call = calls.get(result.call_id)
            facts.append(ToolFact(name=result.name,
                                  arguments=call.arguments if call else "{}",
                                  output=_cut(result.output, MAX_FIELD * 3)))
    return facts[-MAX_TOOL_FACTS:]


def _grounded(value: str, said: str) -> str:
    """The value if the conversation contains it, else empty: the model may not invent it."""
    value = value.strip()
    if not value or len(value) > MAX_FIELD:
        return ""
    return value if _normalised(value) in said else ""


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).casefold()


def _last_visitor_words(events: Sequence[StoredEvent]) -> str:
    spoken = [s.event.text for s in events
              if isinstance(s.event, MessageEvent) and s.event.role is Role.USER]
    return f"The visitor last said: {spoken[-1]}" if spoken else ""


def _cut(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def card_json(card: HandoffCard) -> dict[str, object]:
    data: dict[str, object] = json.loads(card.model_dump_json())
    return data
