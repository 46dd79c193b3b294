"""Least-privilege RBAC: exactly what the operator needs, no wildcards, right scope."""

from __future__ import annotations

from collections import defaultdict

from chartkit import NAMESPACE, RELEASE, Manifest, Render

Grants = dict[tuple[str, str], set[str]]

WORKLOAD_GRANTS: Grants = {
    ("headwater.dev", "flows"): {"get", "list", "watch", "patch"},
    ("headwater.dev", "deployments"): {"get", "list", "watch", "patch"},
    ("headwater.dev", "schedules"): {"get", "list", "watch", "patch"},
    ("headwater.dev", "flowruns"): {"get", "list", "watch", "patch", "create", "delete"},
    ("headwater.dev", "flows/status"): {"get", "patch"},
    ("headwater.dev", "deployments/status"): {"get", "patch"},
    ("headwater.dev", "schedules/status"): {"get", "patch"},
    ("headwater.dev", "flowruns/status"): {"get", "patch"},
    ("headwater.dev", "automations"): {"get", "list", "watch"},
    ("headwater.dev", "automations/status"): {"get", "patch"},
    ("headwater.dev", "blocks"): {"get", "list", "watch"},
    ("headwater.dev", "variables"): {"get", "list", "watch"},
    ("", "pods"): {"get", "list", "watch", "create", "delete"},
    # The key names of the Secrets Blocks name (a GET per run start), and a metadata-only
    # watch that wakes a run waiting for one (docs/blocks-kubernetes.md).
    ("", "secrets"): {"get", "list", "watch"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
# Cluster-wide only: kopf watches CRDs when its scanning is on (runner.build_settings turns
# it off in namespaced mode), and never lists namespaces cluster-wide (kopf 1.45
# _core/reactor/observation.py namespace_observer, resource_observer).
DISCOVERY_GRANTS: Grants = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
}
RBAC_KINDS = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
# The Role (and RoleBinding) for the leader-election Lease, in the release namespace.
LEASE_ROLE = f"{RELEASE}-headwater-leader-election"


def _grants(role: Manifest) -> Grants:
    """(apiGroup, resource) → verbs, flattened from a role's rules."""
    grants: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants[(group, resource)] |= set(rule["verbs"])
    return dict(grants)


def _of(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def test_no_rbac_rule_uses_a_wildcard(scenario: str, scenario_manifests: list[Manifest]) -> None:
    for role in _of(scenario_manifests, "ClusterRole") + _of(scenario_manifests, "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert "*" not in rule.get(field, []), (
                    f"{scenario}: {role['kind']}/{role['metadata']['name']} has '*' in {field}"
                )
                assert not any("*" in item for item in rule.get(field, [])), (scenario, rule)


def test_rbac_grants_secrets_only_to_the_operator_and_never_pod_exec(
    scenario: str, scenario_manifests: list[Manifest]
) -> None:
    operator_roles = {RELEASE + "-headwater"}
    for role in _of(scenario_manifests, "ClusterRole") + _of(scenario_manifests, "Role"):
        grants = _grants(role)
        resources = {resource for _, resource in grants}
        assert not resources & {"pods/exec", "pods/attach", "configmaps"}, scenario
        # Only the operator reads Secrets (read-only: the key names Blocks refer to); the
        # users' view role and the UI never do.
        if role["metadata"]["name"] in operator_roles:
            assert grants[("", "secrets")] == {"get", "list", "watch"}, scenario
        else:
            assert "secrets" not in resources, (scenario, role["metadata"]["name"])
        # Only the UI reads logs (a running attempt's, followed live), and only with get;
        # the operator never does (`headwater logs` uses the caller's credentials).
        if role["metadata"]["labels"].get("app.kubernetes.io/component") == "ui":
            assert _grants(role).get(("", "pods/log"), {"get"}) == {"get"}, scenario
        else:
            assert "pods/log" not in resources, scenario


def test_cluster_wide_install_grants_exactly_what_the_operator_needs(render: Render) -> None:
    manifests = render()
    (role,) = [r for r in _of(manifests, "ClusterRole")
               if r["metadata"]["name"] in _operator_cluster_roles(manifests)]
    assert _grants(role) == WORKLOAD_GRANTS | DISCOVERY_GRANTS
    (binding,) = _of(manifests, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    (sa,) = _of(manifests, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}
    ]
    # The only Role is the leader-election one, in the release namespace.
    assert [(r["metadata"]["namespace"], r["metadata"]["name"])
            for r in _of(manifests, "Role")] == [(NAMESPACE, LEASE_ROLE)]


def test_only_the_leader_election_role_grants_leases(
        scenario: str, scenario_manifests: list[Manifest]) -> None:
    # Not cluster-wide, not in the watched namespaces: test_chart_ha.py checks the one
    # Role that does, rule by rule.
    for role in _of(scenario_manifests, "ClusterRole") + _of(scenario_manifests, "Role"):
        if role["metadata"]["name"] != LEASE_ROLE:
            assert ("coordination.k8s.io", "leases") not in _grants(role), scenario


def test_namespaced_install_grants_only_inside_the_watched_namespaces(render: Render) -> None:
    manifests = render({"watchNamespaces": ["team-a", "team-b"]})
    roles = [r for r in _of(manifests, "Role") if r["metadata"]["name"] != LEASE_ROLE]
    bindings = [b for b in _of(manifests, "RoleBinding")
                if b["metadata"]["name"] != LEASE_ROLE]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for role in roles:
        assert _grants(role) == WORKLOAD_GRANTS
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        # The ServiceAccount lives in the release namespace, not the watched one.
        assert binding["subjects"][0]["namespace"] == NAMESPACE
    # Nothing cluster-scoped: kopf's scanning is off in namespaced mode, and API
    # discovery is every authenticated user's (the system:discovery ClusterRole).
    assert _operator_cluster_roles(manifests) == []


def _operator_cluster_roles(manifests: list[Manifest]) -> list[str]:
    """Names of the ClusterRoles some ClusterRoleBinding grants the operator's account."""
    (sa,) = _of(manifests, "ServiceAccount")
    account = {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}
    return [binding["roleRef"]["name"] for binding in _of(manifests, "ClusterRoleBinding")
            if account in binding["subjects"]]


def test_namespaced_install_binds_no_cluster_role_to_the_operator(render: Render) -> None:
    for values in ({"watchNamespaces": ["team-a"]},
                   {"watchNamespaces": ["team-a", "team-b"], "replicas": 2}):
        manifests = render(values)
        assert _operator_cluster_roles(manifests) == [], values
        assert _of(manifests, "ClusterRoleBinding") == [], values


def test_rbac_create_false_renders_no_rbac_and_uses_the_named_account(render: Render) -> None:
    manifests = render(
        {
            "rbac": {"create": False},
            "serviceAccount": {"create": False, "name": "platform-operator"},
        }
    )
    # Only the users' roles are left (rbac.aggregateClusterRoles is separate).
    assert [m["metadata"]["name"] for m in manifests if m["kind"] in RBAC_KINDS] == [
        f"{RELEASE}-headwater-view", f"{RELEASE}-headwater-edit"]
    assert [m for m in render({"rbac": {"create": False, "aggregateClusterRoles": False},
                               "serviceAccount": {"create": False, "name": "x"}})
            if m["kind"] in RBAC_KINDS] == []
    assert _of(manifests, "ServiceAccount") == []
    (deployment,) = _of(manifests, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "platform-operator"


def test_role_names_are_release_scoped(render: Render) -> None:
    # Two releases in one cluster must not overwrite each other's cluster-scoped objects.
    for role in _of(render(), "ClusterRole"):
        assert role["metadata"]["name"].startswith(RELEASE)


def test_operator_knows_its_pod_namespace_where_the_lease_role_applies(render: Render) -> None:
    # The Lease rights exist only in the release namespace, which the chart passes as
    # --leader-elect-resource-namespace and which is also the operator's default
    # (POD_NAMESPACE); POD_NAME starts the holder identity `kubectl get lease` shows.
    for values in ({}, {"replicas": 2, "watchNamespaces": ["team-a"]}):
        (deployment,) = _of(render(values), "Deployment")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item.get("valueFrom") for item in container["env"]}
        assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert deployment["metadata"]["namespace"] == NAMESPACE
