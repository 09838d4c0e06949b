"""Per-request accounting of time spent waiting on LiveKit and Redis, sent as Server-Timing."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

T = TypeVar("T")


@dataclass
class RequestTiming:
    """Wall time split into waits and the rest ("own"), plus the CPU time of the rest.

    Every await on the request's path that can yield to other requests is inside `waiting`,
    so between waits the request runs alone: the thread's CPU clock over those stretches is
    this request's CPU time, free of other requests and of the OS scheduling other processes.
    """

    started: float = field(default_factory=time.perf_counter)
    waited: dict[str, float] = field(default_factory=dict)
    cpu: float = 0.0
    _depth: int = 0
    _stretch: float = field(default_factory=time.thread_time)

    def pause(self) -> None:
        if self._depth == 0:
            self.cpu += time.thread_time() - self._stretch
        self._depth += 1

    def resume(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._stretch = time.thread_time()

    def header(self) -> str:
        total = time.perf_counter() - self.started
        cpu = self.cpu + (time.thread_time() - self._stretch if self._depth == 0 else 0.0)
        own = max(0.0, total - sum(self.waited.values()))
        parts = [f"own;dur={own * 1000:.3f}", f"cpu;dur={cpu * 1000:.3f}"]
        parts += [f"{name};dur={seconds * 1000:.3f}" for name, seconds in self.waited.items()]
        parts.append(f"total;dur={total * 1000:.3f}")
        return ", ".join(parts)


# A mutable object in the variable, so tasks that copy the context still add to the same one.
_current: ContextVar[RequestTiming | None] = ContextVar("baton_request_timing", default=None)


@contextmanager
def waiting(on: str) -> Iterator[None]:
    """Count the time inside the block as waiting on `on` (e.g. "livekit", "redis")."""
    timing = _current.get()
    if timing is not None:
        timing.pause()
    start = time.perf_counter()
    try:
        yield
    finally:
        if timing is not None:
            timing.waited[on] = timing.waited.get(on, 0.0) + time.perf_counter() - start
            timing.resume()


async def waited(on: str, awaitable: Awaitable[T]) -> T:
    with waiting(on):
        return await awaitable


class ServerTimingMiddleware:
    """Adds `Server-Timing: own;dur=..` so benchmarks can separate our time from our deps'."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timing = RequestTiming()
        token = _current.set(timing)

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("Server-Timing", timing.header())
            await send(message)

        try:
            await self.app(scope, receive, send_with_timing)
        finally:
            _current.reset(token)
