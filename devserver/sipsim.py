"""The simulated far end of a SIP call: ringing, answer or failure, audio, DTMF, hang-up, REFER."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from livekit.protocol import models

from devserver.serverparticipant import ServerParticipant
from devserver.sipscript import DTMF_DIGITS, CallBehaviour, TransferBehaviour
from devserver.twirp import TwirpError

log = logging.getLogger("devserver.sip")

RATE = 48000
FRAME_SAMPLES = 960  # 20 ms, what LiveKit's SIP bridge publishes
# After a successful REFER the bridge waits this long for the far end's BYE, then hangs up.
REFER_BYE_TIMEOUT = 1.0

ATTR_CALL_STATUS = "sip.callStatus"

# LiveKit's mapping of SIP failure statuses to Twirp codes (livekit/protocol livekit/sip.go).
TWIRP_CODE_BY_SIP_STATUS: dict[int, str] = {
    300: "invalid_argument",
    301: "not_found",
    302: "not_found",
    305: "invalid_argument",
    380: "invalid_argument",
    400: "invalid_argument",
    401: "permission_denied",
    402: "permission_denied",
    403: "permission_denied",
    404: "not_found",
    405: "invalid_argument",
    406: "invalid_argument",
    407: "unauthenticated",
    408: "deadline_exceeded",
    409: "failed_precondition",
    410: "not_found",
    411: "invalid_argument",
    412: "failed_precondition",
    413: "invalid_argument",
    414: "invalid_argument",
    415: "invalid_argument",
    416: "out_of_range",
    417: "invalid_argument",
    420: "invalid_argument",
    421: "invalid_argument",
    422: "invalid_argument",
    423: "invalid_argument",
    424: "invalid_argument",
    425: "invalid_argument",
    428: "unauthenticated",
    429: "invalid_argument",
    430: "invalid_argument",
    433: "permission_denied",
    436: "unauthenticated",
    437: "unauthenticated",
    438: "unauthenticated",
    439: "invalid_argument",
    440: "resource_exhausted",
    469: "invalid_argument",
    470: "permission_denied",
    480: "resource_exhausted",
    481: "not_found",
    482: "failed_precondition",
    483: "failed_precondition",
    484: "invalid_argument",
    485: "invalid_argument",
    486: "resource_exhausted",
    487: "aborted",
    488: "invalid_argument",
    489: "invalid_argument",
    491: "aborted",
    493: "invalid_argument",
    494: "unauthenticated",
    500: "failed_precondition",
    501: "failed_precondition",
    502: "failed_precondition",
    503: "failed_precondition",
    504: "deadline_exceeded",
    505: "invalid_argument",
    513: "invalid_argument",
    600: "resource_exhausted",
    603: "permission_denied",
    604: "not_found",
    606: "invalid_argument",
    607: "permission_denied",
    608: "permission_denied",
}


def twirp_code(status: int) -> str:
    """The Twirp code LiveKit answers a SIP failure status with, by class when not listed."""
    if status in TWIRP_CODE_BY_SIP_STATUS:
        return TWIRP_CODE_BY_SIP_STATUS[status]
    if 500 <= status < 600:
        return "failed_precondition"
    return "invalid_argument" if status >= 300 else "unknown"


def sip_error(what: str, status: int, reason: str) -> TwirpError:
    """A failure as LiveKit reports it: sip_status_code and sip_status in the Twirp meta."""
    return TwirpError(
        twirp_code(status),
        f"{what}: sip status: {status}: {reason}",
        {"sip_status_code": str(status), "sip_status": reason},
    )


def redact(number: str) -> str:
    """A phone number fit for a log line: +44******789."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 6) + number[-3:]


def load_pcm(path: Path) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Decode an audio file to 48 kHz mono signed 16-bit samples."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    chunks: list[np.ndarray[Any, np.dtype[np.int16]]] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(_samples(f) for f in resampler.resample(frame))
        chunks.extend(_samples(f) for f in resampler.resample(None))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def _samples(frame: av.AudioFrame) -> np.ndarray[Any, np.dtype[np.int16]]:
    return np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1)


class PcmTrack(MediaStreamTrack):
    """Plays samples in real time in 20 ms frames, then silence (or again, when looping)."""

    kind = "audio"

    def __init__(self, samples: np.ndarray[Any, np.dtype[np.int16]], *, loop: bool) -> None:
        super().__init__()
        self._samples = samples
        self._looping = loop and len(samples) > 0
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            delay = self._start + self._pts / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        chunk = self._chunk(self._pts)
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += FRAME_SAMPLES
        return frame

    def _chunk(self, start: int) -> np.ndarray[Any, np.dtype[np.int16]]:
        total = len(self._samples)
        if self._looping:
            index = np.arange(start, start + FRAME_SAMPLES) % total
            return self._samples[index]
        chunk = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if start < total:
            part = self._samples[start : start + FRAME_SAMPLES]
            chunk[: len(part)] = part
        return chunk


