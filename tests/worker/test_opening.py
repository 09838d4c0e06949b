"""How the agent opens a call, decided from the newest events of the log."""

from __future__ import annotations

from conversation import (
    Channel,
    ChannelSwitchEvent,
    Event,
    MessageEvent,
    Role,
    StoredEvent,
    attributes,
)
from worker.agent import OpeningKind, outdated, plan_opening


def log(*events: Event) -> list[StoredEvent]:
    return [StoredEvent(f"{n + 1}-0", event) for n, event in enumerate(events)]


def said(role: Role, channel: Channel, text: str = "words") -> MessageEvent:
    return MessageEvent(role=role, channel=channel, text=text)


TO_VOICE = ChannelSwitchEvent(from_channel=Channel.CHAT, to_channel=Channel.VOICE,
                              trigger="visitor_clicked")
VISITOR_LEFT = ChannelSwitchEvent(event_id=attributes.visitor_left_event_id("PA_1"),
                                  from_channel=Channel.VOICE, to_channel=Channel.CHAT,
                                  trigger="visitor_left")


def test_no_conversation_yet_gets_a_greeting() -> None:
    assert plan_opening(log(TO_VOICE)).kind is OpeningKind.GREET


def test_a_chat_before_the_switch_is_continued() -> None:
    recent = log(said(Role.USER, Channel.CHAT), said(Role.ASSISTANT, Channel.CHAT), TO_VOICE)

    assert plan_opening(recent).kind is OpeningKind.CONTINUE_CHAT


def test_turns_spoken_since_the_switch_mean_the_call_is_resumed() -> None:
    recent = log(said(Role.USER, Channel.CHAT), TO_VOICE, said(Role.ASSISTANT, Channel.VOICE))

    assert plan_opening(recent).kind is OpeningKind.RESUME_CALL


def test_a_call_the_visitor_left_is_not_resumed_by_the_next_switch() -> None:
    recent = log(said(Role.USER, Channel.CHAT), TO_VOICE, said(Role.USER, Channel.VOICE),
                 VISITOR_LEFT, said(Role.USER, Channel.CHAT), TO_VOICE)

    assert plan_opening(recent).kind is OpeningKind.CONTINUE_CHAT


def test_spoken_turns_whose_switch_is_older_than_the_events_read_are_resumed() -> None:
    recent = log(said(Role.USER, Channel.VOICE), said(Role.ASSISTANT, Channel.VOICE))

    assert plan_opening(recent).kind is OpeningKind.RESUME_CALL


def test_an_opening_stays_current_when_only_the_visitor_joined_since() -> None:
    recent = log(said(Role.USER, Channel.CHAT), TO_VOICE)
    opening = plan_opening(recent)
    joined = ChannelSwitchEvent(from_channel=None, to_channel=Channel.VOICE,
                                trigger="visitor_joined")

    assert not outdated(opening, [StoredEvent("9-0", joined)])
    assert not outdated(opening, [])


def test_a_message_logged_since_the_opening_was_planned_outdates_it() -> None:
    opening = plan_opening(log(said(Role.USER, Channel.CHAT), TO_VOICE))

    assert outdated(opening, [StoredEvent("9-0", said(Role.USER, Channel.CHAT, "one more"))])


def test_a_call_left_since_the_opening_was_planned_outdates_it() -> None:
    opening = plan_opening(log(said(Role.USER, Channel.CHAT), TO_VOICE,
                               said(Role.ASSISTANT, Channel.VOICE)))
    assert opening.kind is OpeningKind.RESUME_CALL

    assert outdated(opening, [StoredEvent("9-0", VISITOR_LEFT), StoredEvent("10-0", TO_VOICE)])


def test_an_opening_knows_the_log_position_it_was_planned_at() -> None:
    assert plan_opening(log(said(Role.USER, Channel.CHAT), TO_VOICE)).position == "2-0"
    assert plan_opening([]).position is None
