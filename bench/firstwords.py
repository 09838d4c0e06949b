"""Time from a voice job reaching the worker to the agent's first audio reaching the visitor.

Runs the whole stack on this machine (Redis, the devserver, a `python -m worker start`
process, the scripted models answering at once) and repeats a call: a conversation with chat
history, the visitor in the room, an explicit dispatch, then the visitor listens. The start is
the worker's "received job request" log record; the end is the first loud audio frame the
visitor receives (both wall clock on one machine). The restore part is the worker's own
measurement of loading the log and building the context.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import redis.asyncio as aioredis
from livekit import api

from conversation import Channel, ChannelSwitchEvent, ConversationStore, MessageEvent, Role
from conversation import attributes as attrs
from deploy.processes import ManagedProcess, RedisServer, free_port
from deploy.visitor import Visitor
from devserver.process import DevServer
from modelserver import ModelServer

PATIENCE = 30.0
CHAT = [
    (Role.USER, "Hello, my January claim for the broken phone screen was rejected."),
    (Role.ASSISTANT, "I'm sorry to hear that. Can you tell me the claim number?"),
    (Role.USER, "It is claim 4471, filed on January the twelfth."),
    (Role.ASSISTANT, "Thanks, I can see it. It was rejected for water damage."),
]


@dataclass(frozen=True)
class Sample:
    first_words_ms: float
    restore_ms: float


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def worker_records(log_path: Path) -> list[dict[str, object]]:
    records = []
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def job_timing(log_path: Path, room: str) -> tuple[float, float]:
    """When the worker received the job for `room` (epoch seconds) and its restore time (ms)."""
    received = restored = None
    for record in worker_records(log_path):
        if record.get("message") == "received job request" and record.get("room") == room:
            received = datetime.fromisoformat(str(record["timestamp"])).timestamp()
        if record.get("message") == "history restored" and record.get("conversation_id") == room:
            restored = float(str(record["restore_ms"]))
    if received is None or restored is None:
        raise RuntimeError(f"the worker log has no job record for room {room}")
    return received, restored


async def wait_for_registration(log_path: Path, worker: ManagedProcess) -> None:
    async with asyncio.timeout(120):
        while not any(r.get("message") == "registered worker" for r in worker_records(log_path)):
            if not worker.running:
                raise RuntimeError(f"the worker exited; see {log_path}")
            await asyncio.sleep(0.1)


async def one_call(devserver: DevServer, store: ConversationStore, agent_name: str,
                   log_path: Path) -> Sample:
    conversation_id = f"bench-{uuid.uuid4().hex[:12]}"
    await store.create(conversation_id)
    for role, text in CHAT:
        await store.append(conversation_id, MessageEvent(role=role, channel=Channel.CHAT,
                                                         text=text))
    await store.append(conversation_id, ChannelSwitchEvent(
        from_channel=Channel.CHAT, to_channel=Channel.VOICE, trigger="visitor_clicked"))
    visitor = Visitor()
    identity = f"{attrs.VISITOR_IDENTITY_PREFIX}{uuid.uuid4().hex[:12]}"
    await visitor.join(devserver.url, devserver.token(identity, conversation_id, attributes={
        attrs.ROLE: attrs.ROLE_VISITOR, attrs.CONVERSATION_ID: conversation_id}))
    async with devserver.api() as livekit:
        await livekit.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(
            agent_name=agent_name, room=conversation_id))
        try:
            await asyncio.wait_for(visitor.hears_speech(), PATIENCE)
        except TimeoutError:
            raise RuntimeError(
                f"no agent audio within {PATIENCE:.0f}s ({visitor.describe()}); the agent plays "
                "only once the server acknowledges a subscription with TrackSubscribed") from None
        finally:
            await visitor.leave()
    assert visitor.first_loud_at is not None
    received, restore_ms = job_timing(log_path, conversation_id)
    return Sample((visitor.first_loud_at - received) * 1000, restore_ms)


async def run(runs: int, directory: Path) -> list[Sample]:
    redis_server = RedisServer(directory / "redis")
    devserver = DevServer(log_path=directory / "devserver.log")
    models = ModelServer()
    redis_server.start()
    devserver.start()
    await models.start()
    agent_name = f"bench-voice-{uuid.uuid4().hex[:6]}"
    log_path = directory / "worker.log"
    worker = ManagedProcess("worker", [sys.executable, "-m", "worker", "start"], env={
        "LIVEKIT_URL": devserver.url, "LIVEKIT_API_KEY": devserver.api_key,
        "LIVEKIT_API_SECRET": devserver.api_secret, "BATON_ENV": "development",
        "REDIS_URL": redis_server.url, "OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": models.url,
        "BATON_AGENT_NAME": agent_name, "BATON_HEALTH_PORT": str(free_port()),
        "BATON_MAX_JOBS": "8",
    }, log_path=log_path)
    client = aioredis.Redis.from_url(redis_server.url)
    worker.start()
    try:
        await wait_for_registration(log_path, worker)
        store = ConversationStore(client)
        await one_call(devserver, store, agent_name, log_path)  # warm-up, not counted
        samples = []
        for _ in range(runs):
            samples.append(await one_call(devserver, store, agent_name, log_path))
        return samples
    finally:
        await client.aclose()
        worker.stop()
        await models.aclose()
        devserver.stop()
        redis_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-firstwords-") as directory:
        samples = asyncio.run(run(args.runs, Path(directory)))
    first = [s.first_words_ms for s in samples]
    restore = [s.restore_ms for s in samples]
    print(f"first words: p50 {percentile(first, 0.5):.0f} ms, p99 {percentile(first, 0.99):.0f} ms")
    print(f"of which restoring the history: p50 {percentile(restore, 0.5):.1f} ms, "
          f"p99 {percentile(restore, 0.99):.1f} ms")


if __name__ == "__main__":
    main()
