"""Prometheus metrics of the chat agent, served on BATON_CHAT_METRICS_PORT when it is set."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TURNS = Counter(
    "baton_chat_turns_total",
    "Typed turns the chat agent took, by outcome (answered, superseded, in_call, failed, ...).",
    ["outcome"])
TURN_SECONDS = Histogram(
    "baton_chat_turn_seconds",
    "Time from a turn being read to its reply written, for answered turns.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
