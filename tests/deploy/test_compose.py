"""The single-host compose stack runs as written: every address a service dials is served on
the network it is on, services restart and wait for healthy dependencies, secrets survive
their way into LiveKit, and a stop lets calls finish."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.settings import Settings
from tests.deploy.files import (
    COMPOSE,
    LIVEKIT_YAML,
    Address,
    compose_services,
    load,
    seconds,
    sip_config,
)
from worker.chat.settings import ChatSettings

LOOPBACK = {"127.0.0.1", "localhost"}
BATON = ("orchestrator", "worker", "chat")


def listening(name: str, service: dict[str, Any]) -> set[int]:
    """The ports a service listens on, read from the configuration it is given."""
    environment = service.get("environment", {})
    if name == "redis":
        command = service["command"]
        return {int(command[command.index("--port") + 1])}
    if name == "livekit":
        config = load(LIVEKIT_YAML)
        return {int(config["port"]), int(config["rtc"]["tcp_port"])}
    if name == "sip":
        config = sip_config(environment)
        return {int(config["sip_port"]), int(config["health_port"])}
    if name == "orchestrator":
        return {int(environment.get("BATON_PORT", Settings.model_fields["port"].default))}
    if name == "worker":
        return {int(environment["BATON_HEALTH_PORT"]), int(environment["BATON_METRICS_PORT"])}
    if name == "chat":
        return {int(environment["BATON_CHAT_METRICS_PORT"])}
    raise AssertionError(f"no rule for what {name} listens on")


def dialed(name: str, service: dict[str, Any]) -> list[str]:
    """The addresses a service connects to."""
    environment = service.get("environment", {})
    if name == "livekit":
        config = load(LIVEKIT_YAML)
        return [config["redis"]["address"], *config["webhook"]["urls"]]
    if name == "sip":
        config = sip_config(environment)
        return [config["redis"]["address"], config["ws_url"]]
    if name == "orchestrator":
        return [environment["REDIS_URL"], environment["LIVEKIT_API_URL"]]
    if name == "worker":
        return [environment["REDIS_URL"], environment["LIVEKIT_URL"]]
    if name == "chat":
        return [environment["REDIS_URL"]]
    return []


def on_host_network(service: dict[str, Any]) -> bool:
    return service.get("network_mode") == "host"


DIALS = [(name, address) for name, service in compose_services().items()
         for address in dialed(name, service)]


@pytest.mark.parametrize(("dialer", "address"), DIALS, ids=[f"{n}->{a}" for n, a in DIALS])
def test_every_address_a_service_dials_is_served_on_its_network(dialer: str,
                                                                 address: str) -> None:
    services = compose_services()
    target = Address.parse(address)
    assert target.host in LOOPBACK, "every service shares the host's network, so loopback"

    servers = [name for name, service in services.items()
               if on_host_network(service) and target.port in listening(name, service)]

    assert on_host_network(services[dialer]) and servers, \
        f"nothing on {dialer}'s network listens on {target.port}"


def test_no_two_services_on_the_host_network_listen_on_one_port() -> None:
    ports = [port for name, service in compose_services().items() if on_host_network(service)
             for port in listening(name, service)]

    assert len(ports) == len(set(ports))


def test_every_service_restarts_after_a_crash_or_a_reboot() -> None:
    policies = {name: service.get("restart") for name, service in compose_services().items()}

    assert set(policies.values()) == {"unless-stopped"}


@pytest.mark.parametrize("name", list(compose_services()))
def test_every_service_has_a_healthcheck_on_what_it_serves(name: str) -> None:
    service = compose_services()[name]
    check = " ".join(service["healthcheck"]["test"])
    ports = {int(port) for port in re.findall(r"(?:127\.0\.0\.1[:/]|-p )(\d+)", check)}

    assert ports and ports <= listening(name, service)


@pytest.mark.parametrize("name", ["livekit", "sip", *BATON])
def test_services_start_once_redis_and_livekit_are_healthy(name: str) -> None:
    services = compose_services()
    needs = services[name]["depends_on"]
    # The chat agent talks to Redis and the model provider only.
    wanted = {"redis"} if name in ("livekit", "chat") else {"redis", "livekit"}

    assert wanted <= set(needs)
    assert all(needs[dependency] == {"condition": "service_healthy"} for dependency in wanted)
    assert all("healthcheck" in services[dependency] for dependency in needs)


def test_the_worker_is_healthy_only_when_ready_to_take_jobs() -> None:
    worker = compose_services()["worker"]
    port = worker["environment"]["BATON_HEALTH_PORT"]

    assert f"http://127.0.0.1:{port}/ready" in " ".join(worker["healthcheck"]["test"])


@pytest.mark.parametrize("name", ["worker", "sip", "livekit"])
def test_stopping_waits_longer_than_the_workers_drain(name: str) -> None:
    drain = int(compose_services()["worker"]["environment"]["BATON_DRAIN_TIMEOUT"])

    assert seconds(compose_services()[name]["stop_grace_period"]) > drain


def test_stopping_the_chat_agent_lets_a_turn_in_progress_be_answered() -> None:
    chat = compose_services()["chat"]
    turn = float(chat["environment"].get("BATON_CHAT_TURN_TIMEOUT",
                                         ChatSettings.model_fields["turn_timeout"].default))

    assert seconds(chat["stop_grace_period"]) > turn


@pytest.mark.parametrize("name", BATON)
def test_baton_containers_have_a_read_only_root_and_a_writable_tmp(name: str) -> None:
    service = compose_services()[name]

    assert service["read_only"] is True and "/tmp" in service["tmpfs"]


def test_livekit_and_sip_run_the_pinned_versions() -> None:
    services = compose_services()

    assert services["livekit"]["image"] == "livekit/livekit-server:v1.13.5"
    assert services["sip"]["image"] == "livekit/sip:v1.11.0"
    assert all(re.search(r":v?\d+\.\d+\.\d+", service["image"])
               for service in services.values())


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:?message} and ${NAME:-default}, as `docker compose` does."""
    return re.sub(r"\$\{(\w+)(?::[?-][^}]*)?\}", lambda m: variables[m.group(1)], value)


