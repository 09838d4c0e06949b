"""Devserver audio relay cost: N rooms of two SDK participants each publishing 48 kHz audio."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import psutil
from livekit import rtc

from devserver.process import DevServer

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms, what a browser sends; 500 and 650 Hz fit it in whole cycles
ROOM_COUNTS = (1, 5, 10)
CONNECT_TIMEOUT = 60.0


def _tone(frequency: float) -> rtc.AudioFrame:
    """One 20 ms frame holding whole cycles of a tone, so that repeating it is seamless."""
    t = np.arange(FRAME_SAMPLES) / SAMPLE_RATE
    samples = (np.sin(2 * np.pi * frequency * t) * 8000).astype(np.int16)
    return rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES)


async def _play(source: rtc.AudioSource, frame: rtc.AudioFrame) -> None:
    while True:
        await source.capture_frame(frame)


@contextlib.asynccontextmanager
async def _rooms(server: DevServer, count: int) -> AsyncIterator[None]:
    clients: list[rtc.Room] = []
    tasks: set[asyncio.Task[None]] = set()
    heard = 0
    all_heard = asyncio.Event()

    # Subscribers do not read their audio in Python: the bench measures the server, and
    # reading 20 streams would saturate this process before the server.
    def on_subscribed(track: rtc.Track, *_: object) -> None:
        nonlocal heard
        heard += 1
        if heard == 2 * count:
            all_heard.set()

    try:
        for index in range(count):
            for who in ("a", "b"):
                client = rtc.Room()
                client.on("track_subscribed", on_subscribed)
                token = server.token(f"{who}-{index}", f"bench-{index}")
                await asyncio.wait_for(client.connect(server.url, token), CONNECT_TIMEOUT)
                clients.append(client)
                source = rtc.AudioSource(SAMPLE_RATE, 1)
                track = rtc.LocalAudioTrack.create_audio_track("tone", source)
                await client.local_participant.publish_track(
                    track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
                )
                tasks.add(asyncio.create_task(_play(source, _tone(500.0 if who == "a" else 650.0))))
        await asyncio.wait_for(all_heard.wait(), CONNECT_TIMEOUT)
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.disconnect()


async def measure(count: int, seconds: float, log_dir: Path) -> tuple[float, float]:
    """CPU percent (of one core) and RSS in MB of a fresh devserver relaying `count` rooms."""
    server = DevServer(log_path=log_dir / f"devserver-{count}.log")
    server.start()
    try:
        process = psutil.Process(server.pid)
        async with _rooms(server, count):
            await asyncio.sleep(2.0)  # let codecs and jitter buffers settle
            process.cpu_percent(None)
            await asyncio.sleep(seconds)
            cpu = process.cpu_percent(None)
            rss = process.memory_info().rss / (1024 * 1024)
        return cpu, rss
    finally:
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window per N")
    parser.add_argument("--rooms", type=int, nargs="*", default=list(ROOM_COUNTS))
    parser.add_argument("--log-dir", type=Path, default=None, help="keep devserver logs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        log_dir = args.log_dir or Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        for count in args.rooms:
            cpu, rss = await measure(count, args.seconds, log_dir)
            print(f"relay {count} rooms: cpu {cpu:.1f}% rss {rss:.0f} MB", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
