"""The chart's ValidatingAdmissionPolicy keeps the operator from being a confused deputy.

Issue #10 item 17: whoever may write a Flow or a Deployment gets pods with any image,
command, service account and Secret of the namespace, through the operator's rights. The
policy refuses such writes unless the user may create pods there. Its CEL is evaluated
here offline, from the policy ``helm template`` renders, with cel-python and a fake
``authorizer`` that behaves as the API server's: Kubernetes 1.32 (k8s.io/apiserver
v0.32.9) as the specification —

* which requests reach the policy: pkg/admission/plugin/webhook/predicates/rules/
  rules.go ``Matcher`` (scope, operation, group, version, and ``resource()``: a rule
  ``flows`` matches no subresource), and the binding's ``matchResources``
  namespaceSelector (namespaced installs);
* how it decides: pkg/admission/plugin/policy/validating/validator.go ``Validate``
  (matchConditions first, all must be true, an error applies failurePolicy; then each
  validation; the message is the messageExpression's result, trimmed, else ``message``,
  else "failed expression: …"), and dispatcher.go, which words the refusal
  "ValidatingAdmissionPolicy '<policy>' with binding '<binding>' denied request: <message>"
  with the validation's ``reason`` (403 for Forbidden);
* ``authorizer``: pkg/cel/library/authz.go — ``group(g).resource(r)`` (an empty resource
  is an error) ``.namespace(ns)``, ``.check(verb)`` asks the authorizer about
  {group, resource, subresource, namespace, name, verb} for the requesting user, and
  ``.allowed()`` is true only for an allow decision; messageExpression has no
  ``authorizer``. The fake decides with RBAC (tests/support/k8s_rbac.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import celpy
import kubernetes_validate
import pytest
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError
from chartkit import RELEASE, Manifest, Render
from k8s_rbac import (
    AGGREGATE_TO_EDIT,
    BOOTSTRAP_EDIT_CORE,
    Request,
    Rule,
    aggregated_rules,
    edit_rules,
    rules_allow,
)

POLICY = f"{RELEASE}-headwater-writers-may-create-pods"
NS = "data"


# --- the authorizer library, as pkg/cel/library/authz.go ---------------------------
@dataclass(frozen=True)
class Authorizer:
    """``authorizer``: the requesting user and the RBAC rules bound to them, by the
    namespace of their RoleBinding (``""``: ClusterRoleBindings, valid everywhere)."""

    username: str
    bindings: Mapping[str, Sequence[Rule]] = field(default_factory=dict)

    def decide(self, request: Request) -> bool:
        rules = [*self.bindings.get("", ()),
                 *(self.bindings.get(request.namespace, ()) if request.namespace else ())]
        return rules_allow(rules, request)


@dataclass(frozen=True)
class GroupCheck:
    authorizer: Authorizer
    group: str


@dataclass(frozen=True)
class ResourceCheck:
    group_check: GroupCheck
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool


def _group(authorizer: Authorizer, group: celtypes.StringType) -> GroupCheck:
    if not isinstance(authorizer, Authorizer):
        raise TypeError("no such overload")
    return GroupCheck(authorizer, str(group))


def _resource(check: GroupCheck, resource: celtypes.StringType) -> ResourceCheck | CELEvalError:
    if not str(resource).strip():
        return CELEvalError("resource must not be empty")
    return ResourceCheck(check, str(resource))


def _set(attribute: str) -> Any:
    def setter(check: ResourceCheck, value: celtypes.StringType) -> ResourceCheck:
        if not isinstance(check, ResourceCheck):
            raise TypeError("no such overload")
        return replace(check, **{attribute: str(value)})
    return setter


def _check(check: ResourceCheck, verb: celtypes.StringType) -> Decision:
    request = Request(str(verb), check.group_check.group, check.resource, check.subresource,
                      check.namespace, check.name)
    return Decision(check.group_check.authorizer.decide(request))


AUTHZ_FUNCTIONS: dict[str, Any] = {
    "group": _group, "resource": _resource, "subresource": _set("subresource"),
    "namespace": _set("namespace"), "name": _set("name"), "check": _check,
    "allowed": lambda decision: celtypes.BoolType(decision.allowed),
    "errored": lambda decision: celtypes.BoolType(False),
    "error": lambda decision: celtypes.StringType(""),
    "reason": lambda decision: celtypes.StringType(""),
}


# --- the policy, as the validating admission plugin applies it -----------------------
@dataclass(frozen=True)
class Admission:
    """One request as admission sees it."""

    operation: str
    resource: str
    obj: Manifest
    old: Manifest | None = None
    subresource: str = ""
    group: str = "headwater.dev"
    version: str = "v1alpha1"
    namespace: str = NS


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    code: int = 200
    reason: str = ""
    message: str = ""


def _evaluate(expression: str, activation: Mapping[str, Any], authz: bool = True) -> Any:
    env = celpy.Environment()
    program = env.program(env.compile(expression), functions=AUTHZ_FUNCTIONS if authz else {})
    return program.evaluate(dict(activation))


def _rule_matches(rule: Mapping[str, Any], request: Admission) -> bool:
    def exact_or_wildcard(items: Sequence[str], requested: str) -> bool:
        return "*" in items or requested in items

    def resource_matches() -> bool:
        for item in rule["resources"]:
            res, _, sub = item.partition("/")
            if res in ("*", request.resource) and sub in ("*", request.subresource):
                return True
        return False

    return (exact_or_wildcard(rule["operations"], request.operation)
            and exact_or_wildcard(rule["apiGroups"], request.group)
            and exact_or_wildcard(rule["apiVersions"], request.version)
            and resource_matches())


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for expression in selector.get("matchExpressions") or ():
        assert expression["operator"] == "In", "only In is used by the chart"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def admit(manifests: list[Manifest], request: Admission, user: Authorizer) -> Verdict:
    """What the API server answers ``user``'s ``request``, given the chart's policy."""
    (policy,) = [m for m in manifests if m["kind"] == "ValidatingAdmissionPolicy"]
    (binding,) = [m for m in manifests if m["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    spec = policy["spec"]
    if not any(_rule_matches(rule, request)
               for rule in spec["matchConstraints"]["resourceRules"]):
        return Verdict(True)
    selector = (binding["spec"].get("matchResources") or {}).get("namespaceSelector")
    if selector and not _selector_matches(
            selector, {"kubernetes.io/metadata.name": request.namespace}):
        return Verdict(True)
    kind = {"flows": "Flow", "deployments": "Deployment", "blocks": "Block"}.get(
        request.resource, "FlowRun")
    activation = {
        "object": json_to_cel(request.obj), "oldObject": json_to_cel(request.old),
        "params": json_to_cel(None), "namespaceObject": json_to_cel(None),
        "request": json_to_cel({
            "kind": {"group": request.group, "version": request.version, "kind": kind},
            "resource": {"group": request.group, "version": request.version,
                         "resource": request.resource},
            "subResource": request.subresource, "name": request.obj["metadata"]["name"],
            "namespace": request.namespace, "operation": request.operation,
            "userInfo": {"username": user.username, "groups": ["system:authenticated"]},
            "dryRun": False}),
        "authorizer": user,
    }
    fail = spec.get("failurePolicy", "Fail") == "Fail"
    for condition in spec.get("matchConditions") or ():
        result = _evaluate(condition["expression"], activation)
        if isinstance(result, CELEvalError):
            return Verdict(not fail, 403 if fail else 200, "Forbidden", str(result))
        if not bool(result):
            return Verdict(True)
    for validation in spec["validations"]:
        result = _evaluate(validation["expression"], activation)
        assert not isinstance(result, CELEvalError), result
        if bool(result):
            continue
        message = ""
        if "messageExpression" in validation:
            text = _evaluate(validation["messageExpression"],
                             {k: v for k, v in activation.items() if k != "authorizer"},
                             authz=False)
            if isinstance(text, str) and "\n" not in text.strip():
                message = str(text).strip()
        message = message or validation.get("message", "").strip() or (
            f"failed expression: {validation['expression'].strip()}")
        reason = validation.get("reason", "Invalid")
        return Verdict(False, {"Forbidden": 403, "Invalid": 422}[reason], reason,
                       f"ValidatingAdmissionPolicy '{policy['metadata']['name']}' with "
                       f"binding '{binding['metadata']['name']}' denied request: {message}")
    return Verdict(True)


# --- who asks -------------------------------------------------------------------------
def _headwater_edit_only(manifests: list[Manifest]) -> Authorizer:
    """Bound (in NS) to the chart's headwater-edit and nothing else: no pods."""
    (role,) = [m for m in manifests if m["metadata"]["name"] == f"{RELEASE}-headwater-edit"]
    return Authorizer("ci-bot", {NS: [Rule.of(r) for r in role["rules"]]})


