"""The Kubernetes manifests are valid objects, run unprivileged on read-only roots, reach each
other by the Services that exist, never cut a call short, and scale workers on their load."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
from kubernetes_validate import utils as kubernetes_validate

from tests.deploy.files import (
    HELM_ADAPTER,
    HELM_LIVEKIT,
    HELM_NAMESPACE,
    HELM_RELEASE,
    ROOT,
    Address,
    Container,
    containers,
    kube_objects,
    load,
    sip_config,
)
from tests.deploy.sources import helm_service
from worker import metrics
from worker.chat.settings import ChatSettings

# The oldest Kubernetes the manifests are meant for, and the newest whose schemas are shipped.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
OBJECTS = kube_objects()
CONTAINERS = containers()
BATON = [c for c in CONTAINERS if c.module is not None]


def object_id(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def by_kind(kind: str, name: str) -> dict[str, Any]:
    [found] = [obj for obj in OBJECTS if obj["kind"] == kind and obj["metadata"]["name"] == name]
    return found


def container(module: str) -> Container:
    [found] = [c for c in BATON if c.module == module]
    return found


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("obj", OBJECTS, ids=object_id)
def test_every_object_is_valid_against_the_kubernetes_schema(obj: dict[str, Any],
                                                             version: str) -> None:
    kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("obj", [o for o in OBJECTS if o["kind"] != "Namespace"],
                         ids=object_id)
def test_every_object_names_its_namespace(obj: dict[str, Any]) -> None:
    namespaces = {o["metadata"]["name"] for o in OBJECTS if o["kind"] == "Namespace"}

    assert obj["metadata"].get("namespace") in namespaces


@pytest.mark.parametrize("c", CONTAINERS, ids=lambda c: c.name)
def test_every_container_runs_unprivileged_on_a_read_only_root(c: Container) -> None:
    pod, own = c.pod.get("securityContext", {}), c.spec.get("securityContext", {})

    assert pod.get("runAsNonRoot") is True and pod.get("runAsUser", 0) > 0
    assert own.get("readOnlyRootFilesystem") is True
    assert own.get("allowPrivilegeEscalation") is False
    assert own.get("capabilities") == {"drop": ["ALL"]}


@pytest.mark.parametrize("c", BATON, ids=lambda c: c.name)
def test_baton_containers_write_only_to_empty_dirs(c: Container) -> None:
    """The worker's forkserver socket and metrics directory go to /tmp; onnxruntime (Silero's
    VAD) keeps a cache under $HOME."""
    volumes = {v["name"]: v for v in c.pod.get("volumes", [])}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in c.spec.get("volumeMounts", [])}
    wanted = {"/tmp", "/home/baton/.cache"} if c.module == "worker" else {"/tmp"}

    assert set(mounts) == wanted and all("emptyDir" in v for v in mounts.values())


def test_the_worker_is_ready_only_while_it_takes_jobs() -> None:
    worker = container("worker")
    probe = worker.spec["readinessProbe"]["httpGet"]
    [port] = [p for p in worker.spec["ports"] if p["name"] == probe["port"]]

    assert probe["path"] == "/ready"
    assert str(port["containerPort"]) == worker.env["BATON_HEALTH_PORT"]


# What holds a call: the worker, and SIP for a phone leg (LiveKit's own is set in its chart).
@pytest.mark.parametrize("c", [c for c in CONTAINERS if c.workload["kind"] == "Deployment"
                               and c.module not in ("orchestrator", "worker.chat")],
                         ids=lambda c: c.name)
def test_termination_waits_longer_than_the_workers_drain(c: Container) -> None:
    drain = int(container("worker").env["BATON_DRAIN_TIMEOUT"] or 0)

    assert c.pod["terminationGracePeriodSeconds"] > drain


def test_the_chat_agent_answers_the_turn_in_hand_before_it_is_stopped() -> None:
    chat = container("worker.chat")
    turn = float(chat.env.get("BATON_CHAT_TURN_TIMEOUT") or
                 ChatSettings.model_fields["turn_timeout"].default)

    assert chat.pod["terminationGracePeriodSeconds"] > turn


def test_workers_scale_on_the_load_they_export() -> None:
    hpa = by_kind("HorizontalPodAutoscaler", "baton-worker")
    [metric] = hpa["spec"]["metrics"]
    [rule] = load(HELM_ADAPTER)["rules"]["custom"]
    name = metric["pods"]["metric"]["name"]

    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "baton-worker"}
    assert name == rule["name"]["as"] == metrics.LOAD.describe()[0].name
    assert rule["seriesQuery"].startswith(f"{name}{{")
    # The load is live calls / BATON_MAX_JOBS only when BATON_MAX_JOBS is set.
    assert int(container("worker").env["BATON_MAX_JOBS"] or 0) >= 1
    assert "replicas" not in by_kind("Deployment", "baton-worker")["spec"]


def services() -> dict[tuple[str, int], str]:
    """(DNS name, port) -> what serves it: the manifests' Services and LiveKit's chart's."""
    served = {}
    for obj in OBJECTS:
        if obj["kind"] == "Service":
            host = f"{obj['metadata']['name']}.{obj['metadata']['namespace']}.svc.cluster.local"
            for port in obj["spec"]["ports"]:
                served[(host, port["port"])] = object_id(obj)
    host, port, _target = helm_service(load(HELM_LIVEKIT), HELM_RELEASE, HELM_NAMESPACE)
    served[(host, port)] = "LiveKit's chart"
    return served


