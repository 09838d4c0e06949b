"""Names both services agree on: participant attributes, who the visitor is, shared event ids."""

from __future__ import annotations

from collections.abc import Mapping

CONVERSATION_ID = "baton.conversation_id"
ROLE = "baton.role"
SUBJECT = "baton.subject"
VERIFICATION_METHOD = "baton.verification_method"
VERIFIED_AT = "baton.verified_at"
HANDOFF_ID = "baton.handoff_id"

ROLE_VISITOR = "visitor"
ROLE_HUMAN = "human"

VISITOR_IDENTITY_PREFIX = "visitor-"
PHONE_IDENTITY_PREFIX = "phone-"

SIP_CALL_STATUS = "sip.callStatus"
"""Set by LiveKit SIP on a phone participant: `dialing`, `ringing`, `automation` (sending
DTMF), `active` (answered: the participant is ready) and `hangup`."""
_NOT_ANSWERED = frozenset({"dialing", "ringing", "automation"})

WORKER_REGISTERED_CHANNEL = "baton:worker-registered"
"""Redis channel on which a voice worker announces its agent name once LiveKit registered it,
so the orchestrator re-dispatches calls that waited through a worker outage at once."""

# LiveKit's ParticipantInfo.Kind numbers, which the server API (`livekit.protocol.models`) and
# the rtc SDK (`rtc.ParticipantKind`) share, so both services can ask without a LiveKit import.
KIND_SIP = 3
KIND_AGENT = 4


def is_visitor(kind: int, attributes: Mapping[str, str]) -> bool:
    """The person a call is for: who the orchestrator's token or dial-out names the visitor,
    or a phone caller that nobody named (an inbound call through a dispatch rule).

    The orchestrator (webhooks, re-dispatch) and the worker (whom to talk to) both decide
    with this, so a phone visitor left alone is re-dispatched like a browser one.
    """
    if kind == KIND_AGENT:
        return False
    role = attributes.get(ROLE)
    if role:
        return role == ROLE_VISITOR
    return kind == KIND_SIP


def is_phone(kind: int) -> bool:
    return kind == KIND_SIP


def answered(kind: int, attributes: Mapping[str, str]) -> bool:
    """Whether a participant is in the call yet. A dialled phone joins the room while it still
    rings (and leaves it again if nobody answers); it is in the call from LiveKit SIP's
    `active`. Everyone else, and a phone without a call status, is in the call on joining.

    The worker greets and the orchestrator records a phone visitor's join only from then, so a
    call nobody answered leaves nothing in the log but its outcome.
    """
    return not is_phone(kind) or attributes.get(SIP_CALL_STATUS) not in _NOT_ANSWERED


def visitor_left_event_id(participant_sid: str) -> str:
    """The orchestrator (webhook) and the worker (room event) both record a visitor leaving the
    call; deriving the id from the participant's session makes the second write a no-op."""
    return f"left-{participant_sid}"


def visitor_joined_event_id(participant_sid: str) -> str:
    return f"joined-{participant_sid}"
