"""Periodic reconciliation: a visitor alone in a Baton room gets an agent dispatched again."""

from __future__ import annotations

import asyncio
import logging

from conversation import BatonError, ConversationNotFound, InvalidInput, validate_conversation_id
from orchestrator.services import Services

log = logging.getLogger("orchestrator.reconcile")


async def reconcile_once(services: Services) -> int:
    """Compare live rooms with their participants and dispatches; return dispatches created.

    Webhooks are retried but not guaranteed, so a lost "agent left" must not leave a visitor
    talking to nobody. Replicas may run this at once: re-dispatch is locked per room.
    """
    created = 0
    for room in await services.livekit.list_rooms():
        if room.num_participants == 0:
            continue
        try:
            await services.store.get(validate_conversation_id(room.name))
        except (InvalidInput, ConversationNotFound):
            continue
        ensured = await services.dispatcher.redispatch(room.name, room.name)
        if ensured.created:
            created += 1
            services.metrics.dispatches.labels("reconcile").inc()
    return created


async def reconcile_forever(services: Services, interval: float) -> None:
    """Run `reconcile_once` every `interval` seconds until cancelled; outages are logged."""
    while True:
        await asyncio.sleep(interval)
        try:
            created = await reconcile_once(services)
        except BatonError as exc:
            log.warning("reconciliation skipped: %s", exc.message)
            continue
        if created:
            log.info("reconciliation dispatched %d agent(s) to visitors left alone", created)
