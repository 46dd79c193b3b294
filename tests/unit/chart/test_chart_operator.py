"""The operator Deployment and its Service behave as users rely on (leader election and
the HA settings: test_chart_ha.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chartkit import NAMESPACE, Manifest, Render


def _only(manifests: list[Manifest], kind: str) -> Manifest:
    (found,) = [m for m in manifests if m["kind"] == kind]
    return found


def _operator(manifests: list[Manifest]) -> Manifest:
    """The operator's Deployment (the UI's, with ui.enabled, is another)."""
    (found,) = [m for m in manifests if m["kind"] == "Deployment"
                and m["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"]
    return found


def _container(manifests: list[Manifest]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = _operator(manifests)["spec"]["template"]["spec"][
        "containers"
    ]
    (container,) = containers
    return container


def test_the_default_install_watches_the_whole_cluster(render: Render) -> None:
    args = _container(render())["args"]
    assert "--all-namespaces" in args
    assert "--namespace" not in args


def test_watch_namespaces_become_one_namespace_flag_each(render: Render) -> None:
    args = _container(render({"watchNamespaces": ["team-a", "team-b"]}))["args"]
    assert "--all-namespaces" not in args
    pairs = [args[i + 1] for i, arg in enumerate(args) if arg == "--namespace"]
    assert pairs == ["team-a", "team-b"]


def test_probes_hit_healthz_and_readyz_on_the_port_the_operator_serves(render: Render) -> None:
    container = _container(render({"health": {"port": 9091}}))
    args = container["args"]
    assert args[args.index("--health-port") + 1] == "9091"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["health"] == 9091
    # Alive while it waits for its CRDs; ready only once it serves them.
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}


def test_container_meets_the_restricted_pod_security_standard(render: Render) -> None:
    manifests = render()
    pod = _only(manifests, "Deployment")["spec"]["template"]["spec"]
    ctx = _container(manifests)["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    # Matches the non-root user the operator image is built with.
    assert pod["securityContext"]["runAsUser"] == 65532
    # A read-only root still needs a writable /tmp.
    mounts = {m["mountPath"]: m["name"] for m in _container(manifests)["volumeMounts"]}
    assert "emptyDir" in {v["name"]: v for v in pod["volumes"]}[mounts["/tmp"]]


def test_container_has_resource_requests_and_a_memory_limit(render: Render) -> None:
    resources = _container(render())["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_image_defaults_to_app_version_and_a_digest_wins(render: Render) -> None:
    assert _container(render())["image"] == "headwater/operator:0.1.0"
    digest = "sha256:" + "a" * 64
    pinned = render({"image": {"repository": "reg.local/hw", "tag": "x", "digest": digest}})
    assert _container(pinned)["image"] == f"reg.local/hw@{digest}"


def test_metrics_service_reaches_the_operator_metrics_port(render: Render) -> None:
    manifests = render({"metrics": {"port": 9000}})
    container = _container(manifests)
    args = container["args"]
    assert args[args.index("--metrics-port") + 1] == "9000"
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"] == 9000
    service = _only(manifests, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    pod_labels = _only(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_deployment_selector_matches_its_pods(render: Render) -> None:
    deployment = _only(render({"podLabels": {"team": "data"}}), "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert labels["team"] == "data"


def test_everything_namespaced_lands_in_the_release_namespace(render: Render) -> None:
    for manifest in render(
        {
            "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
            "networkPolicy": {"enabled": True},
        }
    ):
        if manifest["kind"] in {
            "Deployment",
            "Service",
            "ServiceAccount",
            "ConfigMap",
            "ServiceMonitor",
            "PrometheusRule",
            "NetworkPolicy",
        }:
            assert manifest["metadata"]["namespace"] == NAMESPACE, manifest["kind"]


def test_operator_log_format_and_extra_args_are_passed(render: Render) -> None:
    args = _container(
        render({"operator": {"logFormat": "text", "verbose": True, "extraArgs": ["--something=1"]}})
    )["args"]
    assert args[args.index("--log-format") + 1] == "text"
    assert "--verbose" in args
    assert args[-1] == "--something=1"


def test_the_default_run_store_is_passed_to_the_operator_only_when_set(render: Render) -> None:
    from headwater_operator.__main__ import build_parser, validate

    assert "--run-store" not in _container(render())["args"]
    args = _container(render({"runStore": {"url": "s3://acme-runs/headwater"}}))["args"]
    assert args[args.index("--run-store") + 1] == "s3://acme-runs/headwater"
    parsed = build_parser().parse_args(args)
    assert validate(parsed) is None
    assert parsed.run_store == "s3://acme-runs/headwater"


def test_rendered_args_are_accepted_by_the_operator_command_line(
    scenario: str, scenario_manifests: list[Manifest]
) -> None:
    # The chart and `python -m headwater_operator` must agree on every flag: parse the
    # rendered args with the operator's own parser and its consistency check.
    from headwater_operator.__main__ import build_parser, validate

    args = build_parser().parse_args(_container(scenario_manifests)["args"])
    assert validate(args) is None, scenario
    assert args.log_format == "json"
    # The operator elects a leader on exactly the Lease the chart's Role grants.
    assert args.leader_elect is True
    lease_roles = [m for m in scenario_manifests if m["kind"] == "Role"
                   and any("leases" in rule["resources"] for rule in m["rules"])]
    assert len(lease_roles) == (0 if scenario == "everything-off" else 1), scenario
    for role in lease_roles:
        (named,) = [rule for rule in role["rules"] if rule.get("resourceNames")]
        assert [args.leader_elect_resource_name] == named["resourceNames"]
        assert args.leader_elect_resource_namespace == role["metadata"]["namespace"]
    assert (_seconds(args.leader_elect_lease_duration),
            _seconds(args.leader_elect_renew_deadline),
            _seconds(args.leader_elect_retry_period)) == (15, 10, 2)


def _seconds(duration: object) -> float:
    """A parsed duration flag in seconds, whether the parser made it a number or a
    ``timedelta``."""
    if isinstance(duration, timedelta):
        return duration.total_seconds()
    assert isinstance(duration, int | float), duration
    return float(duration)
