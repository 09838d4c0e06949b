"""Prometheus metrics of one orchestrator app: switches, their latency, webhooks, errors,
phone calls and the state of its dependencies."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ALERTED_DISPATCH_REASONS = ("lost",)
ALERTED_ERRORS = ("LiveKitUnavailable", "LiveKitRejected", "DispatchBusy")
"""Labels of counters that deploy/prometheus/alerts.yaml alerts on."""


class Metrics:
    """Own registry per app, so several apps (tests, replicas in one process) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.switches = Counter("baton_switches", "Switches to voice, by trigger",
                                ["trigger"], registry=self.registry)
        self.switch_seconds = Histogram(
            "baton_switch_seconds", "Latency of a switch to voice, end to end in the handler",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry)
        self.webhooks = Counter("baton_webhooks", "LiveKit webhooks handled, by event",
                                ["event"], registry=self.registry)
        self.errors = Counter("baton_errors", "Error responses, by error type", ["type"],
                              registry=self.registry)
        self.dispatches = Counter("baton_dispatches", "Agent dispatches created, by reason",
                                  ["reason"], registry=self.registry)
        self.agent_unavailable = Counter(
            "baton_agent_unavailable", "Calls ended because no agent joined within the wait",
            registry=self.registry)
        self.handoffs_requested = Counter(
            "baton_handoffs_requested", "Handoffs to a human asked for through the API, by "
            "trigger (the voice worker counts the ones its agent starts)", ["trigger"],
            registry=self.registry)
        self.handoff_wait_seconds = Histogram(
            "baton_handoff_wait_seconds", "Time from a handoff's request to a human accepting it",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300), registry=self.registry)
        self.reverifications = Counter(
            "baton_reverifications", "Verifications recorded on a conversation that had a "
            "valid one already (carrying identity across channels should keep this near zero)",
            registry=self.registry)
        self.resolutions = Counter(
            "baton_post_switch_resolutions", "Resolutions reported by the site, by the "
            "conversation's channel path (chat>voice, chat>voice>human, ...) and outcome",
            ["path", "resolved"], registry=self.registry)
        self.csat = Histogram(
            "baton_switch_csat", "Satisfaction scores (1-5) reported by the site, by the "
            "conversation's channel path", ["path"], buckets=(1, 2, 3, 4, 5),
            registry=self.registry)
        self.handoff_queue_depth = Gauge(
            "baton_handoff_queue_depth", "Handoffs to a human nobody has accepted yet",
            registry=self.registry)
        self.handoff_oldest_wait = Gauge(
            "baton_handoff_oldest_wait_seconds", "How long the oldest handoff nobody accepted "
            "has waited", registry=self.registry)
        self.calls_waiting = Gauge(
            "baton_calls_waiting_for_agent",
            "Calls whose visitor is in the room with no agent, at the last check",
            registry=self.registry)
        self.dependency_up = Gauge(
            "baton_dependency_up", "1 if the dependency answered its last check (each /readyz "
            "probe and each scrape checks), else 0", ["dependency"], registry=self.registry)
        self.streams = Gauge("baton_sse_streams", "Live streams (SSE) open on this replica",
                             registry=self.registry)
        self.dialouts = Counter("baton_dialouts", "Dial-out calls placed, by outcome",
                                ["outcome"], registry=self.registry)
        self.transfers = Counter("baton_transfers", "Cold transfers of phone visitors, by "
                                 "outcome", ["outcome"], registry=self.registry)
        # A labelled series appears only once counted, and `increase()` needs a sample before
        # the first rise: the series an alert watches are exported at 0 from the start.
        for reason in ALERTED_DISPATCH_REASONS:
            self.dispatches.labels(reason)
        for kind in ALERTED_ERRORS:
            self.errors.labels(kind)
