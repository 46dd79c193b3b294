"""Kubernetes RBAC as the API server evaluates it, to check the chart's roles offline.

Shared by the chart tests (``tests/unit/chart``) and the api suite's RBAC audit
(``tests/api/conftest.py``), which is why it lives outside both (``pythonpath`` in
pyproject.toml). It must behave exactly as Kubernetes 1.32 does; the behaviour (not the
code) is translated from kubernetes/kubernetes:

* whether one rule allows a request: ``plugin/pkg/auth/authorizer/rbac/rbac.go``
  ``RuleAllows``, with ``pkg/apis/rbac/v1/evaluation_helpers.go`` ``VerbMatches``,
  ``APIGroupMatches``, ``ResourceMatches`` (``"*"``, the exact ``resource/subresource``,
  or ``*/subresource``) and ``ResourceNameMatches`` (no names means any name);
* which rules apply to a subject: ``pkg/registry/rbac/validation/rule.go``
  ``DefaultRuleResolver.VisitRulesFor`` — every ClusterRoleBinding naming the subject,
  and, for a request in a namespace, every RoleBinding of that namespace naming it (a
  request without a namespace, e.g. a list across all namespaces, is allowed only by
  ClusterRoleBindings); ``appliesToUser`` matches a ServiceAccount subject by name and
  namespace;
* aggregation: ``pkg/controller/clusterroleaggregation`` gives an aggregated ClusterRole
  the rules of every ClusterRole its ``aggregationRule`` selects;
* the built-in roles a user normally holds: ``plugin/pkg/auth/authorizer/rbac/
  bootstrappolicy/policy.go`` ``clusterRoles`` — ``view`` and ``edit`` aggregate the
  ClusterRoles labelled ``rbac.authorization.k8s.io/aggregate-to-view`` / ``-edit``,
  among them ``system:aggregate-to-view`` / ``-edit``, whose core-group rules are in
  :data:`BOOTSTRAP_VIEW_CORE` / :data:`BOOTSTRAP_EDIT_CORE`; ``view`` itself is
  labelled aggregate-to-edit and ``edit`` aggregate-to-admin, so edit ⊇ view.
"""

from __future__ import annotations

import copy
import json
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pinned_tools import pinned_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "headwater"
AGGREGATE_TO_VIEW = "rbac.authorization.k8s.io/aggregate-to-view"
AGGREGATE_TO_EDIT = "rbac.authorization.k8s.io/aggregate-to-edit"
AGGREGATE_TO_ADMIN = "rbac.authorization.k8s.io/aggregate-to-admin"
READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """What the authorizer is asked about one resource request."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        group = self.group or "core"
        where = f"in namespace {self.namespace}" if self.namespace else "cluster-wide"
        named = f" {self.name!r}" if self.name else ""
        return f"{self.verb} {what}{named} ({group}) {where}"


@dataclass(frozen=True)
class Rule:
    """One PolicyRule."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    @classmethod
    def of(cls, rule: Mapping[str, Any]) -> Rule:
        """A rule from its manifest form."""
        return cls(tuple(rule.get("verbs") or ()), tuple(rule.get("apiGroups") or ()),
                   tuple(rule.get("resources") or ()), tuple(rule.get("resourceNames") or ()))

    def allows(self, request: Request) -> bool:
        """``RuleAllows`` for a resource request."""
        combined = request.resource + (f"/{request.subresource}" if request.subresource else "")
        return (any(verb in ("*", request.verb) for verb in self.verbs)
                and any(group in ("*", request.group) for group in self.api_groups)
                and any(_resource_matches(resource, combined, request.subresource)
                        for resource in self.resources)
                and (not self.resource_names or request.name in self.resource_names))


def _resource_matches(rule_resource: str, combined: str, subresource: str) -> bool:
    return (rule_resource in ("*", combined)
            or (bool(subresource) and rule_resource == f"*/{subresource}"))


def rules_allow(rules: Iterable[Rule], request: Request) -> bool:
    """Whether any of ``rules`` allows ``request`` (RBAC only ever adds permissions)."""
    return any(rule.allows(request) for rule in rules)


def rules_of(role: Mapping[str, Any]) -> list[Rule]:
    """The rules of a Role or ClusterRole manifest."""
    return [Rule.of(rule) for rule in role.get("rules") or ()]


