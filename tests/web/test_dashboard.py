"""The dashboard and "Talk to a person" in Chromium over the real stack: a human agent signs in,
sees the card, accepts (hearing the agent's briefing while the visitor waits), connects, and
the visitor and they hear each other, measured in each page; the whole thread (tool results
too) is beside the call; declining and nobody being available are told to the visitor with
what happens next. The human works from the keyboard."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator

from conversation import Channel, ToolCallEvent, ToolResultEvent
from deploy.stack import DEMO_HUMANS, Stack
from tests.web.conftest import (
    FOCUSED,
    OnPage,
    Visitor,
    append_to_log,
    page_on,
    shots_of,
    tab_to,
    visitor_on,
)

pytestmark = pytest.mark.browser

DANA = DEMO_HUMANS[0]
LOOKED_UP = (ToolCallEvent(call_id="lookup-1", name="lookup_order", channel=Channel.CHAT,
                           arguments='{"order_id": "A1234"}'),
             ToolResultEvent(call_id="lookup-1", name="lookup_order",
                             output='{"status": "in transit"}'))
SIGNED_IN_REFUSED = re.compile(r"Failed to load resource: the server responded with a status of "
                               r"401 .*/v1/humans/sign-in")


class Desk(OnPage):
    """A human agent on the dashboard."""

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.locator("#sign-in:not([hidden]), #desk:not([hidden])").wait_for()

    def sign_in_by_keyboard(self, username: str, password: str) -> None:
        tab_to(self, "Username")
        self.page.keyboard.type(username)
        self.page.keyboard.press("Tab")
        self.page.keyboard.type(password)
        self.page.keyboard.press("Enter")

    def status(self, words: str) -> Locator:
        return self.wait_for(self.page.locator("#desk-status").get_by_text(words))

    def call_state(self, words: str) -> Locator:
        return self.wait_for(self.page.locator("#call-state").get_by_text(words))

    @property
    def card(self) -> Locator:
        return self.page.get_by_role("region", name="Handoff card")

    @property
    def offer(self) -> Locator:
        return self.page.locator("#queue button")


@contextlib.contextmanager
def desk_on(browser: Browser, request: pytest.FixtureRequest, stack: Stack) -> Iterator[Desk]:
    """A human agent on a laptop's screen; signed out at the end, so nobody stays online for
    the next test's handoffs."""
    with page_on(browser, viewport=(1280, 800)) as (page, errors):
        desk = Desk(page, shots_of(request), errors, "desk-")
        try:
            yield desk
        finally:
            page.request.post(f"{stack.orchestrator_url}/v1/humans/sign-out")


def in_a_call(visitor: Visitor, stack: Stack, typed: str) -> Locator:
    """The visitor chats, switches to voice and is in the call with the agent; the person
    panel."""
    visitor.open(stack.demo_url)
    visitor.type(typed)
    visitor.wait_for(visitor.message("Assistant", typed[3:30]))
    visitor.switch_button.click()
    visitor.wait_for(visitor.page.get_by_role("button", name="Hang up"))
    visitor.page.wait_for_function(
        "() => document.querySelector('.baton-agent-state').textContent.startsWith('Assistant:')")
    return visitor.page.get_by_role("region", name="Talk to a person")


def test_with_nobody_online_the_visitor_is_told_and_the_assistant_carries_on(
        stack: Stack, visitor: Visitor) -> None:
    person = in_a_call(visitor, stack, "My parcel is late, where is it?")

    visitor.page.get_by_role("button", name="Talk to a person").click()

    visitor.wait_for(visitor.thread.get_by_text("Asking for a person from the team to join…"))
    visitor.wait_for(person.get_by_text(
        "Nobody from the team is free right now. The assistant carries on with you and can "
        "book a callback."))
    visitor.wait_for(visitor.message("Assistant", "callback"))
    assert visitor.page.get_by_role("button", name="Talk to a person").is_enabled()
    visitor.shot("nobody available")
    visitor.page.get_by_role("button", name="Hang up").click()
    visitor.wait_for(visitor.thread.get_by_text("Voice call ended."))
    assert visitor.console_errors == []


