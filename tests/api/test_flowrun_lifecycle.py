"""FlowRun lifecycle end to end: the real operator, the emulated API, a scripted kubelet.

One test per scenario of issue 4. Each ends by asserting the final phase/reason a user
sees and, where it matters, the pods that exist (exactly one per attempt).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from headwater_operator import kube as kube_module
from headwater_operator import reasons
from headwater_operator.devcluster.emulator import Emulator
from headwater_operator.devcluster.harness import OperatorHarness
from headwater_operator.devcluster.kubelet import Kubelet, default_summary

TIMEOUT = 15.0
MANAGED = "app.kubernetes.io/managed-by=headwater"


class Scene:
    """Creates Flows/Deployments/FlowRuns and reads their state for one test."""

    def __init__(self, kube: kube_module.Kube, emulator: Emulator, namespace: str,
                 wait_for: Callable[..., Awaitable[Any]]) -> None:
        self.kube, self.emulator, self.namespace, self._wait_for = (
            kube, emulator, namespace, wait_for)

    async def flow(self, name: str = "etl", **spec: Any) -> None:
        body = {"image": "ghcr.io/acme/etl:1", "entrypoint": "etl.flows:ingest", **spec}
        await self.kube.create(kube_module.FLOWS, {"metadata": {"name": name}, "spec": body},
                               namespace=self.namespace)

    async def deployment(self, name: str = "nightly", flow: str = "etl", **spec: Any) -> None:
        body = {"flowRef": {"name": flow}, **spec}
        await self.kube.create(kube_module.DEPLOYMENTS,
                               {"metadata": {"name": name}, "spec": body},
                               namespace=self.namespace)

    async def run(self, name: str, deployment: str = "nightly", **spec: Any) -> None:
        body = {"deploymentRef": {"name": deployment}, **spec}
        await self.kube.create(kube_module.FLOWRUNS, {"metadata": {"name": name}, "spec": body},
                               namespace=self.namespace)

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = (self.emulator.object("flowruns", name) or {}).get(
            "status") or {}
        return status

    async def phase(self, name: str, *phases: str) -> dict[str, Any]:
        await self._wait_for(lambda: self.status(name).get("phase") in phases, timeout=TIMEOUT)
        return self.status(name)

    async def reason(self, name: str, reason: str) -> None:
        await self._wait_for(lambda: self.status(name).get("reason") == reason, timeout=TIMEOUT)

    def pods(self, run: str) -> list[str]:
        pods = self.emulator.objects("pods", self.namespace,
                                     label_selector=f"headwater.dev/flow-run={run}")
        return sorted(p["metadata"]["name"] for p in pods)

    async def cancel(self, name: str) -> None:
        await self.kube.patch(kube_module.FLOWRUNS, name, {"spec": {"cancel": True}},
                              namespace=self.namespace)

    async def has_event(self, name: str, reason: str) -> bool:
        """Events are posted asynchronously by kopf: wait for one to arrive."""
        await self._wait_for(lambda: reason in self.event_reasons(name), timeout=TIMEOUT)
        return True

    def event_reasons(self, name: str) -> list[str]:
        events = self.emulator.objects("events", self.namespace)
        return [e.get("reason", "") for e in events
                if (e.get("involvedObject") or {}).get("name") == name]


@pytest.fixture
def scene(kube: kube_module.Kube, emulator: Emulator, namespace: str,
          wait_for: Callable[..., Awaitable[Any]]) -> Scene:
    return Scene(kube, emulator, namespace, wait_for)


async def run_to_pod(scene: Scene, kubelet: Kubelet, run: str, attempt: int = 1,
                     **spec: Any) -> dict[str, Any]:
    if attempt == 1:
        await scene.run(run, **spec)
    pod: dict[str, Any] = await kubelet.wait_for_pod(f"{run}-{attempt}", TIMEOUT)
    await kubelet.schedule(pod)
    await kubelet.run(pod)
    return pod


async def test_successful_run_records_summary_with_few_writes(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet, api_writes: Any
) -> None:
    await scene.flow()
    await scene.deployment()
    api_writes.reset()
    pod = await run_to_pod(scene, kubelet, "ok")
    await scene.phase("ok", "Running")
    summary = json.loads(default_summary("Completed"))
    summary.update({"taskRuns": {"Completed": 3}, "artifacts": ["report"]})
    await kubelet.succeed(pod, json.dumps(summary))
    status = await scene.phase("ok", "Completed")
    assert status["taskRuns"] == {"Completed": 3}
    assert status["artifacts"] == ["report"]
    assert status["attempts"] == 1
    assert status["durationSeconds"] >= 0
    assert scene.pods("ok") == ["ok-1"]
    for reason in (reasons.POD_CREATED, reasons.STARTED, reasons.COMPLETED):
        assert await scene.has_event("ok", reason)
    # What the operator itself wrote for this run: the pod, three status patches and
    # three Events; the test wrote the FlowRun and the kubelet the pod statuses.
    assert api_writes.count(verb="create", resource="pods") == 1
    assert api_writes.count(verb="patch", resource="flowruns/status") == 3
    assert api_writes.count(verb="patch", resource="flowruns") == 0  # no finalizer/annotations
    print("writes for a successful run:", dict(api_writes.counter()))


async def test_code_failure_with_retries_exhausted(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await scene.flow(retries=1)
    await scene.deployment(retryOn=["Failed"])
    for attempt in (1, 2):
        pod = await run_to_pod(scene, kubelet, "bad", attempt=attempt)
        await kubelet.fail(pod, 1, default_summary("Failed", message="ZeroDivisionError"))
    status = await scene.phase("bad", "Failed")
    assert status["reason"] == reasons.FLOW_FAILED
    assert "after 2 attempts" in status["message"]
    assert status["attempts"] == 2
    assert scene.pods("bad") == ["bad-1", "bad-2"]
    assert await scene.has_event("bad", reasons.RETRYING)


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("oom_kill", reasons.OOM_KILLED),
        ("evict", reasons.EVICTED),
        ("node_lost", reasons.NODE_LOST),
        ("delete", reasons.POD_DELETED),
        ("garbage", reasons.INVALID_RUN_SUMMARY),
        ("no_summary", reasons.MISSING_RUN_SUMMARY),
    ],
)
async def test_crash_of_a_running_pod(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet, action: str, reason: str
) -> None:
    await scene.flow()
    await scene.deployment()
    pod = await run_to_pod(scene, kubelet, "crash")
    await scene.phase("crash", "Running")
    if action == "delete":
        await scene.kube.delete(kube_module.PODS, "crash-1", namespace=scene.namespace)
    elif action == "garbage":
        await kubelet.fail(pod, 1, "Traceback: ImportError: no module named etl")
    elif action == "no_summary":
        await kubelet.succeed(pod, "")
    else:
        await getattr(kubelet, action)(pod)
    status = await scene.phase("crash", "Crashed")
    assert status["reason"] == reason
    assert status["message"]
    assert await scene.has_event("crash", reason)


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("unschedulable", reasons.UNSCHEDULABLE),
        ("image_pull_error", reasons.IMAGE_PULL_FAILED),
        ("config_error", reasons.CREATE_CONTAINER_CONFIG_ERROR),
    ],
)
async def test_pod_stuck_pending_crashes_after_pending_timeout(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet, action: str, reason: str
) -> None:
    await scene.flow()
    await scene.deployment(pendingTimeoutSeconds=1)
    await scene.run("stuck")
    pod = await kubelet.wait_for_pod("stuck-1", TIMEOUT)
    if action != "unschedulable":
        await kubelet.schedule(pod)
    await getattr(kubelet, action)(pod)
    status = await scene.phase("stuck", "Crashed")
    assert status["reason"] == reason
    assert scene.pods("stuck") == []  # the stuck pod is removed, not left retrying forever


async def test_cancel_running_run(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await scene.flow()
    await scene.deployment(cancelGracePeriodSeconds=5)
    await run_to_pod(scene, kubelet, "stop")
    await scene.phase("stop", "Running")
    await scene.cancel("stop")
    status = await scene.phase("stop", "Cancelled")
    assert status["reason"] == reasons.CANCELLED
    assert await scene.has_event("stop", reasons.CANCEL_REQUESTED)
    assert scene.pods("stop") == []


async def test_enqueue_then_cancel_queued_run(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await scene.flow()
    await scene.deployment(concurrency={"limit": 1, "collisionStrategy": "Enqueue"})
    first = await run_to_pod(scene, kubelet, "first")
    await scene.run("second")
    await scene.run("third")
    await scene.phase("second", "AwaitingConcurrencySlot")
    await scene.phase("third", "AwaitingConcurrencySlot")
    await scene.cancel("third")
    assert (await scene.phase("third", "Cancelled"))["reason"] == reasons.CANCELLED
    assert scene.pods("third") == []
    await kubelet.succeed(first)
    await scene.phase("first", "Completed")
    second = await kubelet.wait_for_pod("second-1", TIMEOUT)
    assert second["metadata"]["name"] == "second-1"


async def test_cancel_new_cancels_run_over_the_limit(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await scene.flow()
    await scene.deployment(concurrency={"limit": 1, "collisionStrategy": "CancelNew"})
    await run_to_pod(scene, kubelet, "first")
    await scene.phase("first", "Running")
    await scene.run("extra")
    status = await scene.phase("extra", "Cancelled")
    assert status["reason"] == reasons.CONCURRENCY_LIMIT_REACHED
    assert scene.pods("extra") == []


async def test_invalid_parameters_fail_without_a_pod(
    scene: Scene, operator: OperatorHarness
) -> None:
    schema = {"type": "object", "properties": {"day": {"type": "string", "format": "date"},
                                               "limit": {"type": "integer"}},
              "required": ["day"]}
    await scene.flow(parametersSchema=schema)
    await scene.deployment()
    await scene.run("params", parameters={"day": "2024-05-01", "limit": "ten"})
    status = await scene.phase("params", "Failed")
    assert status["reason"] == reasons.INVALID_PARAMETERS
    assert "'limit'" in status["message"]
    assert scene.pods("params") == []


async def test_paused_deployment_holds_runs_until_resumed(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet, kube: kube_module.Kube
) -> None:
    await scene.flow()
    await scene.deployment(paused=True)
    await scene.run("held")
    await scene.reason("held", reasons.DEPLOYMENT_PAUSED)
    assert scene.pods("held") == []
    await kube.patch(kube_module.DEPLOYMENTS, "nightly", {"spec": {"paused": False}},
                     namespace=scene.namespace)
    pod = await kubelet.wait_for_pod("held-1", TIMEOUT)
    assert pod["metadata"]["name"] == "held-1"


async def test_operator_restart_mid_run_keeps_one_pod_per_attempt(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await scene.flow()
    await scene.deployment()
    pod = await run_to_pod(scene, kubelet, "steady")
    await scene.phase("steady", "Running")
    await operator.restart()
    await kubelet.succeed(pod)
    await scene.phase("steady", "Completed")
    assert scene.pods("steady") == ["steady-1"]


async def test_late_run_is_marked_late_and_still_runs(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await scene.flow()
    await scene.deployment(lateAfterSeconds=0)
    await scene.run("tardy", scheduledTime="2024-01-01T00:00:00Z")
    pod = await kubelet.wait_for_pod("tardy-1", TIMEOUT)
    assert await scene.has_event("tardy", reasons.LATE)
    await kubelet.schedule(pod)
    await kubelet.run(pod)
    await kubelet.succeed(pod)
    status = await scene.phase("tardy", "Completed")
    assert any(c["type"] == "Late" for c in status["conditions"])
