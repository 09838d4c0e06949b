"""The conversation record: status, verified identity, current room and timestamps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class Status(StrEnum):
    CHAT = "chat"
    VOICE = "voice"
    PHONE = "phone"
    HUMAN = "human"
    CLOSED = "closed"


IN_CALL = frozenset({Status.VOICE, Status.PHONE, Status.HUMAN})
"""Statuses in which the visitor is in a call (with the AI agent, or a human)."""
OPEN = frozenset(Status) - {Status.CLOSED}


class VerifiedIdentity(BaseModel):
    """Who the chat side says the visitor is, and how it checked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str = Field(min_length=1, max_length=256)
    method: str = Field(min_length=1, max_length=64)
    verified_at: datetime


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    status: Status
    identity: VerifiedIdentity | None
    room: str | None
    created_at: datetime
    updated_at: datetime
    schema_version: int
    trimmed_events: int
    """Events dropped from the front of the log by its length bound."""
    calls: int = 0
    """How many calls (voice or phone) the conversation has had; the current one's number
    while a call is up. Switch event ids derive from it, so a double click writes one."""
    visitor: str | None = None
    """The participant identity of the visitor in the current call, as the room saw them join."""
    handoffs: int = 0
    """How many handoffs to a human the conversation has had."""
    handoff: str | None = None
    """The id of the handoff in progress, if any (`conversation/handoffs.py`)."""
