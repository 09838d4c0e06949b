"""Real speech for the scripted models: espeak-ng and sox, and the level of uploaded audio."""

from __future__ import annotations

import asyncio
import io
import wave

import numpy as np

SPEECH_SAMPLE_RATE = 24_000
SPEAKING_RATE = 190
"""espeak-ng words per minute of the scripted voice: a calm speaker, as in the offline demo."""
SLOWEST_RATE, FASTEST_RATE = 80, 450
"""The paces espeak-ng speaks at; the fastest is still speech to a voice activity detector."""


def check_pace(words_per_minute: int) -> None:
    """Refuse, with ValueError, a pace espeak-ng cannot speak at."""
    if not SLOWEST_RATE <= words_per_minute <= FASTEST_RATE:
        raise ValueError(f"words per minute must be {SLOWEST_RATE} to {FASTEST_RATE}")


def wav_stats(data: bytes) -> tuple[float, float]:
    """Duration and RMS level of 16-bit WAV audio, so tests can tell speech from silence."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            frames = wav.readframes(wav.getnframes())
            rate, width = wav.getframerate(), wav.getsampwidth()
    except (wave.Error, EOFError):
        return 0.0, 0.0
    if width != 2 or not frames:
        return 0.0, 0.0
    samples = np.frombuffer(frames, dtype=np.int16).astype(np.float64)
    return len(samples) / rate, float(np.sqrt(np.mean(samples**2)))


async def synthesize(text: str, response_format: str = "pcm", *,
                     words_per_minute: int = SPEAKING_RATE) -> tuple[bytes, str]:
    """Real speech for `text`: espeak-ng, resampled by sox to 24 kHz mono 16-bit.

    Returns the bytes and their content type: raw PCM for "pcm", otherwise a WAV file.
    """
    espeak = await asyncio.create_subprocess_exec(
        "espeak-ng", "--stdout", "-s", str(words_per_minute), text,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    spoken, _ = await espeak.communicate()
    target = ["-t", "raw"] if response_format == "pcm" else ["-t", "wav"]
    sox = await asyncio.create_subprocess_exec(
        "sox", "-t", "wav", "-", *target, "-r", str(SPEECH_SAMPLE_RATE), "-e", "signed",
        "-b", "16", "-c", "1", "-",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    audio, _ = await sox.communicate(spoken)
    if espeak.returncode or sox.returncode or not audio:
        raise RuntimeError(f"speech synthesis failed (espeak-ng {espeak.returncode}, "
                           f"sox {sox.returncode})")
    return audio, "audio/pcm" if response_format == "pcm" else "audio/wav"
