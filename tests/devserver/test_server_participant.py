"""Server-side participants (what the SIP simulator builds on), run in-process with SDK clients."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from fractions import Fraction

import numpy as np
import pytest
from aiohttp import web
from aiortc import MediaStreamTrack
from av import AudioFrame
from livekit import rtc
from livekit.protocol import models

from deploy.processes import free_port
from devserver.app import create_app
from devserver.context import CTX_KEY, Config, ServerContext
from devserver.process import DevServer
from tests.devserver.rtc_helpers import (
    SAMPLE_RATE,
    WAIT,
    analyse,
    joined,
    listen,
    next_remote_audio,
    publishing_sine,
    settle,
)

pytestmark = pytest.mark.realtime


class SineTrack(MediaStreamTrack):
    """An aiortc audio source playing a sine in real time, 20 ms per frame."""

    kind = "audio"

    def __init__(self, frequency: float) -> None:
        super().__init__()
        self.frequency = frequency
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        # Pace like a microphone: a frame is due every 20 ms.
        await asyncio.sleep(max(0.0, self._start + self._pts / SAMPLE_RATE - loop.time()))
        t = (np.arange(960) + self._pts) / SAMPLE_RATE
        samples = (np.sin(2 * np.pi * self.frequency * t) * 8000).astype(np.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._pts += 960
        return frame


@pytest.fixture
async def server() -> AsyncIterator[tuple[DevServer, ServerContext]]:
    """The devserver app in this test's event loop, so the test can reach its rooms."""
    port = free_port()
    app = create_app(Config(port=port))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield DevServer(port=port), app[CTX_KEY]
    await runner.cleanup()


async def heard_by(track: MediaStreamTrack, seconds: float = 1.0) -> np.ndarray:
    frames: list[np.ndarray] = []
    async with asyncio.timeout(WAIT):
        while sum(len(f) for f in frames) < seconds * SAMPLE_RATE:
            frame = await track.recv()
            frames.append(frame.to_ndarray().reshape(-1))
    return np.concatenate(frames)


async def test_a_client_hears_audio_published_by_a_server_participant(
    server: tuple[DevServer, ServerContext],
) -> None:
    devserver, ctx = server
    name = f"sp-{uuid.uuid4().hex[:8]}"
    room, _ = await ctx.rooms.create_room(name)
    caller = await room.add_server_participant(
        "sip-caller",
        name="Caller",
        kind=models.ParticipantInfo.Kind.SIP,
        attributes={"sip.callStatus": "active"},
        metadata="",
    )
    async with joined(devserver, "agent", name) as agent:
        info = await caller.publish_audio(SineTrack(550.0), name="phone")
        heard = await listen(await next_remote_audio(agent))
        seen = agent.remote_participants["sip-caller"]
    assert info.sid.startswith("TR_")
    assert seen.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP
    assert seen.attributes == {"sip.callStatus": "active"}
    assert abs(heard.dominant_hz - 550.0) < 10


async def test_a_server_participant_hears_the_mix_of_the_room(
    server: tuple[DevServer, ServerContext],
) -> None:
    devserver, ctx = server
    name = f"sp-{uuid.uuid4().hex[:8]}"
    room, _ = await ctx.rooms.create_room(name)
    caller = await room.add_server_participant(
        "sip-caller", name="", kind=models.ParticipantInfo.Kind.SIP, attributes={}, metadata=""
    )
    async with (
        joined(devserver, "agent", name) as agent,
        joined(devserver, "human", name) as human,
        publishing_sine(agent, 440.0),
        publishing_sine(human, 660.0),
    ):
        ear = caller.subscribe_audio()
        await heard_by(ear, 0.5)  # codec warm-up
        samples = await heard_by(ear)
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    peaks = sorted(np.argsort(spectrum)[-2:] * SAMPLE_RATE / len(samples))
    assert abs(peaks[0] - 440.0) < 10 and abs(peaks[1] - 660.0) < 10
    assert analyse(samples).rms > 1000


