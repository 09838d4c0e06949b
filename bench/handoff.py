"""Time from a handoff's request to the visitor and a human hearing each other.

Runs the whole stack here (Redis, the devserver, the scripted models answering at once, the
orchestrator with one human agent, a `python -m worker start` process) and repeats: a visitor
in a call asks for a person through the API; the human, online on the dashboard's queue
stream, accepts the moment the offer arrives, joins, and presses connect the moment they are
in the room (their client hearing the agent), then speaks; the visitor speaks too. The end is
when each hears the other. The human reacts at once, so the figure is Baton's own time plus
the human's client joining the room; the human's reaction time is excluded by construction.
Connect comes while the visitor still hears the agent's line, which it cuts short.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.firstwords import percentile
from deploy.human import HumanAgent
from deploy.processes import ManagedProcess, RedisServer, free_port, wait_for_port
from deploy.visitor import Visitor
from devserver.process import DevServer
from modelserver import ModelServer
from orchestrator.humans import HumanAccount, hash_password
from orchestrator.settings import Settings

PATIENCE = 60.0
API_KEY = "bench-api-key-0123456789abcdef0123456789"
PASSWORD = "bench-human-password"
SPEECH = "Hello, can you hear me clearly now"


@dataclass(frozen=True)
class Sample:
    total_ms: float
    offered_ms: float
    """Request to the offer on the human's queue: the card read and a human found."""
    joined_ms: float
    """Accept to hearing the agent in the room: the human's own client connecting."""
    connected_ms: float
    """Connect pressed to both hearing each other."""



async def registered(devserver: DevServer, agent_name: str, worker: ManagedProcess) -> None:
    """Wait until the devserver lists a worker registered for `agent_name`."""
    async with asyncio.timeout(120):
        while not any(w["agent_name"] == agent_name for w in devserver.agents_status()["workers"]):
            if not worker.running:
                raise RuntimeError("the worker exited; see its log")
            await asyncio.sleep(0.25)

async def speak_on(voice: Visitor, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await voice.say(SPEECH, trailing_silence=0.3)


async def one_handoff(client: httpx.AsyncClient, human: HumanAgent) -> Sample:
    auth = {"Authorization": f"Bearer {API_KEY}"}
    created = await client.post("/v1/conversations", json={}, headers=auth)
    conversation_id = created.json()["id"]
    await client.post(f"/v1/conversations/{conversation_id}/messages", headers=auth,
                      json={"role": "user", "text": "My order A1234 never arrived"})
    session = (await client.post(f"/v1/conversations/{conversation_id}/voice",
                                 headers=auth)).json()
    visitor = Visitor()
    await visitor.join(session["url"], session["token"])
    human.reset()
    stop = asyncio.Event()
    talking: list[asyncio.Task[None]] = []
    try:
        async with asyncio.timeout(PATIENCE):
            await visitor.agent_spoke_since(0)
            started = time.perf_counter()
            requested = await client.post(f"/v1/conversations/{conversation_id}/handoffs",
                                          headers=auth)
            handoff_id = requested.json()["id"]
            await human.sees("offered")
            offered = time.perf_counter()
            room = await human.accept(handoff_id)
            await human.join(room)
            await human.ears.hears("agent-", 1)
            joined = time.perf_counter()
            await human.connect(handoff_id)
            talking = [asyncio.create_task(speak_on(human.ears, stop)),
                       asyncio.create_task(speak_on(visitor, stop))]
            await asyncio.gather(visitor.hears("human-", 5), human.ears.hears("visitor-", 5))
            heard = time.perf_counter()
    finally:
        stop.set()
        for task in talking:
            task.cancel()
        await asyncio.gather(*talking, return_exceptions=True)
        await visitor.leave()
        await human.leave_room()
    return Sample(total_ms=(heard - started) * 1000, offered_ms=(offered - started) * 1000,
                  joined_ms=(joined - offered) * 1000, connected_ms=(heard - joined) * 1000)


async def run(runs: int, directory: Path) -> list[Sample]:
    redis = RedisServer(directory / "redis")
    devserver = DevServer(log_path=directory / "devserver.log")
    models = ModelServer()
    redis.start()
    devserver.start()
    await models.start()
    agent_name = f"bench-voice-{uuid.uuid4().hex[:6]}"
    port = free_port()
    settings = Settings.model_validate({
        "env": "development", "redis_url": redis.url, "livekit_url": devserver.url,
        "livekit_api_key": devserver.api_key, "livekit_api_secret": devserver.api_secret,
        "api_keys": API_KEY, "host": "127.0.0.1", "port": port, "agent_name": agent_name,
        "humans": (HumanAccount(username="dana", name="Dana",
                                password_hash=hash_password(PASSWORD)),)})
    orchestrator = ManagedProcess("orchestrator", [sys.executable, "-m", "orchestrator"],
                                  env=settings.environment(),
                                  log_path=directory / "orchestrator.log")
    log_path = directory / "worker.log"
    worker = ManagedProcess("worker", [sys.executable, "-m", "worker", "start"], env={
        "LIVEKIT_URL": devserver.url, "LIVEKIT_API_KEY": devserver.api_key,
        "LIVEKIT_API_SECRET": devserver.api_secret, "BATON_ENV": "development",
        "REDIS_URL": redis.url, "OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": models.url,
        "BATON_AGENT_NAME": agent_name, "BATON_HEALTH_PORT": str(free_port()),
        "BATON_MAX_JOBS": "8"}, log_path=log_path)
    orchestrator.start()
    worker.start()
    try:
        wait_for_port(port, process=orchestrator.process, timeout=60)
        await registered(devserver, agent_name, worker)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     timeout=30.0) as client:
            human = HumanAgent(client, "dana", PASSWORD)
            await human.sign_in()
            await human.on_duty()
            try:
                await one_handoff(client, human)  # warm-up, not counted
                return [await one_handoff(client, human) for _ in range(runs)]
            finally:
                with contextlib.suppress(Exception):
                    await human.off_duty()
    finally:
        worker.stop()
        orchestrator.stop()
        await models.aclose()
        devserver.stop()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-handoff-") as directory:
        samples = asyncio.run(run(args.runs, Path(directory)))

    def line(name: str, values: list[float]) -> str:
        return f"{name} p50 {percentile(values, 0.5):.0f} ms, p99 {percentile(values, 0.99):.0f} ms"

    print("handoff: " + line("request to connected", [s.total_ms for s in samples]))
    print("  of which " + line("request to offered", [s.offered_ms for s in samples]))
    print("  of which " + line("the human's client joining", [s.joined_ms for s in samples]))
    print("  of which " + line("connect to both hearing", [s.connected_ms for s in samples]))


if __name__ == "__main__":
    main()
