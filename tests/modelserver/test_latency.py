"""The scripted models answer at once unless told to take as long as hosted models do."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from modelserver import HOSTED, INSTANT, Latency, ModelServer
from modelserver.__main__ import parse_args

DELAY = 0.25


@pytest.fixture
async def slow_models() -> AsyncIterator[ModelServer]:
    server = ModelServer(latency=Latency(DELAY, DELAY, DELAY))
    await server.start()
    yield server
    await server.aclose()


async def seconds_to_first_byte(url: str, *, json: dict[str, Any] | None = None,
                                data: dict[str, str] | None = None,
                                files: dict[str, tuple[str, bytes, str]] | None = None) -> float:
    started = time.monotonic()
    async with httpx.AsyncClient() as client, \
            client.stream("POST", url, json=json, data=data, files=files) as reply:
        assert reply.status_code == 200
        async for _chunk in reply.aiter_bytes():
            return time.monotonic() - started
    raise AssertionError("the answer was empty")


def test_the_models_answer_at_once_unless_told_otherwise() -> None:
    assert ModelServer().latency == INSTANT
    assert INSTANT.instant and not HOSTED.instant


async def test_the_chat_models_first_token_waits_for_the_latency(
        slow_models: ModelServer) -> None:
    waited = await seconds_to_first_byte(
        f"{slow_models.url}/chat/completions",
        json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "Hi"}]})

    assert waited >= DELAY


async def test_speech_starts_after_the_latency(slow_models: ModelServer) -> None:
    waited = await seconds_to_first_byte(
        f"{slow_models.url}/audio/speech",
        json={"model": "m", "voice": "v", "input": "Hello.", "response_format": "pcm"})

    assert waited >= DELAY


async def test_a_transcription_comes_after_the_latency(slow_models: ModelServer) -> None:
    waited = await seconds_to_first_byte(
        f"{slow_models.url}/audio/transcriptions",
        data={"model": "m"}, files={"file": ("a.wav", b"", "audio/wav")})

    assert waited >= DELAY


def test_the_command_line_answers_like_hosted_models_with_latency() -> None:
    assert parse_args([]).model_latency == INSTANT
    assert parse_args(["--latency"]).model_latency == HOSTED


def test_each_models_latency_can_be_set_in_milliseconds() -> None:
    latency = parse_args(["--latency", "--llm-latency-ms", "500"]).model_latency
    assert latency == Latency(0.5, HOSTED.tts_first_byte, HOSTED.stt_result)

    assert parse_args(["--tts-latency-ms", "80"]).model_latency == Latency(tts_first_byte=0.08)


def test_a_negative_latency_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--stt-latency-ms", "-1"])
