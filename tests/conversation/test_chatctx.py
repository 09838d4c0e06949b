"""The log as a LiveKit ChatContext: round trip, tool items, budget and its summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from livekit.agents import llm

from conversation import (
    CallEvent,
    CallOutcome,
    Channel,
    ChannelSwitchEvent,
    Event,
    MessageEvent,
    Role,
    StoredEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from conversation.chatctx import UNPARSED, events_from_item, to_chat_context
from conversation.history import HistoryBudget

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def log(*events: Event) -> list[StoredEvent]:
    return [StoredEvent(f"{n + 1}-0", event) for n, event in enumerate(events)]


def message(n: int, text: str, role: Role = Role.USER, **extra: object) -> MessageEvent:
    return MessageEvent(event_id=f"m{n}", at=START + timedelta(seconds=n), role=role,
                        channel=Channel.CHAT, text=text, **extra)  # type: ignore[arg-type]


CLAIM_CHAT = log(
    message(1, "Hi, I'm asking about my January claim"),
    message(2, "Let me look that up.", Role.ASSISTANT),
    ToolCallEvent(event_id="t1", at=START + timedelta(seconds=3), call_id="call_1",
                  name="lookup_claim", arguments='{"month": "january"}', channel=Channel.CHAT),
    ToolResultEvent(event_id="t2", at=START + timedelta(seconds=4), call_id="call_1",
                    name="lookup_claim", output='{"status": "under review"}'),
    message(5, "It is under review.", Role.ASSISTANT, interrupted=True),
    message(6, "I can see it too", Role.HUMAN, author="Dana"),
)


def test_messages_keep_their_ids_timestamps_and_roles():
    ctx = to_chat_context(CLAIM_CHAT)

    first = ctx.items[0]
    assert isinstance(first, llm.ChatMessage)
    assert (first.id, first.role, first.text_content) == \
        ("m1", "user", "Hi, I'm asking about my January claim")
    assert first.created_at == (START + timedelta(seconds=1)).timestamp()


def test_tool_calls_and_results_become_function_items():
    ctx = to_chat_context(CLAIM_CHAT)

    call, output = ctx.items[2], ctx.items[3]
    assert isinstance(call, llm.FunctionCall) and isinstance(output, llm.FunctionCallOutput)
    assert (call.id, call.call_id, call.name, call.arguments) == \
        ("t1", "call_1", "lookup_claim", '{"month": "january"}')
    assert (output.call_id, output.output, output.is_error) == \
        ("call_1", '{"status": "under review"}', False)


def test_a_human_agents_words_are_marked_as_such_for_the_model():
    ctx = to_chat_context(CLAIM_CHAT)

    last = ctx.items[-1]
    assert isinstance(last, llm.ChatMessage)
    assert last.role == "assistant"
    assert last.text_content == "[Human agent Dana] I can see it too"


def test_the_log_survives_a_round_trip_through_the_chat_context():
    ctx = to_chat_context(CLAIM_CHAT)

    back = [event for item in ctx.items for event in events_from_item(item, channel=Channel.VOICE)]

    assert back == [stored.event for stored in CLAIM_CHAT]


def test_events_the_model_cannot_use_are_left_out():
    stored = log(ChannelSwitchEvent(to_channel=Channel.VOICE, trigger="visitor"),
                 CallEvent(outcome=CallOutcome.BUSY, sip_status=486),
                 message(3, "hello"))

    assert [item.id for item in to_chat_context(stored).items] == ["m3"]


def test_an_empty_log_gives_an_empty_context():
    assert to_chat_context([]).items == []


def test_beyond_the_item_budget_the_oldest_part_becomes_one_summary_item():
    stored = log(*(message(n, f"turn number {n}") for n in range(10)))

    ctx = to_chat_context(stored, budget=HistoryBudget(max_items=4))

    summary, *kept = ctx.items
    assert [item.id for item in kept] == ["m6", "m7", "m8", "m9"]
    assert isinstance(summary, llm.ChatMessage) and summary.role == "system"
    text = summary.text_content or ""
    assert "6 earlier events" in text
    assert "turn number 0" in text and "turn number 5" in text


def test_beyond_the_character_budget_the_oldest_part_is_summarized():
    stored = log(*(message(n, "x" * 100) for n in range(10)))

    ctx = to_chat_context(stored, budget=HistoryBudget(max_chars=350))

    assert [item.id for item in ctx.items[1:]] == ["m7", "m8", "m9"]


def test_the_newest_turn_is_kept_even_when_it_alone_exceeds_the_budget():
    stored = log(message(1, "short"), message(2, "y" * 500))

    ctx = to_chat_context(stored, budget=HistoryBudget(max_chars=100))

    assert [item.id for item in ctx.items[1:]] == ["m2"]


def test_a_tool_result_is_never_kept_without_its_call():
    ctx = to_chat_context(CLAIM_CHAT, budget=HistoryBudget(max_items=3))

    kept = ctx.items[1:]
    assert not any(isinstance(item, llm.FunctionCallOutput) for item in kept)
    assert [item.id for item in kept] == ["m5", "m6"]


def test_events_the_log_no_longer_holds_are_mentioned_in_the_summary():
    ctx = to_chat_context(log(message(1, "recent")), trimmed_before=250)

    summary = ctx.items[0]
    assert isinstance(summary, llm.ChatMessage)
    assert "250 older events are no longer retained" in (summary.text_content or "")


def test_a_new_framework_item_is_logged_under_its_own_id():
    item = llm.ChatMessage(id="item_abc", role="user", content=["spoken words"])

    [event] = events_from_item(item, channel=Channel.VOICE)

    assert isinstance(event, MessageEvent)
    assert (event.event_id, event.channel, event.text) == ("item_abc", Channel.VOICE,
                                                           "spoken words")


def test_instructions_and_summaries_are_not_written_back():
    instructions = llm.ChatMessage(role="system", content=["You are helpful"])
    summary = to_chat_context([], trimmed_before=3).items[0]

    assert events_from_item(instructions, channel=Channel.VOICE) == []
    assert events_from_item(summary, channel=Channel.VOICE) == []


def test_a_tool_call_split_from_a_model_item_keeps_the_frameworks_id():
    """Regression: the framework names tool calls split from one model item `item_x/fnc_0`;
    the slash was not allowed in event ids, so writing such a call back failed."""
    item = llm.FunctionCall(id="item_x/fnc_0", call_id="c", name="lookup_order", arguments="{}")

    [event] = events_from_item(item, channel=Channel.VOICE)

    assert event.event_id == "item_x/fnc_0"


def test_text_longer_than_an_event_holds_is_split_in_order_not_refused():
    """Bug: a typed `lk.chat` message over the event size limit raised a validation error
    inside the framework's event handler, which logged part of the text; the turn was neither
    written nor counted."""
    text = "".join(f"{n:06d} " for n in range(5000))
    item = llm.ChatMessage(id="item_long", role="user", content=[text])

    events = events_from_item(item, channel=Channel.VOICE)

    assert [e.event_id for e in events] == ["item_long", "item_long:2", "item_long:3"]
    assert "".join(e.text for e in events if isinstance(e, MessageEvent)) == text


@pytest.mark.parametrize("arguments", ["not json", "[1, 2]", '{"x": "' + "y" * 70_000 + '"}'])
def test_tool_arguments_that_are_not_a_json_object_are_kept_as_text(arguments: str):
    """Bug: tool arguments that were not a JSON object raised inside the event handler, so the
    call was lost and its result was left without it."""
    item = llm.FunctionCall(id="item_t", call_id="c9", name="lookup_order", arguments=arguments)

    [event] = events_from_item(item, channel=Channel.VOICE)

    assert isinstance(event, ToolCallEvent) and event.call_id == "c9"
    kept = json.loads(event.arguments)[UNPARSED]
    assert arguments.startswith(kept.split(" …[cut:")[0])


def test_an_oversize_tool_result_is_cut_with_a_marker():
    item = llm.FunctionCallOutput(id="item_o", call_id="c9", name="lookup_order",
                                  output="z" * 100_000, is_error=False)

    [event] = events_from_item(item, channel=Channel.VOICE)

    assert isinstance(event, ToolResultEvent)
    assert event.output.endswith("more characters]") and len(event.output) <= 64_000
