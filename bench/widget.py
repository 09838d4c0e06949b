"""Time from the click on "Switch to voice" in the widget to the agent's first audio playing in
the page.

Runs the whole stack on this machine (`deploy.stack`: Redis, the devserver, the scripted models
answering at once, the orchestrator, a `python -m worker start` process and the chat agent)
and Chromium on the demo page. Each run is a new visitor: one typed message and its reply,
then the click. Both ends are measured in the page with `performance.now()`: the click by a
listener ahead of the widget's own, the first audio by an analyser of the bench's own on the
first agent audio element the widget plays, read every few milliseconds (the first frame above
-40 dBFS). The steps in between come from the widget's performance marks
(`baton:microphone-open`, `baton:switched`, `baton:connected`, `baton:joined`,
`baton:agent-present`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from deploy.stack import Stack

CHROMIUM = "/usr/bin/chromium"
PATIENCE_MS = 60_000
TYPED = "My order A1234 has not arrived yet"

PROBE = """() => {
  const button = document.querySelector('.baton-actions button');
  button.addEventListener('click', () => {
    window.bench = {clickedAt: performance.now(), firstAudioAt: null};
    const context = new AudioContext();
    void context.resume();
    const samples = new Float32Array(1024);
    const poll = setInterval(() => {
      const audio = document.querySelector('.baton-speakers audio');
      if (!audio || !audio.srcObject || audio.paused) return;
      if (!window.bench.analyser) {
        window.bench.analyser = context.createAnalyser();
        window.bench.analyser.fftSize = samples.length;
        context.createMediaStreamSource(audio.srcObject).connect(window.bench.analyser);
      }
      window.bench.analyser.getFloatTimeDomainData(samples);
      const rms = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
      if (rms > 0.01) {
        window.bench.firstAudioAt = performance.now();
        clearInterval(poll);
      }
    }, 2);
  }, {capture: true});
}"""

RESULT = """() => {
  // The widget's own marks of the steps of a switch, from the click.
  const since = name => {
    const mark = performance.getEntriesByName('baton:' + name).pop();
    return mark ? mark.startTime - window.bench.clickedAt : null;
  };
  return {audio: window.bench.firstAudioAt - window.bench.clickedAt,
          steps: Object.fromEntries(STEPS.map(step => [step, since(step)]))};
}"""


STEPS = ("microphone-open", "switched", "connected", "joined", "agent-present")
"""The widget's performance marks, in the order a switch passes them."""


@dataclass(frozen=True)
class Sample:
    first_audio_ms: float
    steps_ms: dict[str, float]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def one_visit(browser: Browser, demo_url: str) -> Sample:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(PATIENCE_MS)
        page.goto(demo_url)
        page.get_by_label("Message").fill(TYPED)
        page.get_by_label("Message").press("Enter")
        page.locator(".baton-message[data-seq]").filter(has_text="Sure, I can help").wait_for()
        page.evaluate(PROBE)
        page.locator(".baton-actions").get_by_role("button", name="Switch to voice").click()
        page.wait_for_function("() => window.bench && window.bench.firstAudioAt !== null",
                               polling=10)
        measured = page.evaluate(RESULT.replace("STEPS", json.dumps(STEPS)))
        page.get_by_role("button", name="Hang up").click()
        page.get_by_text("Voice call ended.").wait_for()
        return Sample(float(measured["audio"]),
                      {step: float(at) for step, at in measured["steps"].items() if at is not None})
    finally:
        context.close()


def run(runs: int, directory: Path) -> list[Sample]:
    silence = directory / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "48000", "-c", "1", "-b", "16", str(silence), "trim",
                    "0", "600"], check=True)
    stack = Stack(directory / "stack", models={},
                  agent_name=f"bench-widget-{uuid.uuid4().hex[:6]}")
    stack.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={silence}"])
            try:
                one_visit(browser, stack.demo_url)  # warm-up, not counted
                return [one_visit(browser, stack.demo_url) for _ in range(runs)]
            finally:
                browser.close()
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-widget-") as directory:
        samples = run(args.runs, Path(directory))
    audio = [s.first_audio_ms for s in samples]
    print(f"widget: click to first agent audio: p50 {percentile(audio, 0.5):.0f} ms, "
          f"p99 {percentile(audio, 0.99):.0f} ms (mean {statistics.mean(audio):.0f} ms, "
          f"{len(audio)} runs)")
    for step in STEPS:
        at = [s.steps_ms[step] for s in samples if step in s.steps_ms]
        if at:
            print(f"  {step:<16} p50 {percentile(at, 0.5):.0f} ms, p99 "
                  f"{percentile(at, 0.99):.0f} ms after the click")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average during the run's end: {load}")


if __name__ == "__main__":
    main()
