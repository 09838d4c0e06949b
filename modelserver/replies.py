"""What the scripted chat model answers: queued replies, or a default that follows the
conversation it is sent (the first words name the chat's topic, a reply echoes the last turn)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelserver.extraction import card_extraction

DEFAULT_TRANSCRIPT = "I would like to change my plan to the yearly one"
"""What the scripted transcription hears, whatever the audio, unless a test queues another."""

GREETING = "Hello, I am the Baton assistant. How can I help you today?"

OFFER_TOOL = "offer_voice_call"
"""The chat agent's tool that shows the visitor a "switch to voice" button."""
WANTS_TO_TALK = re.compile(r"\b(talk|speak|call me|phone me|voice|rather call)\b", re.IGNORECASE)
OFFER_REASON = "to talk it through"
OFFERED = ("You can switch to a voice call with the Switch to voice button, and I will remember "
           "everything we wrote here.")


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    call_id: str | None = None

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass(frozen=True)
class ChatReply:
    """One scripted completion: text, tool calls, or both (text first, as models do)."""

    text: str = ""
    tool_calls: Sequence[ToolCall] = ()


ChatScript = Callable[[dict[str, Any]], ChatReply]


def message_text(message: dict[str, Any]) -> str:
    """The text of an OpenAI chat message whatever its content shape (string or parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _topic(text: str, words: int = 14) -> str:
    cleaned = re.sub(r"^(hi|hello|hey)\b[,!.]?\s*", "", " ".join(text.split()),
                     flags=re.IGNORECASE).rstrip(".!?")
    parts = cleaned.split(" ")
    short = " ".join(parts[:words])
    return short[:1].lower() + short[1:] if short else short


def default_reply(request: dict[str, Any]) -> ChatReply:
    """Deterministic answers that follow the conversation the model was sent.

    A trailing system message is a per-turn instruction (how the framework sends
    `generate_reply(instructions=...)`): a resumed call apologises, a switch from chat names the
    chat's topic (its longest visitor turn), anything else greets. A trailing user turn gets an
    answer that echoes it, unless it is the chat agent's visitor asking to talk: then the chat
    agent's tool offers a call, and once the tool answered the visitor is told of the button.
    """
    if request.get("response_format"):
        return ChatReply(card_extraction(request))
    messages: list[dict[str, Any]] = request.get("messages", [])
    conversation = [m for m in messages if m.get("role") in ("user", "assistant")]
    last_user = next((message_text(m) for m in reversed(conversation)
                      if m.get("role") == "user"), "")
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        if _tool_name(messages, last.get("tool_call_id")) == OFFER_TOOL:
            return ChatReply(OFFERED)
        return ChatReply(f"Here is what I found: {_topic(message_text(last), 24)}.")
    if last.get("role") == "user":
        if _offers(request, OFFER_TOOL) and WANTS_TO_TALK.search(message_text(last)):
            return ChatReply(tool_calls=[ToolCall(OFFER_TOOL, {"reason": OFFER_REASON})])
        return ChatReply(f"Sure, I can help with that: {_topic(message_text(last))}.")
    instruction = message_text(last).lower() if last.get("role") in ("system", "developer") else ""
    if last_user and "cut off" in instruction:
        return ChatReply(f"Sorry, we were cut off; you were telling me about {_topic(last_user)}.")
    if last_user:
        # The longest of the visitor's chat turns is where the topic was stated; "thanks" and
        # "can we talk instead?" come last but say little.
        topic = max((message_text(m) for m in conversation if m.get("role") == "user"), key=len)
        return ChatReply(f"I see you were asking about {_topic(topic)}. Let me pull that up.")
    return ChatReply(GREETING)


def _offers(request: dict[str, Any], tool: str) -> bool:
    return any(entry.get("function", {}).get("name") == tool
               for entry in request.get("tools") or [])


def _tool_name(messages: Sequence[dict[str, Any]], call_id: object) -> str | None:
    """The name of the tool whose call has this id, from the assistant turn that made it."""
    for message in messages:
        for call in message.get("tool_calls") or []:
            if call.get("id") == call_id:
                return str(call.get("function", {}).get("name"))
    return None
