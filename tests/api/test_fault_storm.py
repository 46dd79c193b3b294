"""The operator under a seeded storm of every fault the emulator injects: it converges.

One documented plan (:func:`storm`), seeded, on the operator's own requests (picked by its
User-Agent): 429s with ``Retry-After``, 500s and 503s, slow answers, watches cut
mid-stream, watch resumes answered ``410 Expired`` (etcd compaction), and ``409``
conflicts on status writes. Meanwhile a Schedule ticks every second with catch-up
``All``, ad-hoc runs arrive, and a kubelet runs every pod to success.

What must hold once the storm is over: every tick has exactly one run, every run is
``Completed`` after exactly one attempt with exactly one pod, and every fault kind
actually fired (so the test proves what it claims).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from api_nodes import kubelet_running_every_pod
from headwater.contract import LABEL_SCHEDULE
from headwater_dev import faults
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.faults import FaultPlan
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet
from headwater_operator import kube as kube_module

pytestmark = pytest.mark.slow

WaitFor = Callable[..., Awaitable[Any]]
OPERATOR = "headwater-api-suite/operator"
"""The User-Agent prefix of the operator's requests in the api suite (conftest.py)."""
AD_HOC = [f"adhoc-{n}" for n in range(5)]
SEED = 20261207


def conflict(plural: str, name: str) -> faults.StatusAnswer:
    """The API server's answer to a write whose resourceVersion is stale
    (apimachinery ``errors.NewConflict`` with ``registry.OptimisticLockErrorMsg``)."""
    return faults.StatusAnswer(
        409, "Conflict",
        f'Operation cannot be fulfilled on {plural}.headwater.dev "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        details={"name": name, "group": "headwater.dev", "kind": plural})


def storm(seed: int) -> FaultPlan:
    """The plan: each rule on the operator's requests only, each with a probability."""
    plan = FaultPlan(seed=seed)
    for verb in ("get", "list", "create", "patch"):
        plan.add(faults.throttled(retry_after=1), verb=verb, user_agent=OPERATOR,
                 times=None, probability=0.04)
        plan.add(faults.internal_error(), verb=verb, user_agent=OPERATOR, times=None,
                 probability=0.04)
        plan.add(faults.service_unavailable(), verb=verb, user_agent=OPERATOR, times=None,
                 probability=0.04)
        plan.add(faults.Delay(0.3), verb=verb, user_agent=OPERATOR, times=None,
                 probability=0.05)
    # Each watch kind surely fires once (the random ones below may pick no watch at all
    # when a loaded machine makes few watch requests); then the first rule that fires
    # decides: a resume is expired first, else maybe cut.
    plan.add(faults.CutWatch(after_events=2), verb="watch", resource="flowruns",
             user_agent=OPERATOR, times=1)
    plan.add(faults.ExpireWatch(), verb="watch", resource="pods", user_agent=OPERATOR,
             times=1)
    plan.add(faults.ExpireWatch(), verb="watch", user_agent=OPERATOR, times=None,
             probability=0.3)
    plan.add(faults.CutWatch(after_events=2), verb="watch", user_agent=OPERATOR, times=None,
             probability=0.3)
    for name in AD_HOC:
        plan.add(conflict("flowruns", name), verb="patch", resource="flowruns/status",
                 name=name, user_agent=OPERATOR, times=1)
    plan.add(conflict("schedules", "storm"), verb="patch", resource="schedules/status",
             name="storm", user_agent=OPERATOR, times=2)
    return plan


async def test_the_operator_converges_through_a_seeded_fault_storm(
    *, emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
    operator: OperatorHarness, kubelet: Kubelet, wait_for: WaitFor,
    hello_deployment: Callable[..., Awaitable[None]],
) -> None:
    await hello_deployment(history={"successfulRunsLimit": 1000})  # keep every run to count
    plan = emulator.install_faults(storm(SEED))
    await kube.create(kube_module.SCHEDULES, {
        "metadata": {"name": "storm"},
        "spec": {"deploymentRef": {"name": "nightly"}, "interval": "1s",
                 "catchup": {"policy": "All"}}}, namespace=namespace)

    def scheduled() -> list[dict[str, Any]]:
        return emulator.objects("flowruns", namespace,
                                label_selector=f"{LABEL_SCHEDULE}=storm")

    async with kubelet_running_every_pod(kubelet, emulator, namespace):
        for name in AD_HOC:
            await kube.create(kube_module.FLOWRUNS, {
                "metadata": {"name": name}, "spec": {"deploymentRef": {"name": "nightly"}}},
                namespace=namespace)
            await asyncio.sleep(0.5)
        await wait_for(lambda: len(scheduled()) >= 8, timeout=60)
        await operator.restart()  # a relist in the storm too
        await wait_for(lambda: len(scheduled()) >= 12, timeout=60)
        await kube.patch(kube_module.SCHEDULES, "storm", {"spec": {"suspend": True}},
                         namespace=namespace)
        emulator.remove_faults()

        def all_completed() -> bool:
            runs = emulator.objects("flowruns", namespace)
            return bool(runs) and all(
                (run.get("status") or {}).get("phase") == "Completed" for run in runs)

        await wait_for(all_completed, timeout=90, message="every run reached Completed")

    ticks = sorted(int(run["metadata"]["name"].rsplit("-", 1)[1]) for run in scheduled())
    assert ticks == list(range(ticks[0], ticks[-1] + 1)), "a tick lost or run twice"
    runs = emulator.objects("flowruns", namespace)
    assert {run["metadata"]["name"] for run in runs} >= set(AD_HOC)
    assert all(run["status"]["attempts"] == 1 for run in runs)
    pods = sorted(pod["metadata"]["name"] for pod in emulator.objects("pods", namespace))
    assert pods == sorted(f"{run['metadata']['name']}-1" for run in runs)
    accepted_pod_creates = sum(1 for record in emulator.requests.records
                               if record.verb == "create" and record.resource == "pods"
                               and record.code == 201)
    assert accepted_pod_creates == len(runs), "a pod was created twice"
    fired = {type(each.fault).__name__ for each in plan.injected}
    codes = {each.fault.code for each in plan.injected
             if isinstance(each.fault, faults.StatusAnswer | faults.TextAnswer)}
    assert fired >= {"TextAnswer", "StatusAnswer", "Delay", "CutWatch", "ExpireWatch"}, fired
    assert codes >= {409, 429, 500, 503}, codes
