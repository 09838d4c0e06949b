"""A human agent's live queue as server-sent events: the handoffs offered to them and every
change to those, with their presence on the desk kept fresh while the dashboard listens."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from datetime import timedelta

from conversation import StoreUnavailable
from conversation.desk import Desk
from conversation.handoffs import Handoff, HandoffNotFound, HandoffStore
from orchestrator.schemas import HandoffOut, Queue

log = logging.getLogger("orchestrator.deskstream")

RETRY_MS = 2000


async def queue_of(handoffs: HandoffStore, desk: Desk, username: str) -> list[Handoff]:
    """The handoffs on the human's queue that are still theirs and running."""
    found = []
    for handoff_id in await desk.queue(username):
        try:
            handoff = await handoffs.get(handoff_id)
        except HandoffNotFound:
            await desk.queue_remove(username, handoff_id)
            continue
        if handoff.human == username and handoff.active:
            found.append(handoff)
    return found


async def queue_stream(handoffs: HandoffStore, desk: Desk, username: str, *,
                       heartbeat: timedelta) -> AsyncGenerator[str, None]:
    """`queue` with the whole queue first, then a `handoff` event for each change to one of
    the human's handoffs; heartbeats between. Each loop tells the desk the human is online."""
    try:
        yield f"retry: {RETRY_MS}\n\n"
        position = await desk.latest_position()
        await desk.seen(username)
        snapshot = Queue(handoffs=[HandoffOut.of(h) for h in
                                   await queue_of(handoffs, desk, username)])
        yield f"event: queue\ndata: {snapshot.model_dump_json()}\n\n"
        while True:
            quiet = True
            async for update in desk.updates(position, block=heartbeat * 0.8):
                position = update.position
                if update.human != username:
                    continue
                quiet = False
                try:
                    handoff = await handoffs.get(update.handoff_id)
                except HandoffNotFound:
                    continue
                yield (f"id: {position}\nevent: handoff\n"
                       f"data: {HandoffOut.of(handoff).model_dump_json()}\n\n")
            await desk.seen(username)
            if quiet:
                yield ": heartbeat\n\n"
    except StoreUnavailable as exc:
        # The dashboard reconnects and gets the whole queue again once Redis is back.
        log.warning("a human's queue stream ended: %s", exc.message)
        yield f"event: end\ndata: {json.dumps({'reason': 'unavailable'})}\n\n"
