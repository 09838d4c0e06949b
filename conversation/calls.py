"""How calls change a conversation: the events and compare-and-set transitions of each step.

Pure functions of the record as read. Every transition names the statuses it may apply from
and the record fields it relies on, so a writer acting on a stale read changes nothing, and
every event id is derived from what it records, so two writers of one fact write it once.

Invariants:
- `calls` counts switches into a call; a switch applies only while the record still has the
  count it was read with, and its event id carries the new count.
- `visitor` is the identity of the visitor the current call saw join; only that visitor
  leaving ends the call, so a late "left" of an earlier call's visitor changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from conversation.attributes import visitor_joined_event_id, visitor_left_event_id
from conversation.events import AgentEvent, AgentState, Channel, ChannelSwitchEvent
from conversation.record import IN_CALL, Conversation, Status
from conversation.store import Transition

CALL_STATUS = {Channel.VOICE: Status.VOICE, Channel.PHONE: Status.PHONE}
_CHANNEL_OF = {Status.CHAT: Channel.CHAT, Status.VOICE: Channel.VOICE,
               Status.PHONE: Channel.PHONE}


@dataclass(frozen=True, slots=True)
class Step:
    """An event and the transition that goes with it, appended together."""

    event: ChannelSwitchEvent | AgentEvent
    transition: Transition


def switch_into_call(record: Conversation, channel: Channel, trigger: str, room: str) -> Step:
    """Chat to a call. Gated: once the first of two concurrent switches applied, the second
    writes nothing, and a retried request finds its own event by id.

    A dialled phone is switched to once it answered, and the worker, which sees the answer in
    the room, may record the visitor joining (chat to phone) first: so the phone switch also
    applies from phone while the call count is the one read, and keeps the visitor recorded.
    """
    number = record.calls + 1
    event = ChannelSwitchEvent(event_id=f"call-{number}-switch", from_channel=Channel.CHAT,
                               to_channel=channel, trigger=trigger)
    require = {"calls": str(record.calls)}
    if channel is Channel.PHONE:
        return Step(event, Transition(
            to=Status.PHONE, from_=frozenset({Status.CHAT, Status.PHONE}), require=require,
            set={"calls": str(number), "room": room}, gate=True))
    return Step(event, Transition(
        to=CALL_STATUS[channel], from_=frozenset({Status.CHAT}), require=require,
        set={"calls": str(number), "room": room, "visitor": ""}, gate=True))


def visitor_joined(channel: Channel, identity: str, participant_sid: str) -> Step:
    status = CALL_STATUS[channel]
    return Step(
        ChannelSwitchEvent(event_id=visitor_joined_event_id(participant_sid), from_channel=None,
                           to_channel=channel, trigger="visitor_joined"),
        Transition(to=status, from_=frozenset({Status.CHAT, status}),
                   set={"visitor": identity}))


def visitor_left(channel: Channel, identity: str, participant_sid: str) -> Step:
    """The orchestrator (webhook) and the worker (room event) both record it; the id derived
    from the participant's session makes the second write a no-op."""
    return Step(
        ChannelSwitchEvent(event_id=visitor_left_event_id(participant_sid), from_channel=channel,
                           to_channel=Channel.CHAT, trigger="visitor_left"),
        Transition(to=Status.CHAT, from_=IN_CALL, require={"visitor": identity},
                   set={"visitor": ""}))


def call_over(record: Conversation) -> Transition:
    """The room is gone (every participant left, or it was closed): whatever call the record
    read then is over. Bound to that call's number, so a newer call is left alone."""
    return Transition(to=Status.CHAT, from_=IN_CALL, require={"calls": str(record.calls)},
                      set={"visitor": ""})


def agent_waiting(record: Conversation) -> AgentEvent:
    return AgentEvent(event_id=f"call-{record.calls}-agent-waiting", state=AgentState.WAITING)


def agent_joined(participant_sid: str) -> AgentEvent:
    return AgentEvent(event_id=f"agent-joined-{participant_sid}", state=AgentState.JOINED)


def no_agent_available(record: Conversation) -> tuple[AgentEvent, Step]:
    """Nobody took the call within the wait: say so, and end the call back into chat."""
    channel = _CHANNEL_OF.get(record.status, Channel.VOICE)
    return (AgentEvent(event_id=f"call-{record.calls}-agent-unavailable",
                       state=AgentState.UNAVAILABLE),
            Step(ChannelSwitchEvent(event_id=f"call-{record.calls}-no-agent",
                                    from_channel=channel, to_channel=Channel.CHAT,
                                    trigger="no_agent"),
                 Transition(to=Status.CHAT, from_=IN_CALL,
                            require={"calls": str(record.calls)}, set={"visitor": ""})))

