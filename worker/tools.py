"""The business tools, shared by name with the chat agent, and their conversation cache.

LiveKit drops restored tool items whose tool is not registered on the agent, so the chat
backend registers these same names: `TOOL_NAMES` and `openai_tool_schemas()` are what it needs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from livekit.agents import RunContext, ToolError, function_tool, llm

from conversation import ConversationStore, StoreUnavailable
from worker import metrics

logger = logging.getLogger("baton.worker.tools")

PLANS = {"basic": 9.0, "plus": 19.0, "pro": 49.0}
"""Monthly list prices of the example catalogue."""


class Backend(Protocol):
    """The business systems behind the tools; each call returns JSON-ready data."""

    async def lookup_order(self, order_id: str) -> dict[str, Any]: ...

    async def quote_price(self, plan: str, months: int) -> dict[str, Any]: ...

    async def book_callback(self, when: str, phone: str | None) -> dict[str, Any]: ...


class ExampleBackend:
    """Deterministic stand-in data, so a demo gives the same answers every time."""

    async def lookup_order(self, order_id: str) -> dict[str, Any]:
        digest = int(hashlib.sha256(order_id.encode()).hexdigest(), 16)
        status = ("processing", "shipped", "delivered")[digest % 3]
        placed = date(2026, 1, 1) + timedelta(days=digest % 300)
        return {"order_id": order_id, "status": status, "placed_on": placed.isoformat(),
                "items": 1 + digest % 4}

    async def quote_price(self, plan: str, months: int) -> dict[str, Any]:
        monthly = PLANS[plan]
        discount = 0.15 if months >= 12 else 0.05 if months >= 6 else 0.0
        total = round(monthly * months * (1 - discount), 2)
        return {"plan": plan, "months": months, "monthly_list_price": monthly,
                "discount": discount, "total": total, "currency": "EUR"}

    async def book_callback(self, when: str, phone: str | None) -> dict[str, Any]:
        reference = hashlib.sha256(f"{when}|{phone}".encode()).hexdigest()[:8].upper()
        # The number is confirmed by its last digits only: results are logged and shown.
        return {"reference": f"CB-{reference}", "when": when, "booked": True,
                "phone_ending": phone[-2:] if phone else None}


@dataclass
class CallData:
    """What the tools of one call need; the session's userdata."""

    conversation_id: str
    store: ConversationStore
    backend: Backend


async def cached_call(data: CallData, name: str, arguments: Mapping[str, Any],
                      fetch: Callable[[], Awaitable[dict[str, Any]]]) -> str:
    """The conversation's cached result for these arguments, or the backend's, then cached.

    The cache is an optimisation: if Redis is away the backend answers and nothing is cached.
    """
    try:
        cached = await data.store.cached_tool_result(data.conversation_id, name, arguments)
    except StoreUnavailable:
        cached = None
        logger.warning("tool cache unreachable; asking the backend", extra={"tool": name})
    if cached is not None:
        metrics.TOOL_CACHE_HITS.labels(name).inc()
        return cached
    metrics.TOOL_CALLS.labels(name).inc()
    output = json.dumps(await fetch(), sort_keys=True)
    try:
        await data.store.cache_tool_result(data.conversation_id, name, arguments, output)
    except StoreUnavailable:
        logger.warning("tool cache unreachable; result not cached", extra={"tool": name})
    return output


@function_tool
async def lookup_order(context: RunContext[CallData], order_id: str) -> str:
    """Look up the status of one of the visitor's orders.

    Args:
        order_id: The order number exactly as the visitor gave it, for example "A1234".
    """
    data = context.userdata
    return await cached_call(data, "lookup_order", {"order_id": order_id},
                             lambda: data.backend.lookup_order(order_id))


@function_tool
async def quote_price(context: RunContext[CallData], plan: str, months: int) -> str:
    """Quote the total price of a subscription plan for a number of months.

    Args:
        plan: One of "basic", "plus" or "pro".
        months: How many months, from 1 to 36.
    """
    if plan not in PLANS:
        raise ToolError(f"unknown plan {plan!r}; the plans are {', '.join(PLANS)}")
    if not 1 <= months <= 36:
        raise ToolError("months must be between 1 and 36")
    data = context.userdata
    return await cached_call(data, "quote_price", {"plan": plan, "months": months},
                             lambda: data.backend.quote_price(plan, months))


@function_tool
async def book_callback(context: RunContext[CallData], when: str,
                        phone: str | None = None) -> str:
    """Book a callback from a person on the team.

    Args:
        when: When the visitor wants the call, in their words or as an ISO date and time.
        phone: The number to call, if the visitor gave one; otherwise the one on file.
    """
    data = context.userdata
    # Cached like the others: asking again, in chat or by voice, must not book twice.
    return await cached_call(data, "book_callback", {"when": when, "phone": phone},
                             lambda: data.backend.book_callback(when, phone))


SHARED_TOOLS: tuple[llm.FunctionTool[..., Any], ...] = (lookup_order, quote_price, book_callback)
TOOL_NAMES: frozenset[str] = frozenset(tool.info.name for tool in SHARED_TOOLS)


def openai_tool_schemas() -> list[dict[str, Any]]:
    """The tools as OpenAI function definitions, for the chat agent to register the same ones."""
    return llm.ToolContext(list(SHARED_TOOLS)).parse_function_tools("openai", strict=True)
