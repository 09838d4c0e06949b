"""Time "load the log and build the ChatContext" for logs of 100, 1,000 and 10,000 events."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from conversation import (
    Channel,
    ChannelSwitchEvent,
    ConversationStore,
    Event,
    MessageEvent,
    Role,
    ToolCallEvent,
    ToolResultEvent,
)
from conversation.restore import load_chat_context
from deploy.processes import RedisServer

SIZES = (100, 1_000, 10_000)


def mixed_events(count: int) -> list[Event]:
    """A realistic mix: mostly turns, a tool round trip every tenth, a switch now and then."""
    events: list[Event] = []
    n = 0
    while len(events) < count:
        if n % 10 == 9:
            call_id = f"call_{n}"
            events.append(ToolCallEvent(call_id=call_id, name="lookup_order",
                                        arguments=json.dumps({"order_id": f"A{n}"}),
                                        channel=Channel.CHAT))
            events.append(ToolResultEvent(call_id=call_id, name="lookup_order",
                                          output=json.dumps({"status": "shipped", "eta": "2d"})))
        elif n % 97 == 96:
            events.append(ChannelSwitchEvent(from_channel=Channel.CHAT, to_channel=Channel.VOICE,
                                             trigger="visitor"))
        else:
            role = Role.USER if n % 2 == 0 else Role.ASSISTANT
            events.append(MessageEvent(role=role, channel=Channel.CHAT,
                                       text=f"Turn {n}: I would like to know about my order "
                                            f"and when it will arrive, thanks. " * 2))
        n += 1
    return events[:count]


async def measure(store: ConversationStore, conversation_id: str, repeats: int) -> list[float]:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        await load_chat_context(store, conversation_id)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def run(redis_url: str, repeats: int) -> None:
    client = aioredis.Redis.from_url(redis_url)
    store = ConversationStore(client, max_events=max(SIZES))
    try:
        for size in SIZES:
            conversation_id = f"bench-history-{size}"
            await client.delete(*(f"conv:{{{conversation_id}}}{suffix}"
                                  for suffix in ("", ":log", ":ids", ":tools")))
            await store.create(conversation_id)
            for event in mixed_events(size):
                await store.append(conversation_id, event)
            await measure(store, conversation_id, 3)
            timings = await measure(store, conversation_id, repeats if size < 10_000 else
                                    max(10, repeats // 5))
            print(f"history {size} events: {statistics.median(timings):.2f} ms "
                  f"(p99 {percentile(timings, 0.99):.2f} ms)", flush=True)
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    if args.redis_url:
        asyncio.run(run(args.redis_url, args.repeats))
        return
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory))
        server.start()
        try:
            asyncio.run(run(server.url, args.repeats))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
