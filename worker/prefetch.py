"""A reply asked of the model before the session can ask for it, handed over when it does."""

from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar
from typing import Any

import httpx2
from livekit.agents import ModelSettings, llm
from livekit.agents.utils import is_given

logger = logging.getLogger("baton.worker")

_asking: ContextVar[asyncio.Event | None] = ContextVar("baton_prefetch_asking", default=None)


async def announce_request(request: httpx2.Request) -> None:
    """An httpx request hook for the models' client: a request made by a prefetch's stream
    tells the prefetch once it has been sent (built, connected and written)."""
    if (on_its_way := _asking.get()) is None:
        return

    async def trace(event: str, _info: dict[str, Any]) -> None:
        if event.endswith(".send_request_body.complete"):
            on_its_way.set()

    request.extensions["trace"] = trace


def _request_of(chat_ctx: llm.ChatContext, tools: list[llm.Tool]) -> tuple[object, ...]:
    """What the model is sent for a context and tools, in the provider's own terms: two
    contexts the model cannot tell apart get the same reply."""
    messages, _extra = chat_ctx.to_provider_format(format="openai")
    return (messages, sorted(tool.id for tool in tools))


class PrefetchedReply:
    """The model's answer to a context, asked for as soon as the context is known.

    The opening is asked for the moment the history is restored, while the session and the
    room are still starting, instead of once the session's own first reply asks for it: with a
    hosted model's latency that is most of the first words' time. The session still makes the
    reply (its speech handle, speech, transcript and tool calls): the agent's `llm_node` hands
    it this stream instead of a new one, if the session asks for exactly what was asked here.
    If it asks for anything else, or never asks, the stream is closed unused.

    Invariant: the stream is handed over at most once, and only for an identical request.
    """

    def __init__(self, model: llm.LLM[Any], chat_ctx: llm.ChatContext,
                 tools: list[llm.Tool]) -> None:
        self._chat_ctx = chat_ctx
        self._tools = tools
        self._on_its_way = asyncio.Event()
        # The stream's task starts here and keeps this context: its request hook finds the event.
        asking = _asking.set(self._on_its_way)
        try:
            self._stream: llm.LLMStream | None = model.chat(chat_ctx=chat_ctx, tools=tools)
        finally:
            _asking.reset(asking)

    async def on_its_way(self) -> None:
        """Return once the request has been sent (by a client with `announce_request` as a
        request hook; with another client, never)."""
        await self._on_its_way.wait()

    async def claim(self, chat_ctx: llm.ChatContext, tools: list[llm.Tool],
                    model_settings: ModelSettings) -> llm.LLMStream | None:
        """The prefetched stream if the session asks for what it answers, else None (and the
        stream is closed): either way, the stream is handed over at most once."""
        stream, self._stream = self._stream, None
        if stream is None:
            return None
        if is_given(model_settings.tool_choice) or (
                _request_of(chat_ctx, tools) != _request_of(self._chat_ctx, self._tools)):
            logger.warning("the session asked for a different opening than the one prefetched; "
                           "asking the model again")
            await stream.aclose()
            return None
        return stream

    async def aclose(self) -> None:
        """Close the stream if nobody claimed it."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()
