"""The business tools, shared by name with the chat agent, and their conversation cache.

LiveKit drops restored tool items whose tool is not registered on the agent, so the chat
backend registers these same names: `TOOL_NAMES` and `openai_tool_schemas()` are what it needs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from livekit.agents import RunContext, ToolError, function_tool, llm
from livekit.agents.llm import ToolResult

from conversation import ConversationStore, HandoffTrigger, StoreUnavailable, VerifiedIdentity
from worker import metrics
from worker.backends import PLANS, Backend, Refused

logger = logging.getLogger("baton.worker.tools")

@dataclass(frozen=True, slots=True)
class Freshness:
    """How long a tool's result may be reused; None for tools that act (book, cancel), whose
    every call must reach the backend."""

    max_age: timedelta | None


FRESHNESS = {
    "lookup_order": Freshness(timedelta(minutes=2)),
    "quote_price": Freshness(timedelta(hours=1)),
    "book_callback": Freshness(None),
}


class HandoffRequester(Protocol):
    def request(self, trigger: HandoffTrigger, reason: str) -> bool: ...


@dataclass
class CallData:
    """What the tools of one call need; the session's userdata."""

    conversation_id: str
    store: ConversationStore
    backend: Backend
    caller: VerifiedIdentity | None = None
    """The identity the chat side verified, from the conversation's record."""
    handoff: HandoffRequester | None = None
    """Starts a warm transfer to a person; only in a call."""


async def cached_call(data: CallData, name: str, arguments: Mapping[str, Any],
                      fetch: Callable[[], Awaitable[dict[str, Any]]]) -> str:
    """The conversation's result for these arguments while it is fresh, or the backend's,
    then cached. Tools that act are never answered from the cache.

    The cache is an optimisation: if Redis is away the backend answers and nothing is cached.
    """
    freshness = FRESHNESS[name]
    if freshness.max_age is not None:
        try:
            cached = await data.store.cached_tool_result(data.conversation_id, name, arguments,
                                                         max_age=freshness.max_age)
        except StoreUnavailable:
            cached = None
            logger.warning("tool cache unreachable; asking the backend", extra={"tool": name})
        if cached is not None:
            metrics.TOOL_CACHE_HITS.labels(name).inc()
            return cached
    metrics.TOOL_CALLS.labels(name).inc()
    try:
        output = json.dumps(await fetch(), sort_keys=True)
    except Refused as refusal:
        raise ToolError(str(refusal)) from None
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
                             lambda: data.backend.lookup_order(order_id, caller=data.caller))


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
                             lambda: data.backend.quote_price(plan, months, caller=data.caller))


@function_tool
async def book_callback(context: RunContext[CallData], when: str,
                        phone: str | None = None) -> str:
    """Book a callback from a person on the team.

    Args:
        when: When the visitor wants the call, in their words or as an ISO date and time.
        phone: The number to call, if the visitor gave one; otherwise the one on file.
    """
    data = context.userdata
    # An action: every call books, and the backend recognises a retry by the call's id.
    key = f"{data.conversation_id}:{context.function_call.call_id}"
    return await cached_call(data, "book_callback", {"when": when, "phone": phone},
                             lambda: data.backend.book_callback(when, phone, caller=data.caller,
                                                                idempotency_key=key))


@function_tool
async def verify_identity(context: RunContext[CallData]) -> str:
    """Check whether the visitor's identity is verified before doing something only the account
    holder may do. Never ask a verified visitor to verify again."""
    caller = context.userdata.caller
    if caller is not None:
        return (f"The visitor is already verified (by {caller.method} at "
                f"{caller.verified_at.isoformat()}); do not ask them to verify again.")
    return ("The visitor is not verified. Identity cannot be checked by voice: ask them to sign "
            "in on the website, and do not share account details until then.")


@function_tool
async def transfer_to_human(context: RunContext[CallData], reason: str) -> ToolResult:
    """Hand the call to a person from the team: when the visitor asks for a person, or when
    what they need is outside what you may do (refunds over the limit, complaints, legal or
    account security matters). Do not say anything yourself: the transfer tells the visitor.

    Args:
        reason: Why a person is needed, in a few words.
    """
    handoff = context.userdata.handoff
    if handoff is None:
        return ToolResult("A transfer is not possible here; keep helping the visitor.")
    if not handoff.request(HandoffTrigger.TOOL, reason):
        return ToolResult("A transfer is already under way.", reply_required=False)
    return ToolResult("The transfer has started and the visitor is being told.",
                      reply_required=False)


SHARED_TOOLS: tuple[llm.FunctionTool[..., Any], ...] = (
    lookup_order, quote_price, book_callback, verify_identity)
VOICE_TOOLS: tuple[llm.FunctionTool[..., Any], ...] = (*SHARED_TOOLS, transfer_to_human)
"""The voice agent's: the shared ones, and the transfer to a person, which only a call has."""
TOOL_NAMES: frozenset[str] = frozenset(tool.info.name for tool in SHARED_TOOLS)


def openai_tool_schemas() -> list[dict[str, Any]]:
    """The tools as OpenAI function definitions, for the chat agent to register the same ones."""
    return llm.ToolContext(list(SHARED_TOOLS)).parse_function_tools("openai", strict=True)
