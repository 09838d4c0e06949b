"""The handoff card: what the conversation established, and nothing the model made up."""

from __future__ import annotations

from datetime import UTC, datetime

from conversation import (
    Channel,
    MessageEvent,
    Role,
    StoredEvent,
    ToolCallEvent,
    ToolResultEvent,
    VerifiedIdentity,
)
from conversation.card import CardExtraction, build_card, transcript

VERIFIED = VerifiedIdentity(subject="cust-42", method="otp",
                            verified_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))


def log(*events: object) -> list[StoredEvent]:
    return [StoredEvent(f"{n + 1}-0", event) for n, event in enumerate(events)]  # type: ignore[arg-type]


CONVERSATION = log(
    MessageEvent(role=Role.USER, channel=Channel.CHAT,
                 text="Hi, I'm Priya and my order B2001 arrived broken"),
    ToolCallEvent(event_id="call-1", call_id="c1", name="lookup_order",
                  arguments='{"order_id": "B2001"}', channel=Channel.CHAT),
    ToolResultEvent(event_id="result-1", call_id="c1", name="lookup_order",
                    output='{"status": "delivered"}'),
    MessageEvent(role=Role.USER, channel=Channel.VOICE, text="Can I get a replacement?"),
)


def extraction(**fields: object) -> CardExtraction:
    base: dict[str, object] = {
        "summary": "Priya's order arrived broken; she wants a replacement.",
        "intent": "replacement", "sentiment": "negative", "name": "Priya",
        "account_number": "", "order_number": "B2001", "issue_type": "order",
        "open_questions": ["Can I get a replacement?"]}
    return CardExtraction.model_validate(base | fields)


def test_the_card_keeps_the_facts_the_conversation_stated() -> None:
    card = build_card(extraction(), CONVERSATION, identity=VERIFIED, reason="wants a person")

    assert (card.name, card.order_number, card.sentiment) == ("Priya", "B2001", "negative")
    assert card.escalation_reason == "wants a person"
    assert card.open_questions == ["Can I get a replacement?"]


def test_facts_the_model_made_up_are_left_empty() -> None:
    invented = extraction(name="Priya Sharma", account_number="ACC-991", order_number="B2002")

    card = build_card(invented, CONVERSATION, identity=None, reason="")

    assert (card.name, card.account_number, card.order_number) == ("", "", "")


def test_identity_and_tool_results_come_from_the_log_not_the_model() -> None:
    card = build_card(extraction(), CONVERSATION, identity=VERIFIED, reason="")

    assert card.verified_identity is not None and card.verified_identity.subject == "cust-42"
    assert [(f.name, f.arguments, f.output) for f in card.tool_results] == [
        ("lookup_order", '{"order_id": "B2001"}', '{"status": "delivered"}')]


def test_without_the_models_reading_the_card_still_carries_the_log() -> None:
    card = build_card(None, CONVERSATION, identity=VERIFIED, reason="complaint")

    assert card.summary == "The visitor last said: Can I get a replacement?"
    assert card.name == "" and card.escalation_reason == "complaint"
    assert card.verified_identity is not None and len(card.tool_results) == 1


def test_the_transcript_the_model_reads_names_speakers_and_channels() -> None:
    lines = transcript(CONVERSATION).splitlines()

    assert lines[0] == "Visitor (chat): Hi, I'm Priya and my order B2001 arrived broken"
    assert lines[-1] == "Visitor (voice): Can I get a replacement?"
