"""Audio fan-out: one published track read once and copied to every subscriber's queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

log = logging.getLogger("devserver.media")

# About 1 s of 20 ms frames: enough to ride out a slow encoder, small enough that a stalled
# subscriber never holds much memory or hears stale audio.
QUEUE_FRAMES = 50


class SubscribedTrack(MediaStreamTrack):
    """What one subscriber's sender reads: the frames of a source, dropped when it lags."""

    def __init__(self, kind: str, track_id: str) -> None:
        super().__init__()
        self.kind = kind
        self._id = track_id
        self._queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_FRAMES)

    def offer(self, frame: Any) -> None:
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(frame)

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame

    def end(self) -> None:
        """Make the reader's next recv fail, as a track that ended does."""
        self.offer(None)


class Fanout:
    """Reads a source track in one task and copies each frame to its subscribers."""

    def __init__(self, source: MediaStreamTrack, track_id: str) -> None:
        self.source = source
        self.track_id = track_id
        self._subscribers: set[SubscribedTrack] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def subscribe(self) -> SubscribedTrack:
        track = SubscribedTrack(self.source.kind, self.track_id)
        self._subscribers.add(track)
        return track

    def unsubscribe(self, track: SubscribedTrack) -> None:
        self._subscribers.discard(track)
        track.end()

    async def _run(self) -> None:
        # Reading continues with no subscriber so that the receiver's jitter buffer drains.
        try:
            while True:
                frame = await self.source.recv()
                for subscriber in tuple(self._subscribers):
                    subscriber.offer(frame)
        except MediaStreamError:
            log.debug("source of %s ended", self.track_id)
        finally:
            for subscriber in tuple(self._subscribers):
                subscriber.end()

    async def close(self) -> None:
        for subscriber in tuple(self._subscribers):
            self.unsubscribe(subscriber)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
