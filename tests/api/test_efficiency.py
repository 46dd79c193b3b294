"""The operator's footprint: unrelated pods never reach it; a simple run costs few writes.

Two proofs, both measured on the wire of the emulated API server:

* Every list and watch of pods the operator makes carries the server-side label selector
  ``app.kubernetes.io/managed-by=headwater``, and not one of many unrelated pods is ever
  written into a watch stream, so kopf never receives, parses or remembers them.
* A successful run (create FlowRun → pod → Completed) costs a small, fixed number of
  operator writes, and no reads of FlowRuns, Deployments or Flows: the operator serves
  them from its watches (kopf indexes, the run's latest watched or written body). The
  breakdown is printed for the closing report.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from headwater_dev import emulator as emulator_module
from headwater_dev import store as store_module
from headwater_dev.emulator import BackgroundEmulator as Emulator
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet
from headwater_operator import kube as kube_module
from headwater_operator.controllers.deployments import STATUS_WRITE_INTERVAL_SECONDS

WaitFor = Callable[..., Awaitable[Any]]
CreateDeployment = Callable[..., Awaitable[None]]
UNRELATED_PODS = 40
HEADWATER_SELECTOR = "app.kubernetes.io/managed-by=headwater"

# Measured for the run below (see the test's printout); a regression that adds a write
# per run (an extra status patch, a metadata write) must be a conscious decision.
# The run's own: 1 pod + 3 FlowRun status patches + 3 Events. The Deployment's status
# patches are bounded separately, by time (they are coalesced; 4 per run before).
MAX_OPERATOR_WRITES_PER_SUCCESSFUL_RUN = 7
# Before the reads were served from memory a simple run cost 18 GETs here (6 each of
# flowruns, deployments and flows: one of each per reconcile step).
MAX_OPERATOR_READS_PER_SUCCESSFUL_RUN = 0


class WireTap:
    """Records which pods were streamed on watches and the query of pod list/watches."""

    def __init__(self) -> None:
        self.watched_pods: list[str] = []
        self.pod_queries: list[tuple[str, str | None]] = []


@pytest.fixture
def wiretap(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> WireTap:
    tap = WireTap()
    real_line = emulator_module._watch_line
    inner = emulator.emulator
    real_serve = inner.serve

    real_event_line = store_module.WatchEvent.line

    def note(obj: dict[str, Any]) -> None:
        if obj.get("kind") == "Pod" or "containers" in (obj.get("spec") or {}):
            tap.watched_pods.append(obj["metadata"]["name"])

    def watch_line(event_type: str, obj: dict[str, Any]) -> bytes:
        note(obj)
        return real_line(event_type, obj)

    # A live event is serialized once, for every watch it passes the filters of
    # (WatchEvent.line); replays and ERRORs through _watch_line.
    def event_line(self: Any, event_type: str) -> bytes:
        note(self.object)
        return real_event_line(self, event_type)

    async def serve(spec: Any, verb: str, path: Any, request: Any, *rest: Any,
                    **kwargs: Any) -> Any:
        if spec.plural == "pods" and verb in ("list", "watch") and path.name is None:
            tap.pod_queries.append((verb, request.query.get("labelSelector")))
        return await real_serve(spec, verb, path, request, *rest, **kwargs)

    monkeypatch.setattr(emulator_module, "_watch_line", watch_line)
    monkeypatch.setattr(store_module.WatchEvent, "line", event_line)
    monkeypatch.setattr(inner, "serve", serve)
    return tap


def unrelated_pod(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"web-{index}", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1"}]},
    }


async def ready_deployment(
    hello_deployment: CreateDeployment, emulator: Emulator, namespace: str, wait_for: WaitFor
) -> None:
    await hello_deployment("nightly")

    def ready() -> bool:
        status = (emulator.object("deployments", "nightly") or {}).get("status") or {}
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in status.get("conditions") or ())

    await wait_for(ready)
    # kopf posts Events from a queue: wait for both Ready Events so none lands later.
    await wait_for(lambda: {
        e["involvedObject"]["kind"] for e in emulator.objects("events", namespace)
        if e.get("reason") == "Valid"
    } == {"Flow", "Deployment"})


async def run_to_completion(
    *, kube: kube_module.Kube, emulator: Emulator, kubelet: Kubelet, wait_for: WaitFor,
    namespace: str, name: str,
) -> None:
    await kube.create(kube_module.FLOWRUNS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun", "metadata": {"name": name},
        "spec": {"deploymentRef": {"name": "nightly"}},
    }, namespace=namespace)
    pod = await kubelet.wait_for_pod(f"{name}-1", timeout=10)
    await kubelet.run(pod)
    # Let the operator see Running before the exit, as with any real run (and so the
    # count below does not depend on whether two pod updates were seen as one).
    await wait_for(
        lambda: ((emulator.object("flowruns", name) or {}).get("status") or {}).get("phase")
        == "Running"
    )
    await kubelet.succeed(pod)

    def settled() -> bool:
        run = (emulator.object("flowruns", name) or {}).get("status") or {}
        deployment = (emulator.object("deployments", "nightly") or {}).get("status") or {}
        last = deployment.get("lastRun") or {}
        return run.get("phase") == "Completed" and last.get("phase") == "Completed"

    await wait_for(settled)
    await wait_for(lambda: any(
        e.get("reason") == "Completed" and e["involvedObject"].get("name") == name
        for e in emulator.objects("events", namespace)
    ))


async def test_unrelated_pods_never_reach_the_operator(
    *, hello_deployment: CreateDeployment,
    kube: kube_module.Kube, emulator: Emulator, namespace: str, kubelet: Kubelet,
    wait_for: WaitFor, wiretap: WireTap, operator: OperatorHarness,
) -> None:
    for index in range(UNRELATED_PODS):
        await kube.create(kube_module.PODS, unrelated_pod(index), namespace=namespace)
    # A restart makes the operator list pods again with the unrelated ones present.
    await operator.restart()
    await ready_deployment(hello_deployment, emulator, namespace, wait_for)

    await run_to_completion(kube=kube, emulator=emulator, kubelet=kubelet, wait_for=wait_for,
                            namespace=namespace, name="probe")
    for index in range(0, UNRELATED_PODS, 4):  # and churn among unrelated pods meanwhile
        await kube.patch(kube_module.PODS, f"web-{index}", {"metadata": {"labels": {"v": "2"}}},
                         namespace=namespace)

    assert wiretap.pod_queries, "the operator never listed or watched pods"
    assert {selector for _, selector in wiretap.pod_queries} == {HEADWATER_SELECTOR}
    assert "probe-1" in wiretap.watched_pods
    assert not [name for name in wiretap.watched_pods if name.startswith("web-")]


async def test_a_successful_run_costs_a_small_fixed_number_of_writes(
    *, hello_deployment: CreateDeployment,
    kube: kube_module.Kube, emulator: Emulator, namespace: str, kubelet: Kubelet,
    wait_for: WaitFor, api_writes: Any, operator: OperatorHarness,
) -> None:
    await ready_deployment(hello_deployment, emulator, namespace, wait_for)
    api_writes.reset()
    mark = emulator.requests.mark()
    started = time.monotonic()

    await run_to_completion(kube=kube, emulator=emulator, kubelet=kubelet, wait_for=wait_for,
                            namespace=namespace, name="simple")
    elapsed = time.monotonic() - started

    writes = api_writes.counter()
    # What the test itself and the kubelet stand-in wrote is not the operator's cost
    # (the stand-in binds the pod to its node through pods/binding, as the scheduler).
    test_side = Counter({key: n for key, n in writes.items()
                         if key[1] in ("pods/status", "pods/binding")
                         or key[:2] == ("create", "flowruns")})
    operator_writes = writes - test_side
    print(f"\noperator writes for one successful run: {sum(operator_writes.values())} "
          f"{dict(sorted(operator_writes.items()))}", file=sys.stderr)
    reads = Counter({key: n for key, n in emulator.requests.counter(mark).items()
                     if key[0] in ("get", "list") and key[1] != "pods"})  # pods: kubelet polls
    print(f"operator reads (other than pods): {sum(reads.values())} {dict(sorted(reads.items()))}",
          file=sys.stderr)
    assert sum(reads.values()) <= MAX_OPERATOR_READS_PER_SUCCESSFUL_RUN, reads
    assert operator_writes[("create", "pods", 201)] == 1
    # Deployment run counts are coalesced: at most one status patch per window (the
    # first at once), however many phases the run went through (it was 4 when each
    # phase cost one: created, Pending, Running, Completed). The bound follows the time
    # the run took, so a slow machine cannot fail it and a per-phase write still does.
    windows = math.ceil(elapsed / STATUS_WRITE_INTERVAL_SECONDS)
    print(f"deployment status patches: {operator_writes[('patch', 'deployments/status', 200)]}"
          f" in {elapsed:.2f}s", file=sys.stderr)
    assert operator_writes[("patch", "deployments/status", 200)] <= 1 + windows
    run_writes = Counter({key: n for key, n in operator_writes.items()
                          if key[1] != "deployments/status"})
    assert sum(run_writes.values()) <= MAX_OPERATOR_WRITES_PER_SUCCESSFUL_RUN


async def test_a_busy_deployments_status_is_coalesced_and_ends_exact(
    *, hello_deployment: CreateDeployment,
    kube: kube_module.Kube, emulator: Emulator, namespace: str, kubelet: Kubelet,
    wait_for: WaitFor, api_writes: Any, operator: OperatorHarness,
) -> None:
    runs = [f"busy-{index}" for index in range(8)]
    await ready_deployment(hello_deployment, emulator, namespace, wait_for)
    api_writes.reset()
    started = time.monotonic()
    for name in runs:
        await kube.create(kube_module.FLOWRUNS, {
            "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": name}, "spec": {"deploymentRef": {"name": "nightly"}},
        }, namespace=namespace)
    pods = [await kubelet.wait_for_pod(f"{name}-1", timeout=10) for name in runs]
    for pod in pods:
        await kubelet.run(pod)
    for name in runs:
        await wait_for(lambda name=name: ((emulator.object("flowruns", name) or {}).get(
            "status") or {}).get("phase") == "Running")

    def counts() -> tuple[Any, Any]:
        status = (emulator.object("deployments", "nightly") or {}).get("status") or {}
        return status.get("activeRuns"), (status.get("lastRun") or {}).get("phase")

    await wait_for(lambda: counts() == (len(runs), "Running"))  # in between: exact too
    for pod in pods:
        await kubelet.succeed(pod)
    await wait_for(lambda: counts() == (0, "Completed"))
    elapsed = time.monotonic() - started

    patches = api_writes.count(verb="patch", resource="deployments/status")
    print(f"\nDeployment status patches for {len(runs)} runs: {patches} in {elapsed:.2f}s "
          f"(one per run phase would be {4 * len(runs)})", file=sys.stderr)
    assert patches <= 1 + math.ceil(elapsed / STATUS_WRITE_INTERVAL_SECONDS)
    assert (emulator.object("deployments", "nightly") or {})["status"]["queuedRuns"] == 0
