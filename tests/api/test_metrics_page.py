"""The real ``/metrics`` page after a few runs: the series a user would alert on.

The operator runs against the emulator; flow-run pods are driven by the kubelet stand-in
to success, code failure and OOM kill; then the page is scraped over HTTP and parsed with
Prometheus' own text parser.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from headwater_dev.emulator import BackgroundEmulator as Emulator
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet, default_summary
from headwater_operator import kube as kube_module
from headwater_operator import metrics
from headwater_operator.controllers.flowruns import FlowRunController
from headwater_operator.informer import Store
from headwater_operator.runtime import Result
from prometheus_client.parser import text_string_to_metric_families

WaitFor = Callable[..., Awaitable[Any]]
CreateDeployment = Callable[..., Awaitable[None]]
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]
DEPLOYMENT = "metrics-demo"  # counters are process-wide: this name is this test's own


@pytest.fixture
def metrics_page() -> Iterator[str]:
    """The operator's metrics endpoint, as the runner sets it up with ``--metrics-port``."""
    metrics.reset_active_runs()  # forget runs other tests' operators left behind
    metrics.start_metrics_server(0, addr="127.0.0.1")
    kube_module.add_request_observer(metrics.observe_api_request)
    try:
        yield f"http://127.0.0.1:{metrics.metrics_server_port()}/metrics"
    finally:
        kube_module.remove_request_observer(metrics.observe_api_request)
        metrics.stop_metrics_server()


def scrape(url: str) -> Series:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(series: Series, name: str, **labels: str) -> float:
    return series.get((name, tuple(sorted(labels.items()))), 0.0)


async def start_run(kube: kube_module.Kube, kubelet: Kubelet, namespace: str,
                    name: str) -> dict[str, Any]:
    await kube.create(kube_module.FLOWRUNS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun", "metadata": {"name": name},
        "spec": {"deploymentRef": {"name": DEPLOYMENT}},
    }, namespace=namespace)
    pod = await kubelet.wait_for_pod(f"{name}-1", timeout=10)
    await kubelet.run(pod)
    return pod


def phase(emulator: Emulator, name: str) -> Any:
    return ((emulator.object("flowruns", name) or {}).get("status") or {}).get("phase")


async def test_metrics_page_after_a_few_runs(
    *, hello_deployment: CreateDeployment,
    operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator, namespace: str,
    kubelet: Kubelet, wait_for: WaitFor, metrics_page: str,
) -> None:
    await hello_deployment(DEPLOYMENT)
    outcomes = {"ok-a": "Completed", "ok-b": "Completed", "bad": "Failed",
                "oom": "Crashed", "live": "Running"}
    pods = {name: await start_run(kube, kubelet, namespace, name) for name in outcomes}
    for name in outcomes:
        await wait_for(lambda name=name: phase(emulator, name) == "Running")
    await kubelet.succeed(pods["ok-a"])
    await kubelet.succeed(pods["ok-b"])
    await kubelet.fail(pods["bad"], 1, default_summary("Failed", "FlowFailed", "ValueError"))
    await kubelet.oom_kill(pods["oom"])
    for name, final in outcomes.items():
        await wait_for(lambda name=name, final=final: phase(emulator, name) == final)

    # The test sees a phase as soon as the status patch lands; the operator records the
    # metrics when the patch's response reaches it, a moment later: wait for that moment
    # (four finished runs), then every figure must be exact.
    await wait_for(lambda: run_counters(namespace, DEPLOYMENT)["headwater_runs_total"] >= 4)
    series = await asyncio.to_thread(scrape, metrics_page)

    where = {"namespace": namespace, "deployment": DEPLOYMENT}
    assert value(series, "headwater_runs_total", **where, phase="Completed") == 2
    assert value(series, "headwater_runs_total", **where, phase="Failed") == 1
    assert value(series, "headwater_runs_total", **where, phase="Crashed") == 1
    assert value(series, "headwater_run_crashes_total", **where, reason="OOMKilled") == 1
    assert value(series, "headwater_run_duration_seconds_count", **where) == 4
    assert value(series, "headwater_run_queue_wait_seconds_count", **where) == 5
    assert value(series, "headwater_active_runs", namespace=namespace, phase="Running") == 1
    created_pods = value(series, "headwater_kubernetes_api_requests_total",
                         verb="create", code="201")
    assert created_pods >= len(outcomes)
    # No series is labelled with a run or pod name: cardinality stays bounded.
    run_names = set(outcomes) | {pod["metadata"]["name"] for pod in pods.values()}
    assert not [key for key in series for _, label in key[1] if label in run_names]


COUNTERS = ("headwater_runs_total", "headwater_run_duration_seconds_count",
            "headwater_run_queue_wait_seconds_count", "headwater_run_crashes_total")


