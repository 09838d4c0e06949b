"""The scripted voice is real speech at a pace the caller chooses."""

from __future__ import annotations

import pytest

from modelserver import ModelServer
from modelserver.__main__ import parse_args
from modelserver.speech import SPEAKING_RATE, SPEECH_SAMPLE_RATE, synthesize

SENTENCE = "Let me connect you with one of our specialists now."


async def seconds_of(text: str, words_per_minute: int) -> float:
    audio, _ = await synthesize(text, "pcm", words_per_minute=words_per_minute)
    return len(audio) / 2 / SPEECH_SAMPLE_RATE


async def test_twice_the_pace_takes_about_half_as_long() -> None:
    calm = await seconds_of(SENTENCE, SPEAKING_RATE)
    fast = await seconds_of(SENTENCE, 2 * SPEAKING_RATE)

    assert 0.4 < fast / calm < 0.6


@pytest.mark.parametrize("words_per_minute", [79, 451])
def test_a_pace_espeak_cannot_speak_is_refused(words_per_minute: int) -> None:
    with pytest.raises(ValueError, match="words per minute"):
        ModelServer(words_per_minute=words_per_minute)
    with pytest.raises(SystemExit):
        parse_args(["--words-per-minute", str(words_per_minute)])


def test_the_demo_speaks_at_a_calm_pace_unless_told_otherwise() -> None:
    assert ModelServer().words_per_minute == SPEAKING_RATE == parse_args([]).words_per_minute
