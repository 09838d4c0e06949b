"""Server-sent events over the log: `id` is the log position, heartbeats keep proxies open."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import cast

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from conversation import ConversationNotFound, ConversationStore, StoredEvent, StoreUnavailable
from orchestrator.streamslots import Slot

log = logging.getLogger("orchestrator.sse")

# Tells EventSource how soon to reconnect after the stream ends (e.g. Redis went away).
RETRY_MS = 2000
# Why a stream ended for good: reconnecting with the same URL cannot help, so the client is
# told, rather than left to find out from a 401 or 404 on its reconnection.
TOKEN_EXPIRED = "token_expired"
CONVERSATION_GONE = "conversation_gone"


def format_event(stored: StoredEvent) -> str:
    data = stored.event.model_dump_json()
    return f"id: {stored.seq}\nevent: {stored.event.kind}\ndata: {data}\n\n"


def format_end(reason: str) -> str:
    # No `id`: the client's Last-Event-ID stays the last log position it saw.
    return f"event: end\ndata: {json.dumps({'reason': reason})}\n\n"


async def event_stream(store: ConversationStore, conversation_id: str, *, after: str | None,
                       heartbeat: timedelta,
                       expires_at: datetime | None = None) -> AsyncGenerator[str, None]:
    """Every event after `after`, then each new one as Redis delivers it (XREAD BLOCK), until
    `expires_at` or until the conversation is gone (checked at each heartbeat: an expired or
    deleted log never delivers another event)."""
    events = cast(AsyncGenerator[StoredEvent, None], store.follow(conversation_id, after=after))
    pending: asyncio.Task[StoredEvent] | None = None

    async def next_event() -> StoredEvent:
        return await anext(events)

    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            left = _seconds_left(expires_at)
            if left <= 0:
                yield format_end(TOKEN_EXPIRED)
                return
            if pending is None:
                # The read outlives a heartbeat: cancelling a blocked XREAD would drop its
                # connection, so the same read is awaited again after the comment is sent.
                pending = asyncio.create_task(next_event())
            done, _ = await asyncio.wait({pending}, timeout=min(heartbeat.total_seconds(), left))
            if not done:
                if _seconds_left(expires_at) <= 0:
                    continue
                try:
                    await store.get(conversation_id)
                except ConversationNotFound:
                    yield format_end(CONVERSATION_GONE)
                    return
                except StoreUnavailable as exc:
                    log.warning("stream of a conversation ended: %s", exc.message)
                    return
                yield ": heartbeat\n\n"
                continue
            try:
                stored = pending.result()
            except ConversationNotFound:
                # Gone between the route's check and the first read.
                yield format_end(CONVERSATION_GONE)
                return
            except StoreUnavailable as exc:
                # Headers are sent already; ending the stream makes EventSource reconnect
                # with Last-Event-ID once Redis is back.
                log.warning("stream of a conversation ended: %s", exc.message)
                return
            finally:
                pending = None
            yield format_event(stored)
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StoreUnavailable):
                await pending
        await events.aclose()


def _seconds_left(expires_at: datetime | None) -> float:
    if expires_at is None:
        return float("inf")
    return (expires_at - datetime.now(UTC)).total_seconds()


class EventStreamResponse(StreamingResponse):
    """A stream that holds a slot until it ends, however it ends.

    Starlette stops iterating when the client goes away but leaves the generator suspended;
    closing it here stops its blocking read at once, and then the slot is free.
    """

    def __init__(self, content: AsyncGenerator[str, None], slot: Slot) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._events = content
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self._events.aclose()
            finally:
                self._slot.release()
