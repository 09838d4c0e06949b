"""The preflight check (`python -m deploy.preflight`): a deployment wired as documented passes
every check, and each fault in the wiring fails its check with what to fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from livekit.protocol import sip
from pydantic import SecretStr

from deploy.preflight.__main__ import run
from deploy.preflight.environment import check_oncall_numbers, load
from deploy.preflight.results import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNKNOWN,
    Result,
    Status,
    exit_status,
    fail,
    ok,
    unknown,
)
from deploy.processes import RedisServer, free_port
from devserver.process import DevServer
from orchestrator.settings import Settings
from tests.deploy.conftest import LIVEKIT_SECRET, Deployment

CHECKS = ["settings", "secrets", "redis", "redis-aof", "livekit", "webhook-endpoint", "agent",
          "webhook-delivery", "sip-trunk", "oncall-numbers"]
SHORT_WAIT = 3.0
"""Long enough for a worker on this machine to take a job; failing checks wait this long."""


def by_name(results: list[Result]) -> dict[str, Result]:
    return {result.name: result for result in results}


def preflight(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.preflight", *arguments],
                          env={**os.environ, **environment}, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def settings(deployment: Deployment) -> Settings:
    return deployment.settings


def variant(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


async def test_a_deployment_wired_as_documented_passes_every_check(
        deployment: Deployment) -> None:
    checked = preflight(deployment.settings.environment(),
                        "--orchestrator-url", deployment.orchestrator_url)

    lines = checked.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"OK {name}" for name in CHECKS], \
        checked.stdout
    assert checked.returncode == 0


async def test_a_failing_check_exits_nonzero_and_prints_no_secret(
        deployment: Deployment) -> None:
    environment = deployment.settings.environment() | {
        "REDIS_URL": f"redis://:redis-password-0123456789@127.0.0.1:{free_port()}/0"}

    checked = preflight(environment, "--orchestrator-url", deployment.orchestrator_url,
                        "--wait", str(SHORT_WAIT))

    assert checked.returncode == 1
    assert "FAIL redis: Redis is unreachable" in checked.stdout
    output = checked.stdout + checked.stderr
    for secret in ("redis-password-0123456789", LIVEKIT_SECRET, environment["BATON_API_KEYS"],
                   environment["BATON_WIDGET_SECRET"]):
        assert secret not in output


async def test_json_output_holds_every_check_and_the_exit_status(
        deployment: Deployment) -> None:
    checked = preflight(deployment.settings.environment(), "--json")

    report = json.loads(checked.stdout)
    assert report["exit_status"] == checked.returncode == 0
    assert [check["name"] for check in report["checks"]] == \
        [name for name in CHECKS if name != "webhook-endpoint"]


async def test_a_wrong_secret_is_told_apart_from_an_unreachable_livekit(
        settings: Settings) -> None:
    results = by_name(await run(variant(
        settings, livekit_api_secret=SecretStr("not-the-secret-0123456789abcdef0123456789")),
        wait=SHORT_WAIT))

    assert results["livekit"].status is Status.FAIL
    assert "refused the API key 'APIdeployment01' or its secret (401" in results["livekit"].detail
    assert results["agent"].status is Status.UNKNOWN
    assert results["webhook-delivery"].status is Status.UNKNOWN


async def test_livekit_down_fails_as_unreachable(settings: Settings) -> None:
    results = by_name(await run(variant(settings, livekit_url=f"ws://127.0.0.1:{free_port()}"),
                                wait=SHORT_WAIT))

    assert results["livekit"].status is Status.FAIL
    assert "LiveKit is unreachable at ws://127.0.0.1:" in results["livekit"].detail


async def test_no_worker_for_the_agent_name_fails_the_agent_check(settings: Settings) -> None:
    results = by_name(await run(variant(settings, agent_name="nobody-runs-this-agent"),
                                wait=SHORT_WAIT))

    assert results["agent"].status is Status.FAIL
    assert "no worker took a probe job for the agent name 'nobody-runs-this-agent'" in \
        results["agent"].detail
    assert results["webhook-delivery"].status is Status.OK


async def test_livekit_sending_its_webhooks_nowhere_fails_the_delivery_check(
        settings: Settings, devserver_factory: Callable[..., DevServer]) -> None:
    silent = devserver_factory()
    keys = {"livekit_url": silent.url, "livekit_api_key": silent.api_key,
            "livekit_api_secret": SecretStr(silent.api_secret)}

    results = by_name(await run(variant(settings, **keys), wait=SHORT_WAIT))

    assert results["livekit"].status is Status.OK
    assert results["webhook-delivery"].status is Status.FAIL
    assert "received a verified room_started for the probe room" in \
        results["webhook-delivery"].detail


async def test_livekit_webhooks_refused_by_the_orchestrator_fail_the_delivery_check(
        deployment: Deployment, devserver_factory: Callable[..., DevServer]) -> None:
    """A LiveKit whose webhooks reach the orchestrator signed with a key it does not hold."""
    other = devserver_factory(webhooks=[f"{deployment.orchestrator_url}/v1/livekit/webhook"])
    keys = {"livekit_url": other.url, "livekit_api_key": other.api_key,
            "livekit_api_secret": SecretStr(other.api_secret)}

    results = by_name(await run(variant(deployment.settings, **keys), wait=SHORT_WAIT))

    assert results["webhook-delivery"].status is Status.FAIL


async def test_an_orchestrator_url_where_nothing_answers_fails_the_endpoint_check(
        settings: Settings) -> None:
    results = by_name(await run(settings, orchestrator_url=f"http://127.0.0.1:{free_port()}",
                                wait=SHORT_WAIT))

    assert results["webhook-endpoint"].status is Status.FAIL
    assert "the orchestrator is unreachable at http://127.0.0.1:" in \
        results["webhook-endpoint"].detail


async def test_an_orchestrator_url_that_is_another_server_fails_the_endpoint_check(
        deployment: Deployment) -> None:
    results = by_name(await run(deployment.settings,
                                orchestrator_url=deployment.devserver.http_url,
                                wait=SHORT_WAIT))

    assert results["webhook-endpoint"].status is Status.FAIL
    assert "has no webhook route" in results["webhook-endpoint"].detail


async def test_an_orchestrator_holding_other_keys_fails_the_endpoint_check(
        settings: Settings, orchestrator_server: Callable[..., Any]) -> None:
    url = await orchestrator_server(variant(
        settings, livekit_api_secret=SecretStr("another-livekit-secret-0123456789abcdef")))

    results = by_name(await run(settings, orchestrator_url=url, wait=SHORT_WAIT))

    assert results["webhook-endpoint"].status is Status.FAIL
    assert "refused the signature" in results["webhook-endpoint"].detail


async def test_redis_down_fails_and_the_checks_that_need_it_cannot_tell(
        settings: Settings) -> None:
    results = by_name(await run(
        variant(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"), wait=SHORT_WAIT))

    assert results["redis"].status is Status.FAIL
    assert results["redis-aof"].status is Status.UNKNOWN
    assert results["webhook-delivery"].status is Status.UNKNOWN
    assert results["agent"].status is Status.OK


async def test_redis_without_the_append_only_file_fails_the_aof_check(
        settings: Settings, tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=False)
    server.start()
    try:
        results = by_name(await run(variant(settings, redis_url=server.url), wait=SHORT_WAIT))
    finally:
        server.stop()

    assert results["redis"].status is Status.OK
    assert results["redis-aof"].status is Status.FAIL
    assert "the append-only file is off" in results["redis-aof"].detail


@pytest.fixture
def managed_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis that refuses CONFIG, as managed services do."""
    server = RedisServer(tmp_path / "redis")
    server._process.argv += ["--rename-command", "CONFIG", ""]
    server.start()
    yield server
    server.stop()


