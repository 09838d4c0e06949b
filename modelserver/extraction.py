"""Structured answers of the scripted model: a handoff card read from the transcript it is
sent, with the plain rules a demo needs, stating only what the transcript says."""

from __future__ import annotations

import json
import re
from typing import Any

_NAME = re.compile(r"\b(?i:my name is|this is|i am|i'm)\s+([A-Z][a-z]+(?: [A-Z][a-z]+)?)")
_ORDER = re.compile(r"\border(?: number)?\s+(?:is\s+)?#?([A-Z]{1,3}\d{3,8})\b", re.IGNORECASE)
_ACCOUNT = re.compile(r"\baccount(?: number)?\s+(?:is\s+)?#?([A-Z0-9-]{4,20})\b", re.IGNORECASE)
_UNHAPPY = ("angry", "frustrated", "terrible", "unacceptable", "rejected", "still hasn't",
            "annoyed", "ridiculous", "complaint")
_ISSUES = (("order", ("order", "delivery", "arrive", "shipped")),
           ("billing", ("refund", "charge", "invoice", "bill", "payment")),
           ("subscription", ("plan", "subscription", "yearly", "monthly")),
           ("complaint", ("complaint", "manager", "unacceptable")))


def card_extraction(request: dict[str, Any]) -> str:
    """The JSON the model returns for a `CardExtraction` response format."""
    said = _visitor_lines(request)
    everything = " ".join(said)
    name = _NAME.search(everything)
    order = _ORDER.search(everything)
    account = _ACCOUNT.search(everything)
    main = max(said, key=len) if said else ""
    lowered = everything.lower()
    return json.dumps({
        "summary": f"The visitor said: {main}" if main else "",
        "intent": f"help with: {main[:80]}" if main else "",
        "sentiment": "negative" if any(w in lowered for w in _UNHAPPY) else "neutral",
        "name": name.group(1) if name else "",
        "account_number": account.group(1) if account else "",
        "order_number": order.group(1) if order else "",
        "issue_type": next((kind for kind, words in _ISSUES
                            if any(w in lowered for w in words)), "other"),
        "open_questions": [line for line in said if line.rstrip().endswith("?")][-3:],
    })


def _visitor_lines(request: dict[str, Any]) -> list[str]:
    """The visitor's lines of the transcript the worker sends as its user message."""
    messages = request.get("messages", [])
    text = ""
    for message in messages:
        if message.get("role") == "user":
            content = message.get("content")
            text = content if isinstance(content, str) else " ".join(
                part.get("text", "") for part in content or [] if isinstance(part, dict))
    return [line.split(":", 1)[1].strip() for line in text.splitlines()
            if line.startswith("Visitor (") and ":" in line]
