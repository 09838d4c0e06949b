"""The Prometheus alert rules: valid for Prometheus, passing their promtool unit tests with a
firing and a quiet case each, reading only metrics the code exports, and each linking to its
runbook row."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest

from tests.deploy.files import ROOT, load
from tests.deploy.promql import metric_names, unknown_metrics

RULES = ROOT / "deploy/prometheus/alerts.yaml"
RULE_TESTS = ROOT / "deploy/prometheus/alerts_test.yaml"
RUNBOOK = "https://github.com/baton/baton/blob/main/README.md#"
SEVERITIES = {"critical", "warning"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: `make test` installs it (Debian package "
                    "`prometheus`), or `apt-get install prometheus`")
    return path


def alerts() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"]]


def test_prometheus_accepts_the_rules() -> None:
    checked = subprocess.run([promtool(), "check", "rules", str(RULES)],
                             capture_output=True, text=True, check=False)

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rules_pass_their_unit_tests() -> None:
    tested = subprocess.run([promtool(), "test", "rules", str(RULE_TESTS)], cwd=RULE_TESTS.parent,
                            capture_output=True, text=True, check=False)

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_firing_and_a_quiet_case_in_the_unit_tests() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in load(RULE_TESTS)["tests"]:
        for expectation in case["alert_rule_test"]:
            (fired if expectation["exp_alerts"] else quiet).add(expectation["alertname"])
    names = {rule["alert"] for rule in alerts()}

    assert names - fired == set(), "alerts never seen firing"
    assert names - quiet == set(), "alerts never seen staying quiet"


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    for rule in alerts():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_every_alert_links_to_a_row_of_the_readme_runbook() -> None:
    readme = (ROOT / "README.md").read_text()
    runbook = readme[readme.index("### Runbook"):]
    anchors = set(re.findall(r'<a id="([\w-]+)"></a>', runbook.split("\n## ")[0]))

    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK), rule["alert"]
        assert url.removeprefix(RUNBOOK) in anchors, f"{rule['alert']}: no anchor for {url}"


def test_the_rules_read_only_metrics_the_code_exports() -> None:
    expressions = [rule["expr"] for rule in alerts()]

    assert all(metric_names(expr) for expr in expressions)
    assert unknown_metrics(expressions) == set()


def test_a_misspelt_metric_in_a_rule_is_caught() -> None:
    expression = 'sum(increase(baton_agent_unavailble_total[10m])) > 0'

    assert unknown_metrics([expression]) == {"baton_agent_unavailble_total"}
