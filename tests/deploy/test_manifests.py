"""The deployment files agree with the code: no Docker engine runs here, so check what can be
checked without one: they parse, they set only settings the services read, their paths exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from orchestrator.settings import Settings
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted([*ROOT.glob("deploy/**/*.yaml"), ROOT / "livekit.yaml"])
# Read by LiveKit's own images and by the OpenAI client, not by Baton's settings objects.
FOREIGN = {"LIVEKIT_KEYS", "SIP_CONFIG_BODY"}


def env_names(settings: type[BaseSettings]) -> set[str]:
    names = set()
    for field in settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias)
    return names


def documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def containers_by_service() -> list[tuple[str, dict[str, str]]]:
    """(command module, environment) for every Baton container in compose and Kubernetes."""
    found = []
    for service in documents(ROOT / "deploy/compose.yaml")[0]["services"].values():
        command = service.get("command", [])
        if "-m" in command:
            found.append((command[command.index("-m") + 1], dict(service.get("environment", {}))))
    for path in sorted((ROOT / "deploy/k8s").glob("*.yaml")):
        for doc in documents(path):
            if doc.get("kind") != "Deployment":
                continue
            for container in doc["spec"]["template"]["spec"]["containers"]:
                command = container["command"]
                found.append((command[command.index("-m") + 1],
                              {item["name"]: item.get("value") for item in container["env"]}))
    return found


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_manifest_is_valid_yaml(path: Path):
    assert documents(path)


@pytest.mark.parametrize(("module", "environment"), containers_by_service(),
                         ids=lambda value: value if isinstance(value, str) else "")
def test_deployments_set_only_settings_the_service_reads(module: str,
                                                         environment: dict[str, str]):
    known = env_names({"orchestrator": Settings, "worker": WorkerSettings}[module])

    assert set(environment) - known - FOREIGN == set()


def test_the_orchestrator_and_worker_are_deployed_in_compose_and_kubernetes():
    modules = [module for module, _ in containers_by_service()]

    assert modules.count("orchestrator") == 2 and modules.count("worker") == 2


def test_livekit_sends_webhooks_to_the_orchestrators_webhook_route():
    from orchestrator.app import create_app

    routes = set(create_app(Settings()).openapi()["paths"])
    urls = documents(ROOT / "livekit.yaml")[0]["webhook"]["urls"]

    assert urls and all(re.sub(r"^https?://[^/]+", "", url) in routes for url in urls)


def test_every_path_the_image_copies_exists():
    sources = []
    for line in (ROOT / "deploy/Dockerfile").read_text().splitlines():
        if line.startswith("COPY") and "--from=" not in line:
            sources.extend(line.split()[1:-1])

    assert sources
    assert [s for s in sources if not (ROOT / s).exists()] == []
