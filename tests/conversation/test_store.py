"""The Redis store: atomic, idempotent appends, ordered reads, live follow, retention, bounds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from conversation import (
    Channel,
    ChannelSwitchEvent,
    ConversationExists,
    ConversationNotFound,
    ConversationStore,
    InvalidInput,
    MessageEvent,
    Role,
    Status,
    StoreUnavailable,
    Transition,
    VerificationEvent,
    VerifiedIdentity,
)
from conversation.redisclient import RedisClient
from conversation.settings import StoreSettings
from deploy.processes import free_port
from tests.conftest import all_keys

pytestmark = pytest.mark.server_and_cluster


def chat(text: str, event_id: str | None = None, role: Role = Role.USER) -> MessageEvent:
    if event_id is None:
        return MessageEvent(role=role, channel=Channel.CHAT, text=text)
    return MessageEvent(event_id=event_id, role=role, channel=Channel.CHAT, text=text)


@pytest.fixture
def store(redis: RedisClient) -> ConversationStore:
    return ConversationStore(redis)


async def test_a_new_conversation_starts_in_chat_with_an_empty_log(store: ConversationStore):
    record = await store.create("c1")

    assert record.status is Status.CHAT
    assert record.identity is None and record.room is None
    assert await store.read("c1") == []


async def test_creating_a_conversation_twice_is_refused(store: ConversationStore):
    await store.create("c1")

    with pytest.raises(ConversationExists):
        await store.create("c1")


async def test_a_verified_identity_is_kept_on_the_record_and_logged(store: ConversationStore):
    verified_at = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    identity = VerifiedIdentity(subject="cust-42", method="password", verified_at=verified_at)

    record = await store.create("c1", identity=identity)

    assert record.identity == identity
    [stored] = await store.read("c1")
    assert isinstance(stored.event, VerificationEvent)
    assert (stored.event.subject, stored.event.verified_at) == ("cust-42", verified_at)


async def test_unknown_conversation_is_not_found(store: ConversationStore):
    with pytest.raises(ConversationNotFound):
        await store.get("nope")
    with pytest.raises(ConversationNotFound):
        await store.read("nope")


async def test_a_retried_append_is_stored_once(store: ConversationStore):
    await store.create("c1")
    event = chat("where is my order?", event_id="turn-1")

    first = await store.append("c1", event)
    retry = await store.append("c1", event)

    assert not first.duplicate and retry.duplicate
    assert retry.seq == first.seq
    assert [s.event for s in await store.read("c1")] == [event]


async def test_append_to_an_unknown_conversation_writes_nothing(store: ConversationStore,
                                                                redis: RedisClient):
    with pytest.raises(ConversationNotFound):
        await store.append("ghost", chat("hello"))

    assert await all_keys(redis, "*ghost*") == []


async def test_a_bad_conversation_id_is_refused_before_redis_is_touched(
        store: ConversationStore, redis: RedisClient):
    with pytest.raises(InvalidInput) as raised:
        await store.append("bad{id}", chat("hello"))

    assert raised.value.field == "conversation_id"
    assert await all_keys(redis) == []


async def test_status_and_room_change_with_their_event_in_one_step(store: ConversationStore):
    await store.create("c1")
    switch = ChannelSwitchEvent(from_channel=Channel.CHAT, to_channel=Channel.VOICE,
                                trigger="visitor")

    appended = await store.append("c1", switch, transition=Transition(
        to=Status.VOICE, from_=frozenset({Status.CHAT}), set={"room": "c1"}))

    record = await store.get("c1")
    assert appended.transitioned
    assert (record.status, record.room) == (Status.VOICE, "c1")
    assert [s.event for s in await store.read("c1")] == [switch]


async def test_a_transition_from_another_status_writes_the_event_and_keeps_the_status(
        store: ConversationStore):
    await store.create("c1")
    left = ChannelSwitchEvent(from_channel=Channel.VOICE, to_channel=Channel.CHAT,
                              trigger="visitor_left")

    appended = await store.append("c1", left, transition=Transition(
        to=Status.CHAT, from_=frozenset({Status.VOICE})))

    assert appended.written and not appended.transitioned
    assert (await store.get("c1")).status is Status.CHAT
    assert [s.event for s in await store.read("c1")] == [left]


async def test_a_transition_requiring_a_field_the_record_does_not_hold_does_not_apply(
        store: ConversationStore):
    await store.create("c1")
    await store.transition("c1", Transition(to=Status.VOICE, from_=frozenset({Status.CHAT}),
                                            set={"visitor": "visitor-b"}))

    applied = await store.transition("c1", Transition(
        to=Status.CHAT, from_=frozenset({Status.VOICE}), require={"visitor": "visitor-a"}))

    assert not applied
    record = await store.get("c1")
    assert (record.status, record.visitor) == (Status.VOICE, "visitor-b")


async def test_a_gated_event_is_written_only_with_its_transition(store: ConversationStore):
    await store.create("c1")
    gate = Transition(to=Status.VOICE, from_=frozenset({Status.CHAT}), gate=True)
    first = ChannelSwitchEvent(from_channel=Channel.CHAT, to_channel=Channel.VOICE,
                               trigger="visitor")
    second = first.model_copy(update={"event_id": "another-switch"})

    written = await store.append("c1", first, transition=gate)
    refused = await store.append("c1", second, transition=gate)

    assert written.written and written.transitioned
    assert not refused.written and refused.seq == ""
    assert [s.event for s in await store.read("c1")] == [first]


async def test_a_duplicate_event_applies_no_transition(store: ConversationStore):
    await store.create("c1")
    joined = ChannelSwitchEvent(event_id="joined-1", to_channel=Channel.VOICE,
                                trigger="visitor_joined")
    to_voice = Transition(to=Status.VOICE, from_=frozenset({Status.CHAT}))
    await store.append("c1", joined, transition=to_voice)
    await store.transition("c1", Transition(to=Status.CHAT, from_=frozenset({Status.VOICE})))

    retried = await store.append("c1", joined, transition=to_voice)

    assert retried.duplicate and not retried.transitioned
    assert (await store.get("c1")).status is Status.CHAT


async def test_concurrent_writers_keep_their_own_order(store: ConversationStore):
    await store.create("c1")

    async def writer(name: str) -> None:
        for n in range(25):
            await store.append("c1", chat(f"{name}-{n}", event_id=f"{name}-{n}"))

    await asyncio.gather(*(writer(f"w{i}") for i in range(4)))

    events = [s.event for s in await store.read("c1")]
    assert len(events) == 100
    for i in range(4):
        mine = [e.event_id for e in events if e.event_id.startswith(f"w{i}-")]
        assert mine == [f"w{i}-{n}" for n in range(25)]


async def test_several_events_appended_together_are_stored_in_order_once(
        store: ConversationStore):
    await store.create("c1")
    reply = [chat("Let me check.", "r-1", Role.ASSISTANT),
             chat("It shipped.", "r-2", Role.ASSISTANT)]

    first = await store.append_all("c1", reply)
    again = await store.append_all("c1", reply)

    assert [a.duplicate for a in first + again] == [False, False, True, True]
    assert [s.event.event_id for s in await store.read("c1")] == ["r-1", "r-2"]
    assert await store.position_of("c1", "r-2") == first[1].seq
    assert await store.position_of("c1", "r-3") is None


async def test_events_appended_together_to_an_unknown_conversation_write_nothing(
        store: ConversationStore, redis: aioredis.Redis):
    with pytest.raises(ConversationNotFound):
        await store.append_all("nobody", [chat("hello", "r-1"), chat("again", "r-2")])

    assert await redis.keys("*") == []


async def test_reading_after_a_position_returns_only_later_events(store: ConversationStore):
    await store.create("c1")
    positions = [(await store.append("c1", chat(f"m{n}"))).seq for n in range(5)]

    later = await store.read("c1", after=positions[2])

    assert [s.seq for s in later] == positions[3:]


async def test_a_malformed_read_position_is_refused(store: ConversationStore):
    await store.create("c1")

    with pytest.raises(InvalidInput) as raised:
        await store.read("c1", after="yesterday")

    assert raised.value.field == "after"


async def test_a_follower_sees_events_as_they_are_appended(store: ConversationStore):
    await store.create("c1")
    await store.append("c1", chat("before"))
    follower = store.follow("c1", block=timedelta(milliseconds=200))

    assert (await asyncio.wait_for(anext(follower), 10)).event.text == "before"  # type: ignore[union-attr]
    waiting = asyncio.ensure_future(anext(follower))
    await store.append("c1", chat("after"))

    assert (await asyncio.wait_for(waiting, 10)).event.text == "after"  # type: ignore[union-attr]
    await follower.aclose()


async def test_following_from_a_position_skips_what_was_seen(store: ConversationStore):
    await store.create("c1")
    seen = await store.append("c1", chat("seen"))
    await store.append("c1", chat("new"))

    follower = store.follow("c1", after=seen.seq)

    assert (await asyncio.wait_for(anext(follower), 10)).event.text == "new"  # type: ignore[union-attr]
    await follower.aclose()


async def test_activity_refreshes_retention_on_every_key(redis: RedisClient):
    store = ConversationStore(redis, retention=timedelta(seconds=100))
    await store.create("c1")
    await store.append("c1", chat("hello"))
    await store.cache_tool_result("c1", "lookup_order", {"order_id": "A1"}, "shipped")
    for key in await all_keys(redis, "conv:{c1}*"):
        await redis.pexpire(key, 5_000)

    await store.append("c1", chat("still here"))

    keys = await all_keys(redis, "conv:{c1}*")
    assert len(keys) == 4
    for key in keys:
        assert await redis.pttl(key) > 90_000


async def test_the_log_is_bounded_and_counts_what_it_dropped(redis: RedisClient):
    store = ConversationStore(redis, max_events=5)
    await store.create("c1")

    for n in range(8):
        await store.append("c1", chat(f"m{n}", event_id=f"m{n}"))

    assert [s.event.event_id for s in await store.read("c1")] == [f"m{n}" for n in range(3, 8)]
    assert (await store.get("c1")).trimmed_events == 3
    assert await redis.hlen("conv:{c1}:ids") == 5


async def test_a_cached_tool_result_is_found_whatever_the_argument_order(store: ConversationStore):
    await store.create("c1")

    await store.cache_tool_result("c1", "quote_price", '{"plan": "gold", "months": 12}', "€120")

    assert await store.cached_tool_result("c1", "quote_price", {"months": 12, "plan": "gold"}) \
        == "€120"
    assert await store.cached_tool_result("c1", "quote_price", {"months": 6, "plan": "gold"}) \
        is None
    assert await store.cached_tool_result("c1", "lookup_order", {"months": 12, "plan": "gold"}) \
        is None


async def test_caching_for_an_unknown_conversation_writes_nothing(store: ConversationStore,
                                                                 redis: RedisClient):
    with pytest.raises(ConversationNotFound):
        await store.cache_tool_result("ghost", "lookup_order", {}, "x")

    assert await all_keys(redis) == []


async def test_redis_unreachable_is_a_retryable_store_error():
    client = aioredis.Redis(port=free_port(), retry=Retry(NoBackoff(), retries=0))
    store = ConversationStore(client)

    with pytest.raises(StoreUnavailable) as raised:
        await store.append("c1", chat("hello"))

    assert raised.value.retryable
    await client.aclose()


async def test_a_follower_outlasts_the_clients_read_timeout(store_settings: StoreSettings):
    """Regression: XREAD BLOCK waited longer than redis-py's read timeout (5 s by default),
    so a quiet conversation's live stream failed as "Redis unreachable" after 5 s."""
    client = store_settings.redis_client(socket_timeout=1.0)
    store = ConversationStore(client)
    await store.create("c-quiet")
    follower = store.follow("c-quiet")
    waiting = asyncio.ensure_future(anext(follower))

    await asyncio.sleep(2.5)  # idle on purpose: several read timeouts pass with no event
    assert not waiting.done()
    await store.append("c-quiet", chat("finally"))

    assert (await asyncio.wait_for(waiting, 10)).event.text == "finally"  # type: ignore[union-attr]
    await follower.aclose()
    await client.aclose()
