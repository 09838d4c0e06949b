""""Call me instead" in Chromium over the real stack: the visitor's number is dialled through
the devserver's simulated phones (deploy/phones.py), and each outcome, and each refusal, is said
in words with what to do next."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Locator, Page

from deploy.phones import PHONES, phone_for
from deploy.stack import Stack
from tests.web.conftest import Visitor, visitor_on, watch

pytestmark = pytest.mark.browser

SAID = {
    # outcome: (the panel's words, what the thread says)
    "answered": ("You answered: the assistant is talking to you on the phone.",
                 "You answered the phone call."),
    "busy": ("Your line was busy, so the call did not go through. Try again when it is free",
             "Your line was busy, so the call did not go through."),
    "no_answer": ("Nobody answered the phone. Check the number and try again",
                  "The phone call was not answered."),
    "declined": ("The call was declined. If that was not you, check the number",
                 "The phone call was declined."),
    "unreachable": ("Your phone could not be reached: it may be switched off or out of signal.",
                    "Your phone could not be reached (it may be switched off or out of "
                    "signal)."),
    "failed": ("The call could not be connected. Please try again in a moment",
               "The phone call could not be connected (500 Server Internal Error)."),
}
REFUSED_STATUS = re.compile(r"Failed to load resource: the server responded with a status of "
                            r"(409|422|429)")


def panel(page: Page) -> Locator:
    return page.get_by_role("region", name="Call me instead")


def call_me(visitor: Visitor, number: str) -> Locator:
    """Open "Call me instead", type the number and ask for the call; the panel."""
    page = visitor.page
    page.get_by_role("button", name="Call me instead").click()
    page.get_by_label("Your phone number").fill(number)
    page.get_by_role("button", name="Call me", exact=True).click()
    return panel(page)


def outcome_of(visitor: Visitor) -> str:
    locator = panel(visitor.page)
    visitor.page.wait_for_function(
        "el => el.dataset.batonOutcome && el.dataset.batonOutcome !== 'dialing'",
        arg=locator.element_handle(), polling=50)
    return locator.get_attribute("data-baton-outcome") or ""


@pytest.mark.parametrize("outcome", list(SAID))
def test_call_me_instead_says_each_outcome_of_the_call_in_words(
        stack: Stack, visitor: Visitor, outcome: str) -> None:
    visitor.open(stack.demo_url)

    shown = call_me(visitor, phone_for(outcome))
    visitor.wait_for(shown.get_by_text("Calling your phone… Answer it when it rings."))
    visitor.wait_for(visitor.thread.get_by_text(re.compile(
        rf"^Calling your phone \(the number ending {phone_for(outcome)[-2:]}\)…$")))
    visitor.shot("calling")

    assert outcome_of(visitor) == outcome
    panel_words, thread_words = SAID[outcome]
    assert panel_words in shown.inner_text()
    visitor.wait_for(visitor.thread.get_by_text(thread_words, exact=True))
    if outcome == "answered":
        visitor.wait_for(visitor.thread.get_by_text("Phone call started."))
        assert visitor.page.get_by_role("button", name="Call me instead").is_hidden()
    else:
        assert visitor.page.get_by_label("Your phone number").is_enabled()
    visitor.shot(outcome)
    assert visitor.console_errors == []


def test_the_demo_page_lists_every_simulated_phone(stack: Stack, visitor: Visitor) -> None:
    visitor.open(stack.demo_url)
    listed = visitor.page.locator(".phones").inner_text().replace(" ", "")

    assert [p.number for p in PHONES if p.number not in listed] == []


def test_a_number_that_cannot_be_called_is_explained_and_the_visitor_can_fix_it(
        stack: Stack, visitor: Visitor) -> None:
    visitor.open(stack.demo_url)

    shown = call_me(visitor, "020 7946 0000")
    assert outcome_of(visitor) == "error"
    assert "That number cannot be called: must be an international number" in \
        shown.inner_text()
    assert "for example +1 202 555 0100" in shown.inner_text()
    visitor.shot("refused")
    assert visitor.accessibility_violations() == []
    number = visitor.page.get_by_label("Your phone number")
    assert number.evaluate("el => el === document.activeElement")
    number.fill(phone_for("busy"))
    number.press("Enter")

    visitor.page.wait_for_function(
        "el => el.dataset.batonOutcome === 'busy'", arg=shown.element_handle())
    assert [e for e in visitor.console_errors if not REFUSED_STATUS.search(e)] == []


def test_a_second_tab_asking_while_a_number_rings_is_told_to_wait(
        stack: Stack, browser: Browser, request: pytest.FixtureRequest) -> None:
    """Two tabs of one visitor (one conversation): one number at a time is dialled."""
    with visitor_on(browser, request, prefix="first-") as first:
        first.open(stack.demo_url)
        second = Visitor(first.page.context.new_page(), first.shots, first.console_errors,
                         "second-")
        watch(second.page, second.console_errors)
        second.open(stack.demo_url)

        call_me(first, phone_for("no_answer"))
        first.wait_for(first.thread.get_by_text(re.compile("^Calling your phone")))
        shown = call_me(second, phone_for("busy"))

        assert outcome_of(second) == "error"
        assert "A call is already in progress or being dialled" in shown.inner_text()
        second.shot("told to wait")
        assert outcome_of(first) == "no_answer"
        assert [e for e in first.console_errors if not REFUSED_STATUS.search(e)] == []


def test_too_many_calls_are_refused_with_how_long_to_wait(
        browser: Browser, other_orchestrator: Callable[..., str],
        request: pytest.FixtureRequest) -> None:
    limited = other_orchestrator(BATON_DIAL_ATTEMPTS_PER_CONVERSATION="1")
    with visitor_on(browser, request) as visitor:
        visitor.open(f"{limited}/demo/")
        call_me(visitor, phone_for("busy"))
        assert outcome_of(visitor) == "busy"

        visitor.page.get_by_role("button", name="Call me", exact=True).click()

        visitor.page.wait_for_function(
            "el => el.dataset.batonOutcome === 'error'", arg=panel(visitor.page).element_handle())
        words = panel(visitor.page).inner_text()
        assert re.search(r"Too many calls were asked for in a short time\. Try again in \d+ "
                         r"minutes, or keep typing here\.", words), words
        visitor.shot("too many")
        assert [e for e in visitor.console_errors if not REFUSED_STATUS.search(e)] == []