def _namespace_editor(manifests: list[Manifest], namespace: str = NS) -> Authorizer:
    """Bound (in ``namespace``) to Kubernetes' edit: may create pods there."""
    return Authorizer("alice", {namespace: edit_rules(manifests)})


FLOW: Manifest = {
    "apiVersion": "headwater.dev/v1alpha1", "kind": "Flow",
    "metadata": {"name": "etl", "namespace": NS},
    "spec": {"image": "ghcr.io/acme/etl:1", "entrypoint": "etl.flows:ingest"},
}
DEPLOYMENT: Manifest = {
    "apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
    "metadata": {"name": "nightly", "namespace": NS},
    "spec": {"flowRef": {"name": "etl"}},
}


def _with(obj: Manifest, **changes: Any) -> Manifest:
    copy = {**obj, "metadata": dict(obj["metadata"]), "spec": dict(obj["spec"])}
    for path, value in changes.items():
        section, key = path.split("__")
        copy[section][key] = value
    return copy


@pytest.fixture(scope="module")
def manifests(render: Render) -> list[Manifest]:
    return render()


def test_a_user_who_may_create_pods_may_write_flows_and_deployments(
        manifests: list[Manifest]) -> None:
    alice = _namespace_editor(manifests)
    assert admit(manifests, Admission("CREATE", "flows", FLOW), alice).allowed
    assert admit(manifests, Admission("CREATE", "deployments", DEPLOYMENT), alice).allowed
    changed = _with(DEPLOYMENT, spec__runTemplate={"serviceAccountName": "deployer"})
    assert admit(manifests, Admission("UPDATE", "deployments", changed, DEPLOYMENT),
                 alice).allowed


