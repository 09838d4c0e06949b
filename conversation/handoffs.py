"""A conversation's handoff to a human: its record and the steps that move it, each an event in
the log and compare-and-set transitions of the record, written together.

A conversation has at most one handoff at a time: the record's `handoff` field names it while
it runs. Its state lives in `conv:{id}:handoff`, in the conversation's slot, so each step
changes it, the conversation's status and the log in one script. Invariants:
- a step applies only from the states it names (an accept after a timeout changes nothing);
- a human's step applies only to the human it was offered to;
- every step's event id is derived from the handoff and the step, so it is written once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from conversation.card import HandoffCard, card_json
from conversation.desk import Desk
from conversation.errors import BatonError, InvalidInput
from conversation.events import (
    TERMINAL_HANDOFF_STATES,
    HandoffEvent,
    HandoffFailure,
    HandoffState,
    HandoffTrigger,
)
from conversation.ids import validate_conversation_id
from conversation.record import IN_CALL, Conversation, Status
from conversation.store import ConversationStore, Transition

S = HandoffState
ACTIVE = frozenset(HandoffState) - TERMINAL_HANDOFF_STATES
_TIMES = ("requested_at", "offered_at", "accepted_at", "connect_requested_at", "connected_at",
          "ended_at")


class HandoffInProgress(BatonError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"conversation {conversation_id!r} is already being handed to a person")


class NotInCall(BatonError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"conversation {conversation_id!r} has no call in progress; a person "
                         "joins a call")


class HandoffNotFound(BatonError):
    def __init__(self, handoff_id: str) -> None:
        super().__init__(f"handoff {handoff_id!r} does not exist")


@dataclass(frozen=True, slots=True)
class Handoff:
    id: str
    conversation_id: str
    state: HandoffState
    trigger: HandoffTrigger
    reason: str
    human: str
    """The username of the human it was offered to, "phone" for an on-call phone, or empty."""
    human_name: str
    failure: HandoffFailure | None
    card: HandoffCard | None
    times: Mapping[str, datetime] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


@dataclass(frozen=True, slots=True)
class HandoffStep:
    event: HandoffEvent
    transitions: Sequence[Transition]


def handoff_id(conversation_id: str, number: int) -> str:
    return f"{conversation_id}.{number}"


def conversation_of(handoff: str) -> str:
    """The conversation a handoff id belongs to; InvalidInput for anything else."""
    conversation_id, dot, number = handoff.rpartition(".")
    if not dot or not number.isdigit() or len(number) > 9:
        raise InvalidInput("handoff_id", "must be '<conversation id>.<number>'")
    return validate_conversation_id(conversation_id)


def request(record: Conversation, trigger: HandoffTrigger, reason: str) -> HandoffStep:
    """Start a handoff of a call in progress; gated, so of two at once only one starts."""
    number = int(record.handoffs) + 1
    hid = handoff_id(record.id, number)
    fresh = {"id": hid, "trigger": trigger.value, "reason": reason[:500], "human": "",
             "human_name": "", "failure": "", "card": "", **{t: "" for t in _TIMES},
             "requested_at": _now()}
    return HandoffStep(
        HandoffEvent(event_id=_event_id(hid, S.REQUESTED), handoff_id=hid, state=S.REQUESTED,
                     trigger=trigger, reason=reason[:500] or None),
        (Transition(to=None, from_=IN_CALL,
                    require={"handoffs": str(record.handoffs), "handoff": ""},
                    set={"handoffs": str(number), "handoff": hid}, gate=True),
         Transition(to=S.REQUESTED, from_=None, set=fresh, gate=True, on_handoff=True)))


def offered(handoff: Handoff, *, human: str, human_name: str, card: HandoffCard) -> HandoffStep:
    return _step(handoff, S.OFFERED, {S.REQUESTED}, human_name=human_name, card=card,
                 set={"human": human, "human_name": human_name,
                      "card": json.dumps(card_json(card)), "offered_at": _now()})


def accepted(handoff: Handoff, *, human: str) -> HandoffStep:
    return _step(handoff, S.ACCEPTED, {S.OFFERED}, human_name=handoff.human_name,
                 require={"human": human}, set={"accepted_at": _now()})


def connecting(handoff: Handoff, *, human: str) -> HandoffStep:
    return _step(handoff, S.CONNECTING, {S.ACCEPTED}, human_name=handoff.human_name,
                 require={"human": human}, set={"connect_requested_at": _now()})


def connected(handoff: Handoff) -> HandoffStep:
    step = _step(handoff, S.CONNECTED, {S.ACCEPTED, S.CONNECTING},
                 human_name=handoff.human_name, set={"connected_at": _now()})
    to_human = Transition(to=Status.HUMAN, from_=IN_CALL, require={"handoff": handoff.id})
    return HandoffStep(step.event, (*step.transitions, to_human))


def declined(handoff: Handoff, *, human: str) -> HandoffStep:
    return _ended(handoff, S.DECLINED, {S.OFFERED}, failure=HandoffFailure.DECLINED,
                  require={"human": human})


def failed(handoff: Handoff, failure: HandoffFailure, *,
           sip_status: int | None = None) -> HandoffStep:
    return _ended(handoff, S.FAILED, ACTIVE - {S.CONNECTED}, failure=failure,
                  sip_status=sip_status)


def ended(handoff: Handoff, *, call_status: Status) -> HandoffStep:
    """The human left after connecting: the call goes on with the agent (`call_status` voice
    or phone) or is over (chat)."""
    step = _ended(handoff, S.ENDED, {S.CONNECTED})
    # Every transition of a step is checked before any applies: the record still names this
    # handoff when this one is checked, and the release beside it clears it.
    back = Transition(to=call_status, from_=frozenset({Status.HUMAN}),
                      require={"handoff": handoff.id})
    return HandoffStep(step.event, (*step.transitions, back))


def _ended(handoff: Handoff, state: HandoffState, from_: set[HandoffState] | frozenset[
        HandoffState], *, failure: HandoffFailure | None = None, require: Mapping[str, str] = {},
           sip_status: int | None = None) -> HandoffStep:
    step = _step(handoff, state, from_, human_name=handoff.human_name or None, failure=failure,
                 sip_status=sip_status, require=require,
                 set={"failure": failure.value if failure else "", "ended_at": _now()})
    # The conversation is free for another handoff.
    release = Transition(to=None, from_=None, require={"handoff": handoff.id},
                         set={"handoff": ""})
    return HandoffStep(step.event, (*step.transitions, release))


def _step(handoff: Handoff, state: HandoffState, from_: set[HandoffState] | frozenset[
        HandoffState], *, human_name: str | None, card: HandoffCard | None = None,
          failure: HandoffFailure | None = None, sip_status: int | None = None,
          require: Mapping[str, str] = {}, set: Mapping[str, str] = {}) -> HandoffStep:
    return HandoffStep(
        HandoffEvent(event_id=_event_id(handoff.id, state), handoff_id=handoff.id, state=state,
                     human=human_name or None, failure=failure, sip_status=sip_status,
                     card=card_json(card) if card else None),
        (Transition(to=state, from_=frozenset(from_), require={"id": handoff.id, **require},
                    set=set, gate=True, on_handoff=True),))


def _event_id(hid: str, state: HandoffState) -> str:
    return f"handoff-{hid}-{state.value}"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class HandoffStore:
    """Reads handoffs and writes their steps, through the conversation store's scripts."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store

    async def take(self, conversation_id: str, step: HandoffStep) -> bool:
        """Write the step's event with its transitions; False when it did not apply (a stale
        step: the handoff moved on, or was offered to someone else)."""
        appended = await self.store.append(conversation_id, step.event,
                                           transition=step.transitions)
        return appended.transitioned

    async def current(self, conversation_id: str) -> Handoff | None:
        """The conversation's latest handoff, running or not; None if it never had one."""
        fields = await self.store.handoff_fields(conversation_id)
        if not fields.get("id"):
            return None
        return _parse(conversation_id, fields)

    async def get(self, hid: str) -> Handoff:
        conversation_id = conversation_of(hid)
        found = await self.current(conversation_id)
        if found is None or found.id != hid:
            raise HandoffNotFound(hid)
        return found


