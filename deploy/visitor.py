"""A call participant made with the Python rtc SDK: hears the agent and speaks real speech."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import subprocess
import time

import numpy as np
from livekit import rtc

SAMPLE_RATE = 48_000
FRAME_MS = 20
SPEECH_RMS = 300.0
"""Frames louder than this are speech; the agent's silence and comfort noise are far below."""


@functools.lru_cache(maxsize=32)
def speech_pcm(text: str) -> np.ndarray:
    """Real speech for `text` (espeak-ng, resampled by sox) as 48 kHz mono int16 samples, made
    once per text: tests and benches say the same sentences again and again."""
    spoken = subprocess.run(["espeak-ng", "--stdout", "-s", "160", text], check=True,
                            capture_output=True).stdout
    raw = subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", str(SAMPLE_RATE),
                          "-e", "signed", "-b", "16", "-c", "1", "-"], input=spoken,
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.int16)


class Visitor:
    """Joins with the token from the switch, listens to the agent and can speak.

    Everything it hears is counted by where it came from (`loud_from`, keyed
    "<participant identity>/<track name>"), so a test can tell the agent's voice from its hold
    audio and from a human's voice.
    """

    def __init__(self, *, auto_subscribe: bool = True) -> None:
        self.room = rtc.Room()
        self.auto_subscribe = auto_subscribe
        self.loud_frames = 0
        self.first_loud_at: float | None = None
        self.loud_from: dict[str, int] = {}
        self.subscribed: list[str] = []
        """Every audio track it was sent, as "<participant identity>/<track name>", in order."""
        self._heard = asyncio.Event()
        self._heard_any = asyncio.Event()
        self._agent_track = asyncio.Event()
        self._listeners: set[asyncio.Task[None]] = set()
        self._source = rtc.AudioSource(SAMPLE_RATE, 1)
        self._track: rtc.LocalAudioTrack | None = None
        self.agent_states: list[str] = []
        self._state_changed = asyncio.Event()
        self.room.on("track_subscribed", self._on_track_subscribed)
        self.room.on("participant_attributes_changed", self._on_attributes_changed)

    async def join(self, url: str, token: str, *, publish: bool = True) -> None:
        await self.room.connect(url, token, rtc.RoomOptions(auto_subscribe=self.auto_subscribe))
        if publish:
            await self.publish_microphone()

    async def publish_microphone(self) -> None:
        self._track = rtc.LocalAudioTrack.create_audio_track("microphone", self._source)
        await self.room.local_participant.publish_track(
            self._track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))

    def _on_track_subscribed(self, track: rtc.Track, publication: rtc.RemoteTrackPublication,
                             participant: rtc.RemoteParticipant) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        agent = participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        source = f"{participant.identity}/{publication.name}"
        self.subscribed.append(source)
        task = asyncio.create_task(self._listen(rtc.AudioStream(track), agent=agent,
                                                source=source))
        self._listeners.add(task)
        task.add_done_callback(self._listeners.discard)
        if agent:
            self._agent_track.set()

    async def subscribed_to_agent(self) -> None:
        """Wait until the visitor receives the agent's audio track (silent or not)."""
        await self._agent_track.wait()

    async def _listen(self, stream: rtc.AudioStream, *, agent: bool, source: str) -> None:
        async for event in stream:
            samples = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float64)
            if not samples.size or float(np.sqrt(np.mean(samples**2))) <= SPEECH_RMS:
                continue
            self.loud_from[source] = self.loud_from.get(source, 0) + 1
            self._heard_any.set()
            if agent:
                self.loud_frames += 1
                if self.first_loud_at is None:
                    self.first_loud_at = time.time()
                self._heard.set()

    def heard(self, prefix: str) -> int:
        """Loud frames heard from sources whose "<identity>/<track>" starts with `prefix`."""
        return sum(n for source, n in self.loud_from.items() if source.startswith(prefix))

    async def hears(self, prefix: str, frames: int = 10) -> None:
        """Wait until `frames` loud frames came from sources starting with `prefix`."""
        while self.heard(prefix) < frames:
            self._heard_any.clear()
            await self._heard_any.wait()

    async def hears_speech(self) -> None:
        """Wait for agent speech arriving after the last call of `expect_speech`."""
        await self._heard.wait()

    def expect_speech(self) -> None:
        self._heard.clear()

    def _on_attributes_changed(self, changed: dict[str, str],
                               participant: rtc.Participant) -> None:
        state = changed.get("lk.agent.state")
        if state is not None:
            self.agent_states.append(state)
            self._state_changed.set()

    def mark(self) -> int:
        """A point in the agent's state history to wait from."""
        return len(self.agent_states)

    async def agent_spoke_since(self, mark: int) -> None:
        """Wait until the agent started speaking and went back to listening after `mark`."""
        while True:
            states = self.agent_states[mark:]
            if "speaking" in states and "listening" in states[states.index("speaking"):]:
                return
            self._state_changed.clear()
            await self._state_changed.wait()

    async def say(self, text: str, *, trailing_silence: float = 1.5) -> None:
        """Speak `text` into the microphone in real time, then stay quiet so the turn ends."""
        samples = speech_pcm(text)
        silence = np.zeros(int(SAMPLE_RATE * trailing_silence), dtype=np.int16)
        audio = np.concatenate([samples, silence])
        per_frame = SAMPLE_RATE * FRAME_MS // 1000
        for start in range(0, len(audio) - per_frame + 1, per_frame):
            chunk = audio[start:start + per_frame]
            frame = rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, per_frame)
            # capture_frame paces itself to real time through the source's queue.
            await self._source.capture_frame(frame)

    def describe(self) -> str:
        tracks = [(p.identity, len(p.track_publications))
                  for p in self.room.remote_participants.values()]
        return (f"agent states seen {self.agent_states}, {self.loud_frames} loud frames, "
                f"remote tracks {tracks}")

    async def leave(self) -> None:
        for task in list(self._listeners):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._listeners, return_exceptions=True)
        await self.room.disconnect()
        await self._source.aclose()
