"""Warm transfer to a human on the dashboard, end to end: a real worker, the orchestrator, the
devserver, a visitor and a human made with the rtc SDK, isolation checked on the audio."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from conversation import ConversationStore, HandoffEvent, MessageEvent, Role, StoredEvent
from deploy.human import HumanAgent
from deploy.processes import RedisServer
from deploy.visitor import Visitor
from devserver.process import DevServer
from orchestrator.humans import HumanAccount, hash_password
from orchestrator.settings import Settings
from tests.orchestrator.support import AUTH, create_conversation, post_message
from tests.worker.conftest import WorkerProcess, start_worker, worker_environment
from tests.worker.test_call import WAIT, switch_to_voice, within

pytestmark = pytest.mark.realtime

PASSWORD = "dana-test-password-1"
DANA = HumanAccount(username="dana", name="Dana", password_hash=hash_password(PASSWORD))


@pytest.fixture(scope="module")
def handoff_worker(tmp_path_factory: pytest.TempPathFactory, devserver: DevServer,
                   redis_server: RedisServer, model_server_process: str,
                   ) -> Iterator[WorkerProcess]:
    worker = start_worker(tmp_path_factory.mktemp("handoff-worker"), worker_environment(
        devserver, redis_server.url, model_server_process,
        f"baton-voice-{uuid.uuid4().hex[:8]}", BATON_HANDOFF_ACCEPT_TIMEOUT="5"))
    yield worker
    worker.process.stop()


@pytest.fixture
async def orchestrator(orchestrator_server: Callable[..., Any], orchestrator_settings: Settings,
                       handoff_worker: WorkerProcess) -> AsyncIterator[httpx.AsyncClient]:
    settings = orchestrator_settings.model_copy(update={
        "agent_name": handoff_worker.agent_name, "humans": (DANA,)})
    url = await orchestrator_server(settings)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        yield client


@pytest.fixture
async def dana(orchestrator: httpx.AsyncClient) -> AsyncIterator[HumanAgent]:
    human = HumanAgent(orchestrator, "dana", PASSWORD)
    await human.sign_in()
    yield human
    await human.off_duty()


@pytest.fixture
async def call(orchestrator: httpx.AsyncClient) -> AsyncIterator[tuple[str, Visitor]]:
    """A visitor in a call whose chat named an order, who heard the agent's first words."""
    conversation_id = await create_conversation(orchestrator, identity={
        "subject": "demo-customer-1", "method": "password",
        "verified_at": "2026-12-01T10:00:00+00:00"})
    await post_message(orchestrator, conversation_id,
                       "My name is Alex and my order A1234 never arrived")
    session = await switch_to_voice(orchestrator, conversation_id)
    visitor = Visitor()
    await within(visitor.join(session["url"], session["token"]), visitor, "joining")
    await within(visitor.agent_spoke_since(0), visitor, "the first words")
    yield conversation_id, visitor
    await visitor.leave()


async def _request(client: httpx.AsyncClient, conversation_id: str) -> str:
    response = await client.post(f"/v1/conversations/{conversation_id}/handoffs",
                                 json={"reason": "wants a refund"}, headers=AUTH)
    assert response.status_code == 202, response.text
    handoff_id: str = response.json()["id"]
    return handoff_id


async def _human_in_consult(client: httpx.AsyncClient, dana: HumanAgent,
                            conversation_id: str) -> str:
    """Dana online, a handoff asked for, offered to her, accepted, and Dana in the room; its id."""
    await dana.on_duty()
    handoff_id = await _request(client, conversation_id)
    await asyncio.wait_for(dana.sees("offered"), WAIT)
    await dana.join(await dana.accept(handoff_id))
    return handoff_id


async def _logged_until(redis_url: str, conversation_id: str,
                        done: Callable[[list[StoredEvent]], bool]) -> list[StoredEvent]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        seen: list[StoredEvent] = []
        async with asyncio.timeout(WAIT):
            async for stored in ConversationStore(client).follow(conversation_id):
                seen.append(stored)
                if done(seen):
                    return seen
        raise AssertionError("the log ended")
    finally:
        await client.aclose()


def _handoff_states(seen: list[StoredEvent]) -> list[str]:
    return [s.event.state.value for s in seen if isinstance(s.event, HandoffEvent)]


