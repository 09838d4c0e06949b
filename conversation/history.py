"""Cutting a long history to a budget, with the older part replaced by an extractive summary."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from conversation.events import MessageEvent, Role, StoredEvent, ToolCallEvent, ToolResultEvent

Summarizer = Callable[[Sequence[StoredEvent], int], str]
"""Turns the events cut from the front (and how many the log itself no longer holds) into text."""

_SPEAKERS = {Role.USER: "Visitor", Role.ASSISTANT: "Agent", Role.HUMAN: "Human agent",
             Role.SYSTEM: "System"}


@dataclass(frozen=True, slots=True)
class HistoryBudget:
    """How much history the model is given: the newest items that fit both limits."""

    max_items: int = 200
    max_chars: int = 48_000
    summary_chars: int = 2_000


DEFAULT_BUDGET = HistoryBudget()


@dataclass(frozen=True, slots=True)
class History:
    summary: str | None
    """Text standing for the events that did not fit, or None when nothing was cut."""
    summarized: Sequence[StoredEvent]
    kept: Sequence[StoredEvent]


def model_visible(stored: StoredEvent) -> bool:
    return isinstance(stored.event, MessageEvent | ToolCallEvent | ToolResultEvent)


def _size(stored: StoredEvent) -> int:
    event = stored.event
    if isinstance(event, MessageEvent):
        return len(event.text)
    if isinstance(event, ToolCallEvent):
        return len(event.name) + len(event.arguments)
    if isinstance(event, ToolResultEvent):
        return len(event.output)
    return 0


def select_history(events: Sequence[StoredEvent], budget: HistoryBudget, *,
                   trimmed_before: int = 0, summarize: Summarizer | None = None) -> History:
    visible = [stored for stored in events if model_visible(stored)]
    kept_count = chars = 0
    for stored in reversed(visible):
        size = _size(stored)
        # The newest item is always kept, however long, so the model sees the last turn.
        if kept_count >= budget.max_items or (kept_count and chars + size > budget.max_chars):
            break
        kept_count += 1
        chars += size
    cut = len(visible) - kept_count
    cut = _without_orphan_results(visible, cut)
    summarized, kept = visible[:cut], visible[cut:]
    if not summarized and not trimmed_before:
        return History(None, (), kept)
    text = (summarize or extractive_summary)(summarized, trimmed_before)
    return History(text[: budget.summary_chars], summarized, kept)


def _without_orphan_results(visible: Sequence[StoredEvent], cut: int) -> int:
    """Move the cut past tool results whose call would be summarized away.

    A result without its call is rejected by model APIs, so it goes with its call.
    """
    kept_calls = {s.event.call_id for s in visible[cut:] if isinstance(s.event, ToolCallEvent)}
    while cut < len(visible):
        event = visible[cut].event
        if isinstance(event, ToolResultEvent) and event.call_id not in kept_calls:
            cut += 1
        else:
            break
    return cut


def extractive_summary(events: Sequence[StoredEvent], trimmed_before: int = 0,
                       *, line_chars: int = 160, max_lines: int = 12) -> str:
    """A deterministic summary: who said what, first lines of each turn, tools consulted."""
    lines: list[str] = []
    for stored in events:
        event = stored.event
        if isinstance(event, MessageEvent):
            text = " ".join(event.text.split())
            if len(text) > line_chars:
                text = text[: line_chars - 1] + "…"
            lines.append(f"{_SPEAKERS[event.role]} ({event.channel.value}): {text}")
        elif isinstance(event, ToolCallEvent):
            lines.append(f"Tool {event.name} was called with {event.arguments}")
    if len(lines) > max_lines:
        head, tail = lines[: max_lines // 2], lines[-(max_lines - max_lines // 2):]
        lines = [*head, f"… {len(lines) - max_lines} more lines …", *tail]
    header = f"Summary of the earlier conversation ({len(events)} earlier items"
    if trimmed_before:
        header += f"; {trimmed_before} older events are no longer retained"
    return header + "):\n" + "\n".join(lines)
