"""Realtime transcription: the plugin's streaming recognizer gets one scripted transcript per
utterance, cut from the audio it streams as OpenAI's server would cut it."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import aiohttp
import numpy as np
import pytest
from livekit import rtc
from livekit.agents import stt, utils
from livekit.plugins import openai

from modelserver import SPEECH_SAMPLE_RATE, ModelServer, synthesize
from modelserver.transcription import ServerVAD, TurnDetection, Utterance

FRAME = SPEECH_SAMPLE_RATE // 100


def tone(ms: int, level: int = 2000) -> bytes:
    samples = np.arange(SPEECH_SAMPLE_RATE * ms // 1000)
    return (level * np.sin(samples * 2 * np.pi * 220 / SPEECH_SAMPLE_RATE)).astype(
        np.int16).tobytes()


def silence(ms: int) -> bytes:
    return bytes(SPEECH_SAMPLE_RATE * ms // 1000 * 2)


def cuts(vad: ServerVAD, *pieces: bytes) -> list[int | Utterance]:
    return [cut for piece in pieces for cut in vad.feed(piece)]


def test_speech_followed_by_enough_silence_is_one_utterance() -> None:
    vad = ServerVAD(TurnDetection(prefix_padding_ms=100, silence_duration_ms=300))
    found = cuts(vad, silence(500), tone(800), silence(400))
    assert found[0] == 400
    assert isinstance(found[1], Utterance)
    assert (found[1].start_ms, found[1].end_ms) == (400, 1300)
    assert found[1].rms > 1000
    assert len(found) == 2


def test_a_pause_shorter_than_the_silence_duration_does_not_cut() -> None:
    vad = ServerVAD(TurnDetection(prefix_padding_ms=0, silence_duration_ms=300))
    found = cuts(vad, tone(300), silence(250), tone(300), silence(300))
    assert [c.end_ms for c in found if isinstance(c, Utterance)] == [850]


def test_audio_in_pieces_of_any_size_is_cut_as_if_it_came_whole() -> None:
    audio = silence(200) + tone(500) + silence(600) + tone(300) + silence(600)
    whole = cuts(ServerVAD(), audio)
    odd = cuts(ServerVAD(), *(audio[i:i + 1234] for i in range(0, len(audio), 1234)))
    assert whole == odd
    assert len([c for c in whole if isinstance(c, Utterance)]) == 2


def test_audio_fading_after_speech_does_not_end_it_sooner_than_silence() -> None:
    vad = ServerVAD(TurnDetection(prefix_padding_ms=0, silence_duration_ms=300))
    found = cuts(vad, tone(300), tone(350, level=200), tone(300), silence(300))
    assert [c.end_ms for c in found if isinstance(c, Utterance)] == [950]


def test_quiet_audio_is_never_speech() -> None:
    assert cuts(ServerVAD(), tone(2000, level=200)) == []


@pytest.fixture
async def models() -> AsyncIterator[ModelServer]:
    server = ModelServer()
    await server.start()
    yield server
    await server.aclose()


async def stream_audio(recognition: stt.SpeechStream, pcm: bytes) -> None:
    for offset in range(0, len(pcm) - len(pcm) % (FRAME * 2), FRAME * 2):
        recognition.push_frame(rtc.AudioFrame(pcm[offset:offset + FRAME * 2],
                                              SPEECH_SAMPLE_RATE, 1, FRAME))


async def finals(recognition: stt.SpeechStream, count: int) -> list[str]:
    texts: list[str] = []
    async for event in recognition:
        if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
            texts.append(event.alternatives[0].text)
            if len(texts) == count:
                break
    return texts


async def test_the_plugins_realtime_recognizer_hears_each_utterance_in_order(
        models: ModelServer) -> None:
    models.script_transcripts("where is my order", "thank you")
    speech, _ = await synthesize("Where is my order?", "pcm", words_per_minute=380)
    async with utils.http_context.open():
        recognizer = openai.STT(use_realtime=True, base_url=models.url, api_key="test")
        assert recognizer.capabilities.streaming
        recognition = recognizer.stream()
        await stream_audio(recognition, silence(300) + speech + silence(900) + speech
                           + silence(900))
        try:
            heard = await asyncio.wait_for(finals(recognition, 2), timeout=10)
        finally:
            await recognition.aclose()
            await recognizer.aclose()
    assert heard == ["where is my order", "thank you"]
    committed = [r.body for r in models.requests_to("/realtime")
                 if r.body["type"] == "input_audio_buffer.committed"]
    assert len(committed) == 2
    assert all(0.5 < c["audio_seconds"] < 2.5 and c["audio_rms"] > 500 for c in committed)


async def test_the_session_asks_for_the_turn_detection_it_is_given(models: ModelServer) -> None:
    async with utils.http_context.open():
        recognizer = openai.STT(use_realtime=True, base_url=models.url, api_key="test",
                                turn_detection={"type": "server_vad", "threshold": 0.5,
                                                "prefix_padding_ms": 500,
                                                "silence_duration_ms": 550})
        recognition = recognizer.stream()
        await stream_audio(recognition, silence(100))
        try:
            [update] = await asyncio.wait_for(models.wait_for_requests("/realtime"), 10)
        finally:
            await recognition.aclose()
            await recognizer.aclose()
    wanted = update.body["session"]["audio"]["input"]["turn_detection"]
    assert (wanted["prefix_padding_ms"], wanted["silence_duration_ms"]) == (500, 550)


async def test_audio_that_is_not_base64_is_refused_and_the_session_goes_on(
        models: ModelServer) -> None:
    models.script_transcripts("still here")
    url = models.url.replace("http", "ws", 1) + "/realtime?intent=transcription"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket:
        await socket.send_json({"type": "input_audio_buffer.append", "audio": "not base64!"})
        refused = await socket.receive_json(timeout=5)
        assert refused["type"] == "error"
        assert "base64" in refused["error"]["message"]
        audio = base64.b64encode(tone(300) + silence(600)).decode()
        await socket.send_json({"type": "input_audio_buffer.append", "audio": audio})
        kinds = [(await socket.receive_json(timeout=5)) for _ in range(5)]
    assert [k["type"] for k in kinds] == [
        "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed", "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed"]
    assert kinds[-1]["transcript"] == "still here"


async def test_a_realtime_session_for_anything_but_transcription_is_refused(
        models: ModelServer) -> None:
    async with aiohttp.ClientSession() as session, \
            session.get(models.url + "/realtime?model=gpt-realtime") as reply:
        assert reply.status == 400