def test_a_user_who_may_not_create_pods_is_refused_with_who_where_and_the_fix(
        manifests: list[Manifest]) -> None:
    bot = _headwater_edit_only(manifests)
    # RBAC alone would let it through: headwater-edit grants create flows.
    assert rules_allow(bot.bindings[NS], Request("create", "headwater.dev", "flows",
                                                 namespace=NS))
    verdict = admit(manifests, Admission("CREATE", "flows", FLOW), bot)
    assert (verdict.allowed, verdict.code, verdict.reason) == (False, 403, "Forbidden")
    assert verdict.message == (
        f"ValidatingAdmissionPolicy '{POLICY}' with binding '{POLICY}' denied request: "
        "user ci-bot may not create a Flow in namespace data: the operator turns Flows into "
        "pods (image, command, service account, Secrets), so this needs permission to "
        "create pods in data. Grant it (e.g. a RoleBinding to the edit ClusterRole in data) "
        "or ask someone who has it to apply the Flow")
    assert not admit(manifests, Admission("CREATE", "deployments", DEPLOYMENT), bot).allowed


BLOCK: Manifest = {
    "apiVersion": "headwater.dev/v1alpha1", "kind": "Block",
    "metadata": {"name": "warehouse", "namespace": NS},
    "spec": {"type": "mypkg.blocks:Warehouse", "data": {"host": "db.internal"},
             "secretRefs": {"password": {"name": "warehouse-block", "key": "password"}}},
}


