"""The Schedule controller's watch bookkeeping and its wake-ups through the work queue.

The controller's callbacks run for every watch event, so they must stay cheap and their
memory bounded: these tests drive them directly (no API server) and read what they woke
from the work queue. The wake-up tests call :meth:`ScheduleController.reconcile` as a
worker would, against the in-memory client of the reconciler tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from headwater.contract import LABEL_SCHEDULE
from headwater_operator import kube
from headwater_operator.clock import ManualClock
from headwater_operator.controllers.schedules import (
    ACTIVE_REFRESH_SLACK_SECONDS,
    ScheduleController,
    WatchState,
    _Entry,
)
from headwater_operator.events import EventRecorder
from headwater_operator.runtime import Result

from tests.unit.scheduling.test_scheduling_reconciler import FakeKube, setup

NS = "team-a"
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


class Recorder:
    """The controller's EventRecorder: keeps what would be posted."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str, str]] = []

    def post(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.posted.append((obj["metadata"]["name"], type_, reason, message))


def run(name: str, phase: str | None = None, *, schedule: str | None = "hourly",
        end: str | None = None) -> dict[str, Any]:
    labels = {LABEL_SCHEDULE: schedule} if schedule else {}
    return {"metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": {"scheduledTime": "2026-03-01T12:00:00Z"},
            "status": {"phase": phase, "endTime": end}}


def deployment(name: str = "nightly", *, uid: str = "u1", paused: bool = False,
               status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS, "uid": uid},
            "spec": {"paused": paused}, "status": status or {}}


def new_controller(client: object | None = None, *,
                   clock: ManualClock | None = None) -> ScheduleController:
    return ScheduleController(cast(kube.Kube, client or object()), events=Recorder(),
                              clock=clock or ManualClock(T0))


@pytest.fixture
def controller() -> ScheduleController:
    return new_controller()  # no requests: callbacks only


def entry(controller: ScheduleController, name: str = "hourly", *,
          deployment: str = "nightly", active: frozenset[str] = frozenset()) -> _Entry:
    """A Schedule the controller knows and has reconciled once (so nothing is queued)."""
    found = _Entry(live={"metadata": {"name": name, "namespace": NS, "uid": "s1"}},
                   watch=WatchState(watching_since=T0), deployment=deployment,
                   active=active, generation=1)
    controller.schedules[(NS, name)] = found
    return found


def woken(controller: ScheduleController, name: str = "hourly") -> bool:
    return controller.queue.pending((NS, name))


def remembered(controller: ScheduleController, schedule: str = "hourly") -> dict[str, str]:
    return {each["metadata"]["name"]: each["status"]["phase"]
            for each in controller.cache.runs.get((NS, schedule), ())}


def test_active_runs_are_kept_and_finished_ones_forgotten(
        controller: ScheduleController) -> None:
    controller.on_run("ADDED", run("r1"))
    controller.on_run("ADDED", run("r2", "Running"))
    assert remembered(controller) == {"r1": None, "r2": "Running"}
    controller.on_run("MODIFIED", run("r1", "Failed", end="2026-03-01T12:05:00Z"))
    assert remembered(controller) == {"r2": "Running"}


def test_only_the_latest_completed_run_is_kept_for_last_successful_time(
        controller: ScheduleController) -> None:
    """Memory is bounded by active runs: a thousand finished runs leave one entry."""
    for minute in range(10):
        controller.on_run("MODIFIED", run(f"r{minute}", "Completed",
                                          end=f"2026-03-01T12:{minute:02d}:00Z"))
    # Out of order (a relist after a watch gap): an older completion changes nothing.
    controller.on_run("MODIFIED", run("old", "Completed", end="2026-03-01T11:00:00Z"))
    assert remembered(controller) == {"r9": "Completed"}
    controller.on_run("DELETED", run("r9", "Completed", end="2026-03-01T12:09:00Z"))
    assert remembered(controller) == {}
    assert controller.runs == {}


