"""What a visitor meets when something is missing or down, told in words with a way to go on:
the microphone refused, no agent available, the orchestrator unreachable."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Playwright

from conversation import Channel, MessageEvent, Role
from deploy.processes import RedisServer
from deploy.stack import Stack
from tests.web.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    WAIT_MS,
    Visitor,
    append_to_log,
    visitor_on,
)

pytestmark = pytest.mark.browser


def test_a_refused_microphone_is_explained_and_can_be_retried(
        stack: Stack, playwright: Playwright, request: pytest.FixtureRequest) -> None:
    refusing = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        with visitor_on(refusing, request) as visitor:
            visitor.open(stack.demo_url)

            visitor.switch_button.click()

            alert = visitor.wait_for(visitor.page.get_by_role("alert"))
            assert "Microphone access was refused" in alert.inner_text()
            visitor.shot("refused")
            alert.get_by_role("button", name="Try again").click()
            visitor.wait_for(visitor.page.get_by_role("alert").get_by_text("Microphone access"))
            assert visitor.page.locator(".baton-call").is_hidden()
            visitor.type("Fine, I will type then")
            visitor.wait_for(visitor.message("Assistant", "fine, I will type then"))
            assert visitor.thread.get_by_text("Voice call started.").count() == 0
            assert visitor.console_errors == []
    finally:
        refusing.close()


def test_no_agent_available_is_said_and_the_visitor_can_retry(
        browser: Browser, other_orchestrator: Callable[..., str], own_redis_server: RedisServer,
        request: pytest.FixtureRequest) -> None:
    """An orchestrator whose agent name no worker serves: the visitor is told while they wait,
    then that nobody is available, and the call ends back into the chat. It has a Redis of its
    own: the stack's orchestrator would find the waiting call there and give it its agent."""
    without_agents = other_orchestrator(
        REDIS_URL=own_redis_server.url,
        BATON_AGENT_NAME=f"nobody-{uuid.uuid4().hex[:8]}", BATON_AGENT_WAIT="3",
        BATON_DISPATCH_GRACE="1", BATON_RECONCILE_INTERVAL="5",
        BATON_WAITING_CHECK_INTERVAL="0.5")
    with visitor_on(browser, request) as visitor:
        visitor.open(f"{without_agents}/demo/")

        visitor.switch_button.click()
        visitor.wait_for(visitor.page.get_by_text("Connecting you to the assistant…"))
        visitor.shot("waiting")

        alert = visitor.wait_for(visitor.page.get_by_role("alert"))
        assert "No agent is available right now" in alert.inner_text()
        visitor.wait_for(visitor.thread.get_by_text(re.compile("No agent is available")))
        visitor.page.locator(".baton-call").wait_for(state="hidden", timeout=WAIT_MS)
        assert alert.get_by_role("button", name="Try the call again").is_visible()
        visitor.shot("unavailable")
        assert visitor.console_errors == []


def test_the_thread_rides_out_an_orchestrator_outage_without_gaps_or_duplicates(
        stack: Stack, visitor: Visitor) -> None:
    visitor.open(stack.demo_url)
    visitor.type("Before the outage")
    visitor.wait_for(visitor.message("Assistant", "before the outage"))

    stack.process("orchestrator").stop()
    try:
        alert = visitor.wait_for(visitor.page.get_by_role("alert"))
        assert "can't reach the chat service" in alert.inner_text()
        visitor.type("Typed while it is down")
        visitor.wait_for(visitor.thread.get_by_text("not sent"))
        # An agent's message reaching the log meanwhile (a person typing, say).
        append_to_log(stack.redis.url, visitor.conversation_id(), MessageEvent(
            role=Role.ASSISTANT, channel=Channel.CHAT, text="Written while the service was down"))
        visitor.shot("down")
    finally:
        stack.restart("orchestrator")

    visitor.wait_for(visitor.message("Assistant", "Written while the service was down"))
    visitor.thread.get_by_role("button", name="Send again").click()
    visitor.wait_for(visitor.message("Assistant", "typed while it is down"))
    visitor.shot("back")
    texts = [text for _who, _via, text in visitor.committed()]
    assert len(texts) == len(set(texts))
    assert texts.index("Written while the service was down") < texts.index(
        "Typed while it is down")
    # The browser reports the stream cut and each refused connection itself (net::ERR_...);
    # nothing else may complain.
    assert [e for e in visitor.console_errors if "net::ERR_" not in e] == []


def test_an_expired_token_is_renewed_and_the_thread_goes_on_without_duplicates(
        stack: Stack, browser: Browser, other_orchestrator: Callable[..., str],
        request: pytest.FixtureRequest) -> None:
    """Widget tokens that last three seconds: the stream ends with `token_expired` again and
    again, and the widget comes back each time with a new token after the last event."""
    short_lived = other_orchestrator(BATON_WIDGET_TOKEN_TTL="3")
    with visitor_on(browser, request) as visitor:
        visitor.open(f"{short_lived}/demo/")
        visitor.type("First, before any renewal")
        visitor.wait_for(visitor.message("Assistant", "first, before any renewal"))

        # Several renewals pass; the page must stay quiet and the thread whole.
        visitor.page.wait_for_timeout(7_000)
        visitor.type("Second, after a few renewals")
        visitor.wait_for(visitor.message("Assistant", "second, after a few renewals"))

        texts = [text for _who, _via, text in visitor.committed()]
        assert len(texts) == 4 and len(set(texts)) == 4
        assert visitor.page.get_by_role("alert").count() == 0
        assert visitor.console_errors == []
