"""Cutting a long history to a budget, with the older part replaced by an extractive summary."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from conversation.events import MessageEvent, Role, StoredEvent, ToolCallEvent, ToolResultEvent

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
class Earlier:
    """The part of the log the model does not see item by item.

    A long log is not read whole: `head` holds its first events, `tail` the newest of the
    earlier part, and `count` how many events it has in all, read or not.
    """

    head: Sequence[StoredEvent]
    tail: Sequence[StoredEvent]
    count: int
    trimmed: int
    """Events the log itself no longer holds (its length bound dropped them)."""


Summarizer = Callable[[Earlier], str]


@dataclass(frozen=True, slots=True)
class History:
    summary: str | None
    """Text standing for the earlier part, or None when the model sees the whole log."""
    kept: Sequence[StoredEvent]


def model_visible(stored: StoredEvent) -> bool:
    return isinstance(stored.event, MessageEvent | ToolCallEvent | ToolResultEvent)


def size(stored: StoredEvent) -> int:
    event = stored.event
    if isinstance(event, MessageEvent):
        return len(event.text)
    if isinstance(event, ToolCallEvent):
        return len(event.name) + len(event.arguments)
    if isinstance(event, ToolResultEvent):
        return len(event.output)
    return 0


def select_history(events: Sequence[StoredEvent], budget: HistoryBudget = DEFAULT_BUDGET, *,
                   unread_before: int = 0, head: Sequence[StoredEvent] = (),
                   trimmed_before: int = 0, summarize: Summarizer | None = None) -> History:
    """Keep the newest model-visible events that fit the budget and summarize the rest.

    `events` is the newest part of the log; `unread_before` events precede it unread, of which
    `head` are the first.
    """
    visible = [stored for stored in events if model_visible(stored)]
    kept_count = chars = 0
    for stored in reversed(visible):
        item_size = size(stored)
        # The newest item is always kept, however long, so the model sees the last turn.
        if kept_count >= budget.max_items or (kept_count and chars + item_size > budget.max_chars):
            break
        kept_count += 1
        chars += item_size
    cut = _without_orphan_results(visible, len(visible) - kept_count)
    earlier_read = visible[:cut]
    if not earlier_read and not unread_before and not trimmed_before:
        return History(None, visible[cut:])
    earlier = Earlier(head=head if unread_before else earlier_read,
                      tail=earlier_read if unread_before else (),
                      count=unread_before + len(earlier_read), trimmed=trimmed_before)
    text = (summarize or extractive_summary)(earlier)
    return History(text[: budget.summary_chars], visible[cut:])


def within_budget(events: Sequence[StoredEvent], budget: HistoryBudget) -> bool:
    """True while these events do not yet fill the budget, so older ones could still be kept."""
    items = chars = 0
    for stored in events:
        if model_visible(stored):
            items += 1
            chars += size(stored)
    return items <= budget.max_items and chars <= budget.max_chars


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


def extractive_summary(earlier: Earlier, *, line_chars: int = 160, max_lines: int = 12) -> str:
    """A deterministic summary: who said what at the start and the end, tools consulted.

    The middle is counted, not listed, so the cost stays flat however long the history is.
    """
    half = max_lines // 2
    turns = [s.event for s in (*earlier.head, *earlier.tail)
             if isinstance(s.event, MessageEvent | ToolCallEvent)]
    first, last = (turns[:half], turns[-(max_lines - half):]) if len(turns) > max_lines \
        else (turns, [])
    unread = earlier.count - len(earlier.head) - len(earlier.tail)
    omitted = unread + len(turns) - len(first) - len(last)
    lines = [_line(event, line_chars) for event in first]
    if omitted > 0:
        lines.append(f"… {omitted} more events …")
    lines.extend(_line(event, line_chars) for event in last)
    header = f"Summary of the earlier conversation ({earlier.count} earlier events"
    if earlier.trimmed:
        header += f"; {earlier.trimmed} older events are no longer retained"
    return header + "):\n" + "\n".join(lines)


def _line(event: MessageEvent | ToolCallEvent, line_chars: int) -> str:
    if isinstance(event, ToolCallEvent):
        return f"Tool {event.name} was called with {event.arguments}"
    text = " ".join(event.text.split())
    if len(text) > line_chars:
        text = text[: line_chars - 1] + "…"
    return f"{_SPEAKERS[event.role]} ({event.channel.value}): {text}"
