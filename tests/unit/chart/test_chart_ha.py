"""High availability: one Lease-holding leader, hot standbys, no kopf peering (issue #11).

Every replica runs ``--leader-elect`` (kube-controller-manager's flag names); only the
holder of the Lease ``leaderElection.resourceName`` in the release namespace runs the
controllers. The chart must hand every replica the same Lease and timings, grant exactly
that Lease, refuse timings with which a leader could still work after a standby took
over, and keep the standbys apart and available. kopf peering is gone: no CRD, object,
rule or flag of it renders in any mode.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import CHART_DIR, NAMESPACE, SCENARIOS, Manifest, Render, RenderError

FULLNAME = "hw-headwater"
LEASE_GROUP = "coordination.k8s.io"
INSTALL_MODES: dict[str, dict[str, Any]] = {
    "cluster-wide": {},
    "cluster-wide-ha": {"replicas": 3},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "namespaced-ha": {"replicas": 2, "watchNamespaces": ["team-a", "team-b"]},
}


def _of(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def _deployment(manifests: list[Manifest]) -> Manifest:
    """The operator's Deployment (the UI's, with ui.enabled, is another)."""
    (deployment,) = [m for m in _of(manifests, "Deployment")
                     if m["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"]
    return deployment


def _args(manifests: list[Manifest]) -> list[str]:
    (container,) = _deployment(manifests)["spec"]["template"]["spec"]["containers"]
    args: list[str] = container["args"]
    return args


def _flag(args: list[str], flag: str) -> str:
    assert args.count(flag) == 1, f"{flag} must be passed once: {args}"
    return args[args.index(flag) + 1]


# --- the operator's command line ------------------------------------------------------
@pytest.mark.parametrize("values", INSTALL_MODES.values(), ids=INSTALL_MODES.keys())
def test_every_install_mode_elects_a_leader_with_the_default_timings(
        render: Render, values: dict[str, Any]) -> None:
    # Also with one replica: a RollingUpdate runs the new pod beside the old one, and
    # only the Lease keeps them from working at once.
    args = _args(render(values))
    assert "--leader-elect" in args
    assert _flag(args, "--leader-elect-resource-name") == FULLNAME
    assert _flag(args, "--leader-elect-resource-namespace") == NAMESPACE
    assert _flag(args, "--leader-elect-lease-duration") == "15s"
    assert _flag(args, "--leader-elect-renew-deadline") == "10s"
    assert _flag(args, "--leader-elect-retry-period") == "2s"


def test_lease_timings_come_from_the_values_in_seconds(render: Render) -> None:
    args = _args(render({"leaderElection": {
        "leaseDuration": "1m", "renewDeadline": 40, "retryPeriod": "5s"}}))
    # Minutes and plain numbers reach the operator as seconds, the form it reads.
    assert _flag(args, "--leader-elect-lease-duration") == "60s"
    assert _flag(args, "--leader-elect-renew-deadline") == "40s"
    assert _flag(args, "--leader-elect-retry-period") == "5s"


def test_the_lease_name_follows_the_fullname_unless_set(render: Render) -> None:
    assert _flag(_args(render({"fullnameOverride": "etl"})),
                 "--leader-elect-resource-name") == "etl"
    assert _flag(_args(render({"leaderElection": {"resourceName": "etl-leader"}})),
                 "--leader-elect-resource-name") == "etl-leader"


# --- timings the chart refuses --------------------------------------------------------
@pytest.mark.parametrize("timings", [
    {"leaseDuration": "15s", "renewDeadline": "15s"},
    {"leaseDuration": "15s", "renewDeadline": "20s"},
    {"leaseDuration": "1m", "renewDeadline": 60},
], ids=["equal", "longer", "minutes-vs-seconds"])
def test_a_renew_deadline_not_shorter_than_the_lease_is_refused(
        render_error: RenderError, timings: dict[str, Any]) -> None:
    error = render_error({"leaderElection": timings})
    assert "leaderElection.renewDeadline" in error
    assert "must be shorter than leaderElection.leaseDuration" in error
    # ...and says why and what to do.
    assert "two replicas" in error
    assert "Lower leaderElection.renewDeadline or raise leaderElection.leaseDuration" in error


@pytest.mark.parametrize("timings", [
    {"renewDeadline": "10s", "retryPeriod": "10s"},
    # client-go requires renewDeadline > 1.2 × retryPeriod: 1.2 × 5 s is not < 6 s.
    {"renewDeadline": "6s", "retryPeriod": "5s"},
], ids=["equal", "within-jitter"])
def test_a_retry_period_that_leaves_no_second_try_is_refused(
        render_error: RenderError, timings: dict[str, Any]) -> None:
    error = render_error({"leaderElection": timings})
    assert "leaderElection.retryPeriod" in error
    assert "Lower leaderElection.retryPeriod or raise leaderElection.renewDeadline" in error


def test_timings_just_inside_the_limits_are_accepted(render: Render) -> None:
    args = _args(render({"leaderElection": {
        "leaseDuration": "7s", "renewDeadline": "6s", "retryPeriod": "4s"}}))
    assert _flag(args, "--leader-elect-renew-deadline") == "6s"


@pytest.mark.parametrize(("leader_election", "field"), [
    ({"leaseDuration": "15 seconds"}, "leaseDuration"),
    ({"leaseDuration": "0s"}, "leaseDuration"),
    ({"renewDeadline": "500ms"}, "renewDeadline"),
    ({"renewDeadline": 0}, "renewDeadline"),
    ({"retryPeriod": 1.5}, "retryPeriod"),
    ({"retryPeriod": "1h"}, "retryPeriod"),
    ({"resourceName": "Headwater_Leader"}, "resourceName"),
    ({"leaseTime": "15s"}, "leaseTime"),
], ids=["words", "zero", "milliseconds", "zero-number", "fraction", "hours", "name", "typo"])
def test_the_schema_refuses_malformed_leader_election_values(
        render_error: RenderError, leader_election: dict[str, Any], field: str) -> None:
    error = render_error({"leaderElection": leader_election})
    assert "values don't meet the specifications of the schema" in error
    assert field in error


@pytest.mark.parametrize(("values", "named"), [
    ({"peering": {"name": "headwater"}}, "peering"),
    ({"crds": {"install": True, "keep": True, "kopfPeering": "auto"}}, "crds.kopfPeering"),
    # What `helm upgrade --reuse-values` passes: the old chart's defaults.
    ({"peering": {"name": "headwater"},
      "crds": {"install": True, "keep": True, "kopfPeering": "auto"}},
     "peering, crds.kopfPeering"),
], ids=["peering.name", "crds.kopfPeering", "both"])
def test_removed_peering_values_are_refused_with_the_way_forward(
        render_error: RenderError, values: dict[str, Any], named: str) -> None:
    # A values file from before issue #11 must not install silently without HA.
    error = render_error(values)
    assert f"{named}: kopf peering was removed" in error
    assert "leaderElection.resourceName" in error
    assert "--reset-then-reuse-values" in error
    assert "docs/install.md" in error


# --- RBAC for the Lease ---------------------------------------------------------------
def _lease_roles(manifests: list[Manifest]) -> list[Manifest]:
    return [role for role in _of(manifests, "Role") + _of(manifests, "ClusterRole")
            if any("leases" in rule.get("resources", ()) for rule in role["rules"])]


@pytest.mark.parametrize("values", INSTALL_MODES.values(), ids=INSTALL_MODES.keys())
def test_the_operator_may_hold_exactly_its_lease_in_the_release_namespace(
        render: Render, values: dict[str, Any]) -> None:
    manifests = render(values)
    (role,) = _lease_roles(manifests)
    assert role["kind"] == "Role"
    assert role["metadata"]["namespace"] == NAMESPACE
    # Reads and writes name the one Lease; create cannot be limited by name (the object
    # does not exist yet); no list or watch (the operator gets it by name).
    assert sorted(
        (tuple(rule["apiGroups"]), tuple(rule["resources"]),
         tuple(rule.get("resourceNames", ())), tuple(sorted(rule["verbs"])))
        for rule in role["rules"]
    ) == [
        ((LEASE_GROUP,), ("leases",), (), ("create",)),
        ((LEASE_GROUP,), ("leases",), (FULLNAME,), ("get", "patch", "update")),
    ]
    (binding,) = [b for b in _of(manifests, "RoleBinding")
                  if b["roleRef"]["name"] == role["metadata"]["name"]]
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    (account,) = _of(manifests, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount",
                                    "name": account["metadata"]["name"],
                                    "namespace": NAMESPACE}]


def test_the_lease_role_names_the_lease_the_operator_is_told(render: Render) -> None:
    manifests = render({"leaderElection": {"resourceName": "etl-leader"}})
    (role,) = _lease_roles(manifests)
    named = [rule for rule in role["rules"] if rule.get("resourceNames")]
    assert [rule["resourceNames"] for rule in named] == [["etl-leader"]]
    assert _flag(_args(manifests), "--leader-elect-resource-name") == "etl-leader"
    assert _flag(_args(manifests), "--leader-elect-resource-namespace") == (
        role["metadata"]["namespace"])


def test_no_lease_rbac_when_rbac_is_managed_elsewhere(render: Render) -> None:
    manifests = render({"replicas": 2, "rbac": {"create": False},
                        "serviceAccount": {"create": False, "name": "platform-operator"}})
    assert _lease_roles(manifests) == []
    # The operator still elects a leader: whoever manages RBAC must grant the Lease.
    assert "--leader-elect" in _args(manifests)


# --- kopf peering is gone -------------------------------------------------------------
@pytest.mark.parametrize("values", [*SCENARIOS.values(), *INSTALL_MODES.values()],
                         ids=[*SCENARIOS, *(f"mode-{m}" for m in INSTALL_MODES)])
def test_no_kopf_peering_renders_in_any_mode(render: Render, values: dict[str, Any]) -> None:
    manifests = render(values)
    for manifest in manifests:
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        assert not manifest["apiVersion"].startswith("kopf.dev/"), where
        assert "KopfPeering" not in manifest["kind"], where
        if manifest["kind"] == "CustomResourceDefinition":
            assert manifest["spec"]["group"] == "headwater.dev", where
        for rule in manifest.get("rules") or ():
            assert "kopf.dev" not in rule.get("apiGroups", ()), where
            assert not any("peering" in r for r in rule.get("resources", ())), where
            assert not any(n.endswith("-scheduler") for n in rule.get("resourceNames", ())), (
                where)
    args = _args(manifests)
    assert "--peering" not in args
    assert "--standalone" not in args


# --- hot standbys: rollout, disruptions, placement ------------------------------------
@pytest.mark.parametrize("replicas", [1, 3])
def test_a_rollout_starts_the_new_pod_before_it_stops_the_leader(
        render: Render, replicas: int) -> None:
    # The new pod waits as a standby; the old leader releases the Lease on SIGTERM and
    # the new one takes over within a retry period, instead of the gap of a Recreate
    # (the old pod gone, the new one still pulling its image).
    strategy = _deployment(render({"replicas": replicas}))["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate",
                        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def test_ha_keeps_a_standby_through_voluntary_disruptions(render: Render) -> None:
    manifests = render({"replicas": 3})
    (budget,) = _of(manifests, "PodDisruptionBudget")
    assert budget["metadata"]["namespace"] == NAMESPACE
    assert budget["spec"]["maxUnavailable"] == 1
    pod_labels = _deployment(manifests)["spec"]["template"]["metadata"]["labels"]
    selector = budget["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert selector == _deployment(manifests)["spec"]["selector"]["matchLabels"]


def test_no_disruption_budget_for_one_replica_or_when_switched_off(render: Render) -> None:
    # One replica: a budget could only block node drains, never keep a standby.
    assert _of(render(), "PodDisruptionBudget") == []
    assert _of(render({"replicas": 2, "podDisruptionBudget": {"enabled": False}}),
               "PodDisruptionBudget") == []


def test_ha_replicas_prefer_different_nodes(render: Render) -> None:
    manifests = render({"replicas": 2})
    pod = _deployment(manifests)["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == (
        _deployment(manifests)["spec"]["selector"]["matchLabels"])
    # Preferred, not required: a one-node cluster and a rollout's surge pod still fit.
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"][
        "podAntiAffinity"]


def test_a_users_affinity_replaces_the_default_spread(render: Render) -> None:
    mine = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["system"]}]}]}}}
    pod = _deployment(render({"replicas": 2, "affinity": mine}))["spec"]["template"]["spec"]
    assert pod["affinity"] == mine
    assert "affinity" not in _deployment(render())["spec"]["template"]["spec"]


@pytest.mark.parametrize("values", [
    {},
    {"replicas": 2},
    {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "x"}},
], ids=["one-replica", "ha", "no-rbac"])
def test_an_upgrade_reusing_a_peering_releases_values_says_what_to_do(
        helm: str, tmp_path: Path, values: dict[str, Any]) -> None:
    # `helm upgrade --reuse-values` renders the new chart with the old chart's default
    # values (Helm 3 pkg/action/upgrade.go reuseValues: chart.Values = the old chart's
    # values coalesced with the release's): peering, crds.kopfPeering, no leaderElection
    # and no podDisruptionBudget. Whichever template Helm renders first must fail with
    # the way forward, not with a nil pointer.
    chart = tmp_path / "headwater"
    shutil.copytree(CHART_DIR, chart)
    old_defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    del old_defaults["leaderElection"], old_defaults["podDisruptionBudget"]
    old_defaults["peering"] = {"name": "headwater"}
    old_defaults["crds"]["kopfPeering"] = "auto"
    (chart / "values.yaml").write_text(yaml.safe_dump(old_defaults))
    (tmp_path / "values.json").write_text(json.dumps(values))
    proc = subprocess.run(
        [helm, "template", "hw", str(chart), "-f", str(tmp_path / "values.json")],
        capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "peering, crds.kopfPeering: kopf peering was removed" in proc.stderr, proc.stderr
