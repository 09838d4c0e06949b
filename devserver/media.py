"""Audio plumbing: fan-out of a published track to subscribers, and a mix of heard tracks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from fractions import Fraction
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack, rtcrtpreceiver, rtp
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, AudioResampler

log = logging.getLogger("devserver.media")

# About 1 s of 20 ms frames: enough to ride out a slow encoder, small enough that a stalled
# subscriber never holds much memory or hears stale audio.
QUEUE_FRAMES = 50


def _audio_level_dbov(frame: AudioFrame) -> int:
    """RFC 6465 audio level, the same figure as aiortc's own computation, with numpy."""
    samples = np.frombuffer(bytes(frame.planes[0]), dtype=np.int16).astype(np.float64)
    rms = float(np.sqrt(np.sum(samples * samples) / (frame.samples * 32767.0 * 32767.0)))
    if rms <= 0:
        return -127
    return round(min(max(20 * math.log10(rms), -127.0), 0.0))


def use_fast_audio_level() -> None:
    """Swap in the numpy audio level for aiortc's per-sample Python loop.

    aiortc's sender computes it on the event loop for every frame it encodes, about 5 ms per
    20 ms frame: a handful of relayed tracks would otherwise saturate the loop.
    """
    rtp.compute_audio_level_dbov = _audio_level_dbov


def _forwarding_jitter_buffer(capacity: int, prefetch: int = 0,
                              is_video: bool = False) -> JitterBuffer:
    return JitterBuffer(capacity, prefetch if is_video else 0, is_video)


def forward_audio_as_it_comes() -> None:
    """Decode each received audio frame as soon as it is complete.

    aiortc's receiver holds four complete audio frames (80 ms) before it decodes the first,
    smoothing network jitter for a player. LiveKit's server plays nothing: it forwards packets
    as they come and leaves jitter to the subscriber's own buffer, so the relay adds none
    either (loopback delivers in order; a late packet is dropped as before).
    """
    rtcrtpreceiver.JitterBuffer = _forwarding_jitter_buffer  # type: ignore[attr-defined,assignment]


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


MIX_RATE = 48000
MIX_FRAME = 960  # 20 ms
# Per source, at most this much audio waits to be mixed; older samples are dropped.
MIX_BACKLOG = MIX_RATE


MIX_STARVED = 3 * MIX_FRAME
"""Pending audio of one source at which the others are taken to be silent, not late."""


class MixedAudio(MediaStreamTrack):
    """Several sources mixed into 20 ms mono 48 kHz frames, paced by the sources' arrivals.

    A frame is mixed once every source has 20 ms waiting, so each source's samples stay
    contiguous (mixing part of a frame from a source whose next packet is a few ms away shifts
    it and chops its sound). A source that stops sending is left out once another has
    `MIX_STARVED` waiting, and back in with its next packet.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[str, np.ndarray] = {}
        self._resamplers: dict[str, AudioResampler] = {}
        self._arrived = asyncio.Event()
        self._ended = False
        self._pts = 0

    def feed(self, source: str, frame: AudioFrame) -> None:
        resampler = self._resamplers.get(source)
        if resampler is None:
            resampler = AudioResampler(format="s16", layout="mono", rate=MIX_RATE)
            self._resamplers[source] = resampler
        for converted in resampler.resample(frame):
            samples = converted.to_ndarray().reshape(-1)
            waiting = self._pending.get(source)
            if waiting is not None:
                samples = np.concatenate([waiting, samples])
            self._pending[source] = samples[-MIX_BACKLOG:]
        self._arrived.set()

    def _ready(self) -> bool:
        waiting = [len(samples) for samples in self._pending.values()]
        return bool(waiting) and (min(waiting) >= MIX_FRAME or max(waiting) >= MIX_STARVED)

    def forget(self, source: str) -> None:
        self._pending.pop(source, None)
        self._resamplers.pop(source, None)

    def end(self) -> None:
        self._ended = True
        self._arrived.set()

    async def recv(self) -> AudioFrame:
        while not self._ready():
            if self._ended or self.readyState != "live":
                self.stop()
                raise MediaStreamError
            self._arrived.clear()
            await self._arrived.wait()
        mix = np.zeros(MIX_FRAME, dtype=np.int32)
        for source, samples in list(self._pending.items()):
            if len(samples) < MIX_FRAME:
                # Silent or late meanwhile: the frame is mixed without it, and what it has
                # waits for the next one (its next packet adds an emptied source back).
                if not len(samples):
                    del self._pending[source]
                continue
            mix += samples[:MIX_FRAME]
            self._pending[source] = samples[MIX_FRAME:]
        frame = AudioFrame.from_ndarray(
            np.clip(mix, -32768, 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = MIX_RATE
        frame.pts = self._pts
        frame.time_base = Fraction(1, MIX_RATE)
        self._pts += MIX_FRAME
        return frame
