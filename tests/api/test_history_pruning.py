"""History pruning end to end: limits per outcome and TTL delete old FlowRuns (and pods)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from headwater_dev.emulator import BackgroundEmulator as Emulator
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet, default_summary
from headwater_operator import kube as kube_module

WaitFor = Callable[..., Awaitable[Any]]
CreateDeployment = Callable[..., Awaitable[None]]


async def finish_run(
    *, kube: kube_module.Kube, kubelet: Kubelet, emulator: Emulator, wait_for: WaitFor,
    namespace: str, name: str, succeed: bool,
) -> None:
    """Create a FlowRun and drive its pod to success or code failure, then wait for it."""
    await kube.create(kube_module.FLOWRUNS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun", "metadata": {"name": name},
        "spec": {"deploymentRef": {"name": "nightly"}},
    }, namespace=namespace)
    pod = await kubelet.wait_for_pod(f"{name}-1", timeout=10)
    await kubelet.run(pod)
    if succeed:
        await kubelet.succeed(pod)
    else:
        await kubelet.fail(pod, 1, default_summary("Failed", "FlowFailed", "boom"))
    expected = "Completed" if succeed else "Failed"

    def finished() -> bool:
        run = emulator.object("flowruns", name)
        # Already pruned (limit 0 or a short TTL) also means it finished.
        return run is None or (run.get("status") or {}).get("phase") == expected

    await wait_for(finished, timeout=10)


def pruned_messages(emulator: Emulator, namespace: str) -> list[str]:
    return sorted(e["message"] for e in emulator.objects("events", namespace)
                  if e.get("reason") == "HistoryPruned")


def run_names(emulator: Emulator, namespace: str) -> set[str]:
    return {obj["metadata"]["name"] for obj in emulator.objects("flowruns", namespace)}


async def test_limits_keep_the_newest_runs_of_each_outcome(
    *, hello_deployment: CreateDeployment,
    operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator, namespace: str,
    kubelet: Kubelet, wait_for: WaitFor,
) -> None:
    await hello_deployment(history={"successfulRunsLimit": 1, "failedRunsLimit": 1})

    for name, ok in (("ok-1", True), ("bad-1", False), ("ok-2", True), ("bad-2", False),
                     ("ok-3", True)):
        await finish_run(kube=kube, kubelet=kubelet, emulator=emulator, wait_for=wait_for,
                         namespace=namespace, name=name, succeed=ok)

    await wait_for(lambda: run_names(emulator, namespace) == {"ok-3", "bad-2"}, timeout=10)
    # The pods of deleted runs go with them (owner references).
    await wait_for(
        lambda: {p["metadata"]["name"] for p in emulator.objects("pods", namespace)}
        <= {"ok-3-1", "bad-2-1"},
        timeout=10,
    )
    # Events are posted from kopf's queue, possibly a moment after the deletion.
    await wait_for(lambda: pruned_messages(emulator, namespace) == [
        "Deleted FlowRun 'bad-1': beyond history.failedRunsLimit=1.",
        "Deleted FlowRun 'ok-1': beyond history.successfulRunsLimit=1.",
        "Deleted FlowRun 'ok-2': beyond history.successfulRunsLimit=1.",
    ])


async def test_unfinished_runs_are_kept_whatever_the_limits(
    *, hello_deployment: CreateDeployment,
    operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator, namespace: str,
    kubelet: Kubelet, wait_for: WaitFor,
) -> None:
    await hello_deployment(history={"successfulRunsLimit": 0, "failedRunsLimit": 0})
    await kube.create(kube_module.FLOWRUNS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun", "metadata": {"name": "live"},
        "spec": {"deploymentRef": {"name": "nightly"}},
    }, namespace=namespace)
    pod = await kubelet.wait_for_pod("live-1", timeout=10)
    await kubelet.run(pod)
    await wait_for(
        lambda: ((emulator.object("flowruns", "live") or {}).get("status") or {}).get("phase")
        == "Running"
    )

    await finish_run(kube=kube, kubelet=kubelet, emulator=emulator, wait_for=wait_for,
                     namespace=namespace, name="done", succeed=True)

    await wait_for(lambda: run_names(emulator, namespace) == {"live"}, timeout=10)


async def test_ttl_deletes_finished_runs_after_the_delay(
    *, hello_deployment: CreateDeployment,
    operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator, namespace: str,
    kubelet: Kubelet, wait_for: WaitFor,
) -> None:
    await hello_deployment(history={"ttlSecondsAfterFinished": 1})

    await finish_run(kube=kube, kubelet=kubelet, emulator=emulator, wait_for=wait_for,
                     namespace=namespace, name="short-lived", succeed=True)

    # Nothing else happens after the run finished: only the TTL wake-up can delete it.
    await wait_for(lambda: run_names(emulator, namespace) == set(), timeout=10)
