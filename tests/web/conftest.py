"""Fixtures of the browser tests: the whole stack for all of them and one Chromium per module, a
new visitor (a browser context on the demo page) or human agent (on the dashboard) per test, a
screenshot of every step under test-artifacts/, and every console error kept for the test to
assert on."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, Playwright, sync_playwright

from conversation import ConversationStore, Event
from deploy.processes import ManagedProcess, free_port, wait_for_port
from deploy.stack import Stack
from tests.conftest import TEST_SPEAKING_RATE

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
WIDGET = ROOT / "web" / "dist" / "widget" / "widget.js"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
]
GRANT_MICROPHONE = "--use-fake-ui-for-media-stream"
WAIT_MS = 60_000
"""Generous: other suites may load the machine."""

# The devserver has no single-peer-connection path (/rtc/v1, devserver/README.md), so
# livekit-client's first attempt is answered 404 and the browser reports it before the client
# falls back; LiveKit itself answers that path.
DEVSERVER_FALLBACK = re.compile(r"/rtc/v1")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Redis, the devserver, the scripted models, the orchestrator, a voice worker and the chat
    agent, each its own process, for the browser tests (each visitor has a conversation of
    their own)."""
    if not WIDGET.exists():
        pytest.fail(f"{WIDGET} is missing: run `make web-build` (npm ci and npm run build in "
                    "web/)")
    running = Stack(tmp_path_factory.mktemp("stack"), models={},
                    agent_name=f"baton-web-{uuid.uuid4().hex[:8]}",
                    orchestrator_env={"BATON_DIAL_RINGING_TIMEOUT": "3"},
                    worker_env={"BATON_JOB_EXECUTOR": "thread", "BATON_FLUSH_TIMEOUT": "30"},
                    words_per_minute=TEST_SPEAKING_RATE)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Per module, not per session: while Playwright's sync API is up it holds an event loop in
    # this thread, and the async tests of the next modules could not run theirs.
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def silence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone captures: silence, so the visitor says nothing they did not
    type (Chromium's default fake input beeps, which the voice agent would hear as speech)."""
    path = tmp_path_factory.mktemp("audio") / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "48000", "-c", "1", "-b", "16", str(path), "trim", "0",
                    "600"], check=True)
    return path


@pytest.fixture(scope="module")
def browser(playwright: Playwright, silence: Path) -> Iterator[Browser]:
    """Chromium that grants the microphone when asked (fake devices, silent input)."""
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[
        *CHROMIUM_ARGS, GRANT_MICROPHONE, f"--use-file-for-fake-audio-capture={silence}"])
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a talking fake microphone captures, looped: a sentence, then a pause."""
    folder = tmp_path_factory.mktemp("speech")
    spoken = folder / "spoken.wav"
    subprocess.run(["espeak-ng", "-s", "160", "-w", str(spoken),
                    "Hello, this is a test of the microphone"], check=True)
    path = folder / "speech.wav"
    subprocess.run(["sox", str(spoken), "-r", "48000", "-c", "1", "-b", "16", str(path),
                    "pad", "0", "3"], check=True)
    return path


@pytest.fixture(scope="module")
def talking_browser(playwright: Playwright, speech: Path) -> Iterator[Browser]:
    """Chromium whose fake microphone talks (every page of it says the same sentence)."""
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[
        *CHROMIUM_ARGS, GRANT_MICROPHONE, f"--use-file-for-fake-audio-capture={speech}"])
    yield launched
    launched.close()


@dataclass
class OnPage:
    """Someone on a page: what they see, and a picture of each step."""

    page: Page
    shots: Path
    console_errors: list[str] = field(default_factory=list)
    prefix: str = ""
    """Put before the screenshots' names, when two pages share a test."""
    _steps: int = 0

    def shot(self, step: str) -> None:
        self._steps += 1
        self.shots.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=self.shots / f"{self.prefix}{self._steps:02d}-{step}.png",
                             full_page=True)

    def wait_for(self, locator: Locator) -> Locator:
        locator.first.wait_for(timeout=WAIT_MS)
        return locator.first

    def accessibility_violations(self) -> list[dict[str, object]]:
        """Serious and critical axe-core findings on the page as it is now."""
        # Evaluated rather than added as a script: the page's CSP allows no inline scripts, and
        # must not be loosened for the test.
        self.page.evaluate(AXE.read_text() + "\n;undefined")
        found: list[dict[str, object]] = self.page.evaluate("""async () =>
            (await axe.run(document, {resultTypes: ['violations']})).violations
              .filter(v => v.impact === 'serious' || v.impact === 'critical')
              .map(v => ({id: v.id, impact: v.impact, help: v.help,
                          nodes: v.nodes.map(n => n.target.join(' '))}))""")
        return found

    def hears(self, track: str) -> None:
        """Wait until the page plays audio, measured in the page, from a track whose
        "<participant identity>/<track name>" matches the regular expression `track`."""
        self.page.wait_for_function(HEARS, arg=track, polling=20, timeout=WAIT_MS)


