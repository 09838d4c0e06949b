"""The devserver's relay: how aiortc's receiving side is set up for forwarding."""

from __future__ import annotations

from aiortc import rtcrtpreceiver
from aiortc.rtp import RtpPacket

from devserver.media import forward_audio_as_it_comes


def packet(sequence_number: int, timestamp: int, data: bytes) -> RtpPacket:
    """An RTP packet as aiortc's receiver hands it to the jitter buffer, depayloaded."""
    received = RtpPacket(sequence_number=sequence_number, timestamp=timestamp)
    received._data = data  # type: ignore[attr-defined]
    return received


def test_received_audio_is_decoded_as_soon_as_a_frame_is_complete() -> None:
    """Regression: aiortc's receiver held four complete audio frames (80 ms) before decoding
    the first, latency LiveKit's server, which forwards packets as they come, does not add."""
    forward_audio_as_it_comes()
    buffer = rtcrtpreceiver.JitterBuffer(capacity=16, prefetch=4)

    _, held = buffer.add(packet(1, 960, b"a"))
    _, first = buffer.add(packet(2, 1920, b"b"))

    assert held is None
    assert first is not None and first.data == b"a"


def test_video_keeps_its_jitter_buffer() -> None:
    forward_audio_as_it_comes()

    assert rtcrtpreceiver.JitterBuffer(capacity=128, prefetch=4, is_video=True)._prefetch == 4
