"""The speech and language models of a session, built from settings with livekit-plugins-openai."""

from __future__ import annotations

from typing import Any

from livekit.agents import TurnHandlingOptions, vad
from livekit.plugins import openai

from worker.settings import WorkerSettings

OPENAI_BASE_URL = "https://api.openai.com/v1"


def session_models(settings: WorkerSettings, voice_activity: vad.VAD) -> dict[str, Any]:
    """Keyword arguments for `AgentSession`: the models and the turn handling they allow.

    Turn detection and interruptions are set explicitly: the framework's defaults would call
    LiveKit Cloud inference, which a self-hosted deployment does not have.
    """
    api_key = settings.openai_api_key.get_secret_value()
    base_url = settings.openai_base_url or OPENAI_BASE_URL
    if settings.model_mode == "realtime":
        return {
            "llm": openai.realtime.RealtimeModel(model=settings.realtime_model,
                                                 voice=settings.tts_voice, api_key=api_key,
                                                 base_url=base_url),
            "vad": voice_activity,
            "turn_handling": TurnHandlingOptions(turn_detection="realtime_llm"),
        }
    return {
        "stt": openai.STT(model=settings.stt_model, api_key=api_key, base_url=base_url),
        "llm": openai.LLM(model=settings.llm_model, api_key=api_key, base_url=base_url),
        # Raw PCM at the plugin's 24 kHz needs no decoding before it is played.
        "tts": openai.TTS(model=settings.tts_model, voice=settings.tts_voice, api_key=api_key,
                          base_url=base_url, response_format="pcm"),
        "vad": voice_activity,
        "turn_handling": TurnHandlingOptions(turn_detection="vad",
                                             interruption={"mode": "vad"}),
    }
