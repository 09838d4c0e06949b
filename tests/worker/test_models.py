"""The models a session gets from settings, and the tools the chat side registers."""

from __future__ import annotations

import asyncio

from livekit.agents import utils
from livekit.plugins import openai, silero

from modelserver import ModelServer
from worker.models import (
    END_OF_SPEECH_SILENCE,
    SPEECH_PADDING,
    model_client,
    recognizer,
    session_models,
)
from worker.settings import WorkerSettings
from worker.tools import TOOL_NAMES, openai_tool_schemas


def settings(**values: str) -> WorkerSettings:
    return WorkerSettings.model_validate({"OPENAI_API_KEY": "test",
                                          "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", **values})


def test_the_pipeline_is_openai_stt_llm_tts_with_silero_and_vad_turns() -> None:
    vad = silero.VAD.load()

    models = session_models(settings(), vad)

    assert isinstance(models["stt"], openai.STT)
    assert isinstance(models["llm"], openai.LLM)
    assert isinstance(models["tts"], openai.TTS)
    assert models["vad"] is vad
    assert models["turn_handling"]["turn_detection"] == "vad"


def test_the_visitors_speech_streams_to_realtime_transcription_by_default() -> None:
    models = session_models(settings(), silero.VAD.load())

    assert models["stt"].capabilities.streaming


def test_a_server_without_realtime_transcription_gets_utterances_the_worker_cut() -> None:
    models = session_models(settings(BATON_STT_STREAMING="false"), silero.VAD.load())

    assert not models["stt"].capabilities.streaming


async def test_a_streamed_utterance_ends_after_the_silence_that_ends_the_visitors_turn(
        model_server: ModelServer) -> None:
    worker_settings = settings(OPENAI_BASE_URL=model_server.url)
    async with utils.http_context.open():
        streaming = recognizer(worker_settings, silero.VAD.load(),
                               model_client("test", model_server.url))
        recognition = streaming.stream()
        try:
            [update] = await asyncio.wait_for(model_server.wait_for_requests("/realtime"), 10)
        finally:
            await recognition.aclose()
            await streaming.aclose()

    wanted = update.body["session"]["audio"]["input"]["turn_detection"]
    assert wanted["type"] == "server_vad"
    assert wanted["silence_duration_ms"] == END_OF_SPEECH_SILENCE * 1000
    assert wanted["prefix_padding_ms"] == SPEECH_PADDING * 1000


def test_a_model_whose_server_does_not_cut_utterances_is_cut_by_the_sessions_detector() -> None:
    vad = silero.VAD.load()

    streaming = recognizer(settings(BATON_STT_MODEL="gpt-realtime-whisper"), vad,
                           model_client("test", "http://127.0.0.1:9/v1"))

    assert streaming.capabilities.streaming
    assert streaming._vad is vad


def test_the_three_models_share_one_http_client() -> None:
    models = session_models(settings(), silero.VAD.load())

    clients = {id(models[name]._client) for name in ("stt", "llm", "tts")}
    assert len(clients) == 1


def test_the_realtime_model_is_a_setting() -> None:
    models = session_models(settings(BATON_MODEL_MODE="realtime"), silero.VAD.load())

    assert isinstance(models["llm"], openai.realtime.RealtimeModel)
    assert "stt" not in models and "tts" not in models
    assert models["turn_handling"]["turn_detection"] == "realtime_llm"


def test_openai_base_url_is_honoured() -> None:
    models = session_models(settings(), silero.VAD.load())

    assert models["llm"].provider == "127.0.0.1:9"


def test_the_chat_side_gets_the_same_tool_names_and_schemas() -> None:
    schemas = openai_tool_schemas()

    assert {schema["function"]["name"] for schema in schemas} == TOOL_NAMES
    assert TOOL_NAMES == {"lookup_order", "quote_price", "book_callback", "verify_identity"}
    lookup = next(s for s in schemas if s["function"]["name"] == "lookup_order")
    assert lookup["function"]["parameters"]["required"] == ["order_id"]
