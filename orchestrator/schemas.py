"""Request and response bodies of the HTTP API, with their limits."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from conversation import (
    CallOutcome,
    Conversation,
    Event,
    HandoffFailure,
    HandoffState,
    HandoffTrigger,
    Role,
    Status,
    StoredEvent,
)
from conversation.card import HandoffCard
from conversation.events import MAX_TEXT_CHARS
from conversation.handoffs import Handoff
from conversation.ids import CONVERSATION_ID_PATTERN, EVENT_ID_PATTERN, STREAM_ID_PATTERN
from conversation.phone import MAX_NUMBER_CHARS, MAX_TRANSFER_TARGET_CHARS


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentityIn(_Request):
    """Who the chat side verified the visitor to be."""

    subject: str = Field(min_length=1, max_length=256)
    method: str = Field(min_length=1, max_length=64)
    verified_at: AwareDatetime

    @field_validator("verified_at", mode="before")
    @classmethod
    def _text_only(cls, value: object) -> object:
        # Pydantic would read a bare number as Unix time; the contract is an RFC 3339 string.
        if not isinstance(value, str):
            raise ValueError("must be an RFC 3339 date-time string with a time zone")
        return value


class CreateConversation(_Request):
    id: str | None = Field(default=None, pattern=CONVERSATION_ID_PATTERN,
                           description="Chosen by the caller; generated when absent")
    identity: IdentityIn | None = None


class PostMessage(_Request):
    role: Role
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    event_id: str | None = Field(default=None, pattern=EVENT_ID_PATTERN,
                                 description="Idempotency key: a retry with it is stored once")
    author: str | None = Field(default=None, min_length=1, max_length=128)


class SwitchToVoice(_Request):
    # A closed set: the trigger is a metrics label, and free text would let any API-key
    # holder create unbounded time series.
    trigger: Literal["visitor", "agent", "operator"] = Field(
        default="visitor", description="Who asked for the switch: the visitor clicking, the chat "
                                       "agent offering it, or a human operator")


class IdentityOut(BaseModel):
    subject: str
    method: str
    verified_at: datetime


class ConversationOut(BaseModel):
    id: str
    status: Status
    identity: IdentityOut | None
    room: str | None
    created_at: datetime
    updated_at: datetime
    trimmed_events: int = Field(description="Events dropped from the front of the log")

    @classmethod
    def of(cls, record: Conversation) -> ConversationOut:
        identity = None
        if record.identity is not None:
            identity = IdentityOut(subject=record.identity.subject,
                                   method=record.identity.method,
                                   verified_at=record.identity.verified_at)
        return cls(id=record.id, status=record.status, identity=identity, room=record.room,
                   created_at=record.created_at, updated_at=record.updated_at,
                   trimmed_events=record.trimmed_events)


class MessageAppended(BaseModel):
    seq: str = Field(pattern=STREAM_ID_PATTERN, description="Position in the log")
    event_id: str
    duplicate: bool = Field(description="True when this event_id was stored before")


class EventOut(BaseModel):
    seq: str = Field(pattern=STREAM_ID_PATTERN)
    event: Event

    @classmethod
    def of(cls, stored: StoredEvent) -> EventOut:
        return cls(seq=stored.seq, event=stored.event)


class EventPage(BaseModel):
    events: list[EventOut]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end")


class VoiceSession(BaseModel):
    url: str = Field(description="LiveKit URL the client connects to")
    token: str = Field(description="Join token for this conversation's room only")
    room: str
    identity: str = Field(description="The visitor's participant identity in the room")


class WidgetTokenOut(BaseModel):
    token: str
    expires_at: datetime


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    redis: str = Field(description="ok or down")
    livekit: str = Field(description="ok or down")
    message: str = Field(description="What is down, if anything")


class SignIn(_Request):
    username: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=256)


class HumanOut(BaseModel):
    username: str
    name: str


class SignedIn(HumanOut):
    expires_at: datetime
    token: str = Field(description="The session, also set as the `baton_human` cookie; send "
                                   "it as a Bearer token where a cookie cannot go")


class RequestHandoff(_Request):
    reason: str = Field(default="", max_length=500,
                        description="Why the visitor wants a person, in their words")


class HandoffOut(BaseModel):
    id: str
    conversation_id: str
    state: HandoffState
    trigger: HandoffTrigger
    reason: str
    human_name: str
    failure: HandoffFailure | None
    card: HandoffCard | None
    times: dict[str, datetime]

    @classmethod
    def of(cls, handoff: Handoff) -> HandoffOut:
        return cls(id=handoff.id, conversation_id=handoff.conversation_id,
                   state=handoff.state, trigger=handoff.trigger, reason=handoff.reason,
                   human_name=handoff.human_name, failure=handoff.failure, card=handoff.card,
                   times=dict(handoff.times))


class Queue(BaseModel):
    handoffs: list[HandoffOut]


class HumanSession(BaseModel):
    """Where the human joins the visitor's room, in consult until they connect."""

    url: str
    token: str
    room: str
    identity: str
    handoff: HandoffOut


class ReportResolution(_Request):
    resolved: bool = Field(strict=True, description="Whether the visitor's issue was resolved")


class ReportCsat(_Request):
    score: int = Field(ge=1, le=5, description="The visitor's satisfaction, 1 to 5")


class Reported(BaseModel):
    seq: str = Field(pattern=STREAM_ID_PATTERN, description="Position in the log")
    path: str = Field(description="The channels the conversation went through, e.g. "
                                  "chat>voice>human, as the metrics label it")


class DialOut(_Request):
    phone_number: str = Field(
        min_length=1, max_length=MAX_NUMBER_CHARS, examples=["+44 20 7946 0000"],
        description="The visitor's number, international: '+', the country code, the number")
    trigger: Literal["visitor", "agent", "operator"] = Field(
        default="visitor", description="Who asked for the call, as for a switch to voice")


class DialOutResult(BaseModel):
    outcome: Literal[CallOutcome.ANSWERED, CallOutcome.BUSY, CallOutcome.NO_ANSWER,
                     CallOutcome.DECLINED, CallOutcome.UNREACHABLE, CallOutcome.FAILED]
    sip_status: int | None = Field(description="The SIP final status of a call not answered")
    sip_reason: str | None = Field(description="Its reason phrase")
    number_ending: str = Field(description="The last two digits of the number dialled")
    participant_identity: str | None = Field(
        description="The phone visitor's participant identity in the room, when answered")


class TransferCall(_Request):
    to: str = Field(min_length=1, max_length=MAX_TRANSFER_TARGET_CHARS,
                    examples=["+12025550199", "sip:support@pbx.example.com"],
                    description="An E.164 number, a tel: URI or a sip: URI")


class TransferResult(BaseModel):
    outcome: Literal[CallOutcome.TRANSFERRED, CallOutcome.TRANSFER_FAILED]
    sip_status: int | None = Field(description="The SIP status of a transfer that failed")
    sip_reason: str | None
