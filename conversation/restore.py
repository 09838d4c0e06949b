"""Loading the model's view of a conversation, reading only the part of the log it needs."""

from __future__ import annotations

from livekit.agents import llm

from conversation.chatctx import history_to_chat_context
from conversation.history import (
    DEFAULT_BUDGET,
    HistoryBudget,
    Summarizer,
    select_history,
    within_budget,
)
from conversation.store import ConversationStore

HEAD_EVENTS = 12
"""How many of the oldest events a summary of a long, partly read log gets to quote."""


async def load_chat_context(store: ConversationStore, conversation_id: str, *,
                            budget: HistoryBudget = DEFAULT_BUDGET,
                            summarize: Summarizer | None = None) -> llm.ChatContext:
    """Read the log from its newest end until the budget is filled, then build the context.

    The cost follows the budget, not the length of the log, so a conversation with ten
    thousand events restores as fast as one with three hundred.
    """
    record = await store.get(conversation_id)
    page = budget.max_items * 2 + 16
    events, total = await store.read_tail(conversation_id, page)
    while len(events) < total and within_budget(events, budget):
        older, total = await store.read_tail(conversation_id, page, before=events[0].seq)
        if not older:
            break
        events = older + events
    unread = max(0, total - len(events))
    head = await store.read(conversation_id, count=HEAD_EVENTS) if unread else []
    history = select_history(events, budget, unread_before=unread, head=head,
                             trimmed_before=record.trimmed_events, summarize=summarize)
    return history_to_chat_context(history)