def test_a_deletion_reported_without_labels_still_finds_its_schedule(
        controller: ScheduleController) -> None:
    """A relist reports objects deleted while unwatched by metadata only (the informer's
    tombstone: name, namespace, uid, resourceVersion; no labels)."""
    controller.on_run("ADDED", run("r1", "Running"))
    controller.on_run("DELETED", {"metadata": {"name": "r1", "namespace": NS, "uid": "u",
                                               "resourceVersion": "7"}})
    assert remembered(controller) == {}


def test_runs_of_unscheduled_runs_are_ignored(controller: ScheduleController) -> None:
    controller.on_run("ADDED", run("adhoc", "Running", schedule=None))
    assert controller.runs == {}


def test_an_active_run_ending_wakes_its_schedule_only(
        controller: ScheduleController) -> None:
    entry(controller, active=frozenset({"r1"}))
    entry(controller, "daily")
    controller.on_run("ADDED", run("r1", "Running"))
    assert not woken(controller)
    controller.on_run("MODIFIED", run("r1", "Completed", end="2026-03-01T12:01:00Z"))
    assert woken(controller)
    assert not woken(controller, "daily")


def test_a_run_ending_just_before_the_next_tick_waits_for_that_tick(
        controller: ScheduleController) -> None:
    """The tick rewrites the status anyway: no second status write for a frequent Schedule."""
    soon, later = entry(controller), entry(controller, "daily")
    soon.next_tick = T0 + timedelta(seconds=ACTIVE_REFRESH_SLACK_SECONDS)
    later.next_tick = T0 + timedelta(seconds=ACTIVE_REFRESH_SLACK_SECONDS + 1)
    for schedule in ("hourly", "daily"):
        controller.on_run("ADDED", run(f"{schedule}-1", "Running", schedule=schedule))
        controller.on_run("MODIFIED", run(f"{schedule}-1", "Failed", schedule=schedule,
                                          end="2026-03-01T12:00:00Z"))
    assert not woken(controller)
    assert woken(controller, "daily")
    # Either way the run is no longer active for the next decision.
    assert remembered(controller, "hourly") == {}


def test_deployment_pause_wakes_its_schedules_but_status_churn_does_not() -> None:
    def known(*events: tuple[str, dict[str, Any]]) -> ScheduleController:
        """A controller that has seen ``events`` before its Schedules were reconciled."""
        made = new_controller()
        for type_, obj in events:
            made.on_deployment(type_, obj)
        entry(made)
        entry(made, "daily", deployment="weekly")
        return made

    controller = known()
    controller.on_deployment("ADDED", deployment())
    assert woken(controller)
    assert not woken(controller, "daily")

    controller = known(("ADDED", deployment()))
    controller.on_deployment("MODIFIED", deployment(status={"activeRuns": 3}))
    assert not woken(controller)
    controller.on_deployment("MODIFIED", deployment(paused=True))
    assert woken(controller)
    assert not woken(controller, "daily")
    assert next(iter(controller.cache.deployments[(NS, "nightly")]))["spec"] == {
        "paused": True}

    controller = known(("ADDED", deployment(paused=True)))
    controller.on_deployment("DELETED", deployment(paused=True))
    assert woken(controller)
    assert not woken(controller, "daily")
    assert (NS, "nightly") not in controller.cache.deployments


def test_a_new_generation_asks_for_a_reread_but_a_status_write_does_not(
        controller: ScheduleController) -> None:
    found = entry(controller)
    body = {"metadata": {"name": "hourly", "namespace": NS, "uid": "s1", "generation": 1},
            "spec": {}, "status": {"nextScheduleTime": "2026-03-01T13:00:00Z"}}
    controller.on_schedule("MODIFIED", body)
    assert not woken(controller)
    assert not found.reread
    # The controller's own status write is newer than the watched one: status is dropped.
    assert found.live == {k: v for k, v in body.items() if k != "status"}
    controller.on_schedule("MODIFIED", {**body, "metadata": {**body["metadata"],
                                                             "generation": 2}})
    assert found.reread
    assert woken(controller)


