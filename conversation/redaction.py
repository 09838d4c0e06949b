"""Masks phone and card numbers in log records, and drops the fields the agents framework marks
as personal: defence in depth for both services' logs."""

from __future__ import annotations

import logging
import re

PHONE_MASK = "[phone number]"
CARD_MASK = "[card number]"

# E.164: a plus and 8 to 15 digits, as people also write them (spaces, dots, dashes).
_PHONE = re.compile(r"(?<![\d+])\+\d(?:[ .\-]?\d){7,14}(?!\d)")
# 13 to 19 digits, grouped or not; masked only when the Luhn check passes, so ids, times and
# counts in messages stay readable.
_CARD = re.compile(r"(?<!\d)\d(?:[ \-]?\d){12,18}(?!\d)")

RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime"}
"""What every LogRecord carries; anything else on a record came from `extra=`."""

# Validated identifiers, never free text; a numeric conversation id must stay readable.
_IDS = frozenset({"conversation_id", "job_id", "trace_id"})


def redact(text: str) -> str:
    """`text` with anything shaped like a phone number or a card number masked."""
    text = _PHONE.sub(PHONE_MASK, text)
    return _CARD.sub(lambda match: CARD_MASK if _luhn(match.group()) else match.group(), text)


def _luhn(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


class RedactNumbers(logging.Filter):
    """A handler filter masking numbers in a record's message, its string `extra` fields and
    its traceback, whichever code logged it, and dropping fields marked `lk.pii.`. The code
    itself never logs transcripts or numbers; this catches what a library or a careless
    message lets through."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        for name, value in list(record.__dict__.items()):
            if "pii" in name.split("."):
                # LiveKit's marker for conversation content (`lk.pii.user_input`, ...).
                delattr(record, name)
            elif name not in RECORD_FIELDS and name not in _IDS and isinstance(value, str):
                setattr(record, name, redact(value))
        if record.exc_info:
            # Formatted once here, so every formatter prints the masked text.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def guard(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of `logger` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactNumbers) for f in handler.filters):
            handler.addFilter(RedactNumbers())
