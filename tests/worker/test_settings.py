"""Worker settings: a configuration that cannot run is refused at start, saying what to set."""

from __future__ import annotations

import pytest

from worker.backends import ExampleBackend, load_backend
from worker.settings import SettingsError, load_settings

COMPLETE = {
    "LIVEKIT_URL": "wss://livekit.example", "LIVEKIT_API_KEY": "APIprod123",
    "LIVEKIT_API_SECRET": "a-long-production-secret", "REDIS_URL": "redis://redis:6379/0",
    "OPENAI_API_KEY": "sk-test", "BATON_TOOL_BACKEND": "tests.worker.test_settings:Catalogue",
}


class Catalogue(ExampleBackend):
    """A deployment's own backend, as settings name it."""


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*COMPLETE, "BATON_ENV", "BATON_AGENT_NAME", "OPENAI_BASE_URL",
                 "BATON_TOOL_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    for name, value in COMPLETE.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_a_complete_environment_loads_with_the_default_agent_name(
        environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()

    assert settings.agent_name == "baton-voice"
    assert settings.model_mode == "pipeline"


@pytest.mark.parametrize("missing", ["LIVEKIT_URL", "LIVEKIT_API_SECRET", "OPENAI_API_KEY"])
def test_a_missing_credential_names_the_variable_to_set(
        environment: pytest.MonkeyPatch, missing: str) -> None:
    environment.delenv(missing)

    with pytest.raises(SettingsError, match=f"set {missing}"):
        load_settings()


def test_development_keys_are_refused_outside_development(
        environment: pytest.MonkeyPatch) -> None:
    environment.setenv("LIVEKIT_API_KEY", "devkey")
    environment.setenv("LIVEKIT_API_SECRET", "secret")

    with pytest.raises(SettingsError, match="BATON_ENV=development"):
        load_settings()


def test_development_keys_are_accepted_in_development(
        environment: pytest.MonkeyPatch) -> None:
    environment.setenv("LIVEKIT_API_KEY", "devkey")
    environment.setenv("LIVEKIT_API_SECRET", "secret")
    environment.setenv("BATON_ENV", "development")

    assert load_settings().livekit_api_key == "devkey"


def test_an_invalid_value_is_reported_by_its_variable_name(
        environment: pytest.MonkeyPatch) -> None:
    environment.setenv("BATON_MODEL_MODE", "telepathy")

    with pytest.raises(SettingsError, match="BATON_MODEL_MODE"):
        load_settings()


def test_the_example_backend_is_refused_outside_development(
        environment: pytest.MonkeyPatch) -> None:
    environment.delenv("BATON_TOOL_BACKEND")

    with pytest.raises(SettingsError, match="BATON_TOOL_BACKEND is the example backend"):
        load_settings()


def test_the_tool_backend_is_the_class_the_settings_name(
        environment: pytest.MonkeyPatch) -> None:
    backend = load_backend(load_settings().tool_backend)

    assert type(backend).__name__ == "Catalogue"