def service_account_rules(manifests: Sequence[Manifest], namespace: str, name: str,
                          request_namespace: str) -> list[Rule]:
    """The rules the chart's bindings give ServiceAccount ``namespace/name`` for a request
    in ``request_namespace`` (``""``: a cluster-scoped or all-namespaces request)."""
    account = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    roles = {(m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"]): m
             for m in manifests if m["kind"] in ("Role", "ClusterRole")}
    rules: list[Rule] = []
    for binding in manifests:
        if binding["kind"] == "ClusterRoleBinding":
            applies = True
        elif binding["kind"] == "RoleBinding":
            applies = bool(request_namespace) and (
                binding["metadata"].get("namespace") == request_namespace)
        else:
            continue
        if not applies or not any(_same_account(s, account) for s in binding["subjects"]):
            continue
        ref = binding["roleRef"]
        role_namespace = "" if ref["kind"] == "ClusterRole" else binding["metadata"]["namespace"]
        role = roles.get((ref["kind"], role_namespace, ref["name"]))
        if role is not None:  # a binding to a missing role grants nothing
            rules += rules_of(role)
    return rules


def _same_account(subject: Mapping[str, Any], account: Mapping[str, str]) -> bool:
    return all(subject.get(key) == value for key, value in account.items())


def aggregated_rules(manifests: Sequence[Manifest], label: str) -> list[Rule]:
    """The rules the chart adds to the built-in ClusterRole that aggregates ``label``."""
    return [rule for m in manifests if m["kind"] == "ClusterRole"
            and (m["metadata"].get("labels") or {}).get(label) == "true"
            for rule in rules_of(m)]


# The core-group ("") rules of system:aggregate-to-view and system:aggregate-to-edit
# (bootstrappolicy/policy.go clusterRoles, unchanged since Kubernetes 1.9 for these
# resources); other groups do not matter to Headwater.
BOOTSTRAP_VIEW_CORE: tuple[Rule, ...] = (
    Rule(READ, ("",), ("pods", "replicationcontrollers", "replicationcontrollers/scale",
                       "serviceaccounts", "services", "services/status", "endpoints",
                       "persistentvolumeclaims", "persistentvolumeclaims/status",
                       "configmaps")),
    Rule(READ, ("",), ("limitranges", "resourcequotas", "bindings", "events", "pods/status",
                       "resourcequotas/status", "namespaces/status",
                       "replicationcontrollers/status", "pods/log")),
    Rule(READ, ("",), ("namespaces",)),
)
BOOTSTRAP_EDIT_CORE: tuple[Rule, ...] = (
    Rule(READ, ("",), ("pods/attach", "pods/proxy", "pods/exec", "pods/portforward",
                       "secrets", "services/proxy")),
    Rule(("impersonate",), ("",), ("serviceaccounts",)),
    Rule(WRITE, ("",), ("pods", "pods/attach", "pods/proxy", "pods/exec",
                        "pods/portforward")),
    Rule(WRITE, ("",), ("replicationcontrollers", "replicationcontrollers/scale",
                        "serviceaccounts", "services", "services/proxy", "endpoints",
                        "persistentvolumeclaims", "configmaps", "secrets")),
)


def view_rules(manifests: Sequence[Manifest]) -> list[Rule]:
    """The ``view`` ClusterRole of a cluster with the chart installed (core group and the
    chart's aggregate-to-view roles)."""
    return [*BOOTSTRAP_VIEW_CORE, *aggregated_rules(manifests, AGGREGATE_TO_VIEW)]


def edit_rules(manifests: Sequence[Manifest]) -> list[Rule]:
    """The ``edit`` ClusterRole likewise: it aggregates ``view`` too."""
    return [*view_rules(manifests), *BOOTSTRAP_EDIT_CORE,
            *aggregated_rules(manifests, AGGREGATE_TO_EDIT)]


def helm_binary() -> str:
    """The pinned helm (scripts/install-helm.sh installs it on first use)."""
    return pinned_tool("helm")


def render_chart(helm: str, values: Mapping[str, Any], *, release: str = "hw",
                 namespace: str = "headwater-system") -> list[Manifest]:
    """``helm template`` of the chart with ``values``: its manifests."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as values_file:
        # JSON is YAML, and it keeps types exact.
        json.dump(values, values_file)
        values_file.flush()
        proc = subprocess.run(
            [helm, "template", release, str(CHART_DIR), "--namespace", namespace,
             "--values", values_file.name],
            capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"helm template failed for {values}:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


ChartRender = Callable[[Mapping[str, Any], str], list[Manifest]]


def cached_render(helm: str) -> ChartRender:
    """``render(values, release_namespace)``: :func:`render_chart`, each rendering made
    once (fresh copies are returned, so callers may edit them)."""
    cache: dict[str, list[Manifest]] = {}

    def render(values: Mapping[str, Any], release_namespace: str) -> list[Manifest]:
        key = repr((sorted(values.items()), release_namespace))
        if key not in cache:
            cache[key] = render_chart(helm, values, namespace=release_namespace)
        return copy.deepcopy(cache[key])

    return render
