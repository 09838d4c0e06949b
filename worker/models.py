"""The speech and language models of a session, built from settings with livekit-plugins-openai."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from livekit.agents import TurnHandlingOptions, vad
from livekit.plugins import openai

from worker.settings import ModelSettings, WorkerSettings

OPENAI_BASE_URL = "https://api.openai.com/v1"

WARM_IMPORTS = ("openai.lib.streaming.chat", "openai.pagination", "openai.resources.chat",
                "anyio._backends._asyncio", "anyio.streams.stapled",
                "livekit.agents.llm.async_toolset")
"""Modules the first call would import on first use, each a 0.1-0.9 s stall of the job's
event loop just before the first words (measured with bench.firstwords)."""

for _module in WARM_IMPORTS:
    importlib.import_module(_module)


def language_model(settings: ModelSettings) -> openai.LLM:
    """The language model both channels use, from the settings they share."""
    return openai.LLM(model=settings.llm_model,
                      api_key=settings.openai_api_key.get_secret_value(),
                      base_url=settings.openai_base_url or OPENAI_BASE_URL)


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
        "llm": language_model(settings),
        # Raw PCM at the plugin's 24 kHz needs no decoding before it is played.
        "tts": openai.TTS(model=settings.tts_model, voice=settings.tts_voice, api_key=api_key,
                          base_url=base_url, response_format="pcm"),
        "vad": voice_activity,
        "turn_handling": TurnHandlingOptions(turn_detection="vad",
                                             interruption={"mode": "vad"}),
    }


@dataclass(frozen=True, slots=True)
class HandoffModels:
    """What a warm transfer needs beyond the session: a model to read the handoff card (also
    in realtime mode, whose session has no text model) and a recognizer for the human."""

    card_llm: openai.LLM
    recognizer: openai.STT
    voice_activity: vad.VAD


def handoff_models(settings: WorkerSettings, voice_activity: vad.VAD) -> HandoffModels:
    api_key = settings.openai_api_key.get_secret_value()
    base_url = settings.openai_base_url or OPENAI_BASE_URL
    return HandoffModels(
        card_llm=openai.LLM(model=settings.llm_model, api_key=api_key, base_url=base_url),
        recognizer=openai.STT(model=settings.stt_model, api_key=api_key, base_url=base_url),
        voice_activity=voice_activity)
