"""FlowRun lifecycle end to end: the real operator, the emulated API, a scripted kubelet.

One test per scenario of issue 4. Each ends by asserting the final phase/reason a user
sees and, where it matters, the pods that exist (exactly one per attempt), then
:meth:`Scene.finish` counts what the *operator* wrote to the API for the scenario and
checks it against an upper bound (a regression guard).

Whose write is whose: the test and the kubelet stand-in use a client of their own with
the User-Agent :data:`TEST_AGENT`, which the emulator records per request; every other
write is the operator's (its Kubernetes client, and kopf posting Events). The writes are
counted from the moment the Flow and Deployment are ready (their handlers quiet) until
the operator is quiet again after the last run ended. Deployment/Flow status patches are
another handler's bookkeeping: reported, not bounded here.

Set ``HEADWATER_API_WRITES_OUT=<file.json>`` to collect every scenario's figures;
``benchmarks/api_writes.py`` does that and prints the markdown table of
docs/flowrun-lifecycle.md.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes.client
import owner_references_admission
import pytest
from headwater.contract import (
    ENV_SUMMARY_MAX_BYTES,
    SUMMARY_MAX_BYTES,
    RunSummary,
    encode_summary,
    summary_budget,
)
from headwater.summary import fit_summary
from headwater_dev import podstatus
from headwater_dev.emulator import BackgroundEmulator, RequestRecord
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet, default_summary
from headwater_dev.store import ApiError
from headwater_operator import kube as kube_module
from headwater_operator import readiness, reasons
from headwater_operator.api import validation
from headwater_operator.flowruns import machine
from headwater_operator.kubetime import parse_time

TIMEOUT = 15.0
MANAGED = "app.kubernetes.io/managed-by=headwater"
TEST_AGENT = "headwater-api-tests"
"""User-Agent of the test's and the kubelet stand-in's requests (not the operator's)."""
QUIET_SECONDS = 0.3
"""No operator write for this long means it is done reacting (it has no periodic writes)."""
BOOKKEEPING = frozenset({"deployments/status", "flows/status"})
"""Written by the Deployment/Flow handlers, not by the FlowRun lifecycle."""
REPORT_ENV = "HEADWATER_API_WRITES_OUT"
REPORT: list[dict[str, Any]] = []


class OperatorWrites:
    """The operator's write requests as the emulator served them, since :meth:`reset`."""

    def __init__(self, emulator: BackgroundEmulator) -> None:
        self._log = emulator.requests
        self._mark = self._log.mark()

    def reset(self) -> None:
        """Count from now on."""
        self._mark = self._log.mark()

    def records(self) -> list[RequestRecord]:
        """Every operator write since the mark (any HTTP code)."""
        return [r for r in self._log.since(self._mark)
                if r.is_write and r.user_agent != TEST_AGENT]

    def breakdown(self) -> collections.Counter[str]:
        """``"<verb> <resource>"`` → count, e.g. ``"patch flowruns/status": 3``."""
        return collections.Counter(f"{r.verb} {r.resource}" for r in self.records())

    def lifecycle(self) -> collections.Counter[str]:
        """The breakdown without the Deployment/Flow handlers' status bookkeeping."""
        return collections.Counter({key: n for key, n in self.breakdown().items()
                                    if key.split(" ", 1)[1] not in BOOKKEEPING})

    async def quiet(self, seconds: float = QUIET_SECONDS) -> None:
        """Wait until the operator has written nothing for ``seconds``."""
        deadline = time.monotonic() + TIMEOUT
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = len(self.records())
            if count != seen:
                seen, since = count, time.monotonic()
            elif time.monotonic() - since >= seconds:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the operator kept writing for {TIMEOUT}s: {self.breakdown()}")


class Scene:
    """Creates Flows/Deployments/FlowRuns and reads their state for one test."""

    def __init__(self, kube: kube_module.Kube, emulator: BackgroundEmulator, namespace: str,
                 wait_for: Callable[..., Awaitable[Any]]) -> None:
        self.kube, self.emulator, self.namespace, self._wait_for = (
            kube, emulator, namespace, wait_for)
        self.writes = OperatorWrites(emulator)

    async def ready(self) -> None:
        """The Flow/Deployment handlers are done: count the operator's writes from here."""
        await self.writes.quiet()
        self.writes.reset()

    async def finish(self, scenario: str, runs: list[str], bound: int) -> dict[str, Any]:
        """Record the operator's writes for ``scenario`` and check they stay within ``bound``.

        Waits until each run's final Event (its terminal reason) was posted and the
        operator is quiet, so late writes are counted too.
        """
        for run in runs:
            await self.has_event(run, self.status(run)["reason"])
        # Deployment run counts are written coalesced (at most one patch a second):
        # wait for the last one, so it is counted and the final counts are checked.
        await self._wait_for(self.deployment_counts_are_exact, timeout=TIMEOUT)
        await self.writes.quiet()
        lifecycle = self.writes.lifecycle()
        bookkeeping = self.writes.breakdown() - lifecycle
        last = self.status(runs[-1])
        total = sum(lifecycle.values())
        outcomes = [f"{self.status(run).get('phase')} / `{self.status(run).get('reason')}`"
                    for run in runs]
        outcome = outcomes[0] if len(runs) == 1 else "; ".join(
            f"{run}: {text}" for run, text in zip(runs, outcomes, strict=True))
        entry = {"scenario": scenario, "outcome": outcome,
                 "phase": last.get("phase"), "reason": last.get("reason"),
                 "writes": total, "bound": bound,
                 "breakdown": dict(sorted(lifecycle.items())),
                 "bookkeeping": dict(sorted(bookkeeping.items()))}
        REPORT.append(entry)
        assert total <= bound, (
            f"{scenario}: the operator wrote {total} times (bound {bound}): {dict(lifecycle)}")
        return entry

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

    def mark(self) -> int:
        """The API server's resourceVersion now: :meth:`reached` looks at changes after it."""
        return self.emulator.emulator.store.resource_version

    async def reached(self, name: str, phase: str, *, after: int) -> dict[str, Any]:
        """Run ``name``'s status when it first entered ``phase`` after ``after`` (a mark).

        Unlike :meth:`phase`, this sees a phase the run has already left again (a
        one-second ``AwaitingRetry`` can pass between two polls of a loaded machine): it
        reads the API server's change history, not the current object.
        """
        store = self.emulator.emulator.store
        spec = next(s for s in store.resources if s.plural == "flowruns")

        def entered() -> dict[str, Any] | None:
            for event in store.events_since(spec, after):
                meta = event.object["metadata"]
                status = event.object.get("status") or {}
                if (meta["name"], meta.get("namespace")) == (name, self.namespace) and (
                        status.get("phase") == phase):
                    return copy.deepcopy(status)
            return None

        found: dict[str, Any] = await self._wait_for(entered, timeout=TIMEOUT)
        return found

    async def reason(self, name: str, reason: str) -> None:
        await self._wait_for(lambda: self.status(name).get("reason") == reason, timeout=TIMEOUT)

    def deployment_counts_are_exact(self) -> bool:
        """Every Deployment's activeRuns/queuedRuns/lastRun match its FlowRuns now."""
        runs = self.emulator.objects("flowruns", self.namespace)
        for deployment in self.emulator.objects("deployments", self.namespace):
            name = deployment["metadata"]["name"]
            mine = [run for run in runs
                    if (run.get("spec") or {}).get("deploymentRef", {}).get("name") == name]
            facts = [readiness.RunFacts(
                name=run["metadata"]["name"], phase=(run.get("status") or {}).get("phase"),
                created=run["metadata"]["creationTimestamp"]) for run in mine]
            status = deployment.get("status") or {}
            active, queued = readiness.run_counts(facts)
            latest = readiness.last_run(facts)
            if (status.get("activeRuns"), status.get("queuedRuns")) != (active, queued):
                return False
            last = status.get("lastRun") or {}
            if latest is not None and (last.get("name"), last.get("phase")) != (
                    latest["name"], latest.get("phase")):
                return False
        return True

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
def kube(emulator: BackgroundEmulator) -> Iterator[kube_module.Kube]:
    """The test's own client (also the kubelet stand-in's), with :data:`TEST_AGENT`.

    Overrides the shared fixture in this module only, so the operator's requests (the
    module-wide client) can be told from ours in the emulator's request log.
    """
    client = kubernetes.client.ApiClient(
        kube_module.load_configuration(str(emulator.kubeconfig_path)))
    client.user_agent = TEST_AGENT
    try:
        yield kube_module.Kube(client)
    finally:
        client.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def scene(kube: kube_module.Kube, emulator: BackgroundEmulator, namespace: str,
          wait_for: Callable[..., Awaitable[Any]]) -> Scene:
    return Scene(kube, emulator, namespace, wait_for)


@pytest.fixture(scope="module", autouse=True)
def _write_report() -> Iterator[None]:
    """Dump every scenario's write figures to ``$HEADWATER_API_WRITES_OUT`` (if set)."""
    REPORT.clear()
    yield
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(REPORT, out, indent=2)


async def run_to_pod(scene: Scene, kubelet: Kubelet, run: str, attempt: int = 1,
                     **spec: Any) -> dict[str, Any]:
    if attempt == 1:
        await scene.run(run, **spec)
    pod: dict[str, Any] = await kubelet.wait_for_pod(f"{run}-{attempt}", TIMEOUT)
    await kubelet.schedule(pod)
    await kubelet.run(pod)
    # Seen Running before the test moves on, so every scenario's writes are the same on
    # every machine (a pod ended at once could skip the Running patch and Event).
    await scene.phase(run, "Running")
    return pod


async def setup(scene: Scene, flow: dict[str, Any] | None = None, **deployment: Any) -> None:
    """The Flow ``etl`` and Deployment ``nightly``; counting starts once they are ready."""
    await scene.flow(**(flow or {}))
    await scene.deployment(**deployment)
    await scene.ready()


# Bounds: one pod create per attempt, one status patch and one Event per phase change a
# user sees, plus each pod delete the operator must make. Each test states its sum.
async def test_successful_run_records_summary_with_few_writes(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await setup(scene)
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
    # 1 pod + 3 × (status patch + Event): Pending, Running, Completed. Nothing else: no
    # finalizer or annotation on the FlowRun, no pod writes.
    entry = await scene.finish("successful run", ["ok"], bound=7)
    assert entry["breakdown"] == {"create events": 3, "create pods": 1,
                                  "patch flowruns/status": 3}


async def test_code_failure_with_retries_exhausted(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await setup(scene, {"retries": 1}, retryOn=["Failed"])
    for attempt in (1, 2):
        pod = await run_to_pod(scene, kubelet, "bad", attempt=attempt)
        await kubelet.fail(pod, 1, default_summary("Failed", message="ZeroDivisionError"))
    status = await scene.phase("bad", "Failed")
    assert status["reason"] == reasons.FLOW_FAILED
    assert "after 2 attempts" in status["message"]
    assert status["attempts"] == 2
    assert scene.pods("bad") == ["bad-1", "bad-2"]
    assert await scene.has_event("bad", reasons.RETRYING)
    # 2 pods + 6 × 2: Pending, Running, AwaitingRetry, Retrying, Running, Failed.
    await scene.finish("code failure, 1 retry, both attempts fail", ["bad"], bound=14)


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("oom_kill", reasons.OOM_KILLED),
        ("evict", reasons.EVICTED),
        ("node_lost", reasons.NODE_LOST),
        ("node_deleted", reasons.NODE_LOST),
        ("node_shutdown", reasons.NODE_LOST),
        ("delete", reasons.POD_DELETED),
        ("garbage", reasons.INVALID_RUN_SUMMARY),
        ("no_summary", reasons.MISSING_RUN_SUMMARY),
    ],
)
async def test_crash_of_a_running_pod(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet, action: str, reason: str
) -> None:
    await setup(scene)
    pod = await run_to_pod(scene, kubelet, "crash")
    await scene.phase("crash", "Running")
    if action == "delete":
        await scene.kube.delete(kube_module.PODS, "crash-1", namespace=scene.namespace)
    elif action == "garbage":
        await kubelet.fail(pod, 1, "Traceback: ImportError: no module named etl")
    elif action == "no_summary":
        await kubelet.succeed(pod, "")
    elif action == "node_deleted":
        # The node is lost and its Node object deleted: pod GC force-deletes the pod
        # right after marking it, so the operator usually finds it gone (404); the last
        # body its watch delivered still says why.
        await kubelet.node_lost(pod, node_deleted=True)
    else:
        await getattr(kubelet, action)(pod)
    status = await scene.phase("crash", "Crashed")
    assert status["reason"] == reason
    assert status["message"]
    assert await scene.has_event("crash", reason)
    # 1 pod + 3 × 2: Pending, Running, Crashed. A lost node's pod is being deleted by
    # Kubernetes (taint eviction, pod GC) or was failed by its kubelet (node shutdown):
    # the operator deletes nothing.
    label = {"node_deleted": "NodeLost (Node deleted, pod GC)",
             "node_shutdown": "NodeLost (graceful node shutdown)"}.get(action, reason)
    await scene.finish(f"crash while running: {label}", ["crash"], bound=7)


@pytest.mark.parametrize(("action", "says"), [
    ("node_lost", "DeletionByTaintManager"),
    ("node_deleted", "DeletionByPodGC"),
    ("node_shutdown", "shut down"),
])
async def test_node_loss_says_what_kubernetes_did_and_retries_elsewhere(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet, action: str, says: str,
) -> None:
    await setup(scene, {"retries": 1})
    pod = await run_to_pod(scene, kubelet, "lost")
    mark = scene.mark()
    if action == "node_deleted":
        await kubelet.node_lost(pod, node_deleted=True)
    else:
        await getattr(kubelet, action)(pod)
    # retryDelaySeconds 0: AwaitingRetry lasts one step, and can pass between two polls.
    status = await scene.reached("lost", "AwaitingRetry", after=mark)
    assert status["reason"] == reasons.NODE_LOST
    assert says in status["message"]
    assert "Nothing is wrong with the flow" in status["message"]
    second = await kubelet.wait_for_pod("lost-2", TIMEOUT)  # the retry, on a healthy node
    await kubelet.run(second)
    await kubelet.succeed(second)
    assert (await scene.phase("lost", "Completed"))["attempts"] == 2


async def test_a_node_that_stops_reporting_does_not_end_the_run_by_itself(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet,
) -> None:
    # The node controller marks the pod not Ready; the node may come back, and
    # Kubernetes waits for the pod's toleration before it evicts. So does Headwater.
    await setup(scene)
    pod = await run_to_pod(scene, kubelet, "flaky-node")
    await kubelet.node_not_ready(pod)
    await scene.writes.quiet(0.5)
    assert scene.status("flaky-node")["phase"] == "Running"
    await kubelet.taint_evict(pod)  # the toleration ran out
    assert (await scene.phase("flaky-node", "Crashed"))["reason"] == reasons.NODE_LOST


@pytest.mark.parametrize(
    ("action", "reason", "says"),
    [
        ("run_as_root", reasons.CREATE_CONTAINER_CONFIG_ERROR,
         "container has runAsNonRoot and image will run as root"),
        ("invalid_image", reasons.IMAGE_PULL_FAILED, "InvalidImageName: Failed to apply "
                                                     "default image tag"),
    ],
)
async def test_a_pod_that_can_never_start_crashes_at_once_and_is_not_retried(  # noqa: PLR0917
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet, action: str, reason: str,
    says: str,
) -> None:
    # The default pendingTimeoutSeconds (600 s) is not waited for: nothing can heal this.
    await setup(scene, {"retries": 3})
    await scene.run("doomed")
    pod = await kubelet.wait_for_pod("doomed-1", TIMEOUT)
    await kubelet.schedule(pod)
    await getattr(kubelet, action)(pod)
    status = await scene.phase("doomed", "Crashed")
    assert status["reason"] == reason
    assert says in status["message"]  # the kubelet's own words, and what to do:
    assert ("runTemplate.securityContext.runAsUser" if action == "run_as_root"
            else "Flow.spec.image") in status["message"]
    assert status["attempts"] == 1  # not retried: a new pod would be refused the same way
    assert scene.pods("doomed") == []
    await scene.finish(f"never starts: {reason} ({action})", ["doomed"], bound=6)


async def test_a_missing_secret_waits_the_config_error_grace_not_the_pending_timeout(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet,
) -> None:
    operator.config_error_grace_seconds = 2  # --config-error-grace-seconds
    await operator.restart()
    await setup(scene)  # pendingTimeoutSeconds: the default 600
    await scene.run("nosecret")
    pod = await kubelet.wait_for_pod("nosecret-1", TIMEOUT)
    await kubelet.schedule(pod)
    await kubelet.missing_secret(pod, "db", key="password")
    status = await scene.phase("nosecret", "Crashed")
    assert status["reason"] == reasons.CREATE_CONTAINER_CONFIG_ERROR
    assert "couldn't find key password in Secret default/db" in status["message"]
    assert "add key password to Secret default/db" in status["message"]
    assert scene.pods("nosecret") == []


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
    # 2 s, not 1: the kubelet stand-in must mark the pod (image pull error, …) before the
    # timeout, else the run ends PendingTimeout and the pod is gone; on a loaded 2-core
    # machine 1 s was occasionally too short for that.
    await setup(scene, pendingTimeoutSeconds=2)
    await scene.run("stuck")
    pod = await kubelet.wait_for_pod("stuck-1", TIMEOUT)
    if action != "unschedulable":
        await kubelet.schedule(pod)
    await getattr(kubelet, action)(pod)
    status = await scene.phase("stuck", "Crashed")
    assert status["reason"] == reason
    assert scene.pods("stuck") == []  # the stuck pod is removed, not left retrying forever
    # 1 pod + 1 pod delete + 2 × 2: Pending, Crashed.
    await scene.finish(f"stuck Pending past pendingTimeoutSeconds: {reason}", ["stuck"],
                       bound=6)


async def test_cancel_running_run(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await setup(scene, cancelGracePeriodSeconds=5)
    await run_to_pod(scene, kubelet, "stop")
    await scene.phase("stop", "Running")
    await scene.cancel("stop")
    status = await scene.phase("stop", "Cancelled")
    assert status["reason"] == reasons.CANCELLED
    assert await scene.has_event("stop", reasons.CANCEL_REQUESTED)
    assert scene.pods("stop") == []
    # 1 pod + 1 delete (SIGTERM) + 4 × 2: Pending, Running, Cancelling, Cancelled.
    await scene.finish("cancel a running run", ["stop"], bound=10)


async def test_forced_cancel_of_a_pod_that_ignores_sigterm(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real margin past the grace period is 30 s; the rule, not the number, is tested.
    monkeypatch.setattr(machine, "CANCEL_DEADLINE_MARGIN", timedelta(seconds=1))
    await setup(scene, cancelGracePeriodSeconds=1)
    await run_to_pod(scene, kubelet, "stubborn")
    await scene.phase("stubborn", "Running")
    # A kubelet that never confirms the termination (a wedged node, a hung container
    # runtime): with a finalizer the pod stays Running and Terminating whatever we delete.
    await scene.kube.patch(kube_module.PODS, "stubborn-1",
                           {"metadata": {"finalizers": ["example.com/hold"]}},
                           namespace=scene.namespace)
    mark = scene.mark()
    await scene.cancel("stubborn")
    cancelling = await scene.reached("stubborn", "Cancelling", after=mark)
    assert cancelling["reason"] == reasons.CANCEL_REQUESTED
    status = await scene.phase("stubborn", "Cancelled")
    assert status["reason"] == reasons.CANCEL_FORCED
    assert "force-deleted" in status["message"]
    assert status["endTime"]
    pod = scene.emulator.object("pods", "stubborn-1")
    assert pod is not None
    assert pod["metadata"]["deletionTimestamp"]
    assert pod["status"]["phase"] == "Running"
    assert await scene.has_event("stubborn", reasons.CANCEL_FORCED)
    # 1 pod + 2 deletes (grace, then grace 0) + 4 × 2: Pending, Running, Cancelling,
    # Cancelled.
    await scene.finish("cancel, pod ignores SIGTERM (forced)", ["stubborn"], bound=11)
    await scene.kube.patch(kube_module.PODS, "stubborn-1", {"metadata": {"finalizers": None}},
                           namespace=scene.namespace)
    await scene._wait_for(lambda: scene.pods("stubborn") == [], timeout=TIMEOUT)
    assert scene.status("stubborn")["reason"] == reasons.CANCEL_FORCED


async def test_enqueue_then_cancel_queued_run(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await setup(scene, concurrency={"limit": 1, "collisionStrategy": "Enqueue"})
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
    await kubelet.run(second)
    await scene.phase("second", "Running")
    await kubelet.succeed(second)
    await scene.phase("second", "Completed")
    # first: 1 pod + 3 × 2 (Pending, Running, Completed);
    # second: 1 pod + 4 × 2 (AwaitingConcurrencySlot, Pending, Running, Completed);
    # third: 2 × 2 (AwaitingConcurrencySlot, Cancelled).
    await scene.finish("limit 1, Enqueue: 3 runs, the queued 3rd cancelled",
                       ["first", "third", "second"], bound=7 + 9 + 4)


async def test_deleting_the_running_run_admits_the_queued_one(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await setup(scene, concurrency={"limit": 1, "collisionStrategy": "Enqueue"})
    await run_to_pod(scene, kubelet, "first")
    await scene.run("second")
    await scene.phase("second", "AwaitingConcurrencySlot")
    # `kubectl delete flowrun first`: no terminal phase is ever written for it, so only
    # its tracker's end says the slot is free (not the 5-minute resync).
    await scene.kube.delete(kube_module.FLOWRUNS, "first", namespace=scene.namespace)
    second = await kubelet.wait_for_pod("second-1", TIMEOUT)
    assert second["metadata"]["name"] == "second-1"
    await scene.phase("second", "Pending", "Running")


async def test_cancel_new_cancels_run_over_the_limit(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await setup(scene, concurrency={"limit": 1, "collisionStrategy": "CancelNew"})
    await run_to_pod(scene, kubelet, "first")
    await scene.phase("first", "Running")
    await scene.ready()  # count the rejected run only, once the first one's writes are in
    await scene.run("extra")
    status = await scene.phase("extra", "Cancelled")
    assert status["reason"] == reasons.CONCURRENCY_LIMIT_REACHED
    assert scene.pods("extra") == []
    # Only the rejected run is counted: 1 × 2 (Cancelled at once, no pod).
    await scene.finish("limit 1, CancelNew: the run over the limit", ["extra"], bound=2)


async def test_invalid_parameters_fail_without_a_pod(
    scene: Scene, operator: OperatorHarness
) -> None:
    schema = {"type": "object", "properties": {"day": {"type": "string", "format": "date"},
                                               "limit": {"type": "integer"}},
              "required": ["day"]}
    await setup(scene, {"parametersSchema": schema})
    await scene.run("params", parameters={"day": "2024-05-01", "limit": "ten"})
    status = await scene.phase("params", "Failed")
    assert status["reason"] == reasons.INVALID_PARAMETERS
    assert "'limit'" in status["message"]
    assert scene.pods("params") == []
    await scene.finish("invalid parameters", ["params"], bound=2)


async def test_paused_deployment_holds_runs_until_resumed(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet, kube: kube_module.Kube
) -> None:
    await setup(scene, paused=True)
    await scene.run("held")
    await scene.reason("held", reasons.DEPLOYMENT_PAUSED)
    assert scene.pods("held") == []
    await kube.patch(kube_module.DEPLOYMENTS, "nightly", {"spec": {"paused": False}},
                     namespace=scene.namespace)
    pod = await kubelet.wait_for_pod("held-1", TIMEOUT)
    assert pod["metadata"]["name"] == "held-1"
    await kubelet.run(pod)
    await scene.phase("held", "Running")
    await kubelet.succeed(pod)
    await scene.phase("held", "Completed")
    # 1 pod + 4 × 2: Scheduled (DeploymentPaused), Pending, Running, Completed.
    await scene.finish("paused Deployment, then resumed", ["held"], bound=9)


async def test_operator_restart_mid_run_keeps_one_pod_per_attempt(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await setup(scene)
    pod = await run_to_pod(scene, kubelet, "steady")
    await scene.phase("steady", "Running")
    await operator.restart()
    await kubelet.succeed(pod)
    await scene.phase("steady", "Completed")
    assert scene.pods("steady") == ["steady-1"]
    # The restart itself writes nothing: the same 1 pod + 3 × 2 as an undisturbed run.
    await scene.finish("operator restarted mid-run", ["steady"], bound=7)


async def test_late_run_is_marked_late_and_still_runs(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await setup(scene, lateAfterSeconds=0)
    await scene.run("tardy", scheduledTime="2024-01-01T00:00:00Z")
    pod = await kubelet.wait_for_pod("tardy-1", TIMEOUT)
    assert await scene.has_event("tardy", reasons.LATE)
    await kubelet.schedule(pod)
    await kubelet.run(pod)
    await scene.phase("tardy", "Running")
    await kubelet.succeed(pod)
    status = await scene.phase("tardy", "Completed")
    assert any(c["type"] == "Late" for c in status["conditions"])
    # The Late condition rides on the Pending patch; only its Event is extra: 7 + 1.
    await scene.finish("late run (scheduledTime long past)", ["tardy"], bound=8)


@pytest.mark.parametrize(
    "rejection",
    [
        (422, "Invalid", 'Pod "rejected-1" is invalid: spec.containers[0].resources.limits'
                         '[memory]: Invalid value: "lots": quantities must match the regular '
                         "expression"),
        (403, "Forbidden", 'pods "rejected-1" is forbidden: violates PodSecurity '
                           '"restricted:latest": runAsNonRoot != true'),
    ],
)
async def test_pod_rejected_by_the_api_server_crashes_without_retry(
    scene: Scene, operator: OperatorHarness, emulator: BackgroundEmulator,
    rejection: tuple[int, str, str]
) -> None:
    code, api_reason, message = rejection
    await setup(scene, {"retries": 2})
    rejected: list[str] = []

    def admit(verb: str, spec: Any, path: Any, body: Any) -> None:
        if verb == "create" and spec.plural == "pods":
            rejected.append(body["metadata"]["name"])
            raise ApiError(code, api_reason, message)

    emulator.emulator.admission_hooks.append(admit)
    await scene.run("rejected")
    status = await scene.phase("rejected", "Crashed")
    assert status["reason"] == reasons.POD_CREATION_FAILED
    assert message in status["message"]
    assert "runTemplate" in status["message"]  # says where to fix it
    assert status["attempts"] == 1
    assert rejected == ["rejected-1"]  # retries do not help: not one more try
    assert scene.pods("rejected") == []
    # 1 rejected pod create + 1 × 2 (Crashed).
    entry = await scene.finish(f"pod create rejected ({code} {api_reason})", ["rejected"],
                               bound=3)
    assert entry["breakdown"]["create pods"] == 1


async def test_pod_create_over_quota_is_retried_until_it_fits(
    scene: Scene, operator: OperatorHarness, emulator: BackgroundEmulator, kubelet: Kubelet,
) -> None:
    await setup(scene)
    refusals = 2  # retried after the work queue's backoff: ~1 s, then ~2 s

    def quota(verb: str, spec: Any, path: Any, body: Any) -> None:
        nonlocal refusals
        if verb == "create" and spec.plural == "pods" and refusals:
            refusals -= 1
            raise ApiError(403, "Forbidden", 'pods "roomy-1" is forbidden: exceeded quota: '
                                             "compute, requested: cpu=2, limited: cpu=4")

    emulator.emulator.admission_hooks.append(quota)
    pod = await run_to_pod(scene, kubelet, "roomy")
    await kubelet.succeed(pod)
    status = await scene.phase("roomy", "Completed")
    assert status["attempts"] == 1
    # 2 refused + 1 accepted pod create + 3 × 2.
    entry = await scene.finish("pod create over quota twice, then fits", ["roomy"], bound=9)
    assert entry["breakdown"]["create pods"] == 3


async def test_retries_back_off_visibly_before_the_next_attempt(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await setup(scene, {"retries": 2}, retryDelaySeconds=1, retryBackoffFactor=2.0)
    waits: list[tuple[datetime, datetime]] = []
    for attempt in (1, 2):
        pod = await run_to_pod(scene, kubelet, "flaky", attempt=attempt)
        failed_at, mark = datetime.now(UTC), scene.mark()
        await kubelet.fail(pod, 1, default_summary("Failed", message="ConnectionResetError"))
        status = await scene.reached("flaky", "AwaitingRetry", after=mark)
        assert status["reason"] == reasons.FLOW_FAILED
        assert f"attempt {attempt} of 3" in status["message"]
        assert scene.pods("flaky")[:attempt] == [f"flaky-{n}" for n in range(1, attempt + 1)]
        waits.append((failed_at, parse_time(status["nextAttemptTime"]) or failed_at))
        nxt = await kubelet.wait_for_pod(f"flaky-{attempt + 1}", TIMEOUT)
        created = parse_time(nxt["metadata"]["creationTimestamp"])
        assert created is not None
        assert created >= waits[-1][1], "the next attempt started before nextAttemptTime"
    # Delays 1 s then 2 s (retryDelaySeconds × retryBackoffFactor**(n-1)), counted from
    # when the operator saw the failure and rounded up to the second: never shorter.
    (fail1, next1), (fail2, next2) = waits
    assert fail1 + timedelta(seconds=1) <= next1 < fail1 + timedelta(seconds=5)
    assert fail2 + timedelta(seconds=2) <= next2 < fail2 + timedelta(seconds=6)
    pod = await kubelet.get("flaky-3")
    await kubelet.run(pod)
    await scene.phase("flaky", "Running")
    await kubelet.succeed(pod)
    status = await scene.phase("flaky", "Completed")
    assert status["attempts"] == 3
    assert "nextAttemptTime" not in status
    # 3 pods + 9 × 2: Pending, Running, (AwaitingRetry, Retrying, Running) × 2, Completed.
    await scene.finish("2 failures retried with backoff, 3rd attempt completes", ["flaky"],
                       bound=21)


@pytest.mark.parametrize("retry_on", [None, ["Failed"]])
async def test_crash_is_retried_only_when_retry_on_lists_crashed(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet, retry_on: list[str] | None
) -> None:
    await setup(scene, {"retries": 1}, **({"retryOn": retry_on} if retry_on else {}))
    pod = await run_to_pod(scene, kubelet, "oom")
    await scene.phase("oom", "Running")
    await kubelet.oom_kill(pod)
    if retry_on is None:  # default retryOn: [Failed, Crashed]
        second = await run_to_pod(scene, kubelet, "oom", attempt=2)
        await kubelet.succeed(second)
        status = await scene.phase("oom", "Completed")
        assert status["attempts"] == 2
        assert scene.pods("oom") == ["oom-1", "oom-2"]
        # 2 pods + 6 × 2: Pending, Running, AwaitingRetry, Retrying, Running, Completed.
        await scene.finish("OOMKilled, retried (default retryOn), then completes", ["oom"],
                           bound=14)
    else:
        status = await scene.phase("oom", "Crashed")
        assert status["reason"] == reasons.OOM_KILLED
        assert status["attempts"] == 1
        assert scene.pods("oom") == ["oom-1"]
        await scene.finish("OOMKilled with retryOn: [Failed]: not retried", ["oom"], bound=7)
        assert scene.pods("oom") == ["oom-1"]  # still no second attempt once all is quiet


async def test_active_deadline_exceeded_is_failed_timed_out(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await setup(scene, timeoutSeconds=60)
    pod = await run_to_pod(scene, kubelet, "slow")
    assert pod["spec"]["activeDeadlineSeconds"] == 60
    await scene.phase("slow", "Running")
    # What the kubelet reports when activeDeadlineSeconds passes: the pod Failed with
    # reason DeadlineExceeded; the engine got SIGTERM and wrote a Cancelled summary.
    status = podstatus.failed(datetime.now(UTC), 3, default_summary("Cancelled"))
    status.update({"phase": "Failed", "reason": "DeadlineExceeded",
                   "message": "Pod was active on the node longer than the specified deadline"})
    await kubelet.report(pod, status)
    final = await scene.phase("slow", "Failed", "Crashed")
    assert (final["phase"], final["reason"]) == ("Failed", reasons.TIMED_OUT)
    assert "timeoutSeconds" in final["message"]
    await scene.finish("activeDeadlineSeconds exceeded", ["slow"], bound=7)


async def test_deployment_deleted_while_runs_wait_or_run(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await setup(scene, concurrency={"limit": 1, "collisionStrategy": "Enqueue"})
    running = await run_to_pod(scene, kubelet, "busy")
    await scene.phase("busy", "Running")
    await scene.run("queued")
    await scene.phase("queued", "AwaitingConcurrencySlot")
    # kubectl-created runs carry no owner reference: they outlive their Deployment.
    await scene.kube.delete(kube_module.DEPLOYMENTS, "nightly", namespace=scene.namespace)
    status = await scene.phase("queued", "Failed")
    assert status["reason"] == reasons.DEPLOYMENT_NOT_FOUND
    assert "nightly" in status["message"]
    assert "spec.deploymentRef" in status["message"]
    assert scene.pods("queued") == []
    # The started run is not orphaned: its pod still decides how it ends.
    await kubelet.succeed(running)
    assert (await scene.phase("busy", "Completed"))["reason"] == reasons.COMPLETED
    # busy: 1 pod + 3 × 2; queued: 2 × 2 (AwaitingConcurrencySlot, Failed).
    await scene.finish("Deployment deleted: queued run fails, running run completes",
                       ["busy", "queued"], bound=7 + 4)


def maximal_summary(task_runs: dict[str, int]) -> str:
    """A run summary as large as a termination message may be, full of assets/artifacts."""
    summary: RunSummary = {
        "version": 1, "state": "Completed", "reason": "Completed",
        "message": "the flow run finished: Completed", "taskRuns": task_runs,
        "assets": [], "artifacts": [],
    }
    i = 0
    while True:
        bigger = json.loads(encode_summary(summary))
        bigger["assets"].append({"key": f"s3://lake/warehouse/orders/part-{i:04d}",
                                 "version": f"v{i:08d}",
                                 "upstream": [f"s3://lake/raw/orders/part-{i:04d}"]})
        bigger["artifacts"].append(f"report-{i:04d}")
        if len(encode_summary(bigger).encode()) > SUMMARY_MAX_BYTES:
            return encode_summary(summary)
        summary, i = bigger, i + 1


async def test_status_stays_small_and_does_not_grow_with_tasks(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    await setup(scene)
    sizes = {}
    for run, tasks in (("big-a", {"Completed": 3}),
                       ("big-b", {"Completed": 250_000, "Failed": 1_000, "Cached": 9_000})):
        text = maximal_summary(tasks)
        assert SUMMARY_MAX_BYTES - 200 < len(text.encode()) <= SUMMARY_MAX_BYTES
        pod = await run_to_pod(scene, kubelet, run)
        await kubelet.succeed(pod, text)
        status = await scene.phase(run, "Completed")
        assert status["taskRuns"] == tasks
        assert len(status["assets"]) == len(json.loads(text)["assets"]) > 20
        sizes[run] = len(json.dumps(status).encode())
    print("status sizes in bytes:", sizes)
    # Counts, never per-task records: far below etcd's 1.5 MB object limit.
    assert max(sizes.values()) < 16 * 1024, sizes
    # 260,000 task runs cost a few digits more than 3, not one record per task.
    assert abs(sizes["big-b"] - sizes["big-a"]) < 64, sizes
    await scene.finish("largest run summary (4 KiB), twice", ["big-a", "big-b"], bound=14)


# --- issue 10: what only a real cluster showed ---------------------------------------
async def test_run_completes_where_owner_references_permission_enforcement_is_on(
    scene: Scene, operator: OperatorHarness, emulator: BackgroundEmulator, kubelet: Kubelet
) -> None:
    # OpenShift enables the plugin by default; the operator has exactly the chart's RBAC.
    owner_references_admission.install(emulator)
    await setup(scene)
    pod = await run_to_pod(scene, kubelet, "guarded")
    await kubelet.succeed(pod)
    status = await scene.phase("guarded", "Completed", "Crashed")
    assert status["reason"] == reasons.COMPLETED, status["message"]


async def test_owner_references_plugin_refuses_blocking_refs_without_finalizers_rights(
    kube: kube_module.Kube, emulator: BackgroundEmulator, namespace: str
) -> None:
    # The hook itself: what the plugin refuses, and that a grant lets it through.
    grants = set(owner_references_admission.chart_grants())
    assert ("", "pods", "create") in grants
    assert ("headwater.dev", "flowruns/finalizers", "update") not in grants
    hooks = emulator.emulator.admission_hooks
    hooks.clear()  # only the hooks of this test (HEADWATER_TEST_ADMISSION may add one)
    owner_references_admission.install(emulator, owner_references_admission.may_from(grants))
    run = await kube.create(kube_module.FLOWRUNS, {
        "metadata": {"name": "owner"}, "spec": {"deploymentRef": {"name": "d"}}},
        namespace=namespace)

    def pod(name: str, block: bool) -> dict[str, Any]:
        return {"metadata": {"name": name, "ownerReferences": [{
                    "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
                    "name": "owner", "uid": run["metadata"]["uid"], "controller": True,
                    "blockOwnerDeletion": block}]},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]}}

    with pytest.raises(kube_module.KubeError) as refused:
        await kube.create(kube_module.PODS, pod("blocking", True), namespace=namespace)
    assert refused.value.status == 403
    assert refused.value.message == (
        'pods "blocking" is forbidden: cannot set blockOwnerDeletion if an ownerReference '
        "refers to a resource you can't set finalizers on: , <nil>")
    await kube.create(kube_module.PODS, pod("plain", False), namespace=namespace)
    hooks.clear()
    owner_references_admission.install(emulator, owner_references_admission.may_from(
        grants | {("headwater.dev", "flowruns/finalizers", "update")}))
    await kube.create(kube_module.PODS, pod("blocking", True), namespace=namespace)


async def test_a_pod_with_sidecars_completes_with_its_whole_summary(
    scene: Scene, operator: OperatorHarness, kubelet: Kubelet
) -> None:
    # Four containers share the kubelet's 12 KiB of termination messages: 3072 bytes
    # each, less than the 4 KiB summary the engine used to write.
    sidecars = [{"name": f"sidecar-{i}", "image": "busybox:1.36"} for i in range(3)]
    await setup(scene, runTemplate={"podOverrides": {"spec": {"containers": sidecars}}})
    pod = await run_to_pod(scene, kubelet, "crowded")
    assert len(pod["spec"]["containers"]) == 4
    flow = next(c for c in pod["spec"]["containers"] if c["name"] == "flow")
    env = {var["name"]: var.get("value") for var in flow["env"]}
    # What `headwater execute` does in that pod: fit the summary to its budget.
    budget = summary_budget(env.get(ENV_SUMMARY_MAX_BYTES))
    text = fit_summary(json.loads(maximal_summary({"Completed": 12})), budget)
    await kubelet.succeed(pod, text)
    status = await scene.phase("crowded", "Completed", "Crashed")
    assert status["reason"] == reasons.COMPLETED, status["message"]
    assert status["taskRuns"] == {"Completed": 12}


def refuse_status_the_schema_refuses(verb: str, spec: Any, path: Any, body: Any) -> None:
    """A FlowRun status patch the CRD's schema refuses gets the API server's 422.

    Plays what a real API server does (the emulator does not validate status writes
    yet); the message has the form of apiextensions-apiserver's schema errors.
    """
    if spec.plural != "flowruns" or path.subresource != "status" or verb != "patch":
        return
    status = {key: value for key, value in ((body or {}).get("status") or {}).items()
              if value is not None}
    problems = validation.status_errors("FlowRun", status)
    if problems:
        raise ApiError(422, "Invalid", f'FlowRun.headwater.dev "{path.name}" is invalid: '
                                       + "; ".join(problems))


async def test_a_summary_of_the_wrong_types_ends_the_run_naming_field_and_image(
    scene: Scene, operator: OperatorHarness, emulator: BackgroundEmulator, kubelet: Kubelet
) -> None:
    emulator.emulator.admission_hooks.append(refuse_status_the_schema_refuses)
    await setup(scene)
    pod = await run_to_pod(scene, kubelet, "foreign")
    summary = json.loads(default_summary("Completed"))
    summary["taskRuns"] = {"completed": "three"}  # an image without the SDK wrote this
    await kubelet.succeed(pod, json.dumps(summary))
    status = await scene.phase("foreign", "Completed", "Crashed")
    assert status["reason"] == reasons.INVALID_RUN_SUMMARY, status
    assert "status.taskRuns.completed" in status["message"]
    assert "ghcr.io/acme/etl:1" in status["message"]
    assert "taskRuns" not in status
    # 1 pod + 3 × 2 (Pending, Running, Crashed): the refused write is never even tried.
    entry = await scene.finish("summary of the wrong types", ["foreign"], bound=7)
    assert entry["breakdown"]["patch flowruns/status"] == 3


async def test_a_status_write_the_server_refuses_ends_the_run_instead_of_looping(
    scene: Scene, operator: OperatorHarness, emulator: BackgroundEmulator, kubelet: Kubelet
) -> None:
    refused: list[str] = []

    def refuse_completed(verb: str, spec: Any, path: Any, body: Any) -> None:
        status = (body or {}).get("status") or {}
        if spec.plural == "flowruns" and path.subresource == "status" and (
                status.get("phase") == "Completed"):
            refused.append(status["phase"])
            raise ApiError(422, "Invalid", f'FlowRun.headwater.dev "{path.name}" is invalid: '
                                           "status.message: Too long: may not be more than "
                                           "32768 bytes")

    emulator.emulator.admission_hooks.append(refuse_completed)
    await setup(scene)
    pod = await run_to_pod(scene, kubelet, "refused")
    await kubelet.succeed(pod)
    status = await scene.phase("refused", "Crashed")
    assert status["reason"] == reasons.STATUS_REJECTED
    assert "status.message: Too long" in status["message"]
    assert await scene.has_event("refused", reasons.STATUS_REJECTED)
    await scene.writes.quiet()
    assert refused == ["Completed"]  # tried once, never again
    assert scene.pods("refused") == ["refused-1"]  # the pod had finished: kept for its logs


async def test_when_even_the_ending_is_refused_the_operator_says_so_and_stops(
    scene: Scene, operator: OperatorHarness, emulator: BackgroundEmulator, kubelet: Kubelet
) -> None:
    refused: list[str] = []

    def refuse_endings(verb: str, spec: Any, path: Any, body: Any) -> None:
        status = (body or {}).get("status") or {}
        if spec.plural == "flowruns" and path.subresource == "status" and (
                status.get("phase") in ("Completed", "Crashed")):
            refused.append(status["phase"])
            raise ApiError(422, "Invalid", f'FlowRun.headwater.dev "{path.name}" is invalid: '
                                           "status.conditions[0].type: Required value")

    emulator.emulator.admission_hooks.append(refuse_endings)
    await setup(scene)
    pod = await run_to_pod(scene, kubelet, "stuck")
    await kubelet.succeed(pod)
    assert await scene.has_event("stuck", reasons.STATUS_REJECTED)
    await scene.writes.quiet()
    assert refused == ["Completed", "Crashed"]  # each tried once; no loop
    assert scene.status("stuck")["phase"] == "Running"