def test_blocks_name_secrets_pods_get_so_writing_one_needs_pod_rights_too(
        manifests: list[Manifest]) -> None:
    alice, bot = _namespace_editor(manifests), _headwater_edit_only(manifests)
    assert admit(manifests, Admission("CREATE", "blocks", BLOCK), alice).allowed
    verdict = admit(manifests, Admission("CREATE", "blocks", BLOCK), bot)
    assert (verdict.allowed, verdict.code) == (False, 403)
    assert verdict.message.endswith(
        "user ci-bot may not create a Block in namespace data: the operator turns Blocks "
        "into pods (the Secrets its secretRefs name become files in them), so this needs "
        "permission to create pods in data. Grant it (e.g. a RoleBinding to the edit "
        "ClusterRole in data) or ask someone who has it to apply the Block")
    # Pointing a field at another Secret (and the host at one's own server) is the attack.
    redirected = _with(BLOCK, spec__secretRefs={"password": {"name": "admin-token",
                                                             "key": "token"}})
    assert not admit(manifests, Admission("UPDATE", "blocks", redirected, BLOCK),
                     bot).allowed
    relabelled = _with(BLOCK, metadata__labels={"team": "data"})
    assert admit(manifests, Admission("UPDATE", "blocks", relabelled, BLOCK), bot).allowed


def test_pod_rights_in_another_namespace_do_not_count(manifests: list[Manifest]) -> None:
    elsewhere = _namespace_editor(manifests, namespace="sandbox")
    verdict = admit(manifests, Admission("CREATE", "flows", FLOW), elsewhere)
    assert not verdict.allowed
    assert "user alice may not create a Flow in namespace data" in verdict.message


def test_an_update_of_the_spec_is_checked_and_a_metadata_update_is_not(
        manifests: list[Manifest]) -> None:
    bot = _headwater_edit_only(manifests)
    new_image = _with(FLOW, spec__image="evil.example/miner:latest")
    verdict = admit(manifests, Admission("UPDATE", "flows", new_image, FLOW), bot)
    assert not verdict.allowed
    assert "may not change the spec of a Flow in namespace data" in verdict.message
    # Labels, annotations, finalizers (kopf's progress, the garbage collector, GitOps
    # tracking) change no pod: such updates are not the policy's business.
    relabelled = _with(DEPLOYMENT, metadata__labels={"team": "data"},
                       metadata__finalizers=["headwater.dev/finalizer"])
    assert admit(manifests, Admission("UPDATE", "deployments", relabelled, DEPLOYMENT),
                 bot).allowed


def _spec(obj: Manifest, **spec: Any) -> Manifest:
    """``obj`` with ``spec`` keys set (a value of ``None``: the key removed)."""
    merged = {k: v for k, v in {**obj["spec"], **spec}.items() if v is not None}
    return {**obj, "spec": merged}


@pytest.mark.parametrize(("old", "new"), [
    ({}, {"paused": True}),                  # pause: the key absent before
    ({"paused": False}, {"paused": True}),   # pause
    ({"paused": True}, {"paused": False}),   # resume
    ({"paused": True}, {"paused": None}),    # resume by removing the key
    ({"paused": True}, {"paused": True}),    # the same value again
], ids=["pause-absent", "pause", "resume", "resume-removed", "unchanged"])
def test_pausing_or_resuming_a_deployment_needs_no_pod_rights(
        manifests: list[Manifest], old: dict[str, Any], new: dict[str, Any]) -> None:
    # It changes no pod the operator makes; resuming only lets runs of an admitted
    # Deployment go ahead, which `create flowruns` allows anyway.
    bot = _headwater_edit_only(manifests)
    before = _spec(DEPLOYMENT, tags=["nightly"], **old)
    after = _spec(before, **new)
    assert admit(manifests, Admission("UPDATE", "deployments", after, before), bot).allowed


