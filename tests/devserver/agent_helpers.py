"""Helpers for agent and dispatch tests: worker processes, the status endpoint, a visitor."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import wave
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc

from deploy.processes import ManagedProcess
from devserver.process import DevServer
from tests.devserver.rtc_helpers import WAIT

READY_TOPIC = "echo.ready"
AGENT_FILE = Path(__file__).with_name("agent_echo.py")
# Generous: other suites may load the machine, and a worker starts a process per job.
STARTUP = 150.0
AGENT_WAIT = 90.0


@dataclass
class AgentWorker:
    """A `livekit-agents` worker process running agent_echo.py with the agents CLI."""

    tag: str
    process: ManagedProcess

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye to the server."""
        assert self.process.process is not None
        self.process.process.kill()
        self.process.process.wait()


def stop_workers(workers: Iterable[AgentWorker], grace: float = 10.0) -> None:
    """SIGTERM every worker at once, then wait; a worker still draining after `grace` is killed."""
    running = [w.process for w in workers if w.process.running]
    for process in running:
        assert process.process is not None
        process.process.terminate()
    deadline = time.monotonic() + grace
    for process in running:
        process.stop(grace=max(0.1, deadline - time.monotonic()))


def start_worker(
    server: DevServer, log_dir: Path, tag: str, *, mode: str = "dev", **env: str
) -> AgentWorker:
    process = ManagedProcess(
        f"agent-{tag}",
        [sys.executable, str(AGENT_FILE), mode],
        env={
            "LIVEKIT_URL": server.url,
            "LIVEKIT_API_KEY": server.api_key,
            "LIVEKIT_API_SECRET": server.api_secret,
            "AGENT_TAG": tag,
            **env,
        },
        log_path=log_dir / f"agent-{tag}.log",
    )
    process.start()
    return AgentWorker(tag, process)


def wait_for_status(
    server: DevServer, ready: Callable[[dict[str, Any]], bool], what: str, timeout: float = STARTUP
) -> dict[str, Any]:
    """Poll the status endpoint (it has no push) until `ready` holds."""
    deadline = time.monotonic() + timeout
    while True:
        status = server.agents_status()
        if ready(status):
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: {status}")
        time.sleep(0.1)


def workers_named(status: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [w for w in status["workers"] if w["agent_name"] == name]


def own_devserver(log_dir: Path, **env: str) -> DevServer:
    """A devserver for this module alone: unnamed workers take a job in every room it has."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        server = DevServer(log_path=log_dir / "devserver.log")
        server.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return server


def write_tone_wav(path: Path, *, frequency: float, seconds: float, rate: int) -> Path:
    """A mono 16-bit WAV of a sine, at a rate other than 48 kHz to exercise resampling."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * frequency * t) * 12000).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


class Visitor:
    """An SDK participant that collects the agents' "ready" announcements."""

    def __init__(self) -> None:
        self.room = rtc.Room()
        self.ready: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self.room.register_text_stream_handler(READY_TOPIC, self._on_ready)

    def _on_ready(self, reader: rtc.TextStreamReader, identity: str) -> None:
        task = asyncio.get_running_loop().create_task(self._read(reader))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, reader: rtc.TextStreamReader) -> None:
        await self.ready.put(json.loads(await reader.read_all()))

    async def next_agent(self, agent_name: str) -> dict[str, Any]:
        """Facts about the next agent of that name to join and announce itself.

        Every room also gets the unnamed worker's agent (automatic dispatch), so filter.
        """
        async with asyncio.timeout(AGENT_WAIT):
            while True:
                facts = await self.ready.get()
                if facts["agent_name"] == agent_name:
                    return facts

    async def ask(self, agent_identity: str) -> dict[str, Any]:
        reply = await self.room.local_participant.perform_rpc(
            destination_identity=agent_identity, method="whoami", payload="", response_timeout=WAIT
        )
        return dict(json.loads(reply))


@contextlib.asynccontextmanager
async def visitor(server: DevServer, room: str, token: str | None = None) -> AsyncIterator[Visitor]:
    """A connected Visitor, disconnected on exit."""
    person = Visitor()
    await asyncio.wait_for(
        person.room.connect(server.url, token or server.token("visitor", room)), WAIT
    )
    try:
        yield person
    finally:
        await person.room.disconnect()
