"""The real operator through a busy, flaky API server: it converges, nothing is duplicated.

The emulator's fault plan answers the operator's own requests (picked by its User-Agent)
with 429s, 5xx and lost answers. Headwater's client absorbs them (``kube.RetryPolicy``):
the run completes with exactly one pod, the Schedule creates every tick's run exactly
once, and no reconcile fails — before the client retried, each of these faults cost a
failed reconcile and a back-off of seconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from headwater.contract import LABEL_SCHEDULE
from headwater_dev import faults
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.faults import FaultPlan
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet, default_summary
from headwater_operator import kube as kube_module
from headwater_operator import metrics

WaitFor = Callable[..., Awaitable[Any]]
OPERATOR = "headwater-api-suite/operator"
"""The User-Agent prefix of the operator's requests in the api suite (conftest.py)."""


def _sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _retries(verb: str, reason: str) -> float:
    return _sample("headwater_kubernetes_api_retries_total", verb=verb, reason=reason)


def _reconcile_errors() -> float:
    return sum(_sample("headwater_reconcile_errors_total", kind=kind)
               for kind in ("FlowRun", "Deployment", "Flow"))


@pytest.fixture
def plan(emulator: BackgroundEmulator) -> FaultPlan:
    return emulator.install_faults(FaultPlan(seed=11))


async def test_a_run_completes_with_one_pod_through_429s_5xx_and_a_lost_answer(
    emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str, *, plan: FaultPlan,
    operator: OperatorHarness, kubelet: Kubelet, wait_for: WaitFor,
    hello_deployment: Callable[..., Awaitable[None]],
) -> None:
    await hello_deployment()
    errors_before = _reconcile_errors()
    created_before = _retries("create", "ServiceUnavailable")
    # The pod create: refused twice, then applied with its answer lost; the status
    # patches (conditional on the run's resourceVersion): throttled, then a 500.
    plan.add(faults.service_unavailable(), verb="create", resource="pods",
             user_agent=OPERATOR, times=2)
    plan.add(faults.Reset(after_serving=True), verb="create", resource="pods",
             user_agent=OPERATOR)
    plan.add(faults.throttled(retry_after=1), verb="patch", resource="flowruns/status",
             user_agent=OPERATOR)
    plan.add(faults.internal_error(), verb="patch", resource="flowruns/status",
             user_agent=OPERATOR)
    await kube.create(kube_module.FLOWRUNS, {
        "metadata": {"name": "r1"}, "spec": {"deploymentRef": {"name": "nightly"}}},
        namespace=namespace)

    pod = await kubelet.wait_for_pod("r1-1", 20)
    await kubelet.schedule(pod)
    await kubelet.run(pod)
    await kubelet.succeed(pod, default_summary("Completed"))
    await wait_for(lambda: ((emulator.object("flowruns", "r1") or {}).get("status") or {})
                   .get("phase") == "Completed", timeout=20)

    assert plan.count() == 5  # every fault was met
    assert [pod["metadata"]["name"] for pod in emulator.objects("pods", namespace)] == ["r1-1"]
    assert [run["metadata"]["name"] for run in emulator.objects("flowruns", namespace)] == [
        "r1"]
    pod_creates = [r.code for r in emulator.requests.records
                   if r.verb == "create" and r.resource == "pods"]
    assert pod_creates == [503, 503, 0, 409]  # the 409 is the lost answer's own pod: adopted
    assert _retries("create", "ServiceUnavailable") == created_before + 2
    assert _retries("patch", "TooManyRequests") >= 1
    assert _retries("patch", "InternalError") >= 1
    assert _reconcile_errors() == errors_before


async def test_every_tick_gets_exactly_one_run_through_lost_answers_and_5xx(
    emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str, *, plan: FaultPlan,
    operator: OperatorHarness, wait_for: WaitFor,
    hello_deployment: Callable[..., Awaitable[None]],
) -> None:
    await hello_deployment()
    errors_before = _reconcile_errors()
    resets_before = _retries("create", "ConnectionFailed")
    # Run creates (named by the Schedule and the tick): answers lost, 5xx, throttling.
    plan.add(faults.Reset(after_serving=True), verb="create", resource="flowruns",
             user_agent=OPERATOR, times=2)
    plan.add(faults.internal_error(), verb="create", resource="flowruns",
             user_agent=OPERATOR, times=None, probability=0.3)
    plan.add(faults.too_many_requests(), verb="create", resource="flowruns",
             user_agent=OPERATOR, times=2)
    await kube.create(kube_module.SCHEDULES, {
        "metadata": {"name": "fast"},
        "spec": {"deploymentRef": {"name": "nightly"}, "interval": "1s",
                 "catchup": {"policy": "All"}}}, namespace=namespace)

    def ticks() -> list[int]:
        runs = emulator.objects("flowruns", namespace, label_selector=f"{LABEL_SCHEDULE}=fast")
        return sorted(int(run["metadata"]["name"].rsplit("-", 1)[1]) for run in runs)

    await wait_for(lambda: len(ticks()) >= 6 and plan.count(faults.Reset) == 2, timeout=30)
    seen = ticks()
    # One run per tick, none missing between the first and the last.
    assert seen == list(range(seen[0], seen[0] + len(seen)))
    creates = [r.code for r in emulator.requests.records
               if r.verb == "create" and r.resource == "flowruns"]
    assert creates.count(0) == 2
    # The retry after a lost answer met the run that answer was about (the two resets
    # may hit one tick's create twice: then one 409).
    assert creates.count(409) >= 1
    assert creates.count(429) == 2
    assert creates.count(500) >= 1
    assert _reconcile_errors() == errors_before
    assert _retries("create", "ConnectionFailed") - resets_before == 2