async def test_a_web_human_is_briefed_apart_from_the_visitor_then_connects(
        orchestrator: httpx.AsyncClient, dana: HumanAgent, call: tuple[str, Visitor],
        redis_server: RedisServer) -> None:
    conversation_id, visitor = call
    await dana.on_duty()

    handoff_id = await _request(orchestrator, conversation_id)
    offer = await asyncio.wait_for(dana.sees("offered"), WAIT)
    session = await dana.accept(handoff_id)
    await dana.join(session)
    await within(visitor.hears("", 1), visitor, "anything")
    agent = next(p.identity for p in visitor.room.remote_participants.values()
                 if p.identity.startswith("agent"))
    await asyncio.wait_for(dana.ears.hears(f"{agent}/", 25), WAIT)
    await within(visitor.hears(f"{agent}/baton-hold", 25), visitor, "the hold audio")
    await visitor.say("Hello, is anybody there?")
    before_connect = (visitor.heard("human-"), dana.ears.heard("visitor-"))

    await dana.connect(handoff_id)
    await within(visitor.agent_spoke_since(visitor.mark()), visitor, "the introduction")
    await dana.ears.say("Hi Alex, I am Dana, I can help with the refund")
    await within(visitor.hears("human-", 25), visitor, "the human's voice")
    await visitor.say("Thank you Dana")
    await asyncio.wait_for(dana.ears.hears("visitor-", 25), WAIT)

    logged = await _logged_until(redis_server.url, conversation_id, lambda seen: any(
        isinstance(s.event, MessageEvent) and s.event.role is Role.HUMAN for s in seen))
    assert before_connect == (0, 0)
    card = offer["card"]
    assert (card["name"], card["order_number"]) == ("Alex", "A1234")
    assert card["verified_identity"]["subject"] == "demo-customer-1"
    assert card["escalation_reason"] == "wants a refund"
    assert _handoff_states(logged) == ["requested", "offered", "accepted", "connecting",
                                       "connected"]
    said = [s.event.text for s in logged if isinstance(s.event, MessageEvent)
            and s.event.role is Role.ASSISTANT]
    assert "Let me connect you with one of our specialists now." in said
    assert "You're now speaking with Dana from our team." in said
    [human_turn, *_] = [s.event for s in logged if isinstance(s.event, MessageEvent)
                        and s.event.role is Role.HUMAN]
    assert human_turn.author == "Dana"


async def test_connecting_does_not_send_the_human_the_hold_audio(
        orchestrator: httpx.AsyncClient, dana: HumanAgent, call: tuple[str, Visitor]) -> None:
    """Regression: on connect the agent opened its tracks to everyone while the hold track was
    still published (its removal reaches the server later, by renegotiation), so the human was
    subscribed to it for a moment: a snatch of the tune, and the dashboard's client logged an
    error for a track it could no longer attribute."""
    conversation_id, visitor = call
    handoff_id = await _human_in_consult(orchestrator, dana, conversation_id)
    agent = next(p.identity for p in visitor.room.remote_participants.values()
                 if p.identity.startswith("agent"))
    await within(visitor.hears(f"{agent}/baton-hold", 1), visitor, "the hold audio")
    await asyncio.wait_for(dana.ears.hears(f"{agent}/roomio_audio", 1), WAIT)
    before_connect = len(dana.ears.subscribed)

    voice = f"{agent}/roomio_audio"
    heard_before = visitor.heard(voice)

    await dana.connect(handoff_id)
    # Kept from the agent's voice during consult, the visitor hears it again in the introduction.
    await within(visitor.hears(voice, heard_before + 10), visitor, "the introduction")
    await visitor.say("Thank you")
    await asyncio.wait_for(dana.ears.hears("visitor-", 5), WAIT)

    assert f"{agent}/baton-hold" not in dana.ears.subscribed[before_connect:]


async def test_a_human_connecting_during_the_line_cuts_it_short_without_hold_or_briefing(
        orchestrator: httpx.AsyncClient, dana: HumanAgent, call: tuple[str, Visitor],
        redis_server: RedisServer) -> None:
    conversation_id, visitor = call
    handoff_id = await _human_in_consult(orchestrator, dana, conversation_id)
    await asyncio.wait_for(dana.ears.hears("agent-", 1), WAIT)

    await dana.connect(handoff_id)
    await dana.ears.say("Hi, I am Dana")
    await within(visitor.hears("human-", 5), visitor, "the human's voice")

    logged = await _logged_until(redis_server.url, conversation_id, lambda seen: any(
        isinstance(s.event, MessageEvent) and s.event.text.startswith("You're now speaking")
        for s in seen))
    [line] = [s.event for s in logged if isinstance(s.event, MessageEvent)
              and s.event.text == "Let me connect you with one of our specialists now."]
    assert line.interrupted
    assert not any(source.endswith("/baton-hold") for source in visitor.subscribed)
    assert _handoff_states(logged)[-1] == "connected"


