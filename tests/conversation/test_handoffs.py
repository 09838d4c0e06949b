"""A handoff's steps on the record, from the request to the human leaving the call, and the
desk's changes as a dashboard waits for them."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from conversation import (
    Channel,
    ConversationStore,
    HandoffState,
    HandoffTrigger,
    Status,
    calls,
)
from conversation import handoffs as steps
from conversation.card import HandoffCard
from conversation.desk import Desk
from conversation.handoffs import Handoff, HandoffStore
from conversation.settings import StoreSettings


@pytest.fixture
def store(redis: aioredis.Redis) -> ConversationStore:
    return ConversationStore(redis)


async def _connected(store: ConversationStore) -> tuple[HandoffStore, Handoff]:
    """A browser call whose visitor now talks to Dana."""
    switch = calls.switch_into_call(await store.create("c1"), Channel.VOICE, "visitor", "c1")
    await store.append("c1", switch.event, transition=switch.transition)
    handoffs = HandoffStore(store)
    handoff = await steps.start(handoffs, Desk(store.redis), "c1", HandoffTrigger.API, "refund")
    for step in (lambda h: steps.offered(h, human="dana", human_name="Dana",
                                         card=HandoffCard()),
                 lambda h: steps.accepted(h, human="dana"),
                 lambda h: steps.connecting(h, human="dana"),
                 steps.connected):
        assert await handoffs.take("c1", step(await handoffs.get(handoff.id)))
    return handoffs, await handoffs.get(handoff.id)


async def test_the_human_leaving_ends_the_handoff_and_gives_the_call_back_to_the_agent(
        store: ConversationStore) -> None:
    """Regression: the step that ends a connected handoff never applied, since it required the
    conversation's handoff to be released in the same check that released it; the handoff
    stayed connected, the conversation with the human, and the thread never said they left."""
    handoffs, handoff = await _connected(store)
    assert (await store.get("c1")).status is Status.HUMAN

    assert await handoffs.take("c1", steps.ended(handoff, call_status=Status.VOICE))

    record = await store.get("c1")
    assert (record.status, record.handoff) == (Status.VOICE, None)
    assert (await handoffs.get(handoff.id)).state is HandoffState.ENDED
    assert [e.event.state for e in await store.read("c1")
            if e.event.kind == "handoff"][-1] is HandoffState.ENDED


async def test_after_the_human_leaves_another_handoff_may_be_asked_for(
        store: ConversationStore) -> None:
    handoffs, handoff = await _connected(store)
    await handoffs.take("c1", steps.ended(handoff, call_status=Status.VOICE))

    again = await steps.start(handoffs, Desk(store.redis), "c1", HandoffTrigger.API, "more")

    assert again.id != handoff.id and again.state is HandoffState.REQUESTED


async def test_waiting_for_desk_changes_ends_quietly_before_the_clients_read_timeout(
        store_settings: StoreSettings) -> None:
    """Regression: the dashboard's queue stream blocked on Redis longer than the client's read
    timeout, so every quiet spell ended it as "Redis unreachable", and what changed while the
    dashboard reconnected (a handoff ending) never reached it."""
    client = store_settings.redis_client(socket_timeout=0.6)
    try:
        desk = Desk(client)
        after = await desk.latest_position()

        quiet = [update async for update in desk.updates(after, block=timedelta(seconds=5))]

        assert quiet == []
    finally:
        await client.aclose()
