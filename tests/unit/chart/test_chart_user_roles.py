"""The users' ClusterRoles (issue #10 item 9): Headwater in Kubernetes' view/edit/admin.

Kubernetes' built-in ``view``, ``edit`` and ``admin`` ClusterRoles aggregate every
ClusterRole labelled ``rbac.authorization.k8s.io/aggregate-to-view`` / ``-edit`` /
``-admin`` (kubernetes/kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy/
policy.go ``clusterRoles``). The chart ships ``<fullname>-view`` and ``<fullname>-edit``
so that whoever may view or edit a namespace may do the same with Headwater's objects,
and checks here, with the RBAC evaluation of tests/support/k8s_rbac.py, that each CLI
command's API calls (docs/cli.md) are granted by the role the docs name.
"""

from __future__ import annotations

import pytest
from chartkit import RELEASE, Manifest, Render
from k8s_rbac import (
    AGGREGATE_TO_ADMIN,
    AGGREGATE_TO_EDIT,
    AGGREGATE_TO_VIEW,
    Request,
    edit_rules,
    rules_allow,
    rules_of,
    view_rules,
)

KINDS = ("flows", "deployments", "schedules", "flowruns", "blocks", "variables",
         "concurrencylimits")
HW = "headwater.dev"
NS = "data"


def _role(manifests: list[Manifest], suffix: str) -> Manifest:
    (role,) = [m for m in manifests if m["kind"] == "ClusterRole"
               and m["metadata"]["name"] == f"{RELEASE}-headwater-{suffix}"]
    return role


@pytest.mark.parametrize("values", [{}, {"watchNamespaces": ["team-a"]}],
                         ids=["cluster-wide", "namespaced"])
def test_view_and_edit_aggregate_into_the_builtin_roles(render: Render,
                                                        values: dict[str, object]) -> None:
    manifests = render(values)
    view, edit = _role(manifests, "view"), _role(manifests, "edit")
    assert {k: v for k, v in view["metadata"]["labels"].items() if k.startswith("rbac.")} == {
        AGGREGATE_TO_VIEW: "true", AGGREGATE_TO_EDIT: "true", AGGREGATE_TO_ADMIN: "true"}
    assert {k: v for k, v in edit["metadata"]["labels"].items() if k.startswith("rbac.")} == {
        AGGREGATE_TO_EDIT: "true", AGGREGATE_TO_ADMIN: "true"}
    # Never bound by the chart: they grant nothing until a cluster admin binds them.
    bound = {b["roleRef"]["name"] for b in manifests
             if b["kind"] in ("ClusterRoleBinding", "RoleBinding")}
    assert not bound & {view["metadata"]["name"], edit["metadata"]["name"]}


def test_view_reads_and_edit_writes_every_kind_but_never_status(render: Render) -> None:
    manifests = render()
    view, edit = rules_of(_role(manifests, "view")), rules_of(_role(manifests, "edit"))
    for kind in KINDS:
        for verb in ("get", "list", "watch"):
            assert rules_allow(view, Request(verb, HW, kind, namespace=NS)), (verb, kind)
            assert rules_allow(edit, Request(verb, HW, kind, namespace=NS)), (verb, kind)
        for verb in ("create", "update", "patch", "delete", "deletecollection"):
            assert not rules_allow(view, Request(verb, HW, kind, namespace=NS)), (verb, kind)
            assert rules_allow(edit, Request(verb, HW, kind, namespace=NS)), (verb, kind)
        # Status is the operator's: users neither write nor need it.
        for verb in ("get", "update", "patch"):
            assert not rules_allow(edit, Request(verb, HW, kind, "status", NS)), (verb, kind)
    # Nothing outside headwater.dev, in particular no pods.
    assert {group for rule in view + edit for group in rule.api_groups} == {HW}