def run_counters(namespace: str, deployment: str) -> dict[str, float]:
    """Every per-deployment counter sample, summed over its other labels."""
    totals = dict.fromkeys(COUNTERS, 0.0)
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            if (sample.name in totals and sample.labels.get("namespace") == namespace
                    and sample.labels.get("deployment") == deployment):
                totals[sample.name] += sample.value
    return totals


async def test_a_finished_run_is_counted_once_across_restarts_and_replays(
    *, hello_deployment: CreateDeployment,
    operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator, namespace: str,
    kubelet: Kubelet, wait_for: WaitFor,
) -> None:
    deployment = "metrics-once"  # counters are process-wide: this name is this test's own
    await hello_deployment(deployment)
    await kube.create(kube_module.FLOWRUNS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun", "metadata": {"name": "once"},
        "spec": {"deploymentRef": {"name": deployment}},
    }, namespace=namespace)
    pod = await kubelet.wait_for_pod("once-1", timeout=10)
    await kubelet.run(pod)
    await wait_for(lambda: phase(emulator, "once") == "Running")
    stale = emulator.object("flowruns", "once")  # what a replayed old event would carry
    assert stale is not None
    await kubelet.oom_kill(pod)  # Crashed: every counter of a run moves
    expected = {"headwater_runs_total": 1.0, "headwater_run_duration_seconds_count": 1.0,
                "headwater_run_queue_wait_seconds_count": 1.0,
                "headwater_run_crashes_total": 1.0}
    await wait_for(lambda: run_counters(namespace, deployment) == expected)

    # An operator restart re-lists the finished run: it is not counted again.
    await operator.restart()
    await wait_for(lambda: (emulator.object("deployments", deployment) or {}).get(
        "status", {}).get("lastRun", {}).get("phase") == "Crashed")

    # A replayed watch event (or a second replica) deciding from the old Running body:
    # its status patch fails its resourceVersion precondition, the tracker re-reads the
    # run, finds it terminal and stops, without writing or counting anything.
    replica = FlowRunController(kube, deployments=Store(), flows=Store(),
                                events=NoEvents(), observer=metrics)
    mark = emulator.requests.mark()
    replica.on_flowrun("MODIFIED", stale)
    result = await replica.reconcile((namespace, "once"))  # 409: read again, decide again
    assert result == Result(requeue=True)
    await replica.reconcile((namespace, "once"))  # terminal now: nothing to do
    assert (namespace, "once") not in replica.tracked

    served = emulator.requests.counter(mark)
    assert served[("patch", "flowruns/status", 200)] == 0
    assert served[("patch", "flowruns/status", 409)] == 1
    assert run_counters(namespace, deployment) == expected
    assert phase(emulator, "once") == "Crashed"



def api_requests(url: str) -> dict[tuple[str, str], float]:
    """``headwater_kubernetes_api_requests_total`` by (verb, code), scraped from ``url``."""
    found = {}
    for (name, label_items), number in scrape(url).items():
        if name == "headwater_kubernetes_api_requests_total":
            labels = dict(label_items)
            assert set(labels) == {"verb", "code"}  # nothing else: bounded cardinality
            found[(labels["verb"], labels["code"])] = number
    return found


class NoEvents:
    """Events of the stand-in replica go nowhere (this test counts metrics)."""

    def post(self, involved: Any, type_: str, reason: str, message: str) -> None:
        """Dropped."""


def samples(url: str, name: str) -> dict[str, float]:
    """``name``'s samples on the page at ``url``, by their ``controller`` label."""
    return {dict(labels).get("controller", ""): number
            for (found, labels), number in scrape(url).items() if found == name}


async def test_the_page_shows_the_work_queues_and_who_leads(
    *, hello_deployment: CreateDeployment, operator: OperatorHarness, kube: kube_module.Kube,
    namespace: str, kubelet: Kubelet, metrics_page: str, wait_for: WaitFor,
) -> None:
    # What an operator of the operator looks at: is this replica the leader, is a work
    # queue backing up, how much reconciling does each controller do.
    await hello_deployment("metrics-queues")
    await kube.create(kube_module.FLOWRUNS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
        "metadata": {"name": "queued"}, "spec": {"deploymentRef": {"name": "metrics-queues"}},
    }, namespace=namespace)
    await kubelet.succeed(await kubelet.wait_for_pod("queued-1", timeout=10))

    async def reconciled() -> dict[str, float]:
        found = await asyncio.to_thread(samples, metrics_page, "headwater_reconciles_total")
        return found if found.get("flowruns", 0) >= 3 else {}

    reconciles = await wait_for(reconciled)
    assert set(reconciles) == {"flowruns", "schedules", "deployments", "flows", "triggers",
                               "automations"}
    depth = await asyncio.to_thread(samples, metrics_page, "headwater_workqueue_depth")
    assert set(depth) == set(reconciles)
    assert all(value >= 0 for value in depth.values())
    leader = await asyncio.to_thread(samples, metrics_page, "headwater_leader")
    assert leader == {"": 1.0}  # no leader election in tests: the process leads