@pytest.mark.parametrize("secret", [
    "12345678901234567890123456789012", "true", "null", "1e10", "0x1F", "#not-a-comment",
    "a: b", "*star", "&anchor", "!tag", "%percent", "@at", "`tick", "[list]", "{map}",
    "with spaces and \"double quotes\"",
])
def test_any_secret_without_a_single_quote_reaches_livekit_as_written(secret: str) -> None:
    """Regression: the secret was interpolated into LIVEKIT_KEYS unquoted, and LiveKit keeps
    only string values of that YAML mapping, so an all-digit secret was silently dropped."""
    template = compose_services()["livekit"]["environment"]["LIVEKIT_KEYS"]

    keys = yaml.safe_load(interpolate(template, {"LIVEKIT_API_KEY": "APIbaton123",
                                                 "LIVEKIT_API_SECRET": secret}))

    assert keys == {"APIbaton123": secret}


def test_no_secret_is_interpolated_into_the_sip_configuration() -> None:
    sip = compose_services()["sip"]["environment"]

    assert "${" not in sip["SIP_CONFIG_BODY"]
    assert {"LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"} <= set(sip)


def test_livekit_signs_webhooks_with_the_key_the_orchestrator_verifies() -> None:
    """Regression: livekit.yaml named the key `baton`; LiveKit refuses to start when the key
    named for webhooks is not one of its keys."""
    services = compose_services()

    assert "api_key" not in load(LIVEKIT_YAML)["webhook"]
    assert services["livekit"]["environment"]["LIVEKIT_WEBHOOK_API_KEY"] == "${LIVEKIT_API_KEY}"
    assert services["orchestrator"]["environment"]["LIVEKIT_API_KEY"].startswith(
        "${LIVEKIT_API_KEY")


SECRETS = {"LIVEKIT_API_KEY": "APIbaton01", "BATON_API_KEYS": "k" * 32,
           "BATON_WIDGET_SECRET": "w" * 32, "OPENAI_API_KEY": "sk-test",
           "LIVEKIT_PUBLIC_URL": "wss://livekit.example.com"}


def compose_config(directory: Path, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`docker-compose config`: Debian's Compose validates the file against its schema and
    interpolates the variables, with no Docker engine."""
    env_file = directory / ".env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in variables.items()))
    return subprocess.run(["docker-compose", "-f", str(COMPOSE), "--env-file", str(env_file),
                           "config"], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("secret", ["12345678901234567890123456789012", "p@ss: w*rd!&{x}%"])
def test_compose_accepts_the_file_and_hands_livekit_the_secret_as_written(
        tmp_path: Path, secret: str) -> None:
    result = compose_config(tmp_path, SECRETS | {"LIVEKIT_API_SECRET": secret})
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]

    keys = yaml.safe_load(services["livekit"]["environment"]["LIVEKIT_KEYS"])

    assert keys == {"APIbaton01": secret}
    assert services["worker"]["environment"]["LIVEKIT_API_SECRET"] == secret


def test_compose_refuses_to_start_without_a_secret_and_names_it(tmp_path: Path) -> None:
    result = compose_config(tmp_path, SECRETS)

    assert result.returncode != 0 and "set LIVEKIT_API_SECRET in deploy/.env" in result.stderr
