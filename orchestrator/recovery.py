"""Getting every visitor in a call an agent: lost dispatches replaced, the visitor told while
they wait, and the call ended back into chat when nobody comes.

Open-source LiveKit never gives a job to a dispatch made while no worker was registered. One
replica at a time checks the waiting calls (`orchestrator/waiting.py`) every
`waiting_check_interval` seconds, and at once when a worker for our agent registers: workers
announce it on a Redis channel, so a visitor waiting through a fleet outage has an agent
within seconds of the first worker coming back.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass

from redis.asyncio.client import PubSub
from redis.exceptions import RedisClusterException, RedisError

from conversation import IN_CALL, BatonError, Conversation, ConversationNotFound, attributes, calls
from conversation.errors import redis_errors
from conversation.redisclient import subscribed
from orchestrator.dispatch import Presence
from orchestrator.services import Services
from orchestrator.waiting import decoded, now_ms

log = logging.getLogger("orchestrator.recovery")

PASS_LOCK = "baton:waiting-calls:pass"


@dataclass(frozen=True, slots=True)
class PassReport:
    checked: int = 0
    dispatched: int = 0
    gave_up: int = 0
    ran: bool = True
    """False when another replica holds this pass."""


async def check_waiting_calls(services: Services, *,
                              workers_registered_at_ns: int | None = None) -> PassReport:
    """One pass over the waiting calls, by one replica at a time; each call on its own, so a
    failure with one (LiveKit refusing, a lock held) does not stop the others."""
    interval_ms = int(services.settings.waiting_check_interval * 1000)
    with redis_errors():
        if not await services.redis.set(PASS_LOCK, secrets.token_hex(8), nx=True,
                                        px=max(interval_ms - 50, 50)):
            return PassReport(ran=False)
    checked = dispatched = gave_up = 0
    for conversation_id, since_ms in (await services.waiting.all()).items():
        checked += 1
        try:
            outcome = await _check(services, conversation_id, since_ms,
                                   workers_registered_at_ns)
        except BatonError as exc:
            log.warning("a waiting call could not be checked: %s", exc.message,
                        extra={"conversation_id": conversation_id})
            continue
        dispatched += outcome == "dispatched"
        gave_up += outcome == "gave_up"
    return PassReport(checked, dispatched, gave_up)


async def _check(services: Services, conversation_id: str, since_ms: int,
                 workers_registered_at_ns: int | None) -> str:
    try:
        record = await services.store.get(conversation_id)
    except ConversationNotFound:
        await services.waiting.remove(conversation_id)
        return "gone"
    if record.status not in IN_CALL:
        await services.waiting.remove(conversation_id)
        return "over"
    recovery = await services.dispatcher.recover(
        conversation_id, conversation_id, lost_before_ns=workers_registered_at_ns)
    if recovery.presence is Presence.AGENT_PRESENT:
        await services.waiting.remove(conversation_id)
        return "present"
    if recovery.presence is Presence.NO_VISITOR:
        # The visitor may still be allowing the microphone; the room closes by itself if
        # nobody comes, and its room_finished ends the wait.
        return "no_visitor"
    since_ms = since_ms or await services.waiting.visitor_waiting(conversation_id)
    if recovery.presence is Presence.DISPATCHED:
        services.metrics.dispatches.labels("lost").inc()
        await services.store.append(conversation_id, calls.agent_waiting(record))
        log.info("the call's agent was lost (no worker took it, or it left); dispatched "
                 "another", extra={"conversation_id": conversation_id})
    if now_ms() - since_ms >= services.settings.agent_wait.total_seconds() * 1000:
        await give_up(services, record)
        return "gave_up"
    return "dispatched" if recovery.presence is Presence.DISPATCHED else "on_its_way"


async def give_up(services: Services, record: Conversation) -> None:
    """No agent came within the wait: tell the visitor, end the call, back to chat."""
    unavailable, back_to_chat = calls.no_agent_available(record)
    await services.store.append(record.id, unavailable)
    await services.store.append(record.id, back_to_chat.event,
                                transition=back_to_chat.transition)
    # A worker that comes back now must not join a call nobody is in any more.
    await services.livekit.delete_room(record.id)
    await services.waiting.remove(record.id)
    services.metrics.agent_unavailable.inc()
    log.warning("no agent joined the call within %.0f s; the visitor was told and the "
                "conversation is back in chat", services.settings.agent_wait.total_seconds(),
                extra={"conversation_id": record.id})


async def watch_waiting_calls(services: Services) -> None:
    """Check the waiting calls every interval, and at once when a worker announces itself.

    The announcements are read in this loop rather than by a listener task of their own: a
    task blocked in redis-py's `PubSub.listen()` was seen not to end when cancelled.
    """
    interval = services.settings.waiting_check_interval
    while True:
        try:
            async with subscribed(services.redis,
                                  attributes.WORKER_REGISTERED_CHANNEL) as announcements:
                while True:
                    registered_at = await _announced(services, announcements, interval)
                    await _checked(services, registered_at)
        except (RedisError, RedisClusterException, OSError) as exc:
            log.warning("worker registrations not followed (%s); checking on the interval",
                        type(exc).__name__)
            await asyncio.sleep(interval)
            await _checked(services, None)


async def _announced(services: Services, announcements: PubSub, interval: float) -> int | None:
    """Wait up to `interval` for a worker of our agent to register; when it did, the time."""
    deadline = time.monotonic() + interval
    while (left := deadline - time.monotonic()) > 0:
        message = await announcements.get_message(timeout=left)
        if message is not None and decoded(message["data"]) == services.settings.agent_name:
            return time.time_ns()
    return None


async def _checked(services: Services, workers_registered_at_ns: int | None) -> None:
    try:
        await check_waiting_calls(services, workers_registered_at_ns=workers_registered_at_ns)
    except BatonError as exc:
        log.warning("waiting calls not checked: %s", exc.message)
