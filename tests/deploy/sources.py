"""What LiveKit's server and SIP service accept, transcribed from their sources at the pinned
versions: configuration keys (the `yaml:` tags of their config structs) and the environment
variables they read. The deployment files are checked against these, since neither program can
run here.

- livekit/livekit v1.13.5: pkg/config/config.go (Config and its sections), cmd/server/main.go
  (flags and their environment variables); its modules github.com/livekit/protocol
  v1.50.5-0.20260728075222-28e604c046c6 (redis.RedisConfig, webhook.WebHookConfig,
  logger.Config) and github.com/livekit/mediatransportutil rtcconfig.RTCConfig (read at
  commit 77f742a of 2026-04-29, the newest available; the server pins 2026-06-08).
- livekit/sip v1.11.0: pkg/config/config.go (Config, NewConfig), cmd/livekit-sip/main.go.
- livekit/livekit-helm livekit-server chart 1.9.0: templates/service.yaml, _helpers.tpl.
"""

from __future__ import annotations

from typing import Any

# A section maps each key to its own section, or to None where its value is not checked
# further (a scalar, a list, or a section Baton does not use).
Schema = dict[str, Any]

_LIVEKIT_RTC: Schema = dict.fromkeys([
    # mediatransportutil rtcconfig.RTCConfig, inlined
    "udp_port", "tcp_port", "port_range_start", "port_range_end", "use_stun_port_as_ice",
    "node_ip", "stun_servers", "use_external_ip", "use_ice_lite", "interfaces", "ips",
    "enable_loopback_candidate", "use_mdns", "external_ip_only", "batch_io", "sctp_min_cwnd",
    "sctp_fast_rtx_wnd", "sctp_cwnd_ca_step", "force_tcp",
    # config.RTCConfig
    "turn_servers", "strict_acks", "packet_buffer_size", "packet_buffer_size_video",
    "packet_buffer_size_audio", "pli_throttle", "congestion_control", "allow_tcp_fallback",
    "tcp_fallback_rtt_threshold", "allow_udp_unstable_fallback",
    "reconnect_on_publication_error", "reconnect_on_subscription_error",
    "reconnect_on_data_channel_error", "data_channel_max_buffered_amount",
    "datachannel_slow_threshold", "datachannel_lossy_target_latency",
    "datachannel_data_track_target_latency", "forward_stats",
    "enable_rtp_stream_restart_detection",
])
_LIVEKIT_REDIS: Schema = dict.fromkeys([
    "address", "username", "password", "db", "use_tls", "tls", "sentinel_master_name",
    "sentinel_username", "sentinel_password", "sentinel_addresses", "cluster_addresses",
    "dial_timeout", "read_timeout", "write_timeout", "max_redirects", "pool_timeout",
    "pool_size",
])
_LIVEKIT_ROOM: Schema = {
    **dict.fromkeys([
        "auto_create", "max_participants", "empty_timeout", "departure_timeout",
        "enable_remote_unmute", "playout_delay", "sync_streams", "create_room_timeout",
        "create_room_attempts", "update_batch_target_size", "max_metadata_size",
        "max_room_name_length", "max_participant_identity_length", "room_configurations",
    ]),
    "enabled_codecs": [{"mime": None, "fmtp_line": None}],
}
_LIVEKIT_TURN: Schema = dict.fromkeys([
    "enabled", "domain", "cert_file", "key_file", "tls_port", "udp_port", "relay_range_start",
    "relay_range_end", "external_tls", "bind_addresses", "ttl_seconds",
    "allow_restricted_peer_cidrs", "deny_peer_cidrs",
])
_LIVEKIT_WEBHOOK: Schema = dict.fromkeys([
    "urls", "api_key", "url_notifier", "resource_url_notifier", "filter_params",
])
_LIVEKIT_LOGGING: Schema = dict.fromkeys([
    # protocol logger.Config, inlined
    "json", "level", "sample", "component_levels", "sample_initial", "sample_interval",
    "item_sample_seconds", "item_sample_initial", "item_sample_interval",
    "pion_level",
])

LIVEKIT_CONFIG: Schema = {
    **dict.fromkeys([
        "port", "bind_addresses", "prometheus_port", "prometheus", "debug_handler", "audio",
        "video", "ingress", "sip", "node_selector", "key_file", "keys", "region",
        "signal_relay", "psrpc", "log_level", "limit", "agents", "development", "metric",
        "trace", "node_stats", "enable_data_tracks", "enable_participant_data_blob", "api",
    ]),
    "rtc": _LIVEKIT_RTC,
    "redis": _LIVEKIT_REDIS,
    "room": _LIVEKIT_ROOM,
    "turn": _LIVEKIT_TURN,
    "webhook": _LIVEKIT_WEBHOOK,
    "logging": _LIVEKIT_LOGGING,
}

