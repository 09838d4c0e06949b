"""Time from a voice job reaching the worker to the agent's first audio reaching the visitor.

Runs the whole stack on this machine (Redis, the devserver, a `python -m worker start` process,
the scripted models) and, side by side on the same stack, a bare livekit-agents agent
(`bench.bare`, its own process, the same models). Calls alternate between the two: a visitor
joins a room, an explicit dispatch sends the agent, and the visitor listens. For Baton the room
is a conversation with chat history, so its first words are generated from the log. The start
is the worker's "received job request" log record; the end is the first loud audio frame the
visitor receives (both wall clock on one machine). Every call starts with both agents idle: the
previous call's job process has exited and its worker's pool of warm processes is full again.

The calls run three times: with the models answering at once, then with the latency of hosted
models (`modelserver.HOSTED`), so what is the agent's own time shows apart from the models'; and
in the order of a real switch, where the visitor's browser joins after the agent was sent
(`VISITOR_DELAY` later, about what `bench.widget` measures for the browser's connection), with
the time also counted from the visitor joining.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from livekit import api

from conversation import Channel, ChannelSwitchEvent, ConversationStore, MessageEvent, Role
from conversation import attributes as attrs
from deploy.processes import ManagedProcess, RedisServer, free_port
from deploy.visitor import Visitor
from devserver.process import DevServer
from modelserver import HOSTED, INSTANT, Latency, ModelServer

PATIENCE = 15.0
"""Seconds a visitor waits for the agent's voice before the call counts as one without audio
(the devserver now and then leaves a participant's published track without media)."""
CHAT = [
    (Role.USER, "Hello, my January claim for the broken phone screen was rejected."),
    (Role.ASSISTANT, "I'm sorry to hear that. Can you tell me the claim number?"),
    (Role.USER, "It is claim 4471, filed on January the twelfth."),
    (Role.ASSISTANT, "Thanks, I can see it. It was rejected for water damage."),
]
LOOP_BLOCK_MS = 50
VISITOR_DELAY = 0.4
"""Seconds between the dispatch and the visitor joining in the real-switch order."""
MODEL_REQUESTS = {"LLM request": "/chat/completions", "TTS request": "/audio/speech"}


@dataclass(frozen=True)
class Sample:
    first_words_ms: float
    stages: dict[str, float]
    """Milliseconds after the job request: the worker's own stages and the model requests."""
    cpu_ms: float | None = None
    """CPU time the job's process used until its first words, as the worker reports it."""
    blocked_ms: float = 0.0
    """How long the job's event loop was blocked before the first words were heard, as the
    framework's loop monitor reports blocks of LOOP_BLOCK_MS or more..."""
    blocked_cpu_ms: float = 0.0
    """...and how much of that the loop's thread was working (the rest it waited for a CPU)."""
    after_join_ms: float | None = None
    """From the visitor starting to join to their first loud frame, when they joined second."""


@dataclass(frozen=True)
class Scenario:
    """One way of running the calls: the models' latency and who joins the room first."""

    latency: Latency
    visitor_delay: float | None
    """Seconds after the dispatch that the visitor joins; None: before the dispatch."""
    suffix: str
    """What the scenario's lines are marked with."""


SCENARIOS = (
    Scenario(INSTANT, None, ""),
    Scenario(HOSTED, None, " (latency)"),
    Scenario(INSTANT, VISITOR_DELAY, " (visitor joining after the agent)"),
)


@dataclass
class AgentUnderTest:
    """An agent process and its log."""

    label: str
    agent_name: str
    process: ManagedProcess
    log_path: Path

    def records(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        if not self.log_path.exists():
            return records
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def timestamp(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(record["timestamp"])).timestamp()


async def wait_for_log(agent: AgentUnderTest, done: Callable[[list[dict[str, Any]]], bool],
                       what: str) -> list[dict[str, Any]]:
    async with asyncio.timeout(120):
        while not done(records := agent.records()):
            if not agent.process.running:
                raise RuntimeError(f"{agent.label} exited while waiting for {what}; "
                                   f"see {agent.log_path}")
            await asyncio.sleep(0.05)
    return records


def idle(records: list[dict[str, Any]]) -> bool:
    """The last job's process has exited, and every process started since that job came is
    initialized (a process that failed to initialize earlier does not count)."""
    requests = [i for i, r in enumerate(records) if r.get("message") == "received job request"]
    if not requests:
        return True
    last = records[requests[-1]].get("room")
    since = [r.get("message") for r in records[requests[-1]:]]
    exited = any(r.get("message") == "process exiting" and r.get("room") == last
                 for r in records[requests[-1]:])
    return exited and since.count("initializing process") <= since.count("process initialized")


async def settle(agent: AgentUnderTest) -> None:
    """Wait for the agent to be idle, so each call has the machine to itself; a worker that
    does not get there (a process that never finished initializing) is measured as it is."""
    try:
        await wait_for_log(agent, idle, "the previous call to end")
    except TimeoutError:
        print(f"{agent.label}: not idle after 120 s; measuring the next call anyway",
              file=sys.stderr)


def job_request(room: str) -> Callable[[dict[str, Any]], bool]:
    return lambda record: record.get("message") == "received job request" and \
        record.get("room") == room


async def seed_conversation(store: ConversationStore, conversation_id: str) -> None:
    await store.create(conversation_id)
    for role, text in CHAT:
        await store.append(conversation_id, MessageEvent(role=role, channel=Channel.CHAT,
                                                         text=text))
    await store.append(conversation_id, ChannelSwitchEvent(
        from_channel=Channel.CHAT, to_channel=Channel.VOICE, trigger="visitor_clicked"))


async def one_call(agent: AgentUnderTest, devserver: DevServer, store: ConversationStore,
                   models: ModelServer, visitor_delay: float | None = None) -> Sample | None:
    """One call's first words, or None when the visitor heard nothing within PATIENCE."""
    await settle(agent)
    room = f"bench-{agent.label}-{uuid.uuid4().hex[:12]}"
    await seed_conversation(store, room)
    visitor = Visitor()
    identity = f"{attrs.VISITOR_IDENTITY_PREFIX}{uuid.uuid4().hex[:12]}"
    token = devserver.token(identity, room, attributes={
        attrs.ROLE: attrs.ROLE_VISITOR, attrs.CONVERSATION_ID: room})
    joined_at: float | None = None
    if visitor_delay is None:
        await visitor.join(devserver.url, token)
    async with devserver.api() as livekit:
        await livekit.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
            agent_name=agent.agent_name, room=room))
        if visitor_delay is not None:
            # The modelled time the visitor's browser takes to get its token and connect.
            await asyncio.sleep(visitor_delay)
            joined_at = time.time()
            await visitor.join(devserver.url, token)
        try:
            await asyncio.wait_for(visitor.hears_speech(), PATIENCE)
        except TimeoutError:
            print(f"{agent.label}: no agent audio within {PATIENCE:.0f} s in {room} "
                  f"({visitor.describe()})", file=sys.stderr)
        finally:
            await visitor.leave()
            # The call is over: a job that waits for its room to empty out would otherwise
            # linger (the framework's default) and end during the next call.
            await livekit.room.delete_room(api.DeleteRoomRequest(room=room))
    if visitor.first_loud_at is None:
        return None
    records = await wait_for_log(agent, lambda found: any(map(job_request(room), found)),
                                 "the job request record")
    received = next(timestamp(r) for r in records if job_request(room)(r))
    cpu = [float(r["cpu_ms"]) for r in records
           if r.get("room") == room and r.get("message") == "first words"]
    blocks = [r for r in records if r.get("room") == room and "duration" in r
              and str(r.get("message", "")).startswith("event loop blocked")
              and received <= timestamp(r) <= visitor.first_loud_at]
    return Sample((visitor.first_loud_at - received) * 1000,
                  stages_of(records, room, received, visitor.first_loud_at, models),
                  cpu[0] if cpu else None,
                  sum(float(r["duration"]) for r in blocks) * 1000,
                  sum(float(r.get("cpu_time", 0.0)) for r in blocks) * 1000,
                  None if joined_at is None else (visitor.first_loud_at - joined_at) * 1000)


