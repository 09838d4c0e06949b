"""Typed events of the conversation log, one model per kind."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from conversation.errors import InvalidInput
from conversation.ids import EVENT_ID_PATTERN, new_event_id

MAX_TEXT_CHARS = 16_000
MAX_TOOL_CHARS = 64_000
TOOL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class Channel(StrEnum):
    CHAT = "chat"
    VOICE = "voice"
    PHONE = "phone"


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    HUMAN = "human"
    SYSTEM = "system"


class HandoffState(StrEnum):
    REQUESTED = "requested"
    OFFERED = "offered"
    """Offered to a human on the dashboard, or their phone is being dialled."""
    ACCEPTED = "accepted"
    """The human is joining the visitor's room, in consult: they hear only the agent."""
    CONNECTING = "connecting"
    """The human asked to talk to the visitor."""
    CONNECTED = "connected"
    """Visitor and human hear each other; the agent only transcribes."""
    ENDED = "ended"
    DECLINED = "declined"
    FAILED = "failed"


TERMINAL_HANDOFF_STATES = frozenset({HandoffState.ENDED, HandoffState.DECLINED,
                                     HandoffState.FAILED})


class HandoffTrigger(StrEnum):
    TOOL = "tool"
    """The voice agent decided (its `transfer_to_human` tool)."""
    KEYWORD = "keyword"
    """The visitor said one of the configured phrases."""
    API = "api"
    """The widget's "talk to a person", or the site."""


class HandoffFailure(StrEnum):
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    DECLINED = "declined"
    TIMEOUT = "timeout"
    NO_HUMAN_AVAILABLE = "no_human_available"
    CALLER_LEFT = "caller_left"
    FAILED = "failed"


class AgentState(StrEnum):
    """Where the AI agent of a call is, as the visitor should be told."""

    WAITING = "waiting"
    """No agent could be started yet (no worker took the job); another is on its way."""
    JOINED = "joined"
    UNAVAILABLE = "unavailable"
    """Nobody came within the wait; the call ended and the conversation is back in chat."""


class CallOutcome(StrEnum):
    """A phone call's steps and outcomes: dialling out (`conversation/phone.py` maps SIP
    statuses to them) and cold transfers of the phone visitor."""

    DIALING = "dialing"
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    DECLINED = "declined"
    UNREACHABLE = "unreachable"
    FAILED = "failed"
    ENDED = "ended"
    TRANSFERRED = "transferred"
    TRANSFER_FAILED = "transfer_failed"


def _now() -> datetime:
    return datetime.now(UTC)


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    event_id: str = Field(default_factory=new_event_id, pattern=EVENT_ID_PATTERN)
    at: datetime = Field(default_factory=_now)

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp must carry a time zone")
        return value


class MessageEvent(_EventBase):
    kind: Literal["message"] = "message"
    role: Role
    channel: Channel
    author: str | None = Field(default=None, max_length=128)
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    interrupted: bool = False


class ToolCallEvent(_EventBase):
    kind: Literal["tool_call"] = "tool_call"
    call_id: str = Field(min_length=1, max_length=128)
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    arguments: str = Field(default="{}", max_length=MAX_TOOL_CHARS)
    channel: Channel

    @field_validator("arguments")
    @classmethod
    def _json_object(cls, value: str) -> str:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"arguments must be JSON: {exc.msg}") from None
        if not isinstance(parsed, dict):
            raise ValueError("arguments must be a JSON object")
        return value


class ToolResultEvent(_EventBase):
    kind: Literal["tool_result"] = "tool_result"
    call_id: str = Field(min_length=1, max_length=128)
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    output: str = Field(max_length=MAX_TOOL_CHARS)
    is_error: bool = False


class ChannelSwitchEvent(_EventBase):
    kind: Literal["channel_switch"] = "channel_switch"
    from_channel: Channel | None = None
    to_channel: Channel
    trigger: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")


class VerificationEvent(_EventBase):
    kind: Literal["verification"] = "verification"
    subject: str = Field(min_length=1, max_length=256)
    method: str = Field(min_length=1, max_length=64)
    verified_at: datetime


class HandoffEvent(_EventBase):
    kind: Literal["handoff"] = "handoff"
    handoff_id: str = Field(min_length=1, max_length=96)
    state: HandoffState
    trigger: HandoffTrigger | None = None
    reason: str | None = Field(default=None, max_length=500)
    """Why a person was asked for, in words (requested)."""
    failure: HandoffFailure | None = None
    human: str | None = Field(default=None, max_length=128)
    """The human's display name; for a phone human never the number."""
    sip_status: int | None = Field(default=None, ge=100, le=699)
    card: dict[str, Any] | None = None
    """The handoff card (offered)."""


class AgentEvent(_EventBase):
    kind: Literal["agent"] = "agent"
    state: AgentState


class Suggestion(StrEnum):
    SWITCH_TO_VOICE = "switch_to_voice"


class SuggestionEvent(_EventBase):
    """The chat agent offers the visitor something (a voice call); the widget shows it."""

    kind: Literal["suggestion"] = "suggestion"
    suggestion: Suggestion
    reason: str = Field(default="", max_length=256)


class ResolutionEvent(_EventBase):
    """The site reports, after the fact, whether the visitor's issue was resolved."""

    kind: Literal["resolution"] = "resolution"
    resolved: bool


class CsatEvent(_EventBase):
    """The visitor's satisfaction score (1 to 5), as the site collected it."""

    kind: Literal["csat"] = "csat"
    score: int = Field(ge=1, le=5)


class CallEvent(_EventBase):
    kind: Literal["call"] = "call"
    outcome: CallOutcome
    sip_status: int | None = Field(default=None, ge=100, le=699)
    sip_reason: str | None = Field(default=None, max_length=128)
    number_ending: str | None = Field(
        default=None, pattern=r"^[0-9]{2}$",
        description="The last two digits of the number dialled; the log never holds more")


Event = Annotated[
    MessageEvent
    | ToolCallEvent
    | ToolResultEvent
    | ChannelSwitchEvent
    | VerificationEvent
    | HandoffEvent
    | AgentEvent
    | SuggestionEvent
    | ResolutionEvent
    | CsatEvent
    | CallEvent,
    Field(discriminator="kind"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_LIST_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])
EVENT_KINDS = ("message", "tool_call", "tool_result", "channel_switch", "verification",
               "handoff", "agent", "suggestion", "resolution", "csat", "call")


def parse_event(data: dict[str, Any]) -> Event:
    """Validate untrusted event data, raising InvalidInput that names the field at fault."""
    kind = data.get("kind")
    if kind not in EVENT_KINDS:
        raise InvalidInput("kind", f"unknown event kind {kind!r}; expected one of "
                                   f"{', '.join(EVENT_KINDS)}")
    try:
        return EVENT_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise invalid_input_from(exc) from None


def invalid_input_from(exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    location = [str(part) for part in first["loc"]]
    # A discriminated union puts the kind's tag first in the location; the field follows.
    if location and location[0] in EVENT_KINDS:
        location = location[1:]
    return InvalidInput(".".join(location) or "event", first["msg"])


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event with its position in the log (the Redis stream id)."""

    seq: str
    event: Event