async def test_data_and_attributes_flow_between_server_and_client_participants(
    server: tuple[DevServer, ServerContext],
) -> None:
    devserver, ctx = server
    name = f"sp-{uuid.uuid4().hex[:8]}"
    room, _ = await ctx.rooms.create_room(name)
    caller = await room.add_server_participant(
        "sip-caller", name="", kind=models.ParticipantInfo.Kind.SIP, attributes={}, metadata=""
    )
    to_caller: asyncio.Future[models.DataPacket] = asyncio.get_running_loop().create_future()
    caller.on_data(lambda packet: settle(to_caller, packet))
    async with joined(devserver, "agent", name) as agent:
        dtmf: asyncio.Future[rtc.SipDTMF] = asyncio.get_running_loop().create_future()
        agent.on("sip_dtmf_received", lambda event: settle(dtmf, event))
        changed: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        agent.on("participant_attributes_changed", lambda a, p: settle(changed, dict(p.attributes)))
        await agent.local_participant.publish_data(b"hello caller")
        await caller.send_data(models.DataPacket(sip_dtmf=models.SipDTMF(code=5, digit="5")))
        await caller.update_attributes({"sip.callStatus": "hangup"})
        packet = await asyncio.wait_for(to_caller, WAIT)
        assert (await asyncio.wait_for(dtmf, WAIT)).digit == "5"
        assert await asyncio.wait_for(changed, WAIT) == {"sip.callStatus": "hangup"}
        left = asyncio.Event()
        agent.on("participant_disconnected", lambda p: left.set())
        await caller.leave(models.DisconnectReason.CLIENT_INITIATED)
        await asyncio.wait_for(left.wait(), WAIT)
    assert (packet.user.payload, packet.participant_identity) == (b"hello caller", "agent")


async def test_a_server_side_unsubscribe_takes_a_track_out_of_a_sip_participants_mix(
    server: tuple[DevServer, ServerContext],
) -> None:
    """What a consult needs: the phone human stops hearing the visitor while the agent briefs
    them, through UpdateSubscriptions as on LiveKit, and hears them again after."""
    devserver, ctx = server
    name = f"sp-{uuid.uuid4().hex[:8]}"
    room, _ = await ctx.rooms.create_room(name)
    caller = await room.add_server_participant(
        "sip-caller", name="", kind=models.ParticipantInfo.Kind.SIP, attributes={}, metadata=""
    )
    async with (
        joined(devserver, "agent", name) as agent,
        joined(devserver, "visitor", name) as visitor,
        publishing_sine(agent, 440.0),
        publishing_sine(visitor, 660.0),
    ):
        ear = caller.subscribe_audio()
        await heard_by(ear, 0.5)  # codec warm-up
        [visitor_track] = [sid for sid in visitor.local_participant.track_publications]
        await room.update_subscriptions("sip-caller", [visitor_track], False)
        # What was mixed before the change drains through the codec's buffers first.
        await until_heard(ear, visitor_left_out)
        apart = await heard_by(ear)
        await room.update_subscriptions("sip-caller", [visitor_track], True)
        await until_heard(ear, visitor_mixed_in)
        together = await heard_by(ear)

    assert visitor_left_out(apart)
    assert visitor_mixed_in(together)


def strength(samples: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(spectrum[round(hz * len(samples) / SAMPLE_RATE)])


def visitor_left_out(samples: np.ndarray) -> bool:
    """The visitor's 660 Hz tone is at least 20 times weaker than the agent's 440 Hz one: what
    is left is the codec's spread of the agent's tone."""
    return strength(samples, 660.0) < strength(samples, 440.0) / 20


def visitor_mixed_in(samples: np.ndarray) -> bool:
    """The visitor's tone is in the mix at about the agent's strength."""
    return strength(samples, 660.0) > strength(samples, 440.0) / 4


async def until_heard(track: MediaStreamTrack, condition: Callable[[np.ndarray], bool]) -> None:
    """Listen in fifths of a second until a fifth meets `condition` (within WAIT)."""
    async with asyncio.timeout(WAIT):
        while not condition(await heard_by(track, 0.2)):
            pass
