"""A Deployment's run counts are written at most once per window; Ready changes at once.

:meth:`DeploymentController.reconcile` decides from what the watches keep in memory
(the Deployment and Flow stores, the facts of its FlowRuns fed through ``on_flowrun``)
and patches ``status``. A run-count-only change inside the coalescing window is held
back and the reconcile asks to run again at the window's end (``requeue_after``); a
refused status (422) is said in a Warning Event and not retried; an outage raises, so
the work queue retries it with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from headwater_operator import kube, runtime
from headwater_operator.clock import ManualClock
from headwater_operator.controllers.deployments import DeploymentController, coalesce_delay
from headwater_operator.informer import Store
from headwater_operator.runtime import Result

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
NS = "default"
KEY = (NS, "nightly")
FLOW_SPEC = {"image": "example/flow:1", "entrypoint": "flows/hello.py:hello"}


class RecordingClient(kube.Kube):
    """Records Deployment status patches; raises ``error`` for each while it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.patches: list[dict[str, Any]] = []
        self.error: Exception | None = None

    async def patch_status(self, resource: kube.Resource, name: str,
                           patch: Mapping[str, Any] | Sequence[Any], *,
                           namespace: str | None = None) -> kube.JsonObject:
        assert (resource.plural, name, namespace) == ("deployments", "nightly", NS)
        assert isinstance(patch, Mapping), "a merge patch"
        self.patches.append(dict(patch["status"]))
        if self.error is not None:
            raise self.error
        return {}


class RecordingEvents:
    """The controllers' EventRecorder: keeps what was posted."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str, str]] = []

    def post(self, involved: Mapping[str, Any], type_: str, reason: str,
             message: str) -> None:
        self.posted.append((involved["metadata"]["name"], type_, reason, message))


class RecordingObserver:
    """Counts the reconcile errors the controller reports (the rest is not asked here)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def observe_reconcile_error(self, kind: str) -> None:
        self.errors.append(kind)

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class Scene:
    """One Deployment ``nightly`` of Flow ``hello``, its runs, and a hand-moved monotonic."""

    def __init__(self) -> None:
        self.client = RecordingClient()
        self.events = RecordingEvents()
        self.observer = RecordingObserver()
        self.monotonic = 100.0
        self.deployments, self.flows = Store(), Store()
        self.flows.on_event("ADDED", {"apiVersion": "headwater.dev/v1alpha1", "kind": "Flow",
                                      "metadata": {"name": "hello", "namespace": NS},
                                      "spec": FLOW_SPEC})
        self.controller = DeploymentController(
            self.client, deployments=self.deployments, flows=self.flows, events=self.events,
            observer=self.observer, clock=ManualClock(NOW),
            monotonic=lambda: self.monotonic, status_interval=1.0)
        self.deployment(flow="hello")

    def deployment(self, *, flow: str, generation: int = 1) -> None:
        body = {"apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
                "metadata": {"name": "nightly", "namespace": NS, "uid": "u1",
                             "generation": generation},
                "spec": {"flowRef": {"name": flow}}, "status": {}}
        self.deployments.on_event("MODIFIED", body)  # the store is registered first
        self.controller.on_deployment("MODIFIED", body)

    def run(self, name: str, phase: str, *, end: str | None = None) -> None:
        status: dict[str, Any] = {"phase": phase}
        if end is not None:
            status["endTime"] = end
        self.controller.on_flowrun("MODIFIED", {
            "metadata": {"name": name, "namespace": NS,
                         "creationTimestamp": "2024-05-01T12:00:01Z"},
            "spec": {"deploymentRef": {"name": "nightly"}}, "status": status})

    async def reconcile(self) -> Result:
        return await self.controller.reconcile(KEY)


def held_for(result: Result) -> float | None:
    """In how many real seconds a reconcile that held a write back asks to run again."""
    assert (result.requeue, result.requeue_at) == (False, None)
    return result.requeue_after


def test_the_first_write_after_a_quiet_window_goes_out_at_once() -> None:
    assert coalesce_delay(None, 100.0, 1.0) == 0.0
    assert coalesce_delay(98.5, 100.0, 1.0) == 0.0
    assert coalesce_delay(99.75, 100.0, 1.0) == 0.75  # the rest of the window


async def test_run_counts_within_a_window_are_held_and_flushed_with_the_latest() -> None:
    scene = Scene()
    assert await scene.reconcile() == Result()  # Ready + counts: written at once
    assert len(scene.client.patches) == 1
    assert scene.client.patches[0]["activeRuns"] == 0

    scene.monotonic += 0.2
    scene.run("r1", "Pending")
    assert held_for(await scene.reconcile()) == pytest.approx(0.8)
    scene.monotonic += 0.3
    scene.run("r1", "Running")
    # Not pushed back by each change: the write is due when the window that the last
    # write opened ends.
    assert held_for(await scene.reconcile()) == pytest.approx(0.5)
    assert len(scene.client.patches) == 1, "held back"

    scene.monotonic += 0.5  # the window is over: the flush writes what is true now
    scene.run("r1", "Completed", end="2024-05-01T12:00:30Z")
    assert await scene.reconcile() == Result()
    assert len(scene.client.patches) == 2
    # Pending and Running were never written; the counts are back to 0 as last written.
    assert scene.client.patches[-1] == {"lastRun": {
        "name": "r1", "phase": "Completed", "endTime": "2024-05-01T12:00:30Z"}}


