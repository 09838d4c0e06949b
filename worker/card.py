"""The handoff card, read from the conversation by the model with a structured output."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from livekit.agents import APIError, llm
from livekit.plugins import openai
from pydantic import ValidationError

from conversation import StoredEvent, VerifiedIdentity
from conversation.card import (
    EXTRACTION_INSTRUCTIONS,
    CardExtraction,
    HandoffCard,
    build_card,
    transcript,
)

logger = logging.getLogger("baton.worker.card")

EXTRACTION_TIMEOUT = 8.0
"""Seconds the model gets; a slower answer gives a card from the log alone, not a stalled
handoff."""


async def read_card(model: openai.LLM, events: Sequence[StoredEvent], *,
                    identity: VerifiedIdentity | None, reason: str) -> HandoffCard:
    """The card for a handoff: the model's reading of the transcript, grounded and bounded,
    with the verified identity and the tool results from the log."""
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content=EXTRACTION_INSTRUCTIONS)
    ctx.add_message(role="user", content=transcript(events) or "(nothing was said yet)")
    extraction: CardExtraction | None = None
    try:
        async with asyncio.timeout(EXTRACTION_TIMEOUT):
            text = await model.chat(chat_ctx=ctx, response_format=CardExtraction).collect()
        extraction = CardExtraction.model_validate_json(text.text)
    except (TimeoutError, ValidationError, APIError) as exc:
        # Logged by kind only: the model's text can quote the visitor.
        logger.warning("the model did not give a handoff card (%s); using the log alone",
                       type(exc).__name__)
    return build_card(extraction, events, identity=identity, reason=reason)
