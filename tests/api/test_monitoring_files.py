"""deploy/prometheus/alerts.yaml and deploy/grafana/registry-dashboard.json name only metrics that GET /metrics
exports (promtool, when installed, checks the rules' syntax too)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.server import ROOT

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "registry-dashboard.json"
METRIC = re.compile(r"\b(registry_[a-z0-9_]+)\b")
REQUIRED_ALERTS = {"RegistryProductionLookupsFailing", "RegistryListenerDown", "RegistryDatabasePoolExhausted",
                   "RegistryRequestsPendingTooLong"}


@pytest.fixture
def exported(secure_client, make_user) -> set[str]:
    """Every metric and sample name /metrics exports (after one request, so histograms have samples)."""
    admin = make_user("monitor", admin=True)
    secure_client.get("/api/v1/models", headers=admin)
    text = secure_client.get("/metrics", headers=admin).get_data(as_text=True)
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def _alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _balanced(expr: str) -> bool:
    depth = {"(": 0, "[": 0, "{": 0}
    closing = {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"[^"]*"', '""', expr):
        if char in depth:
            depth[char] += 1
        elif char in closing:
            depth[closing[char]] -= 1
            if depth[closing[char]] < 0:
                return False
    return not any(depth.values())


def test_alert_rules_are_well_formed_and_cover_the_pages_we_promise():
    rules = _alert_rules()
    assert REQUIRED_ALERTS <= {rule["alert"] for rule in rules}
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"} and rule["annotations"]["summary"]
        assert _balanced(rule["expr"]), rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_alert_rules_name_only_exported_metrics(exported):
    for rule in _alert_rules():
        named = set(METRIC.findall(rule["expr"]))
        assert named, rule["alert"]
        assert named <= exported, (rule["alert"], named - exported)


def test_dashboard_queries_name_only_exported_metrics(exported):
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert expressions
    for expr in expressions:
        assert _balanced(expr), expr
        assert set(METRIC.findall(expr)) <= exported, expr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (the checks above still run)")
def test_promtool_accepts_the_rules():
    result = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