async def test_a_redis_that_refuses_config_is_reported_as_cannot_tell(
        settings: Settings, managed_redis: RedisServer) -> None:
    results = by_name(await run(variant(settings, redis_url=managed_redis.url),
                                wait=SHORT_WAIT))

    assert results["redis"].status is Status.OK
    assert results["redis-aof"].status is Status.UNKNOWN
    assert results["redis-aof"].detail.startswith("cannot tell: this Redis refuses CONFIG GET")


def test_the_exit_status_is_zero_only_when_every_check_passed() -> None:
    passed, failed, untold = ok("a"), fail("b", "broken"), unknown("c", "cannot tell")

    assert exit_status([passed, passed]) == EXIT_OK
    assert exit_status([passed, untold, failed]) == EXIT_FAILED
    assert exit_status([passed, untold]) == EXIT_UNKNOWN


async def test_a_missing_outbound_trunk_fails_the_sip_check(settings: Settings) -> None:
    results = by_name(await run(variant(settings, sip_outbound_trunk="ST_nosuchtrunk"),
                                wait=SHORT_WAIT))

    assert results["sip-trunk"].status is Status.FAIL
    assert "LiveKit has no outbound trunk 'ST_nosuchtrunk'" in results["sip-trunk"].detail


async def test_an_existing_outbound_trunk_passes_the_sip_check(
        deployment: Deployment) -> None:
    async with deployment.devserver.api() as livekit:
        trunk = await livekit.sip.create_outbound_trunk(sip.CreateSIPOutboundTrunkRequest(
            trunk=sip.SIPOutboundTrunkInfo(name="carrier", address="sip.carrier.example",
                                           numbers=["+12025550000"])))
        try:
            results = by_name(await run(variant(
                deployment.settings, sip_outbound_trunk=trunk.sip_trunk_id,
                dial_countries=("US",)), wait=SHORT_WAIT))
        finally:
            await livekit.sip.delete_trunk(sip.DeleteSIPTrunkRequest(
                sip_trunk_id=trunk.sip_trunk_id))

    assert results["sip-trunk"].status is Status.OK


