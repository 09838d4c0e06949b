"""Names both services agree on: participant attributes, identities and shared event ids."""

from __future__ import annotations

CONVERSATION_ID = "baton.conversation_id"
ROLE = "baton.role"
SUBJECT = "baton.subject"
VERIFICATION_METHOD = "baton.verification_method"
VERIFIED_AT = "baton.verified_at"

ROLE_VISITOR = "visitor"
ROLE_HUMAN = "human"

VISITOR_IDENTITY_PREFIX = "visitor-"


def visitor_left_event_id(participant_sid: str) -> str:
    """The orchestrator (webhook) and the worker (room event) both record a visitor leaving the
    call; deriving the id from the participant's session makes the second write a no-op."""
    return f"left-{participant_sid}"


def visitor_joined_event_id(participant_sid: str) -> str:
    return f"joined-{participant_sid}"
