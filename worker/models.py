"""The speech and language models of a session, built from settings with livekit-plugins-openai."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2
import openai as openai_sdk
from livekit.agents import TurnHandlingOptions, vad
from livekit.plugins import openai

from worker.prefetch import announce_request
from worker.settings import ModelSettings, WorkerSettings

OPENAI_BASE_URL = "https://api.openai.com/v1"

SPEECH_PADDING = 0.5
END_OF_SPEECH_SILENCE = 0.55
"""Seconds of silence that end an utterance, for the session's detector (silero's defaults,
set in `worker.entrypoint`) and a streaming recognizer's alike, so a turn and its transcript
end together."""
NO_SERVER_TURNS = ("gpt-realtime-whisper", "gpt-live-transcribe")
"""Realtime transcription models whose server does not cut utterances: they need a local VAD."""


def recognizer(settings: WorkerSettings, voice_activity: vad.VAD,
               client: openai_sdk.AsyncClient) -> openai.STT:
    """The visitor's speech recognizer. Not streaming, the framework cuts utterances for it
    with a second VAD stream beside the session's, which costs about a sixth of a call's CPU;
    streaming, OpenAI's server cuts them, as the session's detector would."""
    if not settings.stt_streaming:
        return openai.STT(model=settings.stt_model, client=client)
    if settings.stt_model.startswith(NO_SERVER_TURNS):
        return openai.STT(model=settings.stt_model, client=client, use_realtime=True,
                          vad=voice_activity)
    return openai.STT(
        model=settings.stt_model, client=client, use_realtime=True,
        turn_detection={"type": "server_vad", "threshold": 0.5,
                        "prefix_padding_ms": int(SPEECH_PADDING * 1000),
                        "silence_duration_ms": int(END_OF_SPEECH_SILENCE * 1000)})


def model_client(api_key: str, base_url: str) -> openai_sdk.AsyncClient:
    """One HTTP client for the three models, configured as each plugin configures its own.

    Shared, it builds one TLS context per process instead of three, and the speech of the first
    words goes out on the connection the LLM's prewarm already opened to the same host. It tells
    a prefetched opening when its request is on its way (`worker.prefetch`).
    """
    return openai_sdk.AsyncClient(
        api_key=api_key, base_url=base_url, max_retries=0,
        http_client=httpx2.AsyncClient(
            timeout=httpx2.Timeout(connect=15.0, read=5.0, write=5.0, pool=5.0),
            follow_redirects=True,
            limits=httpx2.Limits(max_connections=50, max_keepalive_connections=50,
                                 keepalive_expiry=120),
            event_hooks={"request": [announce_request]}))


def language_model(settings: ModelSettings) -> openai.LLM:
    """The language model both channels use, from the settings they share."""
    return openai.LLM(model=settings.llm_model, client=model_client(
        settings.openai_api_key.get_secret_value(), settings.openai_base_url or OPENAI_BASE_URL))


def session_models(settings: WorkerSettings, voice_activity: vad.VAD,
                   client: openai_sdk.AsyncClient | None = None) -> dict[str, Any]:
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
    client = client or model_client(api_key, base_url)
    return {
        "stt": recognizer(settings, voice_activity, client),
        "llm": openai.LLM(model=settings.llm_model, client=client),
        # Raw PCM at the plugin's 24 kHz needs no decoding before it is played.
        "tts": openai.TTS(model=settings.tts_model, voice=settings.tts_voice, client=client,
                          response_format="pcm"),
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


def handoff_models(settings: WorkerSettings, voice_activity: vad.VAD,
                   client: openai_sdk.AsyncClient | None = None) -> HandoffModels:
    """The transfer's models, on the session's HTTP client when given one."""
    client = client or model_client(settings.openai_api_key.get_secret_value(),
                                    settings.openai_base_url or OPENAI_BASE_URL)
    return HandoffModels(
        card_llm=openai.LLM(model=settings.llm_model, client=client),
        recognizer=recognizer(settings, voice_activity, client),
        voice_activity=voice_activity)
