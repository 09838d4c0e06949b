"""The chat agent's settings: the voice worker's model settings, read from the same names."""

from __future__ import annotations

import pytest

from worker.chat.settings import load_chat_settings
from worker.settings import SettingsError, WorkerSettings

SHARED = {"BATON_ENV": "development", "REDIS_URL": "redis://log:6379/1", "OPENAI_API_KEY": "sk-x",
          "OPENAI_BASE_URL": "http://models:8900/v1", "BATON_LLM_MODEL": "some-model",
          "BATON_TOOL_BACKEND": "worker.backends:ExampleBackend",
          "BATON_HISTORY_MAX_ITEMS": "50"}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in SHARED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_the_chat_agent_runs_the_voice_workers_model_tools_and_history(
        environment: pytest.MonkeyPatch) -> None:
    chat, voice = load_chat_settings(), WorkerSettings.from_env()

    for field in ("redis_url", "openai_base_url", "llm_model", "tool_backend",
                  "history_budget"):
        assert getattr(chat, field) == getattr(voice, field), field
    assert chat.openai_api_key == voice.openai_api_key


def test_without_a_model_key_the_chat_agent_says_what_to_set(
        environment: pytest.MonkeyPatch) -> None:
    environment.delenv("OPENAI_API_KEY")

    with pytest.raises(SettingsError, match="set OPENAI_API_KEY"):
        load_chat_settings()


def test_the_example_backend_is_refused_outside_development(
        environment: pytest.MonkeyPatch) -> None:
    environment.setenv("BATON_ENV", "production")

    with pytest.raises(SettingsError, match="BATON_TOOL_BACKEND is the example backend"):
        load_chat_settings()
