"""Periodic reconciliation: every visitor alone in a Baton room is found, even when the webhook
that should have told us was lost, and handed to the waiting-call checks."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from conversation import BatonError, ConversationNotFound, InvalidInput, validate_conversation_id
from orchestrator.dispatch import Presence
from orchestrator.services import Services

log = logging.getLogger("orchestrator.reconcile")


@dataclass(frozen=True, slots=True)
class Reconciled:
    dispatched: int = 0
    waiting: int = 0
    """Calls whose visitor has no agent in the room (dispatched now or on its way)."""
    failed: int = 0
    """Rooms that could not be checked this time; the next pass tries again."""


async def reconcile_once(services: Services) -> Reconciled:
    """Compare live rooms with their participants and dispatches.

    Webhooks are retried but not guaranteed, so a lost "agent left" must not leave a visitor
    talking to nobody. Each room on its own: one room's failure (LiveKit refusing, its lock
    held by another replica) is logged and the others are still checked. Replicas may run
    this at once: recovery is locked per room.
    """
    dispatched = waiting = failed = 0
    for room in await services.livekit.list_rooms():
        if room.num_participants == 0:
            continue
        try:
            await services.store.get(validate_conversation_id(room.name))
        except (InvalidInput, ConversationNotFound):
            continue
        except BatonError as exc:
            failed += 1
            log.warning("room not reconciled: %s", exc.message,
                        extra={"conversation_id": room.name})
            continue
        try:
            recovery = await services.dispatcher.recover(room.name, room.name)
            if recovery.presence in (Presence.DISPATCHED, Presence.ON_ITS_WAY):
                waiting += 1
                await services.waiting.add(room.name, visitor_waiting=True)
        except BatonError as exc:
            failed += 1
            log.warning("room not reconciled: %s", exc.message,
                        extra={"conversation_id": room.name})
            continue
        if recovery.presence is Presence.DISPATCHED:
            dispatched += 1
            services.metrics.dispatches.labels("reconcile").inc()
    services.metrics.calls_waiting.set(waiting)
    return Reconciled(dispatched, waiting, failed)


async def reconcile_forever(services: Services, interval: float) -> None:
    """Run `reconcile_once` every `interval` seconds until cancelled. Nothing but
    cancellation ends the loop: an outage or a bug in one pass is logged and the next runs."""
    while True:
        await asyncio.sleep(interval)
        try:
            result = await reconcile_once(services)
        except BatonError as exc:
            log.warning("reconciliation skipped: %s", exc.message)
            continue
        except Exception:
            log.exception("reconciliation pass failed; the next one runs as usual")
            continue
        if result.dispatched:
            log.info("reconciliation dispatched %d agent(s) to visitors left alone",
                     result.dispatched)
