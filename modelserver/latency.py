"""How long the scripted models take to answer: at once by default, or like hosted models."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Latency:
    """Seconds before the first useful byte of each model's answer.

    The time a hosted model thinks before it answers is what a voice agent waits for on every
    turn; benchmarks run with it so the agent's own time can be told apart from the models'.
    """

    llm_first_token: float = 0.0
    tts_first_byte: float = 0.0
    stt_result: float = 0.0

    def __post_init__(self) -> None:
        for name in ("llm_first_token", "tts_first_byte", "stt_result"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative")

    @classmethod
    def from_ms(cls, llm: float = 0.0, tts: float = 0.0, stt: float = 0.0) -> Latency:
        return cls(llm / 1000, tts / 1000, stt / 1000)

    @property
    def instant(self) -> bool:
        return not (self.llm_first_token or self.tts_first_byte or self.stt_result)

    def describe(self) -> str:
        return (f"LLM first token {self.llm_first_token * 1000:.0f} ms, "
                f"TTS first byte {self.tts_first_byte * 1000:.0f} ms, "
                f"STT result {self.stt_result * 1000:.0f} ms")


INSTANT = Latency()

HOSTED = Latency.from_ms(llm=300, tts=150, stt=200)
"""Typical of hosted models reached over the internet: a small chat model's time to first token,
a streaming TTS's time to first audio, a transcription of a short turn."""
