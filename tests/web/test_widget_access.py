"""The widget for everyone: every control from the keyboard, no serious or critical axe-core
finding in chat or in a call, and a layout that works on a phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from deploy.stack import Stack
from tests.web.conftest import FOCUSED, WAIT_MS, Visitor, tab_to, visitor_on

pytestmark = pytest.mark.browser

NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


def test_every_control_works_from_the_keyboard_and_axe_finds_nothing_serious(
        stack: Stack, visitor: Visitor) -> None:
    page = visitor.page
    visitor.open(stack.demo_url)
    assert visitor.accessibility_violations() == []

    tab_to(visitor, "Message")
    page.keyboard.type("Typed from the keyboard")
    page.keyboard.press("Enter")
    visitor.wait_for(visitor.message("Assistant", "typed from the keyboard"))
    tab_to(visitor, "Send")
    tab_to(visitor, "Switch to voice", backwards=True)
    page.keyboard.press("Enter")

    hang_up = visitor.wait_for(page.get_by_role("button", name="Hang up"))
    visitor.wait_for(visitor.message("Assistant", "I see you were asking about"))
    assert page.evaluate(FOCUSED) == "Hang up"
    visitor.shot("in the call")
    assert visitor.accessibility_violations() == []
    tab_to(visitor, "Mute", backwards=True)
    page.keyboard.press("Space")
    assert page.get_by_role("button", name="Mute").get_attribute("aria-pressed") == "true"
    page.keyboard.press("Space")
    assert page.get_by_role("button", name="Mute").get_attribute("aria-pressed") == "false"
    tab_to(visitor, "Microphone", backwards=True)
    microphone = page.get_by_label("Microphone", exact=True)
    options = microphone.locator("option").count()
    chosen = microphone.input_value()
    page.keyboard.press("ArrowDown")
    assert options < 2 or microphone.input_value() != chosen
    tab_to(visitor, "Hang up")
    page.keyboard.press("Enter")

    visitor.wait_for(visitor.thread.get_by_text("Voice call ended."))
    assert hang_up.is_hidden()
    assert visitor.accessibility_violations() == []
    assert visitor.console_errors == []


def test_on_a_phone_the_widget_fits_the_screen_in_chat_and_in_a_call(
        stack: Stack, browser: Browser, request: pytest.FixtureRequest) -> None:
    with visitor_on(browser, request, phone=True) as visitor:
        page = visitor.page
        visitor.open(stack.demo_url)
        visitor.type("Typing on my phone")
        visitor.wait_for(visitor.message("Assistant", "typing on my phone"))
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        visitor.shot("chat")

        visitor.switch_button.tap()
        hang_up = visitor.wait_for(page.get_by_role("button", name="Hang up"))
        visitor.wait_for(visitor.message("Assistant", "I see you were asking about"))
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        for control in (hang_up, page.get_by_role("button", name="Mute"),
                        page.get_by_label("Message")):
            box = control.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
            assert box["height"] >= 40, "touch targets are at least 40 px high"
        visitor.shot("in the call")
        hang_up.tap()
        visitor.wait_for(visitor.thread.get_by_text("Voice call ended."))
        page.get_by_label("Message").wait_for(timeout=WAIT_MS)
        assert visitor.console_errors == []