class SimulatedCall:
    """One outbound call: the SIP participant in the room and the scripted far end behind it."""

    def __init__(
        self,
        call_id: str,
        participant: ServerParticipant,
        behaviour: CallBehaviour,
        *,
        ringing_timeout: float,
        max_duration: float | None,
        dtmf: str,
    ) -> None:
        self.call_id = call_id
        self.participant = participant
        self.behaviour = behaviour
        self.ringing_timeout = ringing_timeout
        self.max_duration = max_duration
        self.dtmf = dtmf
        # Resolves when the far end answers; fails with the SIP error when it does not.
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transferring = False
        self.hears: MediaStreamTrack | None = None
        """The room's audio as the far end receives it, from the answer on."""
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        self._spawn(self._run())
        self._spawn(self._watch_leave())

    async def transfer(self, outcome: TransferBehaviour) -> bool:
        """Simulate a REFER; on success the call hangs up shortly after, as LiveKit's does."""
        if self.transferring:
            raise TwirpError("invalid_argument", "call already being transferred elsewhere")
        self.transferring = True
        try:
            log.info("call %s: REFER sent", self.call_id)
            await asyncio.sleep(outcome.after_ms / 1000)
            if not outcome.succeeds:
                log.info("call %s: transfer failed with %s", self.call_id, outcome.status)
                return False
            log.info("call %s: transferred", self.call_id)
            self._spawn(self._hang_up_after(REFER_BYE_TIMEOUT, "transferred"))
            return True
        finally:
            self.transferring = False

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if not self.answered.done():
            self.answered.cancel()

    async def _run(self) -> None:
        b = self.behaviour
        started = time.monotonic()
        final_at = (
            self.ringing_timeout
            if b.no_answer
            else min(b.answer_after_ms / 1000, self.ringing_timeout)
        )
        if b.ring_after_ms / 1000 < final_at:
            await asyncio.sleep(b.ring_after_ms / 1000)
            await self._set_status("ringing")
        await asyncio.sleep(max(0.0, started + final_at - time.monotonic()))
        if b.no_answer or b.answer_after_ms / 1000 > self.ringing_timeout:
            await self._fail(408, "Request Timeout", models.DisconnectReason.USER_UNAVAILABLE)
            return
        if not b.answers:
            reason = (
                models.DisconnectReason.USER_REJECTED
                if b.status in (603, 607, 608)
                else models.DisconnectReason.USER_UNAVAILABLE
            )
            await self._fail(b.status, b.reason_phrase, reason)
            return
        if self.dtmf:
            # The bridge dials the request's DTMF digits to the far end before going active.
            await self._set_status("automation")
        await self._set_status("active")
        log.info("call %s answered", self.call_id)
        if not self.answered.done():
            self.answered.set_result(None)
        await self._media()

    async def _media(self) -> None:
        b = self.behaviour
        # Once the call is established LiveKit SIP subscribes to the room's audio and sends it
        # to the far end, so publishers (an agent waiting to speak) see their track
        # subscribed. The scripted far end does not react to what it hears.
        self.hears = self.participant.subscribe_audio()
        if b.audio is not None:
            samples = await asyncio.to_thread(load_pcm, b.audio)
            await self.participant.publish_audio(
                PcmTrack(samples, loop=b.audio_loop),
                name="phone",
                source=models.TrackSource.MICROPHONE,
            )
        if b.dtmf:
            self._spawn(self._send_dtmf(b))
        ends = [
            (t, why)
            for t, why in (
                (b.hangup_after_s, "far end hung up"),
                (self.max_duration, "max call duration"),
            )
            if t is not None
        ]
        if ends:
            self._spawn(self._hang_up_after(*min(ends)))

    async def _send_dtmf(self, b: CallBehaviour) -> None:
        await asyncio.sleep(b.dtmf_after_ms / 1000)
        for index, digit in enumerate(b.dtmf):
            if index:
                await asyncio.sleep(b.dtmf_interval_ms / 1000)
            packet = models.DataPacket(
                kind=models.DataPacket.Kind.RELIABLE,
                sip_dtmf=models.SipDTMF(code=_dtmf_code(digit), digit=digit),
            )
            await self.participant.send_data(packet)
        log.info("call %s: sent %d DTMF digits", self.call_id, len(b.dtmf))

    async def _hang_up_after(self, seconds: float, why: str) -> None:
        await asyncio.sleep(seconds)
        if self.participant.left.is_set():
            return
        log.info("call %s: %s", self.call_id, why)
        await self._set_status("hangup")
        await self.participant.leave(models.DisconnectReason.CLIENT_INITIATED)

    async def _fail(self, status: int, reason: str, why: models.DisconnectReason) -> None:
        log.info("call %s failed: %s %s", self.call_id, status, reason)
        if not self.answered.done():
            self.answered.set_exception(sip_error("INVITE failed", status, reason))
            # Mark it retrieved: without wait_until_answered nobody awaits it.
            self.answered.exception()
        if not self.participant.left.is_set():
            await self.participant.leave(why)

    async def _set_status(self, status: str) -> None:
        if self.participant.left.is_set():
            return
        with contextlib.suppress(TwirpError):
            await self.participant.update_attributes({ATTR_CALL_STATUS: status})

    async def _watch_leave(self) -> None:
        """Removed from the room or the room closed: the call is over, whatever its state."""
        await self.participant.left.wait()
        if not self.answered.done():
            self.answered.set_exception(TwirpError("canceled", "call ended before it was answered"))
            self.answered.exception()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call %s task failed", self.call_id, exc_info=task.exception())


def _dtmf_code(digit: str) -> int:
    """The RFC 4733 event code of a DTMF digit."""
    return DTMF_DIGITS.index(digit.upper())
