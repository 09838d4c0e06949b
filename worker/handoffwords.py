"""What the agent says around a handoff to a person: to the visitor, and the spoken briefing
the human gets in consult (the card, read out)."""

from __future__ import annotations

from conversation.card import HandoffCard
from conversation.events import HandoffFailure

LINE = "Let me connect you with one of our specialists now."
TAKE_BACK = {
    HandoffFailure.NO_HUMAN_AVAILABLE: "I'm sorry, nobody from our team is free right now.",
    HandoffFailure.TIMEOUT: "I'm sorry, nobody could take your call just now.",
    HandoffFailure.DECLINED: "I'm sorry, nobody could take your call just now.",
    HandoffFailure.NO_ANSWER: "I'm sorry, I couldn't reach our specialist.",
    HandoffFailure.BUSY: "I'm sorry, our specialist is on another call.",
    HandoffFailure.FAILED: "I'm sorry, the transfer didn't work.",
}
OFFER = " I can book a callback for you, if you like, or keep helping you myself."


def briefing(card: HandoffCard, *, on_phone: bool) -> str:
    """What the agent tells the human in consult: the card, spoken."""
    who = card.name or "the visitor"
    parts = [f"Hello, this is the AI assistant with a handover. You're taking over from me "
             f"with {who}."]
    if card.verified_identity is not None:
        parts.append("They are verified already; don't ask them to verify again.")
    if card.summary:
        parts.append(card.summary)
    if card.order_number:
        parts.append(f"The order number is {card.order_number}.")
    if card.escalation_reason:
        parts.append(f"They asked for a person because: {card.escalation_reason}.")
    for question in card.open_questions[:3]:
        parts.append(f"Still open: {question}")
    parts.append("Press 1 or say connect when you're ready to talk to them." if on_phone
                 else "Press connect on your dashboard when you're ready to talk to them.")
    return " ".join(parts)

