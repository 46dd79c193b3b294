"""A concurrency limit holds across an operator killed between a run's pod and its status.

Issue #11 ("What random kills found"): the operator creates a run's pod *before* the
status write that names it. An operator killed in between leaves the run with a running
pod and no phase (or a waiting one). Counted by phase alone, that run held no slot, and
after the restart a waiting run with an older queue key (a catch-up or backfill tick)
was admitted beside it: with ``limit: 1``, two pods ran.

The kill is played by an admission hook that fails every status write of the run while
the operator is still up, so the operator stops (``operator.stop()``) with the pod
created and the status never written, exactly the state a SIGKILL leaves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from headwater.contract import LABEL_DEPLOYMENT
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet
from headwater_dev.store import ApiError
from headwater_operator import kube as kube_module
from headwater_operator import reasons

WaitFor = Callable[..., Awaitable[Any]]
TIMEOUT = 15.0
FINISHED_POD_PHASES = frozenset({"Succeeded", "Failed"})


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def most_pods_alive_at_once(emulator: BackgroundEmulator, since: int, deployment: str) -> int:
    """The most pods of ``deployment`` alive together after resourceVersion ``since``
    (when it had none), replayed from the API server's change history: not sampled, so
    a pod that lived between two polls counts too."""
    store = emulator.emulator.store
    spec = next(s for s in store.resources if s.plural == "pods")
    alive: set[str] = set()
    most = 0
    for event in store.events_since(spec, since):
        pod = event.object
        if (pod["metadata"].get("labels") or {}).get(LABEL_DEPLOYMENT) != deployment:
            continue
        name = pod["metadata"]["name"]
        if event.type == "DELETED" or (pod.get("status") or {}).get("phase") in \
                FINISHED_POD_PHASES:
            alive.discard(name)
        else:
            alive.add(name)
        most = max(most, len(alive))
    return most


async def test_a_run_killed_between_its_pod_and_its_status_keeps_its_slot(
    *, kube: kube_module.Kube, emulator: BackgroundEmulator, namespace: str,
    operator: OperatorHarness, kubelet: Kubelet, wait_for: WaitFor,
) -> None:
    await kube.create(kube_module.FLOWS, {
        "metadata": {"name": "etl"},
        "spec": {"image": "ghcr.io/acme/etl:1", "entrypoint": "etl.flows:ingest"},
    }, namespace=namespace)
    await kube.create(kube_module.DEPLOYMENTS, {
        "metadata": {"name": "nightly"},
        "spec": {"flowRef": {"name": "etl"},
                 "concurrency": {"limit": 1, "collisionStrategy": "Enqueue"}},
    }, namespace=namespace)
    mark = emulator.emulator.store.resource_version
    refused: list[dict[str, Any]] = []

    def killed_before_status(verb: str, spec: Any, path: Any, body: Any) -> None:
        if (spec.plural, path.subresource, path.name) == ("flowruns", "status", "started"):
            refused.append(body)
            raise ApiError(500, "InternalError",
                           "the operator is killed before this status write reaches etcd")

    emulator.emulator.admission_hooks.append(killed_before_status)
    await kube.create(kube_module.FLOWRUNS, {
        "metadata": {"name": "started"}, "spec": {"deploymentRef": {"name": "nightly"}},
    }, namespace=namespace)
    pod = await kubelet.wait_for_pod("started-1", TIMEOUT)
    await wait_for(lambda: refused, timeout=TIMEOUT)
    await operator.stop()
    emulator.emulator.admission_hooks.remove(killed_before_status)
    assert ((emulator.object("flowruns", "started") or {}).get("status") or {}) \
        .get("phase") is None, "the run's status was written: the kill came too late"
    await kubelet.schedule(pod)
    await kubelet.run(pod)

    # While the operator is down, a backfill tick arrives: due long before `started`.
    await kube.create(kube_module.FLOWRUNS, {
        "metadata": {"name": "backfill"},
        "spec": {"deploymentRef": {"name": "nightly"},
                 "scheduledTime": stamp(datetime.now(UTC) - timedelta(hours=1))},
    }, namespace=namespace)
    await operator.start()

    def phase(run: str) -> str | None:
        status = (emulator.object("flowruns", run) or {}).get("status") or {}
        return status.get("phase")

    await wait_for(lambda: phase("started") and phase("backfill"), timeout=TIMEOUT,
                   message="both runs decided after the restart")
    # The run with the pod kept its slot: it was not queued, and the backfill, though
    # older, was not admitted beside it.
    assert (phase("started"), phase("backfill")) in {
        ("Pending", "AwaitingConcurrencySlot"), ("Running", "AwaitingConcurrencySlot")}
    assert sorted(p["metadata"]["name"] for p in emulator.objects("pods", namespace)) == [
        "started-1"]
    await wait_for(lambda: phase("started") == "Running", timeout=TIMEOUT)
    await wait_for(lambda: any(
        e.get("reason") == reasons.POD_ADOPTED and e["involvedObject"].get("name") == "started"
        for e in emulator.objects("events", namespace)), timeout=TIMEOUT)

    # The slot frees when `started` ends, and only then does the backfill get its pod.
    await kubelet.succeed(pod)
    await wait_for(lambda: phase("started") == "Completed", timeout=TIMEOUT)
    backfill = await kubelet.wait_for_pod("backfill-1", TIMEOUT)
    await kubelet.schedule(backfill)
    await kubelet.run(backfill)
    await kubelet.succeed(backfill)
    await wait_for(lambda: phase("backfill") == "Completed", timeout=TIMEOUT)
    assert most_pods_alive_at_once(emulator, mark, "nightly") == 1
