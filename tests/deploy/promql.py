"""The metric names PromQL expressions read, and the names Baton's code exports, so alerts and
dashboards can be checked against the code."""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client import Metric
from prometheus_client.metrics import MetricWrapperBase

from orchestrator.metrics import Metrics
from worker import metrics as worker_metrics

FRAMEWORK_METRICS = {
    "lk_agents_worker_load": "livekit-agents' own gauge of the load its worker reports to "
                             "LiveKit (CPU share, or Baton's call share with BATON_MAX_JOBS), set "
                             "by the worker's main process at every load update",
}
"""Metrics the dashboard reads that livekit-agents exports, not Baton; a test finds each on a
running worker's metrics port."""

_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_GRAFANA_VARIABLES = re.compile(r"\$\{?\w+\}?")
# A name not glued to a number or another name, and not a function (followed by "(").
_NAMES = re.compile(r"(?<![\w:.])[a-zA-Z_:][\w:]*(?![\w:]|\s*\()")
_KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan", "by", "without", "on",
             "ignoring", "group_left", "group_right"}


def metric_names(expression: str) -> set[str]:
    """The metrics an expression selects (by name, not through `__name__` matchers)."""
    text = _STRINGS.sub(" ", expression)
    for pattern in (_MATCHERS, _RANGES, _LABEL_LISTS, _GRAFANA_VARIABLES):
        text = pattern.sub(" ", text)
    return {name for name in _NAMES.findall(text) if name.lower() not in _KEYWORDS}


def exported_metric_names() -> set[str]:
    """Every series name the orchestrator's registry and the worker's metrics module can
    export, labelled or not, with the suffixes Prometheus sees."""
    families = list(Metrics().registry.collect())
    for value in vars(worker_metrics).values():
        if isinstance(value, MetricWrapperBase):
            families.extend(value.describe())
    return {name for family in families for name in series_names(family)}


def series_names(family: Metric) -> Iterable[str]:
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "summary": ("", "_sum", "_count")}.get(family.type, ("",))
    return [family.name + suffix for suffix in suffixes]


def unknown_metrics(expressions: Iterable[str]) -> set[str]:
    """Names the expressions read that neither Baton's code nor FRAMEWORK_METRICS export."""
    known = exported_metric_names() | set(FRAMEWORK_METRICS)
    return {name for expr in expressions for name in metric_names(expr)} - known
