"""Drive POST /v1/conversations/{id}/voice at a fixed concurrency; report the orchestrator time.

`python -m bench.switch` starts Redis, the devserver and the orchestrator itself; pass
`--orchestrator URL --api-key KEY` to measure a running stack instead. "own" is what the
orchestrator reports in `Server-Timing: own;dur=..`: its wall-clock time minus waiting on
LiveKit and Redis (and on the client's body). `--detail` adds the CPU part of it (`cpu;dur=`),
which a machine busy with other work cannot inflate. The devserver and the load generator run
at a lower CPU priority unless `--same-priority` (see `local_stack`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from deploy.processes import ManagedProcess, RedisServer, free_port, wait_for_port
from devserver.process import DevServer
from orchestrator.settings import Settings

BENCH_API_KEY = "bench-api-key-0123456789abcdef0123456789"


@dataclass
class Sample:
    total_ms: float
    own_ms: float
    cpu_ms: float


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def timing_ms(server_timing: str, metric: str) -> float:
    for part in server_timing.split(","):
        name, _, duration = part.strip().partition(";dur=")
        if name == metric:
            return float(duration)
    raise ValueError(f"no {metric} time in Server-Timing: {server_timing!r}")


# In production LiveKit and the callers run on other machines; here they share the
# orchestrator's CPUs, so by default they get a lower priority to keep them from inflating
# the orchestrator's own time.
STAND_IN_NICENESS = 10


@contextlib.contextmanager
def local_stack(directory: Path, *, same_priority: bool = False,
                **overrides: object) -> Iterator[str]:
    """Redis, devserver and `python -m orchestrator` on free loopback ports; yields its URL.

    Unless `same_priority`, the devserver and this process (the load generator) run at a
    lower CPU priority than the orchestrator and Redis. `overrides` are orchestrator settings
    beyond the stack's own (e.g. `sse_streams_per_replica=2000`).
    """
    redis = RedisServer(directory / "redis")
    devserver = DevServer(log_path=directory / "devserver.log")
    port = free_port()
    settings = Settings.model_validate({
        "env": "development", "redis_url": redis.url, "livekit_url": devserver.url,
        "livekit_api_key": devserver.api_key, "livekit_api_secret": devserver.api_secret,
        "api_keys": BENCH_API_KEY, "host": "127.0.0.1", "port": port, **overrides})
    orchestrator = ManagedProcess("orchestrator", [sys.executable, "-m", "orchestrator"],
                                  env=settings.environment(),
                                  log_path=directory / "orchestrator.log")
    redis.start()
    try:
        devserver.start()
        if not same_priority:
            os.setpriority(os.PRIO_PROCESS, devserver.pid, STAND_IN_NICENESS)
        try:
            orchestrator.start()
            try:
                wait_for_port(port, process=orchestrator.process, timeout=60)
                if not same_priority:
                    os.nice(STAND_IN_NICENESS)
                yield f"http://127.0.0.1:{port}"
            finally:
                orchestrator.stop()
        finally:
            devserver.stop()
    finally:
        redis.stop()


async def create_conversations(client: httpx.AsyncClient, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = await client.post("/v1/conversations", json={})
        response.raise_for_status()
        ids.append(response.json()["id"])
    return ids


async def drive(client: httpx.AsyncClient, ids: list[str], concurrency: int) -> list[Sample]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for conversation_id in ids:
        queue.put_nowait(conversation_id)
    samples: list[Sample] = []

    async def worker() -> None:
        while not queue.empty():
            conversation_id = queue.get_nowait()
            started = time.perf_counter()
            response = await client.post(f"/v1/conversations/{conversation_id}/voice",
                                         json={"trigger": "visitor"})
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            timing = response.headers["Server-Timing"]
            samples.append(Sample(elapsed, timing_ms(timing, "own"), timing_ms(timing, "cpu")))

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return samples


async def run(url: str, api_key: str, *, requests: int, warmup: int, concurrency: int,
              detail: bool) -> str:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0,
                                 headers={"Authorization": f"Bearer {api_key}"}) as client:
        await drive(client, await create_conversations(client, warmup), concurrency)
        ids = await create_conversations(client, requests)
        started = time.perf_counter()
        samples = await drive(client, ids, concurrency)
        seconds = time.perf_counter() - started
    totals = [s.total_ms for s in samples]
    owns = [s.own_ms for s in samples]
    line = (f"switch: {len(samples) / seconds:.0f} req/s, p50 {percentile(totals, 0.5):.1f} ms, "
            f"p99 {percentile(totals, 0.99):.1f} ms, own p99 {percentile(owns, 0.99):.2f} ms")
    if detail:
        cpus = [s.cpu_ms for s in samples]
        line += (f"\nown p50 {percentile(owns, 0.5):.2f} ms; own CPU p50 "
                 f"{percentile(cpus, 0.5):.2f} ms, p99 {percentile(cpus, 0.99):.2f} ms; "
                 f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return line


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.switch", description=__doc__)
    parser.add_argument("--orchestrator", metavar="URL",
                        help="a running orchestrator; default: start a local stack")
    parser.add_argument("--api-key", default=BENCH_API_KEY)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--same-priority", action="store_true",
                        help="run the devserver and the load generator at the orchestrator's "
                             "CPU priority (they share its CPUs on one machine)")
    parser.add_argument("--detail", action="store_true",
                        help="also print own-time p50, its CPU part and the machine's load: "
                             "wall-clock own time includes waiting for a busy machine's CPU")
    args = parser.parse_args()
    options = {"requests": args.requests, "warmup": args.warmup,
               "concurrency": args.concurrency, "detail": args.detail}
    if args.orchestrator:
        print(asyncio.run(run(args.orchestrator, args.api_key, **options)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-switch-") as directory, \
            local_stack(Path(directory), same_priority=args.same_priority) as url:
        print(asyncio.run(run(url, BENCH_API_KEY, **options)))


if __name__ == "__main__":
    main()
