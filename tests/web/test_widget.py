"""The widget in Chromium on the demo page, over the real stack: chat with the chat agent,
switch to voice with the voice worker, hang up and type on, all in one thread."""

from __future__ import annotations

import pytest

from conversation import (
    CallEvent,
    CallOutcome,
    HandoffEvent,
    HandoffFailure,
    HandoffState,
)
from deploy.stack import Stack
from tests.web.conftest import Visitor, append_to_log

pytestmark = pytest.mark.browser

HEARS_THE_AGENT = """() => {
  // Measured here, not by the widget: the first agent audio element that plays, through an
  // analyser of its own.
  const audio = document.querySelector('.baton-speakers audio');
  if (!audio || audio.paused || !audio.srcObject) return false;
  if (!window.heardLevel) {
    const context = new AudioContext();
    void context.resume();
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    context.createMediaStreamSource(audio.srcObject).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    window.heardLevel = () => {
      analyser.getFloatTimeDomainData(samples);
      return Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
    };
  }
  return window.heardLevel() > 0.01;
}"""


def channels_in_order(visitor: Visitor) -> list[str]:
    """The thread's messages by channel, consecutive repeats merged: ["", "in the call", ""]
    is chat, then the call, then chat."""
    merged: list[str] = []
    for _who, via, _text in visitor.committed():
        if not merged or merged[-1] != via:
            merged.append(via)
    return merged


def test_a_visitor_types_talks_and_types_again_in_one_thread(
        stack: Stack, visitor: Visitor) -> None:
    page = visitor.page
    visitor.open(stack.demo_url)
    visitor.shot("opened")

    visitor.type("Hi, my order A1234 has not arrived yet")
    visitor.wait_for(visitor.message("Assistant", "Sure, I can help with that: my order A1234"))
    visitor.type("Could you tell me when it will come?")
    visitor.wait_for(visitor.message("Assistant", "could you tell me when it will come"))
    visitor.shot("chatting")

    visitor.switch_button.click()
    page.wait_for_function(HEARS_THE_AGENT, polling=20)
    # The widget's own level display moves with the agent's voice while it is heard.
    page.wait_for_function("() => document.querySelector('.baton-call meter').value > 0.3",
                           polling=20)
    first_words = visitor.wait_for(visitor.message("Assistant", "I see you were asking about",
                                                   via="in the call"))
    assert "my order A1234 has not arrived yet" in first_words.inner_text()
    assert page.locator(".baton-agent-state").inner_text().startswith("Assistant:")
    visitor.shot("in the call")

    visitor.type("Please check my invoice too")
    visitor.wait_for(visitor.message("You", "Please check my invoice too", via="in the call"))
    visitor.wait_for(visitor.message("Assistant", "please check my invoice too",
                                     via="in the call"))
    visitor.shot("typed in the call")

    page.get_by_role("button", name="Hang up").click()
    visitor.wait_for(visitor.thread.get_by_text("Voice call ended."))
    visitor.type("Thanks, and how do returns work?")
    visitor.wait_for(visitor.message("Assistant", "how do returns work", via=None))
    visitor.shot("typing again")

    assert channels_in_order(visitor) == ["", "in the call", ""]
    before = visitor.committed()
    page.reload()
    page.wait_for_function("n => document.querySelectorAll('.baton-message[data-seq]').length"
                           " >= n", arg=len(before))
    assert visitor.committed() == before
    visitor.shot("reloaded")
    assert visitor.console_errors == []


def test_the_chat_agents_offer_of_a_call_starts_one(stack: Stack, visitor: Visitor) -> None:
    visitor.open(stack.demo_url)

    visitor.type("This is a lot to type, can I talk to someone?")
    offer = visitor.wait_for(visitor.thread.locator(".baton-offer"))
    assert "suggests a voice call" in offer.inner_text()
    visitor.shot("offered")
    offer.get_by_role("button", name="Switch to voice").click()

    visitor.wait_for(visitor.page.get_by_role("button", name="Hang up"))
    visitor.wait_for(visitor.message("Assistant", "I see you were asking about"))
    visitor.shot("in the call")
    visitor.page.get_by_role("button", name="Hang up").click()
    visitor.wait_for(visitor.thread.get_by_text("Voice call ended."))
    assert visitor.console_errors == []


def test_phone_calls_and_handoffs_in_the_log_are_said_in_words(
        stack: Stack, visitor: Visitor) -> None:
    """What other parts of Baton write (a dial-out's outcome, a handoff to a person) reaches the
    thread as sentences, not codes."""
    visitor.open(stack.demo_url)
    visitor.type("A question about my parcel")
    visitor.wait_for(visitor.message("Assistant", "a question about my parcel"))

    append_to_log(
        stack.redis.url, visitor.conversation_id(),
        CallEvent(outcome=CallOutcome.DIALING, number_ending="42"),
        CallEvent(outcome=CallOutcome.BUSY, sip_status=486, sip_reason="Busy Here"),
        CallEvent(outcome=CallOutcome.UNREACHABLE, sip_status=480, sip_reason="Unavailable"),
        CallEvent(outcome=CallOutcome.FAILED, sip_status=503, sip_reason="Service Unavailable"),
        HandoffEvent(handoff_id="h-1", state=HandoffState.REQUESTED),
        HandoffEvent(handoff_id="h-1", state=HandoffState.FAILED,
                     failure=HandoffFailure.NO_HUMAN_AVAILABLE),
        HandoffEvent(handoff_id="h-2", state=HandoffState.CONNECTED, human="Dana"))

    for words in ("Calling your phone (the number ending 42)…",
                  "Your line was busy, so the call did not go through.",
                  "Your phone could not be reached (it may be switched off or out of signal).",
                  "The phone call could not be connected (503 Service Unavailable).",
                  "Asking for a person from the team to join…",
                  "Nobody from the team is free right now. The assistant carries on with you "
                  "and can book a callback.",
                  "You are now talking to Dana."):
        visitor.wait_for(visitor.thread.get_by_text(words, exact=True))
    visitor.shot("said in words")
    assert visitor.console_errors == []
