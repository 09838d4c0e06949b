"""The worker's configuration: one settings object read from the environment."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from conversation.history import HistoryBudget
from conversation.settings import StoreSettings
from worker.backends import EXAMPLE_BACKEND

DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"
"""LiveKit's well-known development credentials; anyone can sign tokens with them."""


class SettingsError(Exception):
    """The environment does not describe a worker that can run; the message says what to set."""


class ModelSettings(StoreSettings):
    """What the voice agent and the chat agent share, so both channels run the same brain: the
    model provider, the language model, the tools' backend and the history budget."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False,
                                      populate_by_name=True)

    environment: Literal["development", "production"] = Field(
        default="production", validation_alias="BATON_ENV")

    openai_api_key: SecretStr = Field(default=SecretStr(""), validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    llm_model: str = Field(default="gpt-4.1-mini", validation_alias="BATON_LLM_MODEL")

    history_max_items: int = Field(default=200, ge=1, validation_alias="BATON_HISTORY_MAX_ITEMS")
    history_max_chars: int = Field(default=48_000, ge=100,
                                   validation_alias="BATON_HISTORY_MAX_CHARS")
    tool_backend: str = Field(default=EXAMPLE_BACKEND, validation_alias="BATON_TOOL_BACKEND")
    """The business backend behind the tools, "package.module:Class" (see worker/backends.py)."""

    @property
    def history_budget(self) -> HistoryBudget:
        return HistoryBudget(max_items=self.history_max_items, max_chars=self.history_max_chars)

    def model_problems(self) -> list[str]:
        """What stops the models or the tools from working, each saying what to set."""
        found: list[str] = []
        if not self.openai_api_key.get_secret_value():
            found.append("set OPENAI_API_KEY: the model provider's key (any value for a local "
                         "OpenAI-compatible server set with OPENAI_BASE_URL)")
        if self.environment != "development" and self.tool_backend == EXAMPLE_BACKEND:
            found.append("BATON_TOOL_BACKEND is the example backend, which answers with made-up "
                         "data: set your own backend class (see worker/backends.py)")
        return found


class WorkerSettings(ModelSettings):
    """Every knob of the voice worker; REDIS_URL, BATON_RETENTION and BATON_MAX_EVENTS are the
    conversation log's, shared with the orchestrator, and the model settings are shared with
    the chat agent."""

    livekit_url: str = Field(default="", validation_alias="LIVEKIT_URL")
    livekit_api_key: str = Field(default="", validation_alias="LIVEKIT_API_KEY")
    livekit_api_secret: SecretStr = Field(default=SecretStr(""),
                                          validation_alias="LIVEKIT_API_SECRET")
    agent_name: str = Field(default="baton-voice", min_length=1,
                            validation_alias="BATON_AGENT_NAME")

    model_mode: Literal["pipeline", "realtime"] = Field(default="pipeline",
                                                        validation_alias="BATON_MODEL_MODE")
    stt_model: str = Field(default="gpt-4o-mini-transcribe", validation_alias="BATON_STT_MODEL")
    stt_streaming: bool = Field(default=True, validation_alias="BATON_STT_STREAMING")
    """Stream the visitor's audio to the recognizer as they speak (OpenAI's realtime
    transcription, whose server cuts the utterances): one voice activity detector less per
    call. False, for a server without `/realtime`: each utterance is cut by the worker and sent
    to `/audio/transcriptions`."""
    tts_model: str = Field(default="gpt-4o-mini-tts", validation_alias="BATON_TTS_MODEL")
    tts_voice: str = Field(default="ash", validation_alias="BATON_TTS_VOICE")
    realtime_model: str = Field(default="gpt-realtime", validation_alias="BATON_REALTIME_MODEL")

    drain_timeout: int = Field(default=1800, ge=0, validation_alias="BATON_DRAIN_TIMEOUT")
    """Seconds a SIGTERM'd worker waits for live calls to end before it stops anyway."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535,
                                     validation_alias="BATON_METRICS_PORT")
    metrics_dir: str | None = Field(default=None, validation_alias="BATON_METRICS_DIR")
    health_port: int = Field(default=8081, ge=0, le=65535, validation_alias="BATON_HEALTH_PORT")
    load_threshold: float = Field(default=0.7, gt=0, validation_alias="BATON_LOAD_THRESHOLD")
    """CPU load above which the worker takes no new calls; `inf` takes every call offered."""
    max_jobs: int | None = Field(default=None, ge=1, validation_alias="BATON_MAX_JOBS")
    """When set, capacity is counted in calls, not CPU: the worker reports its load as live
    calls / max_jobs and takes at most max_jobs (BATON_LOAD_THRESHOLD is then unused)."""
    job_executor: Literal["process", "thread"] = Field(default="process",
                                                       validation_alias="BATON_JOB_EXECUTOR")
    idle_processes: int | None = Field(default=None, ge=0,
                                       validation_alias="BATON_IDLE_PROCESSES")

    sip_outbound_trunk: str = Field(default="", validation_alias="BATON_SIP_OUTBOUND_TRUNK")
    """The outbound trunk the worker dials on-call humans through; empty: no phone humans."""
    oncall_numbers: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="BATON_ONCALL_NUMBERS")
    """E.164 numbers of on-call humans, tried in turn when nobody is free on the dashboard."""
    handoff_phrases: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("talk to a person", "speak to a person", "talk to a human", "speak to a human",
                 "real person", "human agent", "speak to someone", "talk to someone"),
        validation_alias="BATON_HANDOFF_PHRASES")
    """What a visitor says to be handed to a person straight away (comma-separated)."""
    handoff_accept_timeout: float = Field(default=30.0, gt=0,
                                          validation_alias="BATON_HANDOFF_ACCEPT_TIMEOUT")
    """Seconds a human has to accept (or answer the phone) before the handoff fails."""
    handoff_connect_timeout: float = Field(default=300.0, gt=0,
                                           validation_alias="BATON_HANDOFF_CONNECT_TIMEOUT")
    """Seconds an accepted human may stay in consult before the handoff fails."""
    after_human_leaves: Literal["agent", "end"] = Field(
        default="agent", validation_alias="BATON_AFTER_HUMAN_LEAVES")
    """When the human hangs up after connecting: the agent takes the visitor back, or the
    call ends."""

    visitor_wait: float = Field(default=120.0, gt=0, validation_alias="BATON_VISITOR_WAIT")
    """Seconds a job waits for the visitor to be in the room before it gives up."""
    flush_timeout: float = Field(default=8.0, gt=0, validation_alias="BATON_FLUSH_TIMEOUT")
    """Seconds the end of a job waits for buffered transcript events to reach Redis."""

    @field_validator("oncall_numbers", "handoff_phrases", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("oncall_numbers")
    @classmethod
    def _e164(cls, numbers: tuple[str, ...]) -> tuple[str, ...]:
        for number in numbers:
            if not re.fullmatch(r"\+[1-9]\d{7,14}", number):
                # Never the number itself in the message: it is personal data.
                raise ValueError("BATON_ONCALL_NUMBERS must be E.164 numbers (+ and digits)")
        return numbers

    @classmethod
    def from_env(cls) -> WorkerSettings:
        # mypy sees the aliased fields as required arguments; pydantic fills them from the
        # environment or their defaults.
        return cls()  # type: ignore[call-arg]

    def problems(self) -> list[str]:
        """Everything that stops this configuration from running, each saying what to set."""
        found: list[str] = []
        for value, name, hint in (
            (self.livekit_url, "LIVEKIT_URL", "the LiveKit server, e.g. wss://livekit.example"),
            (self.livekit_api_key, "LIVEKIT_API_KEY", "the API key the worker registers with"),
            (self.livekit_api_secret.get_secret_value(), "LIVEKIT_API_SECRET",
             "the secret of that API key"),
        ):
            if not value:
                found.append(f"set {name}: {hint}")
        if self.environment != "development" and (
                self.livekit_api_key == DEV_API_KEY
                or self.livekit_api_secret.get_secret_value() == DEV_API_SECRET):
            found.append("LIVEKIT_API_KEY/LIVEKIT_API_SECRET are LiveKit's public development "
                         "credentials: set real ones, or BATON_ENV=development for a local stack")
        return found + self.model_problems()


def load_settings() -> WorkerSettings:
    """Read and check the environment, raising SettingsError that lists what to fix."""
    try:
        settings = WorkerSettings.from_env()
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise SettingsError("invalid worker settings:\n  " + "\n  ".join(lines)) from None
    if problems := settings.problems():
        raise SettingsError("the worker cannot start:\n  " + "\n  ".join(problems))
    return settings


@lru_cache(maxsize=1)
def current_settings() -> WorkerSettings:
    """The process's settings, read once; job processes inherit the worker's environment."""
    return load_settings()
