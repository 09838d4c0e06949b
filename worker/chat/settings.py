"""The chat agent's configuration: the model settings it shares with the voice worker, and how
it takes turns from the queue."""

from __future__ import annotations

import os
import socket

from pydantic import Field, ValidationError

from worker.settings import ModelSettings, SettingsError


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ChatSettings(ModelSettings):
    """REDIS_URL, BATON_RETENTION and BATON_MAX_EVENTS are the log's; OPENAI_*, BATON_LLM_MODEL,
    BATON_TOOL_BACKEND and BATON_HISTORY_* are the voice worker's, so both channels answer
    with the same model, tools and history."""

    concurrency: int = Field(default=16, ge=1, validation_alias="BATON_CHAT_CONCURRENCY")
    """Turns one process answers at once (each mostly waits on the model)."""
    turn_timeout: float = Field(default=60.0, gt=0, validation_alias="BATON_CHAT_TURN_TIMEOUT")
    """Seconds one turn may take; a slower one is cut off and apologised for."""
    turn_max_age: float = Field(default=300.0, gt=0, validation_alias="BATON_CHAT_TURN_MAX_AGE")
    """A turn older than this when it is read is dropped unanswered: the visitor has gone."""
    claim_after: float = Field(default=15.0, gt=0, validation_alias="BATON_CHAT_CLAIM_AFTER")
    """Seconds after which the turns of a process that stopped answering (it died) are taken
    over by another; a live process renews its turns well within it."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535,
                                     validation_alias="BATON_CHAT_METRICS_PORT")
    consumer: str = Field(default_factory=_consumer_name, min_length=1, max_length=200,
                          validation_alias="BATON_CHAT_CONSUMER")
    """This process's name in the consumer group; unique per process."""

    @classmethod
    def from_env(cls) -> ChatSettings:
        return cls()  # type: ignore[call-arg]


def load_chat_settings() -> ChatSettings:
    """Read and check the environment, raising SettingsError that lists what to fix."""
    try:
        settings = ChatSettings.from_env()
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise SettingsError("invalid chat agent settings:\n  " + "\n  ".join(lines)) from None
    if problems := settings.model_problems():
        raise SettingsError("the chat agent cannot start:\n  " + "\n  ".join(problems))
    return settings
