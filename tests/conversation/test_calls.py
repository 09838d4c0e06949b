"""How a dialled phone call changes the record: the switch and the visitor's join in either
order, and when a phone participant counts as in the call."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from conversation import Channel, ConversationStore, Status, attributes, calls


@pytest.fixture
def store(redis: aioredis.Redis) -> ConversationStore:
    return ConversationStore(redis)


async def _record_step(store: ConversationStore, step: calls.Step) -> bool:
    appended = await store.append("c1", step.event, transition=step.transition)
    return appended.transitioned


async def test_a_phone_switch_after_the_visitor_joined_still_counts_the_call(
        store: ConversationStore) -> None:
    """The worker sees the answer in the room and may record the phone visitor joining before
    the orchestrator's dial returns and records the switch."""
    read = await store.create("c1")
    joined = calls.visitor_joined(Channel.PHONE, "phone-abc", "PA_1")
    switch = calls.switch_into_call(read, Channel.PHONE, "visitor", "c1")

    assert await _record_step(store, joined)
    assert await _record_step(store, switch)

    record = await store.get("c1")
    assert (record.status, record.calls, record.visitor) == (Status.PHONE, 1, "phone-abc")


async def test_a_phone_switch_then_the_visitor_joining_ends_the_same(
        store: ConversationStore) -> None:
    read = await store.create("c1")

    assert await _record_step(store, calls.switch_into_call(read, Channel.PHONE, "visitor", "c1"))
    assert await _record_step(store, calls.visitor_joined(Channel.PHONE, "phone-abc", "PA_1"))

    record = await store.get("c1")
    assert (record.status, record.calls, record.visitor) == (Status.PHONE, 1, "phone-abc")


async def test_a_phone_switch_during_a_browser_call_writes_nothing(
        store: ConversationStore) -> None:
    await _record_step(store, calls.switch_into_call(await store.create("c1"), Channel.VOICE,
                                                     "visitor", "c1"))
    step = calls.switch_into_call(await store.get("c1"), Channel.PHONE, "visitor", "c1")

    appended = await store.append("c1", step.event, transition=step.transition)

    assert not appended.written
    assert (await store.get("c1")).status is Status.VOICE


@pytest.mark.parametrize(("status", "in_call"), [
    ("dialing", False), ("ringing", False), ("automation", False),
    ("active", True), ("hangup", True), (None, True),
])
def test_a_phone_participant_is_in_the_call_once_answered(status: str | None,
                                                          in_call: bool) -> None:
    sip_attributes = {attributes.SIP_CALL_STATUS: status} if status else {}

    assert attributes.answered(attributes.KIND_SIP, sip_attributes) is in_call


def test_a_browser_visitor_is_in_the_call_on_joining() -> None:
    assert attributes.answered(0, {attributes.SIP_CALL_STATUS: "ringing"})
