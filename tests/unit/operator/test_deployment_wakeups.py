"""Per-Deployment wake-ups (TTL expiry, retry after an error): one pending, the earliest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from headwater_operator.handlers.deployments import DeploymentState

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
KEY = ("default", "nightly")


def state() -> DeploymentState:
    return DeploymentState(clock=lambda: NOW, client=None)  # type: ignore[arg-type]


async def test_an_earlier_wake_up_replaces_a_later_one_and_not_the_reverse() -> None:
    woken: list[str] = []
    deployments = state()

    async def job(label: str) -> None:
        woken.append(label)

    deployments.wake_at(KEY, NOW + timedelta(hours=1), lambda: job("late"))
    deployments.wake_at(KEY, NOW, lambda: job("early"))
    deployments.wake_at(KEY, NOW + timedelta(hours=2), lambda: job("later"))
    for _ in range(5):
        await asyncio.sleep(0)

    assert woken == ["early"]
    assert KEY not in deployments.wakeups


async def test_forget_and_close_cancel_pending_wake_ups() -> None:
    woken: list[str] = []
    deployments = state()

    async def job() -> None:
        woken.append("woken")

    deployments.wake_at(KEY, NOW, job)
    deployments.forget(KEY)
    deployments.wake_at(("default", "other"), NOW, job)
    deployments.close()
    for _ in range(5):
        await asyncio.sleep(0)

    assert woken == []
    assert deployments.wakeups == {}


async def test_requests_during_an_evaluation_fold_into_one_more() -> None:
    deployments = state()
    started: list[bool] = []
    release = asyncio.Event()

    async def evaluate(prune: bool) -> None:
        started.append(prune)
        await release.wait()

    deployments.request(KEY, False, evaluate)
    await asyncio.sleep(0)
    assert started == [False]  # the caller did not wait for it
    for prune in (False, True, False):  # three FlowRun events while it runs
        deployments.request(KEY, prune, evaluate)
    release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert started == [False, True], "one more evaluation, pruning since one asked to"
    assert KEY not in deployments.evaluating
    deployments.request(KEY, False, evaluate)
    await asyncio.sleep(0)
    assert started == [False, True, False], "a later request starts a new one"
