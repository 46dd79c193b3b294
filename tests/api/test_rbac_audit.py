"""The RBAC audit of the api suite (tests/api/conftest.py) and what it stands on.

The conftest records every request the operator and the CLI send and, at the end of the
session, fails the run with the list of those the chart's rendered RBAC would refuse.
These tests prove the parts: the emulator records each request's API group, and the
check does refuse a call once the rule granting it is gone.
"""

from __future__ import annotations

import asyncio
import copy
import io
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from api_rbac_audit import Actor, Call, Lease, Observed, chart_lease, failure_report, ungranted
from headwater.cli import build_parser
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.harness import OperatorHarness
from headwater_operator import kube as kube_module
from headwater_operator.cli.common import Io
from k8s_rbac import Manifest, Request, cached_render, helm_binary

Render = Callable[[Mapping[str, Any], str], list[Manifest]]
ROLES = ("Role", "ClusterRole")


async def test_the_emulator_records_each_requests_api_group(
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str) -> None:
    mark = emulator.requests.mark()
    await kube.list(kube_module.PODS, namespace=namespace)
    await kube.list(kube_module.FLOWRUNS, namespace=namespace)
    await kube.list(kube_module.EVENTS, namespace=namespace)
    seen = [(r.group, r.resource, r.verb) for r in emulator.requests.since(mark)]
    assert seen == [("", "pods", "list"), ("headwater.dev", "flowruns", "list"),
                    ("", "events", "list")]


def _without(render: Render, group: str, resource: str, verb: str) -> Render:
    """``render`` with ``verb`` on ``group``/``resource`` taken out of every role."""

    def render_without(values: Mapping[str, Any], release_namespace: str) -> list[Manifest]:
        manifests = copy.deepcopy(render(values, release_namespace))
        for role in manifests:
            for rule in role.get("rules") or () if role["kind"] in ROLES else ():
                if group in rule["apiGroups"] and resource in rule["resources"]:
                    rule["verbs"] = [v for v in rule["verbs"] if v != verb]
        return manifests

    return render_without


@pytest.fixture(scope="module")
def chart() -> Render:
    return cached_render(helm_binary())


async def test_the_operators_calls_are_seen_and_a_removed_rule_is_refused(  # noqa: PLR0917
        rbac_audit: Observed, operator: OperatorHarness, hello_deployment: Any,
        kube: kube_module.Kube, namespace: str, emulator: BackgroundEmulator,
        wait_for: Any, chart: Render) -> None:
    await hello_deployment()
    await kube.create(kube_module.FLOWRUNS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
        "metadata": {"name": "audited"}, "spec": {"deploymentRef": {"name": "nightly"}}},
        namespace=namespace)
    await wait_for(lambda: emulator.objects("pods", namespace), timeout=15)
    actor = Actor("operator", (namespace,))
    mine = [call for call in rbac_audit.snapshot() if call.actor == actor]
    create_pod = Request("create", "", "pods", namespace=namespace)
    assert Call(actor, create_pod) in mine  # the operator's pod, seen as the operator's
    # ...and none of the harness's own requests (it created the Flow and Deployment).
    assert not [c for c in mine if c.request.verb == "create"
                and c.request.resource in ("flows", "deployments")]
    assert ungranted(mine, chart) == []
    refused = ungranted(mine, _without(chart, "", "pods", "create"))
    assert refused == [
        f"{actor} in a cluster-wide install: {create_pod}",
        f"{actor} in a namespaced install (watchNamespaces=['{namespace}']): {create_pod}",
    ]
    report = failure_report(refused, Path("observed.json"))
    assert "charts/headwater/templates/_rbac-rules.tpl" in report


async def test_the_clis_calls_are_seen_and_checked_against_view_and_edit(
        rbac_audit: Observed, emulator: BackgroundEmulator, chart: Render) -> None:
    result = await asyncio.to_thread(_cli, "get", "runs")
    assert result == 0
    mine = [call for call in rbac_audit.snapshot() if call.actor == Actor("cli", command="get")]
    listing = Request("list", "headwater.dev", "flowruns", namespace="default")
    assert Call(Actor("cli", command="get"), listing) in mine
    assert ungranted(mine, chart) == []
    # Without the chart's aggregated roles, Kubernetes' view cannot list FlowRuns.
    refused = ungranted(mine, lambda values, ns: chart(
        {**values, "rbac": {"create": True, "aggregateClusterRoles": False}}, ns))
    assert f"`headwater get` with the view role: {listing}" in refused


def _cli(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    args.io = Io(out=io.StringIO(), err=io.StringIO(), now=lambda: datetime.now(UTC))
    return int(args.func(args))


LEASES = ("coordination.k8s.io", "leases")


def _lease_calls(actor: Actor, namespace: str, name: str, *verbs: str) -> list[Call]:
    return [Call(actor, Request(verb, *LEASES, namespace=namespace, name=name))
            for verb in verbs]


def test_an_operator_may_hold_exactly_the_lease_it_was_given(chart: Render) -> None:
    given = Lease("headwater-system", "etl-leader")
    actor = Actor("operator", ("default",), lease=given)
    own = [*_lease_calls(actor, given.namespace, given.name, "get", "update", "patch"),
           Call(actor, Request("create", *LEASES, namespace=given.namespace))]
    assert ungranted(own, chart) == []
    # Another name (the old "<peering>-scheduler" Lease, the chart's default name) is not
    # the operator's to touch, nor is its Lease's name in another namespace: refused in
    # both install modes.
    for namespace, name in [(given.namespace, "etl-leader-scheduler"),
                            (given.namespace, "hw-headwater"),
                            ("default", given.name)]:
        (stray,) = _lease_calls(actor, namespace, name, "get")
        assert ungranted([*own, stray], chart) == [
            f"{actor} in a cluster-wide install: {stray.request}",
            f"{actor} in a namespaced install (watchNamespaces=['default']): {stray.request}",
        ], (namespace, name)


def test_an_operator_without_leader_election_may_write_no_lease(chart: Render) -> None:
    actor = Actor("operator", None)
    (update,) = _lease_calls(actor, "headwater-system", "headwater-operator", "update")
    assert ungranted([update], chart) == [f"{actor} in a cluster-wide install: {update.request}"]


def test_the_audit_reads_the_lease_the_chart_hands_the_operator(chart: Render) -> None:
    # A chart that told the operator another Lease than the one its Role grants would
    # fail in a cluster; the audit says so even when every call is granted.
    def renamed(values: Mapping[str, Any], release_namespace: str) -> list[Manifest]:
        manifests = copy.deepcopy(chart(values, release_namespace))
        (deployment,) = [m for m in manifests if m["kind"] == "Deployment"]
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        args[args.index("--leader-elect-resource-name") + 1] = "something-else"
        return manifests

    given = Lease("headwater-system", "etl-leader")
    actor = Actor("operator", None, lease=given)
    calls = _lease_calls(actor, given.namespace, given.name, "get")
    assert chart_lease(chart({"leaderElection": {"resourceName": "etl-leader"}},
                             "headwater-system")) == given
    assert ungranted(calls, renamed) == [
        f"{actor} in a cluster-wide install: the chart gives the operator the Lease "
        f"headwater-system/something-else, not {given}"]