def stages_of(records: list[dict[str, Any]], room: str, received: float, heard: float,
              models: ModelServer) -> dict[str, float]:
    stages: dict[str, float] = {}
    for record in records:
        if record.get("room") == room and record.get("message") == "first words":
            # The worker counts from its entrypoint; the record is written as it speaks.
            entry = (timestamp(record) - received) * 1000 - float(record["speaking_ms"])
            stages["entrypoint"] = entry
            stages.update({key.removesuffix("_ms"): entry + float(value)
                           for key, value in record.items()
                           if key.endswith("_ms") and key != "cpu_ms"})
    for name, suffix in MODEL_REQUESTS.items():
        times = [r.at for r in models.requests_to(suffix) if received <= r.at <= heard]
        if times:
            stages[name] = (min(times) - received) * 1000
    return stages


def start_agent(label: str, module: str, directory: Path, environment: dict[str, str],
                ) -> AgentUnderTest:
    agent_name = f"bench-{label}-{uuid.uuid4().hex[:6]}"
    log_path = directory / f"{label}.log"
    process = ManagedProcess(label, [sys.executable, "-m", module, "start"], env=environment | {
        "BATON_AGENT_NAME": agent_name, "BARE_AGENT_NAME": agent_name,
        "BATON_HEALTH_PORT": str(free_port()), "BARE_HEALTH_PORT": str(free_port()),
    }, log_path=log_path)
    process.start()
    return AgentUnderTest(label, agent_name, process, log_path)


