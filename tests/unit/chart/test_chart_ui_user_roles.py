"""The UI's client-auth mode (issue #13): the user Roles docs/ui.md publishes, and the
chart's roles, allow exactly the write actions the docs say, as RBAC and the chart's
admission policy decide them.

In client mode each write action is made with the user's own token (docs/ui.md, "Roles
for the people who use it"), so what a user may do in the UI is what RBAC, then the
ValidatingAdmissionPolicy, let that token do. The Roles are read from the doc itself
(the YAML users copy), evaluated with tests/support/k8s_rbac.py, and the admission policy
with the offline evaluator of test_vap_confused_deputy.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from chartkit import RELEASE, REPO_ROOT, Manifest, Render
from k8s_rbac import (
    Request,
    Rule,
    edit_rules,
    rules_allow,
    rules_of,
    service_account_rules,
    view_rules,
)
from test_vap_confused_deputy import Admission, Authorizer, admit

DOC = REPO_ROOT / "docs" / "ui.md"
HW = "headwater.dev"
NS = "data"

# Each write action of the UI and the one request it makes with the user's token.
ACTIONS: dict[str, Request] = {
    "run": Request("create", HW, "flowruns", namespace=NS),
    "backfill": Request("create", HW, "flowruns", namespace=NS),
    "cancel": Request("patch", HW, "flowruns", namespace=NS, name="nightly-abc12"),
    "suspend": Request("patch", HW, "schedules", namespace=NS, name="nightly"),
    "pause": Request("patch", HW, "deployments", namespace=NS, name="nightly"),
    "resume": Request("patch", HW, "deployments", namespace=NS, name="nightly"),
}
# What the doc promises each of its Roles allows.
PROMISED: dict[str, set[str]] = {
    "headwater-ui-runner": {"run", "backfill", "cancel"},
    "headwater-ui-scheduler": {"run", "backfill", "cancel", "suspend"},
}

DEPLOYMENT: Manifest = {"apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
                        "metadata": {"name": "nightly", "namespace": NS},
                        "spec": {"flowRef": {"name": "etl"}, "paused": False}}
SCHEDULE: Manifest = {"apiVersion": "headwater.dev/v1alpha1", "kind": "Schedule",
                      "metadata": {"name": "nightly", "namespace": NS},
                      "spec": {"deploymentRef": {"name": "nightly"}, "cron": "0 2 * * *",
                               "suspend": False}}
RUN: Manifest = {"apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
                 "metadata": {"name": "nightly-abc12", "namespace": NS},
                 "spec": {"deploymentRef": {"name": "nightly"}}}


def _admission(action: str) -> Admission:
    """The request admission sees for ``action`` (old and new object)."""
    if action == "pause":
        return Admission("UPDATE", "deployments", _changed(DEPLOYMENT, paused=True),
                         DEPLOYMENT)
    if action == "resume":
        paused = _changed(DEPLOYMENT, paused=True)
        return Admission("UPDATE", "deployments", _changed(paused, paused=False), paused)
    if action == "suspend":
        return Admission("UPDATE", "schedules", _changed(SCHEDULE, suspend=True), SCHEDULE)
    if action == "cancel":
        return Admission("UPDATE", "flowruns", _changed(RUN, cancel=True), RUN)
    return Admission("CREATE", "flowruns", RUN)


def _changed(obj: Manifest, **spec: Any) -> Manifest:
    return {**obj, "spec": {**obj["spec"], **spec}}


def _doc_roles() -> dict[str, Manifest]:
    section = DOC.read_text().split("\n## In the cluster\n", 1)[1]
    roles: dict[str, Manifest] = {}
    for block in re.findall(r"```yaml\n(.*?)```", section, re.S):
        for doc in yaml.safe_load_all(block):
            if isinstance(doc, dict) and doc.get("kind") == "Role":
                roles[doc["metadata"]["name"]] = doc
    return roles


def _allowed(rules: list[Rule], manifests: list[Manifest], user: str) -> set[str]:
    """The actions ``rules`` (bound in NS) let a user do: RBAC, then admission."""
    authorizer = Authorizer(user, {NS: rules})
    return {action for action, request in ACTIONS.items()
            if rules_allow(rules, request)
            and admit(manifests, _admission(action), authorizer).allowed}


@pytest.fixture(scope="module")
def manifests(render: Render) -> list[Manifest]:
    return render({"ui": {"enabled": True, "auth": "client"}})


def test_the_doc_publishes_the_roles_it_names() -> None:
    roles = _doc_roles()
    assert set(roles) == set(PROMISED)
    for role in roles.values():
        assert role["apiVersion"] == "rbac.authorization.k8s.io/v1"
        assert role["metadata"]["namespace"] == NS
        rules = rules_of(role)
        # No reads needed (the UI reads with its own account), no deletes, no status.
        for kind in ("flows", "deployments", "schedules", "flowruns"):
            for verb in ("delete", "deletecollection", "update"):
                assert not rules_allow(rules, Request(verb, HW, kind, namespace=NS))
            assert not rules_allow(rules, Request("patch", HW, kind, "status", NS))
        assert not rules_allow(rules, Request("create", HW, "flows", namespace=NS))
        assert not rules_allow(rules, Request("create", HW, "deployments", namespace=NS))
        assert not rules_allow(rules, Request("create", "", "pods", namespace=NS))


@pytest.mark.parametrize("name", list(PROMISED))
def test_each_doc_role_allows_exactly_the_actions_promised(
        manifests: list[Manifest], name: str) -> None:
    role = _doc_roles()[name]
    assert _allowed(rules_of(role), manifests, "alice") == PROMISED[name]


def test_kubernetes_edit_allows_every_action_and_view_none(manifests: list[Manifest]) -> None:
    assert _allowed(edit_rules(manifests), manifests, "alice") == set(ACTIONS)
    assert _allowed(view_rules(manifests), manifests, "bob") == set()


def test_the_charts_headwater_edit_allows_every_action_pause_and_resume_included(
        manifests: list[Manifest]) -> None:
    # RBAC allows all six; the admission policy does not ask for `create pods` when a
    # Deployment's spec changes only in `paused` (docs/decisions.md).
    (role,) = [m for m in manifests if m["kind"] == "ClusterRole"
               and m["metadata"]["name"] == f"{RELEASE}-headwater-edit"]
    rules = rules_of(role)
    assert all(rules_allow(rules, request) for request in ACTIONS.values())
    assert _allowed(rules, manifests, "ci-bot") == set(ACTIONS)
    # But pausing while changing what runs is a spec change like any other.
    paused_elsewhere = _changed(DEPLOYMENT, paused=True, parameters={"region": "eu"})
    verdict = admit(manifests, Admission("UPDATE", "deployments", paused_elsewhere,
                                         DEPLOYMENT), Authorizer("ci-bot", {NS: rules}))
    assert not verdict.allowed
    assert "may not change the spec of a Deployment in namespace data" in verdict.message
    # A user who may also create pods in the namespace may.
    with_pods = [*rules, Rule(("create",), ("",), ("pods",))]
    assert admit(manifests, Admission("UPDATE", "deployments", paused_elsewhere, DEPLOYMENT),
                 Authorizer("ci-bot", {NS: with_pods})).allowed


def test_the_uis_own_account_can_do_none_of_them(manifests: list[Manifest]) -> None:
    rules = service_account_rules(manifests, "headwater-system", f"{RELEASE}-headwater-ui", NS)
    assert rules  # it is bound: it reads
    assert {a for a, r in ACTIONS.items() if rules_allow(rules, r)} == set()
