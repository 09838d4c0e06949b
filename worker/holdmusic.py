"""Hold audio for a visitor waiting for a person: a soft, looping arpeggio made with numpy, so
the image needs no audio file and nothing is licensed."""

from __future__ import annotations

import asyncio
import contextlib
from functools import lru_cache

import numpy as np
from livekit import rtc

SAMPLE_RATE = 48_000
FRAME_MS = 20
NOTES_HZ = (261.63, 329.63, 392.00, 523.25, 392.00, 329.63)
NOTE_SECONDS = 0.6
LEVEL = 0.12
"""Peak amplitude (of full scale): audible, well under speech."""


@lru_cache(maxsize=1)
def loop_pcm() -> np.ndarray:
    """One loop of the tune as 16-bit mono samples, each note faded in and out."""
    per_note = int(SAMPLE_RATE * NOTE_SECONDS)
    t = np.arange(per_note) / SAMPLE_RATE
    envelope = np.minimum(1.0, np.minimum(t / 0.05, (NOTE_SECONDS - t) / 0.25))
    notes = [np.sin(2 * np.pi * f * t) * envelope for f in NOTES_HZ]
    return (np.concatenate(notes) * LEVEL * 32767).astype(np.int16)


class HoldMusic:
    """A published track playing the tune until stopped."""

    def __init__(self, room: rtc.Room) -> None:
        self.room = room
        self.source = rtc.AudioSource(SAMPLE_RATE, 1)
        self.track = rtc.LocalAudioTrack.create_audio_track("baton-hold", self.source)
        self.sid: str | None = None
        self._player: asyncio.Task[None] | None = None

    async def start(self) -> str:
        publication = await self.room.local_participant.publish_track(
            self.track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_UNKNOWN))
        self.sid = publication.sid
        self._player = asyncio.create_task(self._play(), name="baton-hold-music")
        return publication.sid

    async def stop(self) -> None:
        if self._player is not None:
            self._player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._player
            self._player = None
        if self.sid is not None:
            # The room may be closing already; the track goes with it then.
            with contextlib.suppress(Exception):
                await self.room.local_participant.unpublish_track(self.sid)
            self.sid = None
        await self.source.aclose()

    async def _play(self) -> None:
        pcm = loop_pcm()
        per_frame = SAMPLE_RATE * FRAME_MS // 1000
        while True:
            for start in range(0, len(pcm) - per_frame + 1, per_frame):
                chunk = pcm[start:start + per_frame]
                # capture_frame paces itself to real time through the source's queue.
                await self.source.capture_frame(
                    rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, per_frame))
