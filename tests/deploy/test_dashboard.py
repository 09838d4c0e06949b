"""The Grafana dashboard: a dashboard Grafana loads (panels with queries on a chosen Prometheus
data source, laid out without overlaps), reading only metrics Baton or the framework export."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.deploy.conftest import Deployment
from tests.deploy.files import ROOT
from tests.deploy.promql import FRAMEWORK_METRICS, metric_names, unknown_metrics

DASHBOARD = ROOT / "deploy/grafana/baton.json"
SUBJECTS = ("baton_switches_total", "baton_worker_first_words_seconds_bucket",
            "baton_worker_active_jobs", "baton_handoffs_total", "baton_dialouts_total",
            "baton_worker_writeback_buffer_depth", "baton_worker_writeback_lost_total",
            "baton_sse_streams", "baton_dependency_up")
"""One metric of each thing the dashboard is for: switches, first words, calls per worker,
handoffs and their outcomes, dial-out outcomes, the write-back buffer and its losses, live
streams, the dependencies."""


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def graphs() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def expressions() -> list[str]:
    return [target["expr"] for panel in graphs() for target in panel["targets"]]


def test_the_dashboard_has_what_grafana_needs_to_load_it() -> None:
    board = dashboard()

    assert board["uid"] and board["title"]
    assert isinstance(board["schemaVersion"], int)
    assert isinstance(board["panels"], list) and graphs()
    assert [panel["id"] for panel in board["panels"]] == \
        sorted({panel["id"] for panel in board["panels"]})


def test_the_data_source_is_a_variable_every_panel_and_query_uses() -> None:
    [variable] = [v for v in dashboard()["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    chosen = {"type": "prometheus", "uid": f"${{{variable['name']}}}"}

    for panel in graphs():
        assert panel["datasource"] == chosen, panel["title"]
        assert all(target["datasource"] == chosen for target in panel["targets"])


def test_every_panel_has_a_title_and_queries_with_their_own_ids() -> None:
    for panel in graphs():
        assert panel["title"] and panel["targets"], panel
        ids = [target["refId"] for target in panel["targets"]]
        assert len(ids) == len(set(ids)), panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]


def test_panels_fit_the_grid_without_overlapping() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        box = panel["gridPos"]
        assert box["x"] >= 0 and box["w"] >= 1 and box["x"] + box["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(box["x"], box["x"] + box["w"])
                 for y in range(box["y"], box["y"] + box["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_the_dashboard_shows_each_thing_it_is_for() -> None:
    read = {name for expr in expressions() for name in metric_names(expr)}

    assert set(SUBJECTS) - read == set()


def test_the_dashboard_reads_only_metrics_the_code_exports() -> None:
    assert unknown_metrics(expressions()) == set()


def test_the_framework_metrics_it_reads_are_on_a_running_workers_metrics_port(
        deployment: Deployment) -> None:
    exposed = httpx.get(f"http://127.0.0.1:{deployment.worker.metrics_port}/metrics").text
    series = {line.split("{")[0].split()[0] for line in exposed.splitlines()
              if line and not line.startswith("#")}
    read = {name for expr in expressions() for name in metric_names(expr)}

    assert (read & set(FRAMEWORK_METRICS)) - series == set()
