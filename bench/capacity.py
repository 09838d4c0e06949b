"""How many calls one voice worker holds: ramp concurrent calls until first words slow down.

Runs the stack here (`deploy.stack`: Redis, the devserver, the scripted models answering at
once, the orchestrator, one `python -m worker start` with its default process pool) and adds
calls step by step. Each call is a visitor who switches a chat to voice, hears the first words,
then speaks a turn every few seconds and waits for the reply. At each step the new calls' first
words (switch request to the first agent audio at the visitor) and every reply are measured,
and the worker's process tree is read for CPU and memory: resident memory counted
proportionally (PSS), so pages the job processes share with their forkserver count once. The
ramp stops when first words
p99 passes the budget or a reply is lost; the step before is the capacity.

The devserver and the visitors run on the same machine and take most of its CPU, so the
capacity printed is this machine's; the per-call cost of the worker (CPU per call-second,
memory per call) is what to size a worker pod from.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.firstwords import percentile
from bench.procstat import cpu_seconds, pss_bytes, tree
from deploy.stack import DEV_API_KEY, Stack
from deploy.visitor import Visitor

SPOKEN = "I would like to change my plan to the yearly one"
BUDGET_MS = 1500.0
REPLY_PATIENCE = 15.0
FIRST_WORDS_PATIENCE = 30.0


@dataclass
class Call:
    visitor: Visitor
    first_words_ms: float
    replies: int = 0
    lost: int = 0
    task: asyncio.Task[None] | None = None


@dataclass
class Step:
    calls: int
    first_words_ms: list[float] = field(default_factory=list)
    lost: int = 0
    cpu_ms_per_call_second: float = 0.0
    pss_mb: float = 0.0


async def start_call(client: httpx.AsyncClient) -> Call:
    auth = {"Authorization": f"Bearer {DEV_API_KEY}"}
    created = await client.post("/v1/conversations", json={}, headers=auth)
    conversation_id = created.json()["id"]
    await client.post(f"/v1/conversations/{conversation_id}/messages", headers=auth,
                      json={"role": "user", "text": "My order A1234 has not arrived yet"})
    asked = time.perf_counter()
    session = (await client.post(f"/v1/conversations/{conversation_id}/voice",
                                 headers=auth)).json()
    visitor = Visitor()
    await visitor.join(session["url"], session["token"])
    await asyncio.wait_for(visitor.hears_speech(), FIRST_WORDS_PATIENCE)
    return Call(visitor, (time.perf_counter() - asked) * 1000)


async def talk(call: Call, period: float) -> None:
    """A turn every `period` seconds, each waiting for the agent's reply."""
    await call.visitor.agent_spoke_since(0)
    while True:
        mark = call.visitor.mark()
        await call.visitor.say(SPOKEN, trailing_silence=1.0)
        try:
            await asyncio.wait_for(call.visitor.agent_spoke_since(mark), REPLY_PATIENCE)
            call.replies += 1
        except TimeoutError:
            call.lost += 1
        await asyncio.sleep(period)


async def run(levels: list[int], hold: float, period: float, directory: Path,
              executor: str = "process", stt_streaming: str | None = None,
              ) -> tuple[list[Step], int]:
    stack = Stack(directory, agent_name=f"bench-voice-{uuid.uuid4().hex[:6]}", models={},
                  orchestrator_env={"BATON_CHAT_AGENT": "false"},
                  worker_env={"BATON_MAX_JOBS": str(max(levels) + 2),
                              "BATON_JOB_EXECUTOR": executor}
                  | ({"BATON_STT_STREAMING": stt_streaming} if stt_streaming else {}))
    await asyncio.to_thread(stack.start)
    worker_pid = stack.process("worker").process.pid  # type: ignore[union-attr]
    calls: list[Call] = []
    steps: list[Step] = []
    try:
        async with httpx.AsyncClient(base_url=stack.orchestrator_url, timeout=60.0) as client:
            for level in levels:
                step = Step(level)
                while len(calls) < level:
                    try:
                        call = await start_call(client)
                    except TimeoutError:
                        step.first_words_ms.append(FIRST_WORDS_PATIENCE * 1000)
                        continue
                    step.first_words_ms.append(call.first_words_ms)
                    call.task = asyncio.create_task(talk(call, period))
                    calls.append(call)
                lost_before = sum(c.lost for c in calls)
                pids = tree(worker_pid)
                cpu_before = cpu_seconds(pids)
                await asyncio.sleep(hold)
                pids = tree(worker_pid)
                step.cpu_ms_per_call_second = (cpu_seconds(pids) - cpu_before) * 1000 / (
                    hold * level)
                step.pss_mb = pss_bytes(pids) / 2**20
                step.lost = sum(c.lost for c in calls) - lost_before
                steps.append(step)
                print(f"  {level:3d} calls: first words p99 "
                      f"{percentile(step.first_words_ms, 0.99):.0f} ms, replies lost "
                      f"{step.lost}, worker cpu {step.cpu_ms_per_call_second:.0f} ms per "
                      f"call-second, pss {step.pss_mb:.0f} MB", flush=True)
                if percentile(step.first_words_ms, 0.99) > BUDGET_MS or step.lost:
                    break
        baseline = pss_bytes(tree(worker_pid))
    finally:
        for call in calls:
            if call.task is not None:
                call.task.cancel()
        await asyncio.gather(*(c.task for c in calls if c.task), return_exceptions=True)
        for call in calls:
            with contextlib.suppress(Exception):
                await call.visitor.leave()
        await asyncio.to_thread(stack.stop)
    return steps, baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,2,4,6,8,10,12,16,20,24")
    parser.add_argument("--hold", type=float, default=20.0,
                        help="seconds each step runs before it is measured")
    parser.add_argument("--period", type=float, default=4.0,
                        help="seconds between a reply and the visitor's next turn")
    parser.add_argument("--executor", choices=("process", "thread"), default="process",
                        help="the worker's BATON_JOB_EXECUTOR: a process per call, or threads "
                             "of one process")
    parser.add_argument("--stt-streaming", choices=("true", "false"), default=None,
                        help="the worker's BATON_STT_STREAMING (default: the worker's): the "
                             "visitor's audio streamed to realtime transcription, or each "
                             "utterance cut by a second VAD")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as directory:
        steps, _ = asyncio.run(run(levels, args.hold, args.period, Path(directory),
                                   args.executor, args.stt_streaming))
    good = [s for s in steps if percentile(s.first_words_ms, 0.99) <= BUDGET_MS and not s.lost]
    held = good[-1] if good else steps[0]
    first = steps[0]
    per_call_mb = (held.pss_mb - first.pss_mb) / max(1, held.calls - first.calls) \
        if held.calls > first.calls else held.pss_mb / held.calls
    print(f"capacity: {held.calls if good else 0} calls per worker, cpu "
          f"{held.cpu_ms_per_call_second:.0f} ms per call-second, rss {per_call_mb:.0f} MB per "
          f"call, first words p99 {percentile(held.first_words_ms, 0.99):.0f} ms at "
          f"{held.calls}")


if __name__ == "__main__":
    main()
