"""Schedules on the real clock with 1-second ticks: pods driven by the kubelet, restarts.

Where ``test_schedules.py`` moves a hand-held clock, these let real seconds pass, so the
whole chain — tick, FlowRun, pod, kubelet, run status, the Schedule's view of its runs —
runs as in a cluster. Every wait is on an observable fact; the schedules tick every
second, so each test takes a few seconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from headwater.contract import LABEL_FLOW_RUN, LABEL_SCHEDULE
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet
from headwater_operator import kube as kube_module

WaitFor = Callable[..., Awaitable[Any]]
ApiWrites = Any  # tests/api/conftest.py:ApiWrites (conftest is not importable)


@contextlib.asynccontextmanager
async def running(namespace: str) -> AsyncIterator[OperatorHarness]:
    """The operator, started by the test's own task (kopf cancels later-created tasks)."""
    harness = OperatorHarness(namespaces=[namespace])
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


async def create_every_second(kube: kube_module.Kube, namespace: str, **spec: Any) -> None:
    await kube.create(kube_module.FLOWS, {
        "metadata": {"name": "f"},
        "spec": {"image": "example/flow:1", "entrypoint": "flows/f.py:f"},
    }, namespace=namespace)
    await kube.create(kube_module.DEPLOYMENTS, {
        "metadata": {"name": "nightly"}, "spec": {"flowRef": {"name": "f"}},
    }, namespace=namespace)
    await kube.create(kube_module.SCHEDULES, {
        "metadata": {"name": "fast"},
        "spec": {"deploymentRef": {"name": "nightly"}, "interval": "1s", **spec},
    }, namespace=namespace)


def runs(emulator: BackgroundEmulator, namespace: str) -> list[dict[str, Any]]:
    return emulator.objects("flowruns", namespace, label_selector=f"{LABEL_SCHEDULE}=fast")


def ticks(emulator: BackgroundEmulator, namespace: str) -> list[int]:
    """The tick (unix seconds) of every run, from its deterministic name."""
    return sorted(int(run["metadata"]["name"].rsplit("-", 1)[1])
                  for run in runs(emulator, namespace))


async def schedule_events(kube: kube_module.Kube, namespace: str) -> list[str]:
    events = await kube.list(kube_module.EVENTS, namespace=namespace)
    return [str(e.get("reason")) for e in events
            if (e.get("involvedObject") or {}).get("kind") == "Schedule"]


async def test_every_tick_runs_exactly_once_across_an_operator_restart(
    emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
    wait_for: WaitFor, api_writes: ApiWrites,
) -> None:
    async with running(namespace) as operator:
        await create_every_second(kube, namespace, catchup={"policy": "All"})
        await wait_for(lambda: len(ticks(emulator, namespace)) >= 3)

        await operator.restart()  # mid-stream: ticks come due while it is away
        restarted = ticks(emulator, namespace)[-1]
        await wait_for(lambda: ticks(emulator, namespace)[-1] >= restarted + 3)

    seen = ticks(emulator, namespace)
    # One run per tick: no tick twice, none missing, before, during or after the restart.
    assert seen == list(range(seen[0], seen[-1] + 1))
    for run in runs(emulator, namespace):
        tick = int(run["metadata"]["name"].rsplit("-", 1)[1])
        scheduled = datetime.fromisoformat(run["spec"]["scheduledTime"].replace("Z", "+00:00"))
        assert scheduled.timestamp() == tick
    assert api_writes.count(verb="create", resource="flowruns", code=201) == len(seen)


async def test_forbid_waits_for_the_running_pod_then_resumes(
    emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
    wait_for: WaitFor, kubelet: Kubelet,
) -> None:
    async with running(namespace):
        await create_every_second(kube, namespace, concurrencyPolicy="Forbid",
                                  catchup={"policy": "None"})
        await wait_for(lambda: runs(emulator, namespace))
        first = runs(emulator, namespace)[0]["metadata"]["name"]
        pod = await kubelet.wait_for_pod(f"{LABEL_FLOW_RUN}={first}")
        await kubelet.run(pod)

        await wait_for(lambda: _has(kube, namespace, "ForbidConcurrent"))
        assert [run["metadata"]["name"] for run in runs(emulator, namespace)] == [first]
        schedule = emulator.object("schedules", "fast") or {}
        assert [entry["name"] for entry in schedule["status"]["active"]] == [first]
        assert schedule["status"]["missedTicks"] >= 1

        await kubelet.succeed(pod)

        await wait_for(lambda: len(runs(emulator, namespace)) >= 2)

        # The wake-up that created the next run writes the status right after it (the
        # run's end itself refreshes the status only when the next tick is far).
        def refreshed() -> bool:
            status = (emulator.object("schedules", "fast") or {})["status"]
            return bool(status.get("lastSuccessfulTime")) and first not in [
                entry["name"] for entry in status["active"]]

        await wait_for(refreshed)


async def test_replace_cancels_the_running_pod_for_the_next_tick(
    emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
    wait_for: WaitFor, kubelet: Kubelet,
) -> None:
    async with running(namespace):
        await create_every_second(kube, namespace, concurrencyPolicy="Replace")
        await wait_for(lambda: runs(emulator, namespace))
        first = runs(emulator, namespace)[0]["metadata"]["name"]
        pod = await kubelet.wait_for_pod(f"{LABEL_FLOW_RUN}={first}")
        await kubelet.run(pod)

        def first_cancelled() -> bool:
            run = emulator.object("flowruns", first) or {}
            return bool(run["spec"].get("cancel"))

        await wait_for(first_cancelled)
        await wait_for(lambda: _has(kube, namespace, "Replaced"))
        assert len(runs(emulator, namespace)) >= 2


async def _has(kube: kube_module.Kube, namespace: str, reason: str) -> bool:
    return reason in await schedule_events(kube, namespace)