async def test_a_human_talking_over_the_introduction_is_transcribed(
        orchestrator: httpx.AsyncClient, dana: HumanAgent, call: tuple[str, Visitor],
        redis_server: RedisServer) -> None:
    """Regression: the human's transcription started only after the agent's introduction had
    played, so a human who greeted the visitor at once was heard but never logged."""
    conversation_id, _visitor = call
    handoff_id = await _human_in_consult(orchestrator, dana, conversation_id)
    await asyncio.wait_for(dana.ears.hears("agent-", 1), WAIT)

    await dana.connect(handoff_id)
    await dana.ears.say("Hello Alex")

    logged = await _logged_until(redis_server.url, conversation_id, lambda seen: any(
        isinstance(s.event, MessageEvent) and s.event.role is Role.HUMAN for s in seen))
    [greeting] = [s.event for s in logged if isinstance(s.event, MessageEvent)
                  and s.event.role is Role.HUMAN]
    assert greeting.author == "Dana"


def _failure(seen: list[StoredEvent]) -> str | None:
    failed = [s.event for s in seen if isinstance(s.event, HandoffEvent)
              and s.event.state.value in ("failed", "declined")]
    return failed[-1].failure.value if failed and failed[-1].failure else None


def _took_back(seen: list[StoredEvent]) -> bool:
    """The agent told the visitor after the handoff ended, offering a callback."""
    ended = next((n for n, s in enumerate(seen) if isinstance(s.event, HandoffEvent)
                  and s.event.state.value in ("failed", "declined")), None)
    return ended is not None and any(
        isinstance(s.event, MessageEvent) and s.event.role is Role.ASSISTANT
        and "callback" in s.event.text for s in seen[ended:])


async def test_nobody_accepting_in_time_fails_as_timeout_and_the_agent_takes_back(
        orchestrator: httpx.AsyncClient, dana: HumanAgent, call: tuple[str, Visitor],
        redis_server: RedisServer) -> None:
    conversation_id, _visitor = call
    await dana.on_duty()

    await _request(orchestrator, conversation_id)
    await asyncio.wait_for(dana.sees("offered"), WAIT)
    logged = await _logged_until(redis_server.url, conversation_id, _took_back)

    assert _failure(logged) == "timeout"
    record = (await orchestrator.get(f"/v1/conversations/{conversation_id}",
                                     headers=AUTH)).json()
    assert record["status"] == "voice"


async def test_a_human_declining_ends_the_handoff_and_the_agent_takes_back(
        orchestrator: httpx.AsyncClient, dana: HumanAgent, call: tuple[str, Visitor],
        redis_server: RedisServer) -> None:
    conversation_id, _visitor = call
    await dana.on_duty()

    handoff_id = await _request(orchestrator, conversation_id)
    await asyncio.wait_for(dana.sees("offered"), WAIT)
    await dana.decline(handoff_id)
    logged = await _logged_until(redis_server.url, conversation_id, _took_back)

    assert _failure(logged) == "declined"
    assert (await dana.client.get("/v1/handoffs", headers=dana.auth)).json()["handoffs"] == []


async def test_with_nobody_online_the_handoff_fails_as_no_human_available(
        orchestrator: httpx.AsyncClient, call: tuple[str, Visitor],
        redis_server: RedisServer) -> None:
    conversation_id, visitor = call

    await visitor.room.local_participant.send_text("Can I talk to a person please?",
                                                   topic="lk.chat")
    logged = await _logged_until(redis_server.url, conversation_id, _took_back)

    requested = next(s.event for s in logged if isinstance(s.event, HandoffEvent))
    assert requested.trigger is not None and requested.trigger.value == "keyword"
    assert _failure(logged) == "no_human_available"


async def test_the_visitor_leaving_during_consult_tells_the_human_and_closes_the_handoff(
        orchestrator: httpx.AsyncClient, dana: HumanAgent, call: tuple[str, Visitor],
        redis_server: RedisServer) -> None:
    conversation_id, visitor = call
    await _human_in_consult(orchestrator, dana, conversation_id)

    await visitor.leave()
    told = await asyncio.wait_for(dana.sees("failed"), WAIT)

    assert told["failure"] == "caller_left"
    assert (await dana.client.get("/v1/handoffs", headers=dana.auth)).json()["handoffs"] == []