def test_a_schedule_created_again_with_a_new_uid_starts_afresh(
        controller: ScheduleController) -> None:
    found = entry(controller)
    found.written = {"status": {"lastScheduleTime": "2026-03-01T11:00:00Z"}}
    again = {"metadata": {"name": "hourly", "namespace": NS, "uid": "s2", "generation": 1},
             "spec": {}}
    controller.on_schedule("MODIFIED", again)
    replaced = controller.schedules[(NS, "hourly")]
    assert replaced is not found
    assert replaced.written is None
    assert replaced.live is again
    assert woken(controller)


async def test_a_deleted_schedule_is_forgotten(controller: ScheduleController) -> None:
    """Its timer and retries are the work queue's to drop (``forget``, tested there); a
    wake-up already queued finds nothing to do."""
    found = entry(controller)
    controller.on_schedule("DELETED", found.live)
    assert (NS, "hourly") not in controller.schedules
    assert await controller.reconcile((NS, "hourly")) == Result()


async def test_a_failed_wake_up_is_retried_from_a_fresh_read_and_runs_the_tick_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The API server failing the status write must neither lose nor double the tick."""
    client = setup({"interval": "1h"})
    failures = [kube.KubeError(500, "InternalError", "etcd timed out")]
    reads: list[str] = []
    write_status, read = client.patch_status, client.get

    async def flaky_patch_status(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await write_status(*args, **kwargs)

    async def counted_get(resource: kube.Resource, name: str, **kwargs: Any) -> Any:
        reads.append(resource.plural)
        return await read(resource, name, **kwargs)

    monkeypatch.setattr(client, "patch_status", flaky_patch_status)
    monkeypatch.setattr(client, "get", counted_get)
    # 13:00 is a tick of an hourly interval anchored at midnight 2000; created at 12:00.
    controller = new_controller(client, clock=ManualClock(datetime(2026, 3, 1, 13,
                                                                   tzinfo=UTC)))
    controller.on_deployment("ADDED", {**client.objects["deployments", "etl"],
                                       "metadata": {"name": "etl", "namespace": "default",
                                                    "uid": "dep-uid"}})
    schedule = client.objects["schedules", "nightly"]
    controller.on_schedule("ADDED", {**schedule,
                                     "status": {"lastScheduleTime": "2026-03-01T12:00:00Z"}})
    key = ("default", "nightly")

    with pytest.raises(kube.KubeError):  # the queue retries it with backoff
        await controller.reconcile(key)
    assert reads == []
    assert client.creates == 1
    answer = await controller.reconcile(key)

    assert schedule["status"]["nextScheduleTime"] == "2026-03-01T14:00:00Z"
    assert answer == Result(requeue_at=datetime(2026, 3, 1, 14, tzinfo=UTC))
    assert reads == ["schedules"], "the retry re-reads the Schedule once"
    runs = [name for plural, name in client.objects if plural == "flowruns"]
    assert len(runs) == 1
    assert client.creates == 1  # the retry found the run it had created: the same run


async def test_a_refused_status_write_is_reported_once_and_not_retried(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """422 is an answer about what was sent: retrying sends the same and gets the same."""
    client = setup({"interval": "1h"})
    attempts: list[str] = []

    async def refused_patch_status(resource: kube.Resource, name: str, *args: Any,
                                   **kwargs: Any) -> Any:
        attempts.append(name)
        raise kube.Invalid(422, "Invalid", f'Schedule.headwater.dev "{name}" is invalid: '
                                           "status.missedTicks: Invalid value: -1")

    monkeypatch.setattr(client, "patch_status", refused_patch_status)
    controller = new_controller(client, clock=ManualClock(datetime(2026, 3, 1, 13,
                                                                   tzinfo=UTC)))
    controller.on_deployment("ADDED", {"metadata": {"name": "etl", "namespace": "default",
                                                    "uid": "dep-uid"}, "spec": {}})
    controller.on_schedule("ADDED", client.objects["schedules", "nightly"])

    answer = await controller.reconcile(("default", "nightly"))

    assert answer == Result()  # no retry, no timer: waits for a change
    assert attempts == ["nightly"]
    posted = cast(Recorder, controller.events).posted
    assert [(name, type_, reason) for name, type_, reason, _ in posted] == [
        ("nightly", "Warning", "StatusRejected")]
    assert "status.missedTicks" in posted[0][3]


class GatedKube(FakeKube):
    """The in-memory client behind a request gate of one slot, as the real client's
    (:class:`kube.RequestGate`): records the order in which requests get through."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        super().__init__()
        self.objects = objects
        self.gate = kube.RequestGate(1)
        self.sent: list[tuple[str, str]] = []

    async def create(self, resource: kube.Resource, body: Mapping[str, Any], *,
                     namespace: str) -> Any:
        async with self.gate:
            self.sent.append((f"create {resource.plural}",
                              body.get("reason") or body["metadata"]["name"]))
            if resource is kube.EVENTS:
                return body
            return await super().create(resource, body, namespace=namespace)

    async def patch_status(self, resource: kube.Resource, name: str,
                           patch: Mapping[str, Any], *, namespace: str) -> Any:
        async with self.gate:
            self.sent.append(("patch status", name))
            return await super().patch_status(resource, name, patch, namespace=namespace)


