"""The models a session gets from settings, and the tools the chat side registers."""

from __future__ import annotations

from livekit.plugins import openai, silero

from worker.models import session_models
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