@pytest.mark.parametrize("change", [
    {"tags": ["nightly", "urgent"]},                      # another key changed
    {"tags": None},                                        # another key removed
    {"runTemplate": {"serviceAccountName": "deployer"}},  # another key added
], ids=["changed", "removed", "added"])
@pytest.mark.parametrize("paused", [None, True], ids=["alone", "with-pause"])
def test_any_other_spec_change_is_checked_with_or_without_a_pause(
        manifests: list[Manifest], change: dict[str, Any], paused: bool | None) -> None:
    bot = _headwater_edit_only(manifests)
    before = _spec(DEPLOYMENT, tags=["nightly"], paused=False)
    after = _spec(before, **change, **({"paused": paused} if paused else {}))
    verdict = admit(manifests, Admission("UPDATE", "deployments", after, before), bot)
    assert (verdict.allowed, verdict.code) == (False, 403)
    assert "may not change the spec of a Deployment in namespace data" in verdict.message
    # Whoever may create pods may make the same change.
    alice = _namespace_editor(manifests)
    assert admit(manifests, Admission("UPDATE", "deployments", after, before), alice).allowed


def test_only_a_deployments_paused_is_exempt(manifests: list[Manifest]) -> None:
    # A Flow has no `paused`: a spec change of a Flow is checked whatever its key.
    bot = _headwater_edit_only(manifests)
    paused_flow = _spec(FLOW, paused=True)
    verdict = admit(manifests, Admission("UPDATE", "flows", paused_flow, FLOW), bot)
    assert not verdict.allowed
    assert "may not change the spec of a Flow" in verdict.message


def test_status_writes_and_other_kinds_never_reach_the_policy(
        manifests: list[Manifest]) -> None:
    # The operator's account has no business being refused: its status writes do not
    # match (rules "flows"/"deployments" match no subresource).
    nobody = Authorizer("system:serviceaccount:headwater-system:hw-headwater")
    with_status = {**FLOW, "status": {"phase": "Ready"}}
    for resource, obj in (("flows", with_status), ("deployments", DEPLOYMENT)):
        assert admit(manifests, Admission("UPDATE", resource, obj, FLOW, subresource="status"),
                     nobody).allowed
    # FlowRuns and Schedules start pods only of already admitted Flows and Deployments.
    run = {"metadata": {"name": "r1", "namespace": NS},
           "spec": {"deploymentRef": {"name": "nightly"}}}
    assert admit(manifests, Admission("CREATE", "flowruns", run), nobody).allowed
    assert admit(manifests, Admission("CREATE", "schedules", run), nobody).allowed
    # DELETE is not matched either: removing a definition starts no pod.
    assert admit(manifests, Admission("DELETE", "flows", FLOW), nobody).allowed


def test_namespaced_installs_govern_only_the_watched_namespaces(render: Render) -> None:
    manifests = render({"watchNamespaces": [NS, "ml"]})
    bot = _headwater_edit_only(render())
    assert not admit(manifests, Admission("CREATE", "flows", FLOW), bot).allowed
    other = _with(FLOW, metadata__namespace="unwatched")
    assert admit(manifests, Admission("CREATE", "flows", other, namespace="unwatched"),
                 bot).allowed


def test_the_policy_is_a_valid_kubernetes_1_32_object_and_can_be_switched_off(
        render: Render, manifests: list[Manifest]) -> None:
    kinds = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    rendered = [m for m in manifests if m["kind"] in kinds]
    assert len(rendered) == 2
    for manifest in rendered:
        kubernetes_validate.validate(manifest, "1.32.0", strict=True)
        assert manifest["apiVersion"] == "admissionregistration.k8s.io/v1"
    (binding,) = [m for m in rendered if m["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert [m for m in render({"watchNamespaces": ["a"]}) if m["kind"] in kinds]
    assert not [m for m in render({"admissionPolicy": {"enabled": False}})
                if m["kind"] in kinds]


def test_the_edit_role_is_what_makes_the_difference(manifests: list[Manifest]) -> None:
    # The chart's own aggregate-to-edit rules give no pods; Kubernetes' edit does.
    create_pods = Request("create", "", "pods", namespace=NS)
    assert not rules_allow(aggregated_rules(manifests, AGGREGATE_TO_EDIT), create_pods)
    assert rules_allow(BOOTSTRAP_EDIT_CORE, create_pods)
