"""deploy/monitoring/: the Prometheus alerting rules and the Grafana dashboard are valid, fire when
they should (promtool's own rule tests), and name only metrics tabserve really exposes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import tabserve.predlog.metrics
import tabserve.serving.metrics  # registers the metrics
from tests.fixtures.debian_tools import ensure_tool

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
ALERTS = MONITORING / "alerts.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
METRIC = re.compile(r"\btabserve_[a-z0-9_]+")


@pytest.fixture(scope="module")
def promtool() -> str:
    return ensure_tool("promtool", "prometheus")


def run(promtool: str, *args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def exposed_samples() -> set[str]:
    """Every sample name tabserve's metrics can expose (counter _total, histogram parts, ...)."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("tabserve_"):
            continue
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",),
        }[family.type]
        names.update(family.name + s for s in suffixes)
    return names


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_rules_are_valid(promtool: str) -> None:
    done = run(promtool, "check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    config = run(promtool, "check", "config", "prometheus.yaml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_each_alert_fires_when_it_should_and_only_then(promtool: str) -> None:
    done = run(promtool, "test", "rules", "alerts.test.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_alerts_asked_for_exist_and_each_is_tested() -> None:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert {
        "TabserveHighErrorRatio",
        "TabserveLatencyP99High",
        "TabservePredictionLogSpoolGrowing",
        "TabserveDatasetDrift",
    } <= names
    tests = yaml.safe_load((MONITORING / "alerts.test.yaml").read_text())["tests"]
    fired = {
        case["alertname"] for t in tests for case in t["alert_rule_test"] if case["exp_alerts"]
    }
    assert fired == names  # every alert is shown firing at least once
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def _family(sample: str) -> str:
    return re.sub(r"_(total|bucket|sum|count)$", "", sample)


def test_rules_and_dashboard_name_only_real_metrics() -> None:
    real = exposed_samples()
    families = {_family(n) for n in real}
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    queries = [r["expr"] for r in rules] + dashboard_exprs()
    used = {name for expr in queries for name in METRIC.findall(expr)}
    assert used, "no tabserve metric found"
    assert used - real == set(), f"queried but not exposed by tabserve: {sorted(used - real)}"
    prose = {n for r in rules for text in r["annotations"].values() for n in METRIC.findall(text)}
    assert prose - real - families == set(), f"named in an annotation: {prose - real - families}"
    # And every family tabserve has is on the dashboard or in an alert (none goes unseen).
    shown = {_family(n) for n in used}
    assert families - shown == set(), f"not on the dashboard or in alerts: {families - shown}"


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    # Grafana's variables as Prometheus would see them after substitution.
    exprs = [e.replace("$__rate_interval", "5m").replace("$model", ".*") for e in dashboard_exprs()]
    assert all("$" not in e for e in exprs), "an unknown dashboard variable"
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:panel_query_{i}", "expr": e} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    done = run(promtool, "check", "rules", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_is_importable() -> None:
    dash: dict[str, Any] = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for p in dash["panels"]:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"])
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}"
            assert p["targets"], p["title"]
    assert tabserve.predlog.metrics.DB_UP  # (imported for its registration)