def _parse(conversation_id: str, fields: Mapping[str, str]) -> Handoff:
    card = HandoffCard.model_validate_json(fields["card"]) if fields.get("card") else None
    return Handoff(
        id=fields["id"], conversation_id=conversation_id, state=HandoffState(fields["state"]),
        trigger=HandoffTrigger(fields["trigger"]), reason=fields.get("reason", ""),
        human=fields.get("human", ""), human_name=fields.get("human_name", ""),
        failure=HandoffFailure(fields["failure"]) if fields.get("failure") else None,
        card=card,
        times={t: datetime.fromisoformat(fields[t]) for t in _TIMES if fields.get(t)})


async def start(handoffs: HandoffStore, desk: Desk, conversation_id: str,
                trigger: HandoffTrigger, reason: str) -> Handoff:
    """Request a handoff of the call in progress, and put it on the desk as waiting.

    HandoffInProgress when one runs already (also when another request won the race),
    NotInCall when there is no call to hand over.
    """
    record = await handoffs.store.get(conversation_id)
    if record.handoff:
        raise HandoffInProgress(conversation_id)
    if record.status not in IN_CALL:
        raise NotInCall(conversation_id)
    step = request(record, trigger, reason)
    if not await handoffs.take(conversation_id, step):
        raise HandoffInProgress(conversation_id)
    await desk.waiting_add(step.event.handoff_id)
    await desk.publish(step.event.handoff_id, "", HandoffState.REQUESTED)
    return await handoffs.get(step.event.handoff_id)
