"""Server-sent events over the log: `id` is the log position, heartbeats keep proxies open."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import timedelta
from typing import cast

from conversation import ConversationStore, StoredEvent, StoreUnavailable

log = logging.getLogger("orchestrator.sse")

# Tells EventSource how soon to reconnect after the stream ends (e.g. Redis went away).
RETRY_MS = 2000


def format_event(stored: StoredEvent) -> str:
    data = stored.event.model_dump_json()
    return f"id: {stored.seq}\nevent: {stored.event.kind}\ndata: {data}\n\n"


async def event_stream(store: ConversationStore, conversation_id: str, *, after: str | None,
                       heartbeat: timedelta) -> AsyncIterator[str]:
    """Every event after `after`, then each new one as Redis delivers it (XREAD BLOCK)."""
    events = cast(AsyncGenerator[StoredEvent, None], store.follow(conversation_id, after=after))
    pending: asyncio.Task[StoredEvent] | None = None

    async def next_event() -> StoredEvent:
        return await anext(events)

    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            if pending is None:
                # The read outlives a heartbeat: cancelling a blocked XREAD would drop its
                # connection, so the same read is awaited again after the comment is sent.
                pending = asyncio.create_task(next_event())
            done, _ = await asyncio.wait({pending}, timeout=heartbeat.total_seconds())
            if not done:
                yield ": heartbeat\n\n"
                continue
            try:
                stored = pending.result()
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
