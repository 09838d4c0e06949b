"""Python rtc SDK participants for devserver tests: connect, publish a sine, analyse audio."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from livekit import rtc

from devserver.process import DevServer

SAMPLE_RATE = 48000
FRAME_SAMPLES = 480  # 10 ms
T = TypeVar("T")

WAIT = 30.0  # generous: the machine may be loaded by other suites


@contextlib.asynccontextmanager
async def joined(
    server: DevServer, identity: str, room: str, **grants: bool
) -> AsyncIterator[rtc.Room]:
    """A connected SDK participant, disconnected on exit."""
    client = rtc.Room()
    await asyncio.wait_for(client.connect(server.url, server.token(identity, room, **grants)), WAIT)
    try:
        yield client
    finally:
        await client.disconnect()


@contextlib.asynccontextmanager
async def publishing_sine(
    client: rtc.Room, frequency: float = 440.0
) -> AsyncIterator[rtc.LocalTrackPublication]:
    """Publish a microphone track playing a sine for as long as the block runs."""
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track("sine", source)
    options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    publication = await client.local_participant.publish_track(track, options)

    async def play() -> None:
        start = 0
        while True:
            t = (np.arange(FRAME_SAMPLES) + start) / SAMPLE_RATE
            samples = (np.sin(2 * np.pi * frequency * t) * 8000).astype(np.int16)
            start += FRAME_SAMPLES
            await source.capture_frame(
                rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES)
            )

    player = asyncio.create_task(play())
    try:
        yield publication
    finally:
        player.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await player


def settle(future: asyncio.Future[T], value: T) -> None:
    """Resolve `future` with the first value an event gives it (events may fire again)."""
    if not future.done():
        future.set_result(value)


def set_if(event: asyncio.Event, condition: bool) -> None:
    if condition:
        event.set()


@dataclass
class Heard:
    """What a stretch of received audio carries."""

    rms: float
    dominant_hz: float


def analyse(samples: np.ndarray) -> Heard:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    spectrum[0] = 0
    return Heard(
        rms=float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))),
        dominant_hz=float(np.argmax(spectrum) * SAMPLE_RATE / len(samples)),
    )


async def next_remote_audio(client: rtc.Room) -> rtc.RemoteAudioTrack:
    """The first remote audio track this participant is (or becomes) subscribed to."""
    for participant in client.remote_participants.values():
        for publication in participant.track_publications.values():
            if isinstance(publication.track, rtc.RemoteAudioTrack):
                return publication.track
    subscribed: asyncio.Future[rtc.RemoteAudioTrack] = asyncio.get_running_loop().create_future()

    def on_subscribed(track: rtc.Track, *_: object) -> None:
        if isinstance(track, rtc.RemoteAudioTrack) and not subscribed.done():
            subscribed.set_result(track)

    client.on("track_subscribed", on_subscribed)
    try:
        return await asyncio.wait_for(subscribed, WAIT)
    finally:
        client.off("track_subscribed", on_subscribed)


async def listen(track: rtc.RemoteAudioTrack, seconds: float = 1.0, *, skip: float = 0.5) -> Heard:
    """Analyse `seconds` of a track's audio after the first `skip` seconds (codec warm-up)."""
    stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
    chunks: list[np.ndarray] = []
    needed, skipped = int(seconds * SAMPLE_RATE), 0
    try:
        async with asyncio.timeout(WAIT):
            async for event in stream:
                samples = np.frombuffer(event.frame.data, dtype=np.int16)
                if skipped < skip * SAMPLE_RATE:
                    skipped += len(samples)
                    continue
                chunks.append(samples.copy())
                if sum(len(c) for c in chunks) >= needed:
                    break
    finally:
        await stream.aclose()
    return analyse(np.concatenate(chunks))


async def goes_quiet(track: rtc.RemoteAudioTrack, gap: float = 1.5) -> None:
    """Return once no audio frame has arrived for `gap` seconds; fail if that never happens."""
    stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
    frames = aiter(stream)
    try:
        async with asyncio.timeout(WAIT):
            while True:
                try:
                    await asyncio.wait_for(anext(frames), gap)
                except TimeoutError:
                    return
    finally:
        await stream.aclose()
