"""OpenAI's realtime transcription over a websocket, with the turn detection its server does.

The plugin streams the visitor's audio (`input_audio_buffer.append`, 24 kHz PCM in base64) and
reads back `input_audio_buffer.speech_started` / `speech_stopped` and one
`conversation.item.input_audio_transcription.completed` per utterance. OpenAI cuts utterances
with a neural detector; the scripted voice is clean speech between digital silences, so a level
threshold cuts it the same way. Each utterance takes the next scripted transcript.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from modelserver.speech import SPEECH_SAMPLE_RATE

WINDOW_MS = 10
SPEECH_LEVEL = 300.0
"""RMS of 16-bit samples above which a window starts speech (about -40 dBFS): the scripted
voice speaks at 1500-3000, and silence relayed by WebRTC stays under 10."""
QUIET_LEVEL = 100.0
"""RMS below which a window counts towards the end of speech once speech started: a lower
level than the start's, as a neural detector's two thresholds, so the fading audio WebRTC plays
over a late packet does not end an utterance any sooner than silence would."""


@dataclass(frozen=True, slots=True)
class TurnDetection:
    """The `server_vad` settings a session asks for; OpenAI's defaults otherwise."""

    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500

    @classmethod
    def from_session(cls, session: dict[str, Any]) -> TurnDetection:
        wanted = (session.get("audio", {}).get("input", {}).get("turn_detection") or {})
        default = cls()
        return cls(int(wanted.get("prefix_padding_ms", default.prefix_padding_ms)),
                   int(wanted.get("silence_duration_ms", default.silence_duration_ms)))


@dataclass(frozen=True, slots=True)
class Utterance:
    """One stretch of speech, in milliseconds from the start of the session's audio."""

    start_ms: int
    end_ms: int
    rms: float


@dataclass(slots=True)
class ServerVAD:
    """Cuts a stream of PCM into utterances: speech starts with the first loud window and ends
    after `silence_duration_ms` of quiet ones.

    Invariant: `feed` yields a started time before the matching utterance, and each utterance
    once; audio arriving in pieces of any size is cut as if it came whole.
    """

    turn: TurnDetection = field(default_factory=TurnDetection)
    _pending: bytes = b""
    _window: int = 0
    _started_ms: int | None = None
    _last_speech_ms: int = 0
    _energy: float = 0.0
    _samples: int = 0

    def feed(self, pcm: bytes) -> Iterator[int | Utterance]:
        size = SPEECH_SAMPLE_RATE * WINDOW_MS // 1000 * 2
        data = self._pending + pcm
        whole = len(data) // size * size
        self._pending = data[whole:]
        for offset in range(0, whole, size):
            samples = np.frombuffer(data[offset:offset + size], dtype=np.int16)
            level = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
            now_ms = self._window * WINDOW_MS
            self._window += 1
            if self._started_ms is None and level > SPEECH_LEVEL:
                self._started_ms = max(0, now_ms - self.turn.prefix_padding_ms)
                self._energy, self._samples = 0.0, 0
                yield self._started_ms
            if self._started_ms is not None and level > QUIET_LEVEL:
                self._last_speech_ms = now_ms + WINDOW_MS
            if self._started_ms is not None:
                self._energy += level**2 * len(samples)
                self._samples += len(samples)
                if now_ms + WINDOW_MS - self._last_speech_ms >= self.turn.silence_duration_ms:
                    yield Utterance(self._started_ms, self._last_speech_ms,
                                    float(np.sqrt(self._energy / self._samples)))
                    self._started_ms = None


Record = Callable[[str, dict[str, Any]], Awaitable[None]]


async def serve(request: web.Request, *, transcript: Callable[[], str],
                delay: Callable[[], float], record: Record) -> web.WebSocketResponse:
    """One transcription session, until the client closes it. `transcript` gives the next
    scripted text, `delay` the seconds a transcription takes."""
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    items = (f"item_{n}" for n in itertools.count(1))
    vad = ServerVAD()
    item = ""
    answers: set[asyncio.Task[None]] = set()

    async def answer(item_id: str, text: str) -> None:
        await asyncio.sleep(delay())
        if socket.closed:
            return
        await socket.send_json({"type": "conversation.item.input_audio_transcription.delta",
                                "item_id": item_id, "content_index": 0, "delta": text})
        await socket.send_json({"type": "conversation.item.input_audio_transcription.completed",
                                "item_id": item_id, "content_index": 0, "transcript": text,
                                "usage": {"type": "duration", "seconds": 0}})

    async for message in socket:
        if message.type != WSMsgType.TEXT:
            continue
        event = _parse(message.data)
        kind = event.get("type")
        if kind == "session.update":
            session = event.get("session")
            session = session if isinstance(session, dict) else {}
            await record(request.path, {"type": kind, "session": session})
            vad.turn = TurnDetection.from_session(session)
            await socket.send_json({"type": "session.updated", "session": session})
        elif kind == "input_audio_buffer.append":
            audio = _audio(event)
            if audio is None:
                await socket.send_json(_error("audio must be base64-encoded PCM"))
                continue
            for cut in vad.feed(audio):
                if isinstance(cut, int):
                    item = next(items)
                    await socket.send_json({"type": "input_audio_buffer.speech_started",
                                            "item_id": item, "audio_start_ms": cut})
                    continue
                await socket.send_json({"type": "input_audio_buffer.speech_stopped",
                                        "item_id": item, "audio_end_ms": cut.end_ms})
                await socket.send_json({"type": "input_audio_buffer.committed",
                                        "item_id": item, "previous_item_id": None})
                await record(request.path, {
                    "type": "input_audio_buffer.committed",
                    "audio_seconds": (cut.end_ms - cut.start_ms) / 1000, "audio_rms": cut.rms})
                task = asyncio.create_task(answer(item, transcript()))
                answers.add(task)
                task.add_done_callback(answers.discard)
        else:
            await socket.send_json(_error(f"unknown event type {kind!r}"))
    for task in answers:
        task.cancel()
    await asyncio.gather(*answers, return_exceptions=True)
    return socket


def _parse(data: str) -> dict[str, Any]:
    """The event in a text message; anything but a JSON object is an event of no type."""
    try:
        event = json.loads(data)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def _audio(event: dict[str, Any]) -> bytes | None:
    encoded = event.get("audio")
    if not isinstance(encoded, str):
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _error(message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