def test_a_human_takes_the_call_from_the_dashboard_and_each_side_hears_the_other(
        stack: Stack, talking_browser: Browser, request: pytest.FixtureRequest) -> None:
    with desk_on(talking_browser, request, stack) as desk, \
            visitor_on(talking_browser, request, prefix="visitor-") as visitor:
        desk.open(stack.dashboard_url)
        desk.shot("sign in")
        assert desk.accessibility_violations() == []
        desk.sign_in_by_keyboard(DANA.username, DANA.password)
        desk.status("Online: handoffs come to you")
        desk.shot("queue")
        assert desk.accessibility_violations() == []

        person = in_a_call(visitor, stack, "My name is Alex and my order A1234 never arrived")
        append_to_log(stack.redis.url, visitor.conversation_id(), *LOOKED_UP)
        visitor.page.get_by_role("button", name="Talk to a person").click()
        visitor.wait_for(person.get_by_text("Waiting for a person from the team to answer…"))
        visitor.shot("waiting")

        desk.wait_for(desk.offer.get_by_text("Alex"))
        desk.wait_for(desk.card.get_by_text("A1234", exact=True))
        assert "Alex" in desk.card.inner_text()
        thread = desk.page.locator("#thread")
        desk.wait_for(thread.get_by_text("My name is Alex and my order A1234 never arrived"))
        desk.wait_for(thread.get_by_text('Tool result of lookup_order: {"status":"in transit"}'))
        assert "lookup_order" in desk.card.inner_text()
        desk.shot("offered")
        tab_to(desk, "Accept")
        desk.page.keyboard.press("Enter")

        desk.call_state("In consult: the assistant is briefing you.")
        visitor.wait_for(person.get_by_text("Dana is joining; the assistant is briefing them."))
        visitor.hears("^agent-.*/baton-hold$")
        desk.hears("^agent-")
        assert desk.page.locator('audio[data-baton-speaker^="visitor-"]').count() == 0
        assert desk.page.evaluate(FOCUSED) == "Connect to the visitor"
        desk.shot("consult")
        assert desk.accessibility_violations() == []
        desk.page.keyboard.press("Enter")

        desk.call_state("Connected: you and the visitor hear each other.")
        visitor.wait_for(person.get_by_text("You are now talking to Dana."))
        desk.hears("^visitor-")
        visitor.hears("^human-dana-")
        visitor.wait_for(visitor.message("Dana", ""))
        desk.wait_for(desk.page.locator("#thread .desk-who", has_text="Dana (you)"))
        desk.shot("talking")
        visitor.shot("talking to Dana")
        assert desk.accessibility_violations() == []

        tab_to(desk, "Mute", backwards=True)
        desk.page.keyboard.press("Space")
        assert desk.page.get_by_role("button", name="Mute").get_attribute("aria-pressed") == \
            "true"
        desk.page.keyboard.press("Space")
        tab_to(desk, "Hang up")
        desk.page.keyboard.press("Enter")
        visitor.wait_for(person.get_by_text("Dana has left the call; the assistant is back "
                                            "with you."))
        desk.call_state("The call with you has ended")
        desk.shot("hung up")
        visitor.page.get_by_role("button", name="Hang up").click()
        visitor.wait_for(visitor.thread.get_by_text("Voice call ended."))

        tab_to(desk, "Sign out", backwards=True)
        desk.page.keyboard.press("Enter")
        desk.wait_for(desk.page.get_by_text("You are signed out."))
        assert desk.console_errors == []
        assert visitor.console_errors == []


def test_a_human_declining_is_told_to_the_visitor_with_what_happens_next(
        stack: Stack, talking_browser: Browser, request: pytest.FixtureRequest) -> None:
    with desk_on(talking_browser, request, stack) as desk, \
            visitor_on(talking_browser, request, prefix="visitor-") as visitor:
        desk.open(stack.dashboard_url)
        desk.sign_in_by_keyboard(DANA.username, "not her password")
        desk.wait_for(desk.page.get_by_text("Wrong username or password."))
        desk.shot("wrong password")
        desk.page.get_by_label("Password").fill(DANA.password)
        desk.page.get_by_label("Password").press("Enter")
        desk.status("Online: handoffs come to you")

        person = in_a_call(visitor, stack, "I need help with my invoice please")
        visitor.page.get_by_role("button", name="Talk to a person").click()
        desk.wait_for(desk.offer)
        tab_to(desk, "Decline")
        desk.page.keyboard.press("Enter")

        visitor.wait_for(person.get_by_text(
            "The team member could not take the call. The assistant carries on with you and "
            "can book a callback."))
        assert visitor.page.get_by_role("button", name="Talk to a person").is_enabled()
        visitor.shot("declined")
        desk.call_state("Declined: the assistant keeps the visitor.")
        desk.shot("declined")
        visitor.page.get_by_role("button", name="Hang up").click()
        visitor.wait_for(visitor.thread.get_by_text("Voice call ended."))
        assert [e for e in desk.console_errors if not SIGNED_IN_REFUSED.search(e)] == []
        assert visitor.console_errors == []
