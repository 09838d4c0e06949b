"""LiveKit's and SIP's configurations use only keys those programs know (LiveKit refuses an
unknown key at start; SIP ignores it silently), agree between compose and Kubernetes, and the
SIP runbook's request files are what the `lk` CLI sends."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from livekit.protocol import sip

from conversation import attributes, validate_conversation_id
from tests.deploy.files import (
    HELM_LIVEKIT,
    LIVEKIT_YAML,
    ROOT,
    compose_services,
    containers,
    load,
    sip_config,
)
from tests.deploy.sources import LIVEKIT_CONFIG, SIP_CONFIG, unknown_keys

SIP_REQUESTS = {
    "outbound-trunk.json": sip.CreateSIPOutboundTrunkRequest,
    "inbound-trunk.json": sip.CreateSIPInboundTrunkRequest,
    "dispatch-rule.json": sip.CreateSIPDispatchRuleRequest,
}


def livekit_configs() -> dict[str, dict[str, Any]]:
    return {"livekit.yaml": load(LIVEKIT_YAML), "helm values": load(HELM_LIVEKIT)["livekit"]}


def sip_configs() -> dict[str, dict[str, Any]]:
    found = {"compose": sip_config(compose_services()["sip"]["environment"])}
    for c in containers():
        if "SIP_CONFIG_BODY" in c.env:
            found[f"k8s {c.name}"] = sip_config(c.env)
    return found


def request(name: str) -> Message:
    message: Message = json_format.Parse((ROOT / "deploy/sip" / name).read_text(),
                                         SIP_REQUESTS[name]())
    return message


@pytest.mark.parametrize("where", list(livekit_configs()))
def test_livekit_configurations_use_only_keys_the_server_knows(where: str) -> None:
    assert unknown_keys(livekit_configs()[where], LIVEKIT_CONFIG) == []


@pytest.mark.parametrize("where", list(sip_configs()))
def test_sip_configurations_use_only_keys_the_service_knows(where: str) -> None:
    assert unknown_keys(sip_configs()[where], SIP_CONFIG) == []


def test_an_unknown_key_is_found() -> None:
    assert unknown_keys({"rtc": {"port_range_begin": 1}, "room": {"enabled_codecs": [
        {"mime": "audio/opus", "fmtp": ""}]}}, LIVEKIT_CONFIG) == [
        "rtc.port_range_begin", "room.enabled_codecs.fmtp"]


@pytest.mark.parametrize("section", ["rtc", "room", "logging"])
def test_compose_and_kubernetes_configure_livekit_alike(section: str) -> None:
    compose, helm = livekit_configs().values()

    assert compose[section] == helm[section]


def test_rooms_are_created_by_the_orchestrator_only() -> None:
    assert all(config["room"]["auto_create"] is False for config in livekit_configs().values())


def test_the_livekit_configurations_hold_no_key_or_secret() -> None:
    for config in livekit_configs().values():
        assert "keys" not in config and "api_key" not in config["webhook"]


@pytest.mark.parametrize("name", list(SIP_REQUESTS))
def test_the_sip_runbooks_request_files_are_what_the_lk_cli_sends(name: str) -> None:
    """`lk sip ... create FILE` reads FILE with protojson into these messages and refuses
    unknown fields, as json_format.Parse does."""
    assert request(name).ByteSize() > 0


def test_dialled_calls_carry_the_conversation_id_to_the_carrier() -> None:
    trunk = request("outbound-trunk.json").trunk  # type: ignore[attr-defined]

    assert dict(trunk.attributes_to_headers) == {
        attributes.CONVERSATION_ID: "X-Baton-Conversation"}
    assert not trunk.auth_password, "carrier credentials are given on the command line"


def test_callers_go_into_the_room_of_an_existing_conversation_by_pin() -> None:
    rule = request("dispatch-rule.json").dispatch_rule  # type: ignore[attr-defined]
    direct = rule.rule.dispatch_rule_direct

    assert validate_conversation_id(direct.room_name) and direct.pin.isdigit()
    assert rule.hide_phone_number


def test_the_runbook_opens_the_ports_the_configurations_use() -> None:
    readme = (ROOT / "README.md").read_text()
    [compose_sip] = [c for where, c in sip_configs().items() if where == "compose"]
    rtc = load(LIVEKIT_YAML)["rtc"]
    wanted = [f"{compose_sip['sip_port']}", str(compose_sip["rtp_port"]),
              f"{rtc['port_range_start']}-{rtc['port_range_end']}", str(rtc["tcp_port"])]

    assert [port for port in wanted if port not in readme] == []

