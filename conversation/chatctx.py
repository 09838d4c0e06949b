"""Conversion between the conversation log and a LiveKit `llm.ChatContext`, both ways.

The only module of `conversation/` that imports LiveKit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from livekit.agents import llm

from conversation.events import (
    MAX_TEXT_CHARS,
    MAX_TOOL_CHARS,
    Channel,
    Event,
    MessageEvent,
    Role,
    StoredEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from conversation.history import (
    DEFAULT_BUDGET,
    History,
    HistoryBudget,
    Summarizer,
    select_history,
)

_BATON = "baton"
"""Key in a chat item's `extra` that carries what the LLM roles cannot: channel, author, role."""

_LLM_ROLE: dict[Role, llm.ChatRole] = {
    Role.USER: "user", Role.ASSISTANT: "assistant", Role.HUMAN: "assistant", Role.SYSTEM: "system",
}


def to_chat_context(events: Sequence[StoredEvent], *, budget: HistoryBudget = DEFAULT_BUDGET,
                    trimmed_before: int = 0, summarize: Summarizer | None = None,
                    ) -> llm.ChatContext:
    """Build the model's view of a whole log: stable ids, original timestamps, tool items.

    Beyond the budget the oldest part becomes one summary item; nothing is dropped unsaid.
    """
    return history_to_chat_context(select_history(
        events, budget, trimmed_before=trimmed_before, summarize=summarize))


def history_to_chat_context(history: History) -> llm.ChatContext:
    items: list[llm.ChatItem] = []
    if history.summary is not None:
        first_kept = history.kept[0].event if history.kept else None
        items.append(llm.ChatMessage(
            id=f"summary-{first_kept.event_id if first_kept else 'all'}",
            role="system",
            content=[history.summary],
            # Just before the first kept item, so ordering by time keeps the summary first.
            created_at=first_kept.at.timestamp() - 0.001 if first_kept else 0.0,
            extra={_BATON: {"summary": True}},
        ))
    items.extend(chat_item(stored.event) for stored in history.kept)
    return llm.ChatContext(items)


def chat_item(event: Event) -> llm.ChatItem:
    """The model-visible item for one log event (a message, a tool call or its result)."""
    created_at = event.at.timestamp()
    if isinstance(event, MessageEvent):
        text = event.text
        if event.role is Role.HUMAN:
            # The model must know a person, not itself, said this.
            text = f"[Human agent{' ' + event.author if event.author else ''}] {text}"
        return llm.ChatMessage(
            id=event.event_id, role=_LLM_ROLE[event.role], content=[text],
            interrupted=event.interrupted, created_at=created_at,
            extra={_BATON: {"role": event.role.value, "channel": event.channel.value,
                            "author": event.author, "text": event.text}},
        )
    if isinstance(event, ToolCallEvent):
        return llm.FunctionCall(id=event.event_id, call_id=event.call_id, name=event.name,
                                arguments=event.arguments, created_at=created_at,
                                extra={_BATON: {"channel": event.channel.value}})
    if isinstance(event, ToolResultEvent):
        return llm.FunctionCallOutput(id=event.event_id, call_id=event.call_id, name=event.name,
                                      output=event.output, is_error=event.is_error,
                                      created_at=created_at)
    raise TypeError(f"{event.kind} events are not model-visible")


def events_from_item(item: llm.ChatItem, *, channel: Channel,
                     author: str | None = None) -> list[Event]:
    """The log events for a chat item, with the item's id as event id so rewrites are no-ops.

    Never refuses what the framework committed: text longer than one event holds is split
    into several events in order (ids `<item id>`, `<item id>:2`, ...), tool arguments that
    are not a JSON object are kept as text inside one, and an oversize tool result is cut with
    a marker, so the call and its result stay paired. Items that are not conversation
    (instructions, summaries, handoffs) give no events.
    """
    at = datetime.fromtimestamp(item.created_at, UTC)
    if isinstance(item, llm.ChatMessage):
        baton: dict[str, Any] = item.extra.get(_BATON, {})
        if baton.get("summary") or item.role not in ("user", "assistant"):
            return []
        text = baton.get("text") or item.text_content
        if not text:
            return []
        parts = [text[i:i + MAX_TEXT_CHARS] for i in range(0, len(text), MAX_TEXT_CHARS)]
        return [MessageEvent(
            event_id=item.id if n == 0 else f"{item.id}:{n + 1}", at=at,
            role=Role(baton.get("role", item.role)),
            channel=Channel(baton.get("channel", channel.value)),
            author=baton.get("author", author), text=part, interrupted=item.interrupted,
        ) for n, part in enumerate(parts)]
    if isinstance(item, llm.FunctionCall):
        baton = item.extra.get(_BATON, {})
        return [ToolCallEvent(event_id=item.id, at=at, call_id=item.call_id, name=item.name,
                              arguments=storable_arguments(item.arguments),
                              channel=Channel(baton.get("channel", channel.value)))]
    if isinstance(item, llm.FunctionCallOutput):
        return [ToolResultEvent(event_id=item.id, at=at, call_id=item.call_id, name=item.name,
                                output=_cut(item.output, MAX_TOOL_CHARS),
                                is_error=item.is_error)]
    return []


UNPARSED = "unparsed_arguments"


def storable_arguments(arguments: str | None) -> str:
    """Tool arguments as the log keeps them: a JSON object, as the model sent them when it
    sent one, otherwise its text under `unparsed_arguments` (cut to fit)."""
    text = arguments or "{}"
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and len(text) <= MAX_TOOL_CHARS:
        return text
    room = MAX_TOOL_CHARS - len(json.dumps({UNPARSED: ""}))
    wrapped = json.dumps({UNPARSED: _cut(text, room)})
    while len(wrapped) > MAX_TOOL_CHARS:
        # Escaping can grow the text; cut further until the wrapper fits.
        room -= len(wrapped) - MAX_TOOL_CHARS
        wrapped = json.dumps({UNPARSED: _cut(text, room)})
    return wrapped


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = f" …[cut: {len(text) - limit} more characters]"
    return text[: max(0, limit - len(marker))] + marker