# main.go's flags with their own variables; every other setting is a generated flag whose
# variable is LIVEKIT_ + its path in upper case with '_' for '.', for scalar leaves only
# (lists, maps and sections get none: config.GenerateCLIFlags).
LIVEKIT_FLAG_ENV = frozenset({
    "LIVEKIT_CONFIG", "LIVEKIT_KEYS", "LIVEKIT_REGION", "NODE_IP", "UDP_PORT", "REDIS_HOST",
    "REDIS_PASSWORD", "LIVEKIT_TURN_CERT", "LIVEKIT_TURN_KEY",
})
LIVEKIT_UNGENERATED = frozenset({
    # lists, maps and structs, which get no variable
    "bind_addresses", "keys", "prometheus", "debug_handler", "audio", "video", "ingress",
    "sip", "node_selector", "signal_relay", "psrpc", "limit", "agents", "metric", "trace",
    "node_stats", "api",
    "rtc.udp_port", "rtc.node_ip", "rtc.stun_servers", "rtc.interfaces", "rtc.ips",
    "rtc.batch_io", "rtc.turn_servers", "rtc.pli_throttle", "rtc.congestion_control",
    "rtc.forward_stats",
    "redis.tls", "redis.sentinel_addresses", "redis.cluster_addresses",
    "room.enabled_codecs", "room.playout_delay", "room.room_configurations",
    "turn.bind_addresses", "turn.allow_restricted_peer_cidrs", "turn.deny_peer_cidrs",
    "webhook.urls", "webhook.url_notifier", "webhook.resource_url_notifier",
    "webhook.filter_params", "logging.component_levels",
})

SIP_CONFIG: Schema = {
    **dict.fromkeys([
        "api_key", "api_secret", "ws_url", "health_port", "prometheus_port", "pprof_port",
        "sip_port", "sip_port_listen", "sip_hostname", "outbound_route_headers",
        "sip_ringing_interval", "tcp", "tls", "rtp_port", "cluster_id", "max_cpu_utilization",
        "max_active_calls", "sip_trunk_ids", "use_external_ip", "local_net", "nat_1_to_1_ip",
        "listen_ip", "udp_max_payload", "media_use_external_ip", "media_nat_1_to_1_ip",
        "media_timeout", "media_timeout_initial", "symmetric_rtp", "rtp_draining_idle_timeout",
        "rtp_draining_duration", "ignore_local_addr_in_sdp", "codecs", "hide_inbound_port",
        "disable_rejected_invite_cache", "add_record_route", "audio_dtmf",
        "enable_jitter_buffer", "enable_jitter_buffer_prob", "jaeger_url", "experimental",
    ]),
    "redis": _LIVEKIT_REDIS,
    "logging": {key: None for key in _LIVEKIT_LOGGING if key != "pion_level"},
}
# NewConfig reads these before the YAML (which overrides them); main.go the other two.
SIP_ENV = frozenset({"LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "LIVEKIT_WS_URL",
                     "SIP_CONFIG_BODY", "SIP_CONFIG_FILE"})


def unknown_keys(config: Any, schema: Any, path: str = "") -> list[str]:
    """Every key path in `config` that `schema` does not have."""
    if schema is None:
        return []
    if isinstance(schema, list):
        return [found for item in config or [] for found in unknown_keys(item, schema[0], path)]
    found: list[str] = []
    for key, value in (config or {}).items():
        where = f"{path}.{key}" if path else str(key)
        if key not in schema:
            found.append(where)
        else:
            found += unknown_keys(value, schema[key], where)
    return found


def livekit_env_names(schema: Schema = LIVEKIT_CONFIG, path: str = "") -> set[str]:
    """The environment variables livekit-server reads, for the keys transcribed above."""
    names = set(LIVEKIT_FLAG_ENV) if not path else set()
    for key, section in schema.items():
        where = f"{path}.{key}" if path else key
        if isinstance(section, dict):
            names |= livekit_env_names(section, where)
        elif section is None and where not in LIVEKIT_UNGENERATED:
            names.add("LIVEKIT_" + where.upper().replace(".", "_"))
    return names


def helm_service(values: dict[str, Any], release: str, namespace: str) -> tuple[str, int, int]:
    """(DNS name, port, target port) of the Service the livekit-server chart makes: named by
    fullnameOverride or "<release>-livekit-server" (the release name alone if it contains the
    chart's name); its port is loadBalancer.servicePort (80 by default) to the pods' `http`
    port, livekit.port."""
    name = values.get("fullnameOverride") or (
        release if "livekit-server" in release else f"{release}-livekit-server")
    port = int(values.get("loadBalancer", {}).get("servicePort", 80))
    return f"{name}.{namespace}.svc.cluster.local", port, int(values["livekit"]["port"])
