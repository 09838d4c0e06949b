"""The deployment files as data: compose services, Kubernetes objects and their containers,
and the addresses in them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy/compose.yaml"
LIVEKIT_YAML = ROOT / "livekit.yaml"
HELM_LIVEKIT = ROOT / "deploy/helm/livekit-server.yaml"
HELM_ADAPTER = ROOT / "deploy/helm/prometheus-adapter.yaml"
KUBERNETES = sorted((ROOT / "deploy/k8s").glob("*.yaml"))
# How the runbook installs LiveKit's chart.
HELM_RELEASE, HELM_NAMESPACE = "livekit-server", "livekit"
DEFAULT_PORTS = {"ws": 80, "http": 80, "wss": 443, "https": 443, "redis": 6379}


def documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load(path: Path) -> Any:
    [document] = documents(path)
    return document


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = load(COMPOSE)["services"]
    return services


def kube_objects() -> list[dict[str, Any]]:
    return [doc for path in KUBERNETES for doc in documents(path)]


@dataclass
class Container:
    """A container of a Kubernetes workload, with what it needs to be judged."""

    workload: dict[str, Any]
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.workload['metadata']['name']}/{self.spec['name']}"

    @property
    def pod(self) -> dict[str, Any]:
        pod: dict[str, Any] = self.workload["spec"]["template"]["spec"]
        return pod

    @property
    def env(self) -> dict[str, str | None]:
        return {item["name"]: item.get("value") for item in self.spec.get("env", [])}

    @property
    def module(self) -> str | None:
        """The Baton module it runs (`python -m <module>`), or None for another program."""
        command = self.spec.get("command", [])
        return command[command.index("-m") + 1] if "-m" in command else None


def containers() -> list[Container]:
    return [Container(doc, spec) for doc in kube_objects()
            if doc["kind"] in ("Deployment", "StatefulSet")
            for spec in doc["spec"]["template"]["spec"]["containers"]]


def sip_config(environment: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(environment["SIP_CONFIG_BODY"])
    return config


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, address: str) -> Address:
        """From a URL, or host:port as Redis addresses in LiveKit's configuration are."""
        if "://" not in address:
            address = f"redis://{address}"
        parts = urlsplit(address)
        assert parts.hostname, address
        return cls(parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme])


def seconds(duration: str | int) -> int:
    """A compose duration ("10m", "90s", "1h30m") in seconds."""
    if isinstance(duration, int):
        return duration
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", duration)
    assert "".join(f"{n}{u}" for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)
