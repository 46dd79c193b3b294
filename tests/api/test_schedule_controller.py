"""The Schedule controller as the operator starts it: alone, or behind a Lease with replicas.

With kopf peering (``--peering NAME``, the chart's ``replicas > 1``) only the replica that
holds the Lease ``NAME-scheduler`` may write Schedules' status and create their runs; a
replica that stops hands the Lease over at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import kopf
import pytest
from headwater_operator import kube as kube_module
from headwater_operator.devcluster.emulator import BackgroundEmulator
from headwater_operator.handlers.schedules import (
    CONTROLLER_KEY,
    LEASE_SUFFIX,
    start_schedule_controller,
    stop_schedule_controller,
)
from headwater_operator.runner import SCOPE_KEY, OperatorScope
from headwater_operator.scheduling.controller import ScheduleController

WaitFor = Callable[..., Awaitable[Any]]
CreateDeployment = Callable[..., Awaitable[None]]
PEERING = "hw"
LEASE = PEERING + LEASE_SUFFIX


def controller_of(memo: kopf.Memo) -> ScheduleController:
    found = memo[CONTROLLER_KEY]
    assert isinstance(found, ScheduleController)
    return found


@pytest.fixture
async def replicas(namespace: str, monkeypatch: pytest.MonkeyPatch
                   ) -> AsyncIterator[list[kopf.Memo]]:
    """Two operator replicas' Schedule controllers, as their startup handlers start them."""
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    memos = [kopf.Memo({SCOPE_KEY: OperatorScope((namespace,), PEERING)}) for _ in range(2)]
    for memo in memos:
        await start_schedule_controller(memo=memo)
    try:
        yield memos
    finally:
        for memo in memos:
            await stop_schedule_controller(memo=memo)


async def hourly_schedule(kube: kube_module.Kube, namespace: str) -> None:
    await kube.create(kube_module.SCHEDULES, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "Schedule",
        "metadata": {"name": "hourly"},
        "spec": {"deploymentRef": {"name": "nightly"}, "interval": "1h"},
    }, namespace=namespace)


async def test_only_the_lease_holder_schedules_and_a_stopping_one_hands_over(
    *, replicas: list[kopf.Memo], kube: kube_module.Kube, emulator: BackgroundEmulator,
    namespace: str, hello_deployment: CreateDeployment, wait_for: WaitFor,
) -> None:
    await hello_deployment()
    await hourly_schedule(kube, namespace)

    def status() -> dict[str, Any]:
        return dict((emulator.object("schedules", "hourly") or {}).get("status") or {})

    await wait_for(lambda: status().get("nextScheduleTime"))
    leaders = [memo for memo in replicas if controller_of(memo).synced.is_set()]
    assert len(leaders) == 1, "exactly one replica runs the Schedule controller"
    lease = await kube.get(kube_module.LEASES, LEASE, namespace=namespace)
    first_holder = lease["spec"]["holderIdentity"]
    assert first_holder

    [leader] = leaders
    [standby] = [memo for memo in replicas if memo is not leader]
    await stop_schedule_controller(memo=leader)

    async def new_holder() -> str | None:
        found = await kube.get(kube_module.LEASES, LEASE, namespace=namespace)
        holder = found["spec"].get("holderIdentity")
        return holder if holder and holder != first_holder else None

    await wait_for(new_holder)
    await wait_for(controller_of(standby).synced.is_set)
    # The new leader listed what exists and took the Schedule over.
    assert ("default", "hourly") in controller_of(standby).schedules


async def test_a_standalone_operator_schedules_without_a_lease(
    *, kube: kube_module.Kube, emulator: BackgroundEmulator, namespace: str,
    hello_deployment: CreateDeployment, wait_for: WaitFor,
) -> None:
    memo = kopf.Memo({SCOPE_KEY: OperatorScope((namespace,))})
    await start_schedule_controller(memo=memo)
    try:
        await hello_deployment()
        await hourly_schedule(kube, namespace)
        await wait_for(lambda: ((emulator.object("schedules", "hourly") or {})
                                .get("status") or {}).get("nextScheduleTime"))
        with pytest.raises(kube_module.NotFound):
            await kube.get(kube_module.LEASES, LEASE, namespace=namespace)
    finally:
        await stop_schedule_controller(memo=memo)


async def test_without_the_operator_scope_the_controller_refuses_to_start() -> None:
    with pytest.raises(kopf.PermanentError, match="run_operator"):
        await start_schedule_controller(memo=kopf.Memo())
