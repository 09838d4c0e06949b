"""Settings come from the environment; outside development, placeholder secrets are refused."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from pydantic import ValidationError

from orchestrator.settings import Settings

STRONG = "x" * 40
PRODUCTION = {"BATON_ENV": "production", "LIVEKIT_API_KEY": "APIa1b2c3d4", "LIVEKIT_API_SECRET":
              "s" * 40, "BATON_WIDGET_SECRET": "w" * 40, "BATON_API_KEYS": f"{STRONG},{'y' * 40}"}


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://redis.internal:6379/2")
    monkeypatch.setenv("BATON_AGENT_NAME", "other-agent")
    monkeypatch.setenv("BATON_API_KEYS", "first-key, second-key")
    monkeypatch.setenv("BATON_VISITOR_TOKEN_TTL", "120")

    settings = Settings.from_env()

    assert settings.redis_url == "redis://redis.internal:6379/2"
    assert settings.agent_name == "other-agent"
    assert [key.get_secret_value() for key in settings.api_keys] == ["first-key", "second-key"]
    assert settings.visitor_token_ttl == timedelta(minutes=2)


def test_defaults_suit_development() -> None:
    settings = Settings()

    assert settings.agent_name == "baton-voice"
    assert settings.visitor_token_ttl == timedelta(minutes=10)


@pytest.mark.usefixtures("production_env")
def test_production_accepts_strong_secrets() -> None:
    assert Settings.from_env().env.value == "production"


@pytest.mark.usefixtures("production_env")
@pytest.mark.parametrize(("name", "value"), [
    ("LIVEKIT_API_KEY", "devkey"),
    ("LIVEKIT_API_SECRET", "secret"),
    ("LIVEKIT_API_SECRET", "short-secret"),
    ("BATON_WIDGET_SECRET", "dev-widget-secret"),
    ("BATON_API_KEYS", "dev-api-key"),
    ("BATON_API_KEYS", f"{STRONG},short"),
    ("BATON_API_KEYS", ""),
])
def test_production_refuses_placeholder_or_weak_secrets(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError) as refused:
        Settings.from_env()

    assert name.split("[")[0] in str(refused.value)


def test_the_server_refuses_to_start_with_dev_secrets_in_production_and_does_not_echo_them(
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator"], capture_output=True, text=True, timeout=60,
        env={"BATON_ENV": "production", "LIVEKIT_API_SECRET": "secret",
             "BATON_API_KEYS": "dev-api-key", "PATH": ""})

    assert result.returncode == 2
    assert "refusing to start with BATON_ENV=production" in result.stderr
    assert "dev-api-key" not in result.stderr