async def run(runs: int, directory: Path, scenarios: Sequence[Scenario] = SCENARIOS,
              ) -> dict[tuple[str, Scenario], list[Sample | None]]:
    """Alternate calls to Baton and the bare agent, `runs` each in every scenario."""
    redis_server = RedisServer(directory / "redis")
    devserver = DevServer(log_path=directory / "devserver.log")
    models = ModelServer()
    redis_server.start()
    devserver.start()
    await models.start()
    environment = {
        "LIVEKIT_URL": devserver.url, "LIVEKIT_API_KEY": devserver.api_key,
        "LIVEKIT_API_SECRET": devserver.api_secret, "BATON_ENV": "development",
        "REDIS_URL": redis_server.url, "OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": models.url,
        "BATON_MAX_JOBS": "8", "LIVEKIT_AGENTS_LOOP_BLOCK_WARN_MS": str(LOOP_BLOCK_MS),
    }
    agents = [start_agent("baton", "worker", directory, environment),
              start_agent("bare", "bench.bare", directory, environment)]
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        for agent in agents:
            await wait_for_log(agent, lambda rs: any(r.get("message") == "registered worker"
                                                     for r in rs), "registration")
        store = ConversationStore(client)
        for agent in agents:
            await one_call(agent, devserver, store, models)  # warm-up, not counted
            await settle(agent)
        samples: dict[tuple[str, Scenario], list[Sample | None]] = {}
        for scenario in scenarios:
            models.latency = scenario.latency
            for index in range(runs):
                for agent in agents if index % 2 == 0 else agents[::-1]:
                    sample = await one_call(agent, devserver, store, models,
                                            scenario.visitor_delay)
                    samples.setdefault((agent.label, scenario), []).append(sample)
                    # The other agent's call must not end, or its next process start, during
                    # this agent's call.
                    await settle(agent)
        return samples
    finally:
        await client.aclose()
        for agent in agents:
            agent.process.stop()
        await models.aclose()
        devserver.stop()
        redis_server.stop()


def summary(samples: Sequence[Sample]) -> str:
    first = [s.first_words_ms for s in samples]
    return f"p50 {percentile(first, 0.5):.0f} ms, p99 {percentile(first, 0.99):.0f} ms"


def stages_line(samples: Sequence[Sample]) -> str:
    names = sorted({name for s in samples for name in s.stages},
                   key=lambda name: percentile([s.stages[name] for s in samples
                                                if name in s.stages], 0.5))
    parts = [f"{name} {percentile([s.stages[name] for s in samples if name in s.stages], 0.5):.0f}"
             for name in names]
    return ", ".join(parts)


def report(results: dict[tuple[str, Scenario], list[Sample | None]],
           load: tuple[float, float]) -> None:
    for scenario in SCENARIOS:
        suffix = scenario.suffix
        baton = [s for s in results.get(("baton", scenario), []) if s is not None]
        bare = [s for s in results.get(("bare", scenario), []) if s is not None]
        if not baton or not bare:
            continue
        print(f"first words{suffix}: {summary(baton)}")
        print(f"  bare agent{suffix}: {summary(bare)}")
        ratio = percentile([s.first_words_ms for s in baton], 0.5) / percentile(
            [s.first_words_ms for s in bare], 0.5)
        print(f"ratio baton/bare p50{suffix}: {ratio:.2f}")
        if scenario.visitor_delay is not None:
            for label, calls in (("Baton", baton), ("bare agent", bare)):
                joined = [s.after_join_ms for s in calls if s.after_join_ms is not None]
                print(f"  {label}, from the visitor starting to join: "
                      f"p50 {percentile(joined, 0.5):.0f} ms, "
                      f"p99 {percentile(joined, 0.99):.0f} ms")
        print(f"  where Baton's time goes (p50, ms after the job request): "
              f"{stages_line(baton)}")
        if cpu := [s.cpu_ms for s in baton if s.cpu_ms is not None]:
            print(f"  CPU of Baton's job process until its first words: "
                  f"p50 {percentile(cpu, 0.5):.0f} ms")
        print(f"  bare agent (p50, ms after the job request): {stages_line(bare)}")
        for label, calls in (("Baton", baton), ("bare agent", bare)):
            blocked = [s.blocked_ms for s in calls]
            working = [s.blocked_cpu_ms for s in calls]
            print(f"  {label}'s loop blocked ({LOOP_BLOCK_MS} ms or more) before the first "
                  f"words: p50 {percentile(blocked, 0.5):.0f} ms, max {max(blocked):.0f} ms; "
                  f"of which working p50 {percentile(working, 0.5):.0f} ms, "
                  f"max {max(working):.0f} ms")
    silent = {label: sum(s is None for (who, _), calls in results.items() if who == label
                         for s in calls) for label in ("baton", "bare")}
    if any(silent.values()):
        print(f"calls left out, no agent audio within {PATIENCE:.0f} s: "
              f"baton {silent['baton']}, bare {silent['bare']}")
    print(f"load average (1 min): {load[0]:.2f} at the start, {load[1]:.2f} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=20,
                        help="calls per agent and model latency (default 20)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-firstwords-") as directory:
        samples = asyncio.run(run(args.runs, Path(directory)))
    report(samples, (load_before, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
