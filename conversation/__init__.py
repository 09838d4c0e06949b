"""The channel-agnostic conversation log: typed events, the record, and their Redis store."""

from conversation.errors import (
    BatonError,
    ConversationExists,
    ConversationNotFound,
    InvalidInput,
    StoreUnavailable,
)
from conversation.events import (
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
from conversation.record import Conversation, Status, VerifiedIdentity
from conversation.store import Appended, ConversationStore

__all__ = [
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
    "VerificationEvent",
    "VerifiedIdentity",
    "parse_event",
    "validate_conversation_id",
]