def test_placeholder_secrets_fail_and_the_other_checks_still_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATON_ENV", "production")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "secret")
    monkeypatch.setenv("BATON_API_KEYS", "dev-api-key")

    loaded = load()

    assert loaded.settings is not None
    [settings_check, secrets] = loaded.results
    assert settings_check.status is Status.OK
    assert secrets.status is Status.FAIL
    assert "LIVEKIT_API_SECRET is a placeholder" in secrets.detail
    assert "BATON_API_KEYS[0] is a placeholder" in secrets.detail
    assert "refuse to start" in secrets.detail


def test_development_secrets_are_reported_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATON_ENV", "development")

    [_settings, secrets] = load().results

    assert secrets.status is Status.FAIL
    assert secrets.detail.startswith("BATON_ENV=development, where the services take "
                                     "development secrets, and LIVEKIT_API_KEY is a placeholder")


def test_settings_the_orchestrator_refuses_stop_the_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATON_DIAL_COUNTRIES", "XX")

    loaded = load()

    assert loaded.settings is None
    [refused] = loaded.results
    assert refused.status is Status.FAIL
    assert refused.detail.startswith("BATON_DIAL_COUNTRIES: not ISO region codes")


@pytest.mark.parametrize(("numbers", "trunk", "status", "says"), [
    ("+1202555", "ST_x", Status.FAIL, "BATON_ONCALL_NUMBERS must be E.164 numbers"),
    ("+12025550100", "", Status.FAIL, "BATON_SIP_OUTBOUND_TRUNK is not"),
    ("+12025550100,+12025550101", "ST_x", Status.OK, "2 valid number(s)"),
    ("", "", Status.OK, "none set"),
])
def test_on_call_numbers_are_checked_without_being_printed(
        monkeypatch: pytest.MonkeyPatch, numbers: str, trunk: str, status: Status,
        says: str) -> None:
    monkeypatch.setenv("BATON_ONCALL_NUMBERS", numbers)
    monkeypatch.setenv("BATON_SIP_OUTBOUND_TRUNK", trunk)

    result = check_oncall_numbers()

    assert (result.status, says in result.detail) == (status, True), result.detail
    assert "555" not in result.detail
