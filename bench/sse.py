"""Hold 1,000 live streams (SSE) open on one orchestrator; measure the API's latency meanwhile.

`python -m bench.sse` starts Redis, the devserver and `python -m orchestrator` (as
`bench.switch` does), creates one conversation and widget token per stream, and measures
`POST .../messages` and `GET /readyz` one at a time while idle, then with every stream open
(each stream a widget's EventSource: its own connection and `?token=`). It then appends one
message to every conversation and reports how many streams received theirs and how soon after
the POST, and what one stream over the replica's bound (set to `--streams`) gets.
`--orchestrator URL --api-key KEY` measures a running stack instead, whose
`BATON_SSE_STREAMS_PER_REPLICA` should be `--streams`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx

from bench.switch import BENCH_API_KEY, local_stack, percentile

# Requests that set up and measure go through a few connections; each stream has its own.
API_CONNECTIONS = 8


@dataclass
class Latencies:
    append_ms: list[float] = field(default_factory=list)
    ready_ms: list[float] = field(default_factory=list)
    failed: int = 0

    def line(self, label: str) -> str:
        def figures(values: list[float]) -> str:
            return f"p50 {percentile(values, 0.5):.1f} ms, p99 {percentile(values, 0.99):.1f} ms"
        failures = f", {self.failed} failed" if self.failed else ""
        return (f"sse {label}: POST messages {figures(self.append_ms)}; "
                f"/readyz {figures(self.ready_ms)}{failures}")


@dataclass
class Streams:
    """The open streams, and the arrival of messages awaited on them by (conversation, text)."""

    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    awaited: dict[tuple[str, str], asyncio.Future[float]] = field(default_factory=dict)

    def expect(self, conversation_id: str, text: str) -> asyncio.Future[float]:
        arrival: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.awaited[(conversation_id, text)] = arrival
        return arrival

    async def follow(self, session: aiohttp.ClientSession, conversation_id: str, token: str,
                     opened: asyncio.Future[int]) -> None:
        try:
            async with session.get(f"/v1/conversations/{conversation_id}/stream",
                                   params={"token": token}) as response:
                opened.set_result(response.status)
                if response.status != 200:
                    return
                async for raw in response.content:
                    line = raw.decode().rstrip("\n")
                    if not line.startswith("data: "):
                        continue
                    text = json.loads(line.removeprefix("data: ")).get("text")
                    arrival = self.awaited.pop((conversation_id, str(text)), None)
                    if arrival is not None:
                        arrival.set_result(time.perf_counter())
        except aiohttp.ClientError as exc:
            if not opened.done():
                opened.set_exception(exc)

    async def open(self, session: aiohttp.ClientSession, conversation_id: str, token: str) -> int:
        opened: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.tasks.append(asyncio.create_task(
            self.follow(session, conversation_id, token, opened)))
        return await opened

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def at_most(count: int, calls: list[Callable[[], Awaitable[None]]]) -> None:
    """Run the calls, `count` at a time."""
    queue = list(reversed(calls))

    async def worker() -> None:
        while queue:
            await queue.pop()()

    async with asyncio.TaskGroup() as group:
        for _ in range(count):
            group.create_task(worker())


async def setup(client: httpx.AsyncClient, count: int) -> list[tuple[str, str]]:
    """`count` conversations, each with a widget token."""
    made: list[tuple[str, str]] = []

    async def one() -> None:
        created = await client.post("/v1/conversations", json={})
        created.raise_for_status()
        conversation_id = created.json()["id"]
        issued = await client.post(f"/v1/conversations/{conversation_id}/widget-token")
        issued.raise_for_status()
        made.append((conversation_id, issued.json()["token"]))

    await at_most(API_CONNECTIONS, [one] * count)
    return made


async def measure(client: httpx.AsyncClient, conversation_id: str, samples: int,
                  tag: str) -> Latencies:
    """POST a message and GET /readyz, one request at a time."""
    result = Latencies()
    for number in range(samples):
        started = time.perf_counter()
        appended = await client.post(f"/v1/conversations/{conversation_id}/messages",
                                     json={"role": "user", "text": f"{tag} {number}"})
        result.append_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        ready = await client.get("/readyz")
        result.ready_ms.append((time.perf_counter() - started) * 1000)
        result.failed += (appended.status_code != 201) + (ready.status_code != 200)
    return result


async def fan_out(client: httpx.AsyncClient, streams: Streams,
                  conversations: list[tuple[str, str]], wait: float) -> list[float]:
    """One message to every conversation; how long after its POST started each stream had it
    (the ones that did within `wait` seconds)."""
    posted: dict[str, tuple[float, asyncio.Future[float]]] = {}

    async def post(conversation_id: str) -> None:
        arrival = streams.expect(conversation_id, "fan-out")
        posted[conversation_id] = (time.perf_counter(), arrival)
        response = await client.post(f"/v1/conversations/{conversation_id}/messages",
                                     json={"role": "assistant", "text": "fan-out"})
        response.raise_for_status()

    await at_most(API_CONNECTIONS, [functools.partial(post, cid) for cid, _ in conversations])
    await asyncio.wait([arrival for _, arrival in posted.values()], timeout=wait)
    return [(arrival.result() - started) * 1000
            for started, arrival in posted.values() if arrival.done()]


async def run(url: str, api_key: str, *, streams: int, samples: int) -> list[str]:
    api_limits = httpx.Limits(max_connections=API_CONNECTIONS,
                              max_keepalive_connections=API_CONNECTIONS)
    lines = []
    # aiohttp for the streams: its connection pool does not slow down with a thousand open.
    async with httpx.AsyncClient(base_url=url, limits=api_limits, timeout=30.0,
                                 headers={"Authorization": f"Bearer {api_key}"}) as client, \
            aiohttp.ClientSession(base_url=url, connector=aiohttp.TCPConnector(limit=0),
                                  timeout=aiohttp.ClientTimeout(total=None)) as stream_client:
        conversations = await setup(client, streams + 1)
        extra = conversations.pop()
        probe_id = conversations[0][0]
        await measure(client, probe_id, samples // 10, "warm-up")
        lines.append((await measure(client, probe_id, samples, "idle")).line("idle"))

        open_streams = Streams()
        try:
            started = time.perf_counter()
            statuses: list[int] = []

            async def open_one(cid: str, token: str) -> None:
                statuses.append(await open_streams.open(stream_client, cid, token))

            await at_most(50, [functools.partial(open_one, cid, token)
                               for cid, token in conversations])
            opened = statuses.count(200)
            lines.append(f"sse streams: {opened} of {streams} open on one replica, opened in "
                         f"{time.perf_counter() - started:.1f} s"
                         + (f" (others: {sorted(set(statuses) - {200})})"
                            if opened < streams else ""))
            lines.append((await measure(client, probe_id, samples, "busy"))
                         .line(f"with {opened} streams open"))
            delays = await fan_out(client, open_streams, conversations, wait=30.0)
            lines.append(f"sse delivery: {len(delays)} of {opened} streams got the message "
                         f"appended to their conversation, p50 {percentile(delays, 0.5):.1f} ms, "
                         f"p99 {percentile(delays, 0.99):.1f} ms after its POST started")
            async with stream_client.get(f"/v1/conversations/{extra[0]}/stream",
                                         params={"token": extra[1]}) as response:
                retry = response.headers.get("Retry-After")
                lines.append(f"sse over the bound: stream {opened + 1} got "
                             f"{response.status}, Retry-After {retry}")
        finally:
            await open_streams.aclose()
    return lines


def raise_file_limit(streams: int) -> int:
    """Room for every stream's sockets (the client's, the orchestrator's, and its Redis
    connection); children started afterwards inherit it."""
    needed = 4 * streams + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft < needed:
        sys.exit(f"bench.sse: {streams} streams need {needed} file descriptors; the hard "
                 f"limit is {hard}")
    return soft


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sse", description=__doc__)
    parser.add_argument("--orchestrator", metavar="URL",
                        help="a running orchestrator; default: start a local stack")
    parser.add_argument("--api-key", default=BENCH_API_KEY)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300,
                        help="requests of each kind measured idle and with the streams open")
    args = parser.parse_args()
    limit = raise_file_limit(args.streams)
    options = {"streams": args.streams, "samples": args.samples}
    with contextlib.ExitStack() as stack:
        url = args.orchestrator
        if url is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-sse-"))
            url = stack.enter_context(local_stack(Path(directory),
                                                  sse_streams_per_replica=args.streams))
        lines = asyncio.run(run(url, args.api_key, **options))
    print("\n".join(lines))
    print(f"(file descriptor limit {limit}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
