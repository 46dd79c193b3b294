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
from api_rbac_audit import Actor, Call, Observed, failure_report, ungranted
from headwater.cli import build_parser
from headwater_operator import kube as kube_module
from headwater_operator.cli.common import Io
from headwater_operator.devcluster.emulator import BackgroundEmulator
from headwater_operator.devcluster.harness import OperatorHarness
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


def test_a_peering_operators_lease_is_checked_by_its_peering_name(chart: Render) -> None:
    actor = Actor("operator", ("default",), peering="hw")
    own = [Call(actor, Request(verb, "coordination.k8s.io", "leases", namespace="default",
                               name="hw-scheduler")) for verb in ("get", "patch")]
    assert ungranted([*own, Call(actor, Request("create", "coordination.k8s.io", "leases",
                                                namespace="default"))], chart) == []
    # Another Lease name is not the operator's to touch; nor is a second namespace.
    other = Call(actor, Request("get", "coordination.k8s.io", "leases", namespace="default",
                                name="headwater-scheduler"))
    assert len(ungranted([other], chart)) == 2  # refused in both install modes
    elsewhere = Call(actor, Request("get", "coordination.k8s.io", "leases",
                                    namespace="kube-system", name="hw-scheduler"))
    with pytest.raises(AssertionError, match="Leases in several namespaces"):
        ungranted([*own, elsewhere], chart)