@dataclass
class Visitor(OnPage):
    """A visitor on the demo page: what they do, what they see, and a picture of each step."""

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.locator(".baton-thread").wait_for()

    @property
    def widget(self) -> Locator:
        return self.page.locator(".baton")

    @property
    def thread(self) -> Locator:
        return self.page.locator(".baton-thread")

    @property
    def switch_button(self) -> Locator:
        """The widget's own "Switch to voice" (offers in the thread have one too)."""
        return self.page.locator(".baton-actions").get_by_role("button", name="Switch to voice")

    def type(self, text: str) -> None:
        self.page.get_by_label("Message").fill(text)
        self.page.get_by_label("Message").press("Enter")

    def message(self, who: str, text: str, *, via: str | None = None) -> Locator:
        """A committed message of the thread (not one being sent or spoken)."""
        found = self.thread.locator(".baton-message[data-seq]").filter(
            has=self.page.locator(".baton-who", has_text=re.compile(f"^{who}$"))).filter(
            has_text=text)
        if via is not None:
            found = found.filter(has=self.page.locator(".baton-via", has_text=via))
        return found

    def committed(self) -> list[tuple[str, str, str]]:
        """Who said what on which channel, in thread order: (who, via, text)."""
        return [tuple(row) for row in self.thread.evaluate("""thread =>
            [...thread.querySelectorAll('.baton-message[data-seq]')].map(item => [
                item.querySelector('.baton-who').textContent,
                item.querySelector('.baton-via')?.textContent ?? '',
                item.querySelector('p').textContent])""")]

    def conversation_id(self) -> str:
        """The demo remembers the visitor's conversation in a cookie, as a site's backend
        would."""
        return next(c["value"] for c in self.page.context.cookies()
                    if c["name"] == "baton_demo_conversation")



FOCUSED = """() => {
  const element = document.activeElement;
  if (!element) return '';
  const label = element.labels?.[0]?.textContent ?? element.getAttribute('aria-label');
  return (label || element.textContent || element.tagName).trim().replace(/\\s+/g, ' ');
}"""


def tab_to(user: OnPage, name: str, *, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the control named `name` has the focus."""
    seen = []
    for _ in range(40):
        user.page.keyboard.press("Shift+Tab" if backwards else "Tab")
        focused = user.page.evaluate(FOCUSED)
        if focused == name:
            return
        seen.append(focused)
    raise AssertionError(f"{name!r} is not reachable with the keyboard; focus went {seen}")


HEARS = """pattern => {
  // Measured here, not by the page: the first audio element playing a track whose
  // "<participant identity>/<track name>" matches, through an analyser of the test's own.
  const audio = [...document.querySelectorAll('audio[data-baton-speaker]')]
    .find(a => new RegExp(pattern).test(`${a.dataset.batonSpeaker}/${a.dataset.batonTrack}`));
  if (!audio || audio.paused || !audio.srcObject) return false;
  window.testLevels ??= new Map();
  if (!window.testLevels.has(audio)) {
    const context = new AudioContext();
    void context.resume();
    const analyser = context.createAnalyser();
    analyser.fftSize = 2048;
    context.createMediaStreamSource(audio.srcObject).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    window.testLevels.set(audio, () => {
      analyser.getFloatTimeDomainData(samples);
      return Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
    });
  }
  return window.testLevels.get(audio)() > 0.01;
}"""


def append_to_log(redis_url: str, conversation_id: str, *events: Event) -> None:
    """Write events to a conversation's log as another part of Baton would."""

    async def append() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            for event in events:
                await ConversationStore(client).append(conversation_id, event)
        finally:
            await client.aclose()

    # Playwright's sync API keeps an event loop running in this thread.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, append()).result()


def console_error(message: ConsoleMessage) -> str | None:
    if message.type != "error" or DEVSERVER_FALLBACK.search(
            f"{message.text} {message.location.get('url', '')}"):
        return None
    return f"{message.text} ({message.location.get('url', '')})"


def watch(page: Page, errors: list[str]) -> None:
    """Keep the page's console errors and uncaught exceptions in `errors`."""
    page.set_default_timeout(WAIT_MS)
    page.on("console", lambda m: (e := console_error(m)) and errors.append(e))
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))


def shots_of(request: pytest.FixtureRequest) -> Path:
    """The test's screenshot folder, emptied once per test: only this run's steps."""
    shots = ARTIFACTS / request.node.module.__name__.rpartition(".")[2] / request.node.name
    if not getattr(request.node, "shots_cleared", False):
        shutil.rmtree(shots, ignore_errors=True)
        request.node.shots_cleared = True
    return shots


@contextlib.contextmanager
def page_on(browser: Browser, *, phone: bool = False,
            viewport: tuple[int, int] = (1100, 800)) -> Iterator[tuple[Page, list[str]]]:
    """A page in a new context of `browser` (a phone's screen and touch with `phone`) and the
    console errors it reports, closed at the end of the block."""
    if phone:
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                      has_touch=True)
    else:
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    errors: list[str] = []
    watch(page, errors)
    try:
        yield page, errors
    finally:
        context.close()


@contextlib.contextmanager
def visitor_on(browser: Browser, request: pytest.FixtureRequest, *,
               phone: bool = False, prefix: str = "") -> Iterator[Visitor]:
    """A visitor in a new context of `browser` (a phone's screen and touch with `phone`),
    closed at the end of the block."""
    with page_on(browser, phone=phone) as (page, errors):
        yield Visitor(page, shots_of(request), errors, prefix)


@pytest.fixture
def visitor(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Visitor]:
    """A new visitor (their own cookies, so their own conversation) with a microphone."""
    with visitor_on(browser, request) as visitor:
        yield visitor


@pytest.fixture
def other_orchestrator(stack: Stack, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """`url = other_orchestrator(BATON_AGENT_NAME=...)`: another orchestrator process on the
    stack's Redis and devserver with other settings; LiveKit's webhooks still go to the
    stack's own."""
    started: list[ManagedProcess] = []

    def start(**settings: str) -> str:
        service = next(s for s in stack.services() if s.name == "orchestrator")
        port = free_port()
        process = ManagedProcess("orchestrator", service.argv,
                                 env={**service.env, "BATON_PORT": str(port), **settings},
                                 log_path=tmp_path / f"orchestrator-{len(started)}.log")
        process.start()
        started.append(process)
        wait_for_port(port, process=process.process, timeout=60)
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        process.stop()