# Each command's API calls, read off operator/src/headwater_operator/cli/ (the table in
# docs/cli.md), and the built-in role the docs say it needs.
CLI_CALLS: dict[str, tuple[str, list[Request]]] = {
    "get": ("view", [Request("list", HW, k, namespace=NS) for k in KINDS]
            + [Request("get", HW, k, namespace=NS, name="x") for k in KINDS]),
    "describe run": ("view", [Request("get", HW, "flowruns", namespace=NS, name="x"),
                              Request("list", "", "events", namespace=NS)]),
    "describe schedule": ("view", [Request("get", HW, "schedules", namespace=NS, name="x"),
                                   Request("list", "", "events", namespace=NS)]),
    "logs": ("view", [Request("get", HW, "flowruns", namespace=NS, name="x"),
                      Request("get", "", "pods", "log", NS, "x-1")]),
    "artifacts": ("view", [Request("get", HW, "flowruns", namespace=NS, name="x")]),
    "lineage": ("view", [Request("list", HW, "deployments", namespace=NS),
                         Request("list", HW, "flowruns", namespace=NS)]),
    "run": ("edit", [Request("get", HW, "deployments", namespace=NS, name="x"),
                     Request("get", HW, "flows", namespace=NS, name="x"),
                     Request("create", HW, "flowruns", namespace=NS),
                     Request("get", HW, "flowruns", namespace=NS, name="x-abcde"),
                     Request("get", "", "pods", "log", NS, "x-abcde-1")]),
    "backfill": ("edit", [Request("get", HW, "schedules", namespace=NS, name="x"),
                          Request("get", HW, "deployments", namespace=NS, name="x"),
                          Request("get", HW, "flows", namespace=NS, name="x"),
                          Request("list", HW, "flowruns", namespace=NS),
                          Request("create", HW, "flowruns", namespace=NS)]),
    "cancel": ("edit", [Request("get", HW, "flowruns", namespace=NS, name="x"),
                        Request("patch", HW, "flowruns", namespace=NS, name="x")]),
    "block get": ("view", [Request("list", HW, "blocks", namespace=NS),
                           Request("get", HW, "blocks", namespace=NS, name="x")]),
    "block describe": ("view", [Request("get", HW, "blocks", namespace=NS, name="x")]),
    "block create": ("edit", [Request("create", HW, "blocks", namespace=NS),
                              Request("patch", HW, "blocks", namespace=NS, name="x"),
                              Request("get", "", "secrets", namespace=NS, name="x-block"),
                              Request("create", "", "secrets", namespace=NS),
                              Request("patch", "", "secrets", namespace=NS, name="x-block")]),
    "block delete": ("edit", [Request("delete", HW, "blocks", namespace=NS, name="x")]),
    "variable get": ("view", [Request("get", HW, "variables", namespace=NS, name="x")]),
    "variable ls": ("view", [Request("list", HW, "variables", namespace=NS)]),
    "variable set": ("edit", [Request("create", HW, "variables", namespace=NS),
                              Request("get", HW, "variables", namespace=NS, name="x"),
                              Request("patch", HW, "variables", namespace=NS, name="x")]),
    "variable unset": ("edit", [Request("get", HW, "variables", namespace=NS, name="x"),
                                Request("delete", HW, "variables", namespace=NS, name="x")]),
}


def test_view_never_reads_a_secret_and_the_chart_roles_never_write_one(
        render: Render) -> None:
    # Blocks hold no secret values; the Secrets they name stay out of view (`block
    # describe` masks secret fields without reading them). Kubernetes' edit writes them.
    manifests = render()
    for verb in ("get", "list", "watch"):
        assert not rules_allow(view_rules(manifests), Request(verb, "", "secrets",
                                                              namespace=NS)), verb
    own = rules_of(_role(manifests, "view")) + rules_of(_role(manifests, "edit"))
    assert not rules_allow(own, Request("create", "", "secrets", namespace=NS))


@pytest.mark.parametrize("command", list(CLI_CALLS))
def test_each_cli_command_works_with_the_role_the_docs_name(render: Render,
                                                            command: str) -> None:
    manifests = render()
    role, calls = CLI_CALLS[command]
    rules = view_rules(manifests) if role == "view" else edit_rules(manifests)
    refused = [str(call) for call in calls if not rules_allow(rules, call)]
    assert refused == [], f"headwater {command} with {role}: {refused}"
    if role == "edit":  # ...and not with view alone: the docs would be wrong
        assert any(not rules_allow(view_rules(manifests), call) for call in calls)


def test_without_the_chart_roles_view_cannot_read_headwater(render: Render) -> None:
    # The aggregation is what gives view its Headwater rights: switched off, it has none.
    manifests = render({"rbac": {"create": True, "aggregateClusterRoles": False}})
    assert not rules_allow(view_rules(manifests), Request("list", HW, "flowruns", namespace=NS))
    assert not rules_allow(edit_rules(manifests), Request("create", HW, "flowruns",
                                                          namespace=NS))
