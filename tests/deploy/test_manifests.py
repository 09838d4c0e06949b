"""The deployment files agree with the code: no Docker engine or cluster runs here, so check
what can be checked without one: they parse, and they set only settings the programs they are
given to read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from orchestrator.settings import Settings
from tests.deploy.files import (
    HELM_LIVEKIT,
    LIVEKIT_YAML,
    ROOT,
    compose_services,
    containers,
    documents,
    load,
)
from tests.deploy.sources import SIP_ENV, livekit_env_names
from worker.chat.settings import ChatSettings
from worker.settings import WorkerSettings

MANIFESTS = sorted([*ROOT.glob("deploy/**/*.yaml"), LIVEKIT_YAML])
SETTINGS: dict[str, type[BaseSettings]] = {"orchestrator": Settings, "worker": WorkerSettings,
                                           "worker.chat": ChatSettings}


def env_names(settings: type[BaseSettings]) -> set[str]:
    names = set()
    for field in settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias)
    return names


def baton_environments() -> list[tuple[str, str, dict[str, object]]]:
    """(where, module, environment) of every Baton container in compose and Kubernetes."""
    found = []
    for name, service in compose_services().items():
        command = service.get("command", [])
        if "-m" in command:
            found.append((f"compose {name}", command[command.index("-m") + 1],
                          dict(service.get("environment", {}))))
    for container in containers():
        if container.module is not None:
            found.append((f"k8s {container.name}", container.module, dict(container.env)))
    return found


def program_environments() -> list[tuple[str, set[str], set[str]]]:
    """(where, variables set, variables read) of every LiveKit and SIP container."""
    livekit_env, sip_env = livekit_env_names(), set(SIP_ENV)
    found = []
    for name, service in compose_services().items():
        image = service.get("image", "")
        if image.startswith(("livekit/livekit-server", "livekit/sip")):
            reads = livekit_env if "livekit-server" in image else sip_env
            found.append((f"compose {name}", set(service.get("environment", {})), reads))
    for container in containers():
        if container.spec["image"].startswith("livekit/sip"):
            found.append((f"k8s {container.name}", set(container.env), sip_env))
    return found


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_manifest_is_valid_yaml(path: Path) -> None:
    assert documents(path)


@pytest.mark.parametrize(("where", "module", "environment"), baton_environments(),
                         ids=[where for where, _, _ in baton_environments()])
def test_baton_containers_set_only_settings_their_service_reads(
        where: str, module: str, environment: dict[str, object]) -> None:
    assert set(environment) - env_names(SETTINGS[module]) == set()


@pytest.mark.parametrize(("where", "given", "read"), program_environments(),
                         ids=[where for where, _, _ in program_environments()])
def test_livekit_and_sip_containers_set_only_variables_they_read(
        where: str, given: set[str], read: set[str]) -> None:
    assert given - read == set()


def test_the_orchestrator_worker_and_chat_agent_are_deployed_in_compose_and_kubernetes(
        ) -> None:
    modules = [module for _, module, _ in baton_environments()]

    assert [modules.count(m) for m in ("orchestrator", "worker", "worker.chat")] == [2, 2, 2]


@pytest.mark.parametrize("urls", [
    load(LIVEKIT_YAML)["webhook"]["urls"],
    load(HELM_LIVEKIT)["livekit"]["webhook"]["urls"],
], ids=["livekit.yaml", "helm values"])
def test_livekit_sends_webhooks_to_the_orchestrators_webhook_route(urls: list[str]) -> None:
    from orchestrator.app import create_app

    routes = set(create_app(Settings(env="development")).openapi()["paths"])

    assert urls and all(re.sub(r"^https?://[^/]+", "", url) in routes for url in urls)

