"""Alerts, dashboard and NetworkPolicy: present when asked for, and wired to real metrics.

The metric names are not typed twice: they are read from the operator's own Prometheus
registry, so renaming a metric without updating the alerts or dashboard fails here.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chartkit import NAMESPACE, Manifest, Render
from headwater_operator import metrics

MONITORING = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}}
EXPECTED_ALERTS = {
    "HeadwaterFlowRunFailureRateHigh",  # failed-run rate
    "HeadwaterFlowRunsLate",  # late runs
    "HeadwaterFlowRunsCrashLooping",  # crash-looping runs
    "HeadwaterScheduleLagHigh",  # schedule lag p99
    "HeadwaterOperatorDown",  # operator down
}
METRIC_NAME = re.compile(r"\bheadwater_[a-z_]+\b")


def _exported_series() -> set[str]:
    """Every series name the operator's registry can expose (counter → _total, ...)."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    return {
        fam.name + suffix for fam in metrics.REGISTRY.collect() for suffix in suffixes[fam.type]
    }


def _only(manifests: list[Manifest], kind: str) -> Manifest:
    (found,) = [m for m in manifests if m["kind"] == kind]
    return found


def _rules(manifests: list[Manifest]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = _only(manifests, "PrometheusRule")["spec"]["groups"][0]["rules"]
    return rules


def _dashboard(manifests: list[Manifest]) -> dict[str, Any]:
    configmap = _only(manifests, "ConfigMap")
    dashboard: dict[str, Any] = json.loads(configmap["data"]["headwater.json"])
    return dashboard


def test_monitoring_objects_are_opt_in(render: Render) -> None:
    kinds = {m["kind"] for m in render()}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "NetworkPolicy"}
    kinds = {m["kind"] for m in render(MONITORING)}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds


def test_service_monitor_selects_the_metrics_service(render: Render) -> None:
    manifests = render(
        {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}}}
    )
    monitor = _only(manifests, "ServiceMonitor")
    service = _only(manifests, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"


def test_all_promised_alerts_exist_with_summary_description_and_runbook(render: Render) -> None:
    rules = _rules(render(MONITORING))
    assert {r["alert"] for r in rules} == EXPECTED_ALERTS
    for rule in rules:
        annotations = rule["annotations"]
        for key in ("summary", "description", "runbook"):
            assert annotations[key].strip(), f"{rule['alert']} has an empty {key}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert "runbook_url" not in annotations  # no base URL configured


def test_runbook_urls_and_extra_labels_when_configured(render: Render) -> None:
    rules = _rules(
        render(
            {
                "metrics": {
                    "prometheusRule": {
                        "enabled": True,
                        "runbookBaseUrl": "https://runbooks.example.com/hw",
                        "additionalAlertLabels": {"team": "data"},
                    }
                }
            }
        )
    )
    for rule in rules:
        assert rule["annotations"]["runbook_url"] == (
            f"https://runbooks.example.com/hw#{rule['alert'].lower()}"
        )
        assert rule["labels"]["team"] == "data"


def test_alert_thresholds_come_from_values(render: Render) -> None:
    rules = {
        r["alert"]: r
        for r in _rules(
            render(
                {
                    "metrics": {
                        "prometheusRule": {
                            "enabled": True,
                            "thresholds": {
                                "failedRunRatio": 0.25,
                                "crashesIn30m": 7,
                                "scheduleLagP99Seconds": 120,
                                "operatorDownFor": "2m",
                            },
                        }
                    }
                }
            )
        )
    }
    assert rules["HeadwaterFlowRunFailureRateHigh"]["expr"].rstrip().endswith("> 0.25")
    assert rules["HeadwaterFlowRunsCrashLooping"]["expr"].rstrip().endswith(">= 7")
    assert rules["HeadwaterScheduleLagHigh"]["expr"].rstrip().endswith("> 120")
    assert rules["HeadwaterOperatorDown"]["for"] == "2m"


def test_operator_down_watches_the_metrics_service_job(render: Render) -> None:
    manifests = render(MONITORING)
    down = {r["alert"]: r for r in _rules(manifests)}["HeadwaterOperatorDown"]
    service = _only(manifests, "Service")["metadata"]["name"]
    assert down["expr"] == f'absent(up{{job="{service}", namespace="{NAMESPACE}"}} == 1)'


def test_alerts_and_dashboard_use_only_metrics_the_operator_exports(render: Render) -> None:
    manifests = render(MONITORING)
    known = _exported_series()
    used: set[str] = set()
    for rule in _rules(manifests):
        used |= set(METRIC_NAME.findall(rule["expr"]))
    for panel in _dashboard(manifests)["panels"]:
        for target in panel["targets"]:
            used |= set(METRIC_NAME.findall(target["expr"]))
    assert used, "no headwater_* metric referenced at all"
    assert used <= known, f"not exported by the operator: {sorted(used - known)}"


def test_promql_brackets_balance(render: Render) -> None:
    exprs = [r["expr"] for r in _rules(render(MONITORING))]
    exprs += [t["expr"] for p in _dashboard(render())["panels"] for t in p["targets"]]
    for expr in exprs:
        depth: list[str] = []
        for char in expr:
            if char in "([{":
                depth.append(char)
            elif char in ")]}":
                assert depth, expr
                assert "([{"[")]}".index(char)] == depth.pop(), expr
        assert not depth, expr


def test_dashboard_configmap_is_found_by_the_grafana_sidecar(render: Render) -> None:
    manifests = render()
    configmap = _only(manifests, "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = _dashboard(manifests)
    assert dashboard["uid"] == "headwater-overview"
    titles = {p["title"] for p in dashboard["panels"]}
    assert len(dashboard["panels"]) >= 8
    assert all(p["targets"] for p in dashboard["panels"]), titles
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    moved = render({"dashboard": {"namespace": "grafana"}})
    assert _only(moved, "ConfigMap")["metadata"]["namespace"] == "grafana"
    assert not [m for m in render({"dashboard": {"enabled": False}}) if m["kind"] == "ConfigMap"]


def test_network_policy_admits_only_scrapes_and_api_server_traffic(render: Render) -> None:
    manifests = render(
        {"networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["10.0.0.1/32"]}}}
    )
    policy = _only(manifests, "NetworkPolicy")["spec"]
    pod_labels = _only(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    (egress,) = policy["egress"]
    assert egress["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
    assert {p["port"] for p in egress["ports"]} == {443, 6443}
