"""The redaction guard: numbers shaped like phone or card numbers never reach a log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from conversation.redaction import CARD_MASK, PHONE_MASK, RedactNumbers, redact


@pytest.mark.parametrize("number", ["+447700900123", "+44 7700 900123", "+1-555-010-0001",
                                    "+12025550143"])
def test_e164_phone_numbers_are_masked(number: str) -> None:
    assert redact(f"call me on {number}, please") == f"call me on {PHONE_MASK}, please"


@pytest.mark.parametrize("number", ["4111 1111 1111 1111", "4111111111111111",
                                    "5500-0000-0000-0004", "378282246310005"])
def test_card_numbers_are_masked(number: str) -> None:
    assert redact(f"my card is {number}.") == f"my card is {CARD_MASK}."


@pytest.mark.parametrize("text", ["order 1234567890123 shipped", "stream 1796319067204-0",
                                  "conversation c-0a1b2c3d4e5f6a7b", "+123 items", "took 1500 ms"])
def test_ids_times_and_counts_are_left_alone(text: str) -> None:
    assert redact(text) == text


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(where)s"))
    handler.addFilter(RedactNumbers())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def test_a_records_message_arguments_extra_fields_and_traceback_are_masked(
        logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    try:
        raise ValueError("bad card 4111 1111 1111 1111")
    except ValueError:
        logger.exception("dialling %s failed", "+447700900123",
                         extra={"where": "from +12025550143"})

    text = stream.getvalue()
    assert "4111" not in text and "7700900123" not in text and "2025550143" not in text
    assert f"dialling {PHONE_MASK} failed from {PHONE_MASK}" in text
    assert f"ValueError: bad card {CARD_MASK}" in text


def test_the_ids_a_record_carries_are_left_alone(
        logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.handlers[0].setFormatter(logging.Formatter("%(conversation_id)s %(where)s"))

    logger.warning("job ended", extra={"conversation_id": "4111111111111111",
                                       "where": "4111111111111111"})

    assert stream.getvalue().strip() == f"4111111111111111 {CARD_MASK}"


def test_fields_the_agents_framework_marks_as_personal_are_dropped() -> None:
    """Regression: the framework logs "skipping user input" with the visitor's words in an
    `lk.pii.user_input` field, and the worker's JSON lines printed it."""
    record = logging.LogRecord("livekit.agents", logging.WARNING, __file__, 1,
                               "skipping user input, speech scheduling is paused", None, None)
    record.__dict__.update({"lk.pii.user_input": "my plan is the yearly one",
                            "speech_id": "speech_1"})

    assert RedactNumbers().filter(record)

    assert "lk.pii.user_input" not in record.__dict__
    assert record.__dict__["speech_id"] == "speech_1"