def dials() -> list[tuple[str, str]]:
    values = load(HELM_LIVEKIT)["livekit"]
    found = [("livekit", values["redis"]["address"]),
             *[("livekit", url) for url in values["webhook"]["urls"]]]
    for c in CONTAINERS:
        env = c.env
        if "SIP_CONFIG_BODY" in env:
            config = sip_config(env)
            found += [(c.name, config["redis"]["address"]), (c.name, config["ws_url"])]
        for name in ("REDIS_URL", "LIVEKIT_API_URL"):
            if env.get(name):
                found.append((c.name, str(env[name])))
        if c.module == "worker":
            found.append((c.name, str(env["LIVEKIT_URL"])))
    return found


@pytest.mark.parametrize(("dialer", "address"), dials(),
                         ids=[f"{d}->{a}" for d, a in dials()])
def test_every_address_a_container_dials_is_a_service_port(dialer: str, address: str) -> None:
    target = Address.parse(address)

    assert (target.host, target.port) in services()


@pytest.mark.parametrize("service", [o for o in OBJECTS if o["kind"] == "Service"],
                         ids=object_id)
def test_every_service_port_leads_to_a_container_port(service: dict[str, Any]) -> None:
    selected = [c for c in CONTAINERS
                if c.workload["metadata"]["namespace"] == service["metadata"]["namespace"]
                and service["spec"]["selector"].items()
                <= c.workload["spec"]["template"]["metadata"]["labels"].items()]
    names = {p.get("name") for c in selected for p in c.spec.get("ports", [])}

    assert selected and {p["targetPort"] for p in service["spec"]["ports"]} <= names


def test_the_orchestrator_listens_where_its_service_sends() -> None:
    orchestrator = container("orchestrator")
    [port] = orchestrator.spec["ports"]

    assert str(port["containerPort"]) == orchestrator.env["BATON_PORT"]


def test_browsers_are_sent_to_livekit_over_tls() -> None:
    assert str(container("orchestrator").env["LIVEKIT_URL"]).startswith("wss://")


def test_livekits_chart_serves_its_configured_port() -> None:
    values = load(HELM_LIVEKIT)
    _host, _port, target = helm_service(values, HELM_RELEASE, HELM_NAMESPACE)

    assert target == 7880 and values["image"]["tag"] == "v1.13.5"
    assert values["storeKeysInSecret"] == {"enabled": True, "existingSecret": "livekit-keys"}


@pytest.mark.parametrize("c", CONTAINERS, ids=lambda c: c.name)
def test_every_image_is_pinned_to_a_version(c: Container) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    image = c.spec["image"]

    assert re.search(r":v?\d+\.\d+\.\d+(-\w+)?$", image), image
    assert c.module is None or image.endswith(f":{version}")