async def test_an_unchanged_status_is_not_written_and_asks_for_nothing() -> None:
    scene = Scene()
    await scene.reconcile()
    scene.monotonic += 0.1  # inside the window, but there is nothing to hold back
    assert await scene.reconcile() == Result()
    assert len(scene.client.patches) == 1


async def test_a_ready_change_is_written_at_once_even_inside_the_window() -> None:
    scene = Scene()
    await scene.reconcile()
    assert scene.events.posted[-1][1:3] == ("Normal", "Valid")
    scene.monotonic += 0.1
    scene.run("r1", "Running")
    scene.deployment(flow="missing", generation=2)  # Ready turns False: users must see it
    assert await scene.reconcile() == Result()
    assert len(scene.client.patches) == 2
    assert scene.client.patches[-1]["activeRuns"] == 1  # the counts ride along
    assert scene.client.patches[-1]["observedGeneration"] == 2
    assert scene.events.posted[-1][1:3] == ("Warning", "FlowNotFound")


async def test_the_held_write_goes_out_when_the_work_queue_runs_it_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end through the work queue: run events inside the window cost one write
    at its end, carrying the latest counts."""
    waits: list[tuple[float, Callable[[], None]]] = []

    class RecordedTimer:
        def __init__(self, delay: float, callback: Callable[[], None]) -> None:
            waits.append((delay, callback))

        def cancel(self) -> None:
            pass

    monkeypatch.setattr(runtime, "_RealTimer", RecordedTimer)  # fired by hand below
    scene = Scene()
    queue = scene.controller.queue
    task = asyncio.create_task(queue.run())
    try:
        await _quiet(queue)
        scene.monotonic += 0.25
        for phase in ("Pending", "Running"):
            scene.run("r1", phase)
            await _quiet(queue)
        assert len(scene.client.patches) == 1
        assert [delay for delay, _ in waits] == [pytest.approx(0.75)] * 2
        scene.monotonic += 0.75
        waits[-1][1]()  # the window's end
        await _quiet(queue)
        assert len(scene.client.patches) == 2
        assert scene.client.patches[-1]["activeRuns"] == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _quiet(queue: runtime.Controller[Any]) -> None:
    for _ in range(50):
        await asyncio.sleep(0)
    assert queue.depth == 0
    assert queue.busy == 0


async def test_a_refused_status_is_announced_and_not_retried() -> None:
    scene = Scene()
    message = ('Deployment.headwater.dev "nightly" is invalid: status.activeRuns: '
               "Invalid value: -1")
    scene.client.error = kube.Invalid(422, "Invalid", message)
    assert await scene.reconcile() == Result(), "no retry is asked for"
    assert len(scene.client.patches) == 1
    [(name, type_, reason, text)] = scene.events.posted
    assert (name, type_, reason) == ("nightly", "Warning", "StatusRejected")
    assert message in text
    assert "not retried until the Deployment, its Flow or one of its runs changes" in text
    assert scene.observer.errors == ["Deployment"]

    # The next change tries again (with the status as it is, not as refused).
    scene.client.error = None
    scene.run("r1", "Running")
    scene.monotonic += 5
    await scene.reconcile()
    assert len(scene.client.patches) == 2
    assert scene.client.patches[-1]["activeRuns"] == 1


async def test_an_outage_raises_so_the_work_queue_retries_it() -> None:
    scene = Scene()
    scene.client.error = kube.KubeError(503, "ServiceUnavailable", "etcd is unavailable")
    with pytest.raises(kube.KubeError, match="etcd is unavailable"):
        await scene.reconcile()
    assert scene.events.posted == []
    assert scene.observer.errors == ["Deployment"]
    scene.client.error = None
    scene.monotonic += 0.1  # the retry inside the window: Ready was never written
    assert await scene.reconcile() == Result()
    assert len(scene.client.patches) == 2
    assert scene.client.patches[-1] == scene.client.patches[0]


async def test_history_expiry_and_a_held_write_ask_for_both_timers() -> None:
    scene = Scene()
    body = scene.deployments.get(*KEY)
    assert body is not None
    body = {**body, "spec": {**body["spec"], "history": {"ttlSecondsAfterFinished": 60}}}
    scene.deployments.on_event("MODIFIED", body)
    scene.run("r0", "Completed", end="2024-05-01T11:59:30Z")
    await scene.reconcile()
    scene.monotonic += 0.5
    scene.run("r1", "Pending")
    result = await scene.reconcile()
    assert result.requeue_at == NOW + timedelta(seconds=30)  # r0 expires 60 s after its end
    assert result.requeue_after == pytest.approx(0.5)
