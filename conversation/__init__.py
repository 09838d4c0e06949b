"""The channel-agnostic conversation log: typed events, the record, and their Redis store."""

from conversation import attributes, calls
from conversation.errors import (
    BatonError,
    ConversationExists,
    ConversationNotFound,
    InvalidInput,
    StoreUnavailable,
)
from conversation.events import (
    AgentEvent,
    AgentState,
    CallEvent,
    CallOutcome,
    Channel,
    ChannelSwitchEvent,
    Event,
    HandoffEvent,
    HandoffFailure,
    HandoffState,
    MessageEvent,
    Role,
    StoredEvent,
    ToolCallEvent,
    ToolResultEvent,
    VerificationEvent,
    parse_event,
)
from conversation.ids import validate_conversation_id
from conversation.record import IN_CALL, Conversation, Status, VerifiedIdentity
from conversation.store import Appended, ConversationStore, Transition

__all__ = [
    "IN_CALL",
    "AgentEvent",
    "AgentState",
    "Appended",
    "BatonError",
    "CallEvent",
    "CallOutcome",
    "Channel",
    "ChannelSwitchEvent",
    "Conversation",
    "ConversationExists",
    "ConversationNotFound",
    "ConversationStore",
    "Event",
    "HandoffEvent",
    "HandoffFailure",
    "HandoffState",
    "InvalidInput",
    "MessageEvent",
    "Role",
    "Status",
    "StoreUnavailable",
    "StoredEvent",
    "ToolCallEvent",
    "ToolResultEvent",
    "Transition",
    "VerificationEvent",
    "VerifiedIdentity",
    "attributes",
    "calls",
    "parse_event",
    "validate_conversation_id",
]
