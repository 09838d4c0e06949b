"""Settings come from the environment; outside development, placeholder secrets are refused."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from pydantic import ValidationError
from redis.asyncio.cluster import RedisCluster

from orchestrator.settings import Settings
from worker.settings import WorkerSettings

STRONG = "x" * 40
PRODUCTION = {"BATON_ENV": "production", "LIVEKIT_API_KEY": "APIa1b2c3d4", "LIVEKIT_API_SECRET":
              "s" * 40, "BATON_WIDGET_SECRET": "w" * 40, "BATON_API_KEYS": f"{STRONG},{'y' * 40}"}


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATON_ENV", "development")
    monkeypatch.setenv("REDIS_URL", "redis://redis.internal:6379/2")
    monkeypatch.setenv("BATON_AGENT_NAME", "other-agent")
    monkeypatch.setenv("BATON_API_KEYS", "first-key, second-key")
    monkeypatch.setenv("BATON_VISITOR_TOKEN_TTL", "120")

    settings = Settings.from_env()

    assert settings.redis_url == "redis://redis.internal:6379/2"
    assert settings.agent_name == "other-agent"
    assert [key.get_secret_value() for key in settings.api_keys] == ["first-key", "second-key"]
    assert settings.visitor_token_ttl == timedelta(minutes=2)


def test_development_is_chosen_not_assumed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: the orchestrator defaulted to development, with its known secrets, while the
    worker defaulted to production; a deployment without BATON_ENV ran on forgeable keys."""
    monkeypatch.delenv("BATON_ENV", raising=False)

    with pytest.raises(ValidationError, match="refusing to start with BATON_ENV=production"):
        Settings.from_env()


def test_development_defaults_suit_a_local_stack() -> None:
    settings = Settings(env="development")

    assert settings.agent_name == "baton-voice"
    assert settings.visitor_token_ttl == timedelta(minutes=10)


def test_both_services_read_one_log_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug: the worker built its store with the defaults, so every spoken turn reset a shorter
    BATON_RETENTION to 30 days and trimmed at another BATON_MAX_EVENTS."""
    for name, value in {"BATON_ENV": "development", "REDIS_URL": "redis://log:6379/3",
                        "BATON_RETENTION": "3600", "BATON_MAX_EVENTS": "500",
                        "LIVEKIT_URL": "ws://lk", "OPENAI_API_KEY": "sk-x"}.items():
        monkeypatch.setenv(name, value)

    stores = [settings.store(settings.redis_client())
              for settings in (Settings.from_env(), WorkerSettings.from_env())]

    assert {(s.retention, s.max_events) for s in stores} == {(timedelta(hours=1), 500)}


async def test_both_services_talk_to_a_redis_cluster_when_told_to(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"BATON_ENV": "development", "REDIS_URL": "redis://node-a:7000/0",
                        "BATON_REDIS_CLUSTER": "true", "LIVEKIT_URL": "ws://lk",
                        "OPENAI_API_KEY": "sk-x"}.items():
        monkeypatch.setenv(name, value)

    clients = [settings.redis_client() for settings in (Settings.from_env(),
                                                         WorkerSettings.from_env())]

    assert all(isinstance(client, RedisCluster) for client in clients)
    assert Settings.from_env().environment()["BATON_REDIS_CLUSTER"] == "True"
    for client in clients:
        await client.aclose()


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


def test_dial_out_is_off_unless_a_trunk_and_countries_are_set() -> None:
    settings = Settings(env="development")

    assert (settings.sip_outbound_trunk, settings.dial_countries) == (None, ())


def test_dial_out_settings_are_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATON_ENV", "development")
    monkeypatch.setenv("BATON_SIP_OUTBOUND_TRUNK", "ST_abc123")
    monkeypatch.setenv("BATON_DIAL_COUNTRIES", "us, gb")
    monkeypatch.setenv("BATON_DIAL_CONVERSATION_WINDOW", "600")

    settings = Settings.from_env()

    assert settings.sip_outbound_trunk == "ST_abc123"
    assert settings.dial_countries == ("US", "GB")
    assert settings.dial_conversation_window == timedelta(minutes=10)
    assert Settings(**settings.environment()) == settings


@pytest.mark.parametrize(("name", "value"), [
    ("BATON_DIAL_COUNTRIES", "US,XX"),
    ("BATON_DIAL_COUNTRIES", "USA"),
    ("BATON_DIAL_WINDOW", "0"),
    ("BATON_DIAL_ATTEMPTS_PER_CONVERSATION", "0"),
])
def test_bad_dial_out_settings_are_refused(monkeypatch: pytest.MonkeyPatch, name: str,
                                           value: str) -> None:
    monkeypatch.setenv("BATON_ENV", "development")
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError):
        Settings.from_env()