def gated_controller(*, also: dict[str, Any], events: bool = False
                     ) -> tuple[GatedKube, ScheduleController]:
    """"nightly" (hourly, its 13:00 tick due) and a second Schedule with spec ``also``,
    known to a controller at 13:00."""
    client = GatedKube(setup({"interval": "1h"}).objects)
    nightly = client.objects["schedules", "nightly"]
    client.objects["schedules", "other"] = {
        **nightly, "metadata": {**nightly["metadata"], "name": "other"},
        "spec": {**nightly["spec"], **also}, "status": {}}
    controller = new_controller(client, clock=ManualClock(datetime(2026, 3, 1, 13,
                                                                   tzinfo=UTC)))
    if events:
        controller.events = EventRecorder(cast(kube.Kube, client))
    controller.on_deployment("ADDED", {"metadata": {"name": "etl", "namespace": "default",
                                                    "uid": "dep-uid"}, "spec": {}})
    for name in ("other", "nightly"):
        controller.on_schedule("ADDED", {**client.objects["schedules", name],
                                         "status": {"lastScheduleTime": T0_NOON}})
    return client, controller


T0_NOON = "2026-03-01T12:00:00Z"


async def settle() -> None:
    """Let every ready task run up to its next wait (the gate)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_tick_due_is_created_before_status_writes_waiting_for_the_client() -> None:
    """At a burst the client's slots are all taken and requests queue: the run of a tick
    due goes before the status write of a Schedule woken earlier (its run's end, say),
    which only reports; that Schedule's status is still written after."""
    client, controller = gated_controller(also={"suspend": True})
    await client.gate.acquire()  # every slot busy
    held = asyncio.ensure_future(controller.reconcile(("default", "other")))
    await settle()  # its status write waits
    due = asyncio.ensure_future(controller.reconcile(("default", "nightly")))
    await settle()  # the tick's create waits

    client.gate.release()
    await asyncio.gather(held, due)

    run = next(name for plural, name in client.objects if plural == "flowruns")
    assert client.sent == [("create flowruns", run), ("patch status", "other"),
                           ("patch status", "nightly")]
    assert client.objects["schedules", "other"]["status"]["conditions"]
    assert client.objects["schedules", "nightly"]["status"]["lastScheduleTime"] == (
        "2026-03-01T13:00:00Z")


async def test_a_schedules_events_wait_behind_a_tick_due() -> None:
    client, controller = gated_controller(also={"interval": "banana"}, events=True)
    await controller.reconcile(("default", "other"))  # invalid: a Warning Event to post
    await client.gate.acquire()  # every slot busy before the Event's task runs
    due = asyncio.ensure_future(controller.reconcile(("default", "nightly")))
    await settle()  # the Event and the tick's create both wait

    client.gate.release()
    await due
    await cast(EventRecorder, controller.events).close(grace=5)

    sent = [what for what, _ in client.sent]
    assert sent.index("create flowruns") < sent.index("create events")
    assert ("create events", "Invalid") in client.sent
