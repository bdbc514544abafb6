"""deploy/monitoring: the alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`: each alert fires only after its `for:`, and resolves), and every
dashboard query is valid PromQL. promtool comes from scripts/ensure-promtool (scripts/test
runs it); without it these tests are skipped. The e2e test_metrics checks the names used
against a live hub's /metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy/monitoring"
RULES = MONITORING / "sifhub-alerts.yml"
DASHBOARD = MONITORING / "sifhub-dashboard.json"
ALERTS = {
    "SifHubOutboxBacklog",
    "SifHubOutboxLag",
    "SifHubRefusingEvents",
    "SifHubParkedRows",
    "SifHubDeadLetters",
    "SifHubSubscriberNotConsuming",
    "SifHubIngestRefusals",
    "SifHubAgreementReviewDue",
    "SifHubDatabaseUnreadable",
    "SifHubDown",
}


def _promtool() -> str:
    found = shutil.which("promtool") or shutil.which("promtool", path=str(REPO / ".venv/bin"))
    if found is None:
        pytest.skip("promtool not found: run scripts/ensure-promtool")
    return found


def _run(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _dashboard() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(DASHBOARD.read_text())
    return loaded


def test_rules_name_every_alert_once() -> None:
    rules = yaml.safe_load(RULES.read_text())
    names = [r["alert"] for g in rules["groups"] for r in g["rules"]]
    assert sorted(names) == sorted(ALERTS)


def test_promtool_checks_the_rules() -> None:
    result = _run("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    result = _run("test", "rules", "sifhub-alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # every alert is exercised by the unit tests
    cases = yaml.safe_load((MONITORING / "sifhub-alerts.test.yml").read_text())
    tested = {c["alertname"] for t in cases["tests"] for c in t["alert_rule_test"]}
    assert tested == ALERTS


def test_promtool_checks_the_example_prometheus_config(tmp_path: Path) -> None:
    for name in ("prometheus.yml", RULES.name):
        shutil.copy(MONITORING / name, tmp_path / name)
    (tmp_path / "sifhub-metrics-token").write_text("token\n")  # the file it names
    result = _run("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    panels = _dashboard()["panels"]
    assert isinstance(panels, list)
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert len(exprs) > 20
    # Grafana's $__rate_interval is filled in at query time; promtool needs a duration.
    records = [
        {"record": f"dashboard:query_{i}", "expr": e.replace("$__rate_interval", "5m")}
        for i, e in enumerate(exprs)
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = _run("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_panels_are_placed_and_sourced() -> None:
    dashboard = _dashboard()
    panels = dashboard["panels"]
    assert isinstance(panels, list)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"]
