"""The Schedule controller's watch bookkeeping: which runs it remembers, what rings a Schedule.

The controller's callbacks run for every watch event, so they must stay cheap and their
memory bounded; these tests drive them directly (no API server, no Schedule tasks).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from headwater.contract import LABEL_SCHEDULE
from headwater_operator import kube
from headwater_operator.reasons import EVENT_MESSAGE_MAX_BYTES
from headwater_operator.scheduling.clock import ManualClock
from headwater_operator.scheduling.controller import (
    ACTIVE_REFRESH_SLACK_SECONDS,
    ScheduleController,
    _Entry,
    schedule_event,
)

NS = "team-a"


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


@pytest.fixture
def controller() -> ScheduleController:
    return ScheduleController(cast(kube.Kube, object()), [NS])  # no requests here


def entry(controller: ScheduleController, name: str = "hourly", *,
          deployment: str = "nightly", active: frozenset[str] = frozenset()) -> _Entry:
    """A Schedule the controller knows, without starting its task."""
    found = _Entry(live={"metadata": {"name": name, "namespace": NS, "uid": "s1"}},
                   deployment=deployment, active=active)
    controller.schedules[(NS, name)] = found
    return found


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
    """A relist reports objects deleted while unwatched by name only."""
    controller.on_run("ADDED", run("r1", "Running"))
    controller.on_run("DELETED", run("r1", schedule=None))
    assert remembered(controller) == {}


def test_runs_of_unscheduled_runs_are_ignored(controller: ScheduleController) -> None:
    controller.on_run("ADDED", run("adhoc", "Running", schedule=None))
    assert controller.runs == {}


async def test_an_active_run_ending_rings_its_schedule_only(
        controller: ScheduleController) -> None:
    mine = entry(controller, active=frozenset({"r1"}))
    other = entry(controller, "daily")
    controller.on_run("ADDED", run("r1", "Running"))
    assert not mine.doorbell.is_set()
    controller.on_run("MODIFIED", run("r1", "Completed", end="2026-03-01T12:01:00Z"))
    assert mine.doorbell.is_set()
    assert not other.doorbell.is_set()


async def test_a_run_ending_just_before_the_next_tick_waits_for_that_tick() -> None:
    """The tick rewrites the status anyway: no second status write for a frequent Schedule."""
    clock = ManualClock(datetime(2026, 3, 1, 12, tzinfo=UTC))
    controller = ScheduleController(cast(kube.Kube, object()), [NS], clock=clock)
    soon, later = entry(controller), entry(controller, "daily")
    soon.next_tick = clock.now() + timedelta(seconds=ACTIVE_REFRESH_SLACK_SECONDS)
    later.next_tick = clock.now() + timedelta(seconds=ACTIVE_REFRESH_SLACK_SECONDS + 1)
    for schedule in ("hourly", "daily"):
        controller.on_run("ADDED", run(f"{schedule}-1", "Running", schedule=schedule))
        controller.on_run("MODIFIED", run(f"{schedule}-1", "Failed", schedule=schedule,
                                          end="2026-03-01T12:00:00Z"))
    assert not soon.doorbell.is_set()
    assert later.doorbell.is_set()
    # Either way the run is no longer active for the next decision.
    assert remembered(controller, "hourly") == {}


async def test_deployment_pause_rings_its_schedules_but_status_churn_does_not(
        controller: ScheduleController) -> None:
    mine = entry(controller)
    other = entry(controller, "daily", deployment="weekly")
    controller.on_deployment("ADDED", deployment())
    assert mine.doorbell.is_set()
    mine.doorbell.clear()
    controller.on_deployment("MODIFIED", deployment(status={"activeRuns": 3}))
    assert not mine.doorbell.is_set()
    controller.on_deployment("MODIFIED", deployment(paused=True))
    assert mine.doorbell.is_set()
    assert not other.doorbell.is_set()
    assert next(iter(controller.cache.deployments[(NS, "nightly")]))["spec"] == {
        "paused": True}
    mine.doorbell.clear()
    controller.on_deployment("DELETED", deployment(paused=True))
    assert mine.doorbell.is_set()
    assert (NS, "nightly") not in controller.cache.deployments


async def test_a_new_generation_asks_the_task_to_reread_but_a_status_write_does_not(
        controller: ScheduleController) -> None:
    found = entry(controller)
    found.generation = 1
    body = {"metadata": {"name": "hourly", "namespace": NS, "uid": "s1", "generation": 1},
            "spec": {}, "status": {"nextScheduleTime": "2026-03-01T13:00:00Z"}}
    controller.on_schedule("MODIFIED", body)
    assert not found.doorbell.is_set()
    assert found.live is body
    controller.on_schedule("MODIFIED", {**body, "metadata": {**body["metadata"],
                                                             "generation": 2}})
    assert found.reread
    assert found.doorbell.is_set()


async def test_a_deleted_schedule_stops_its_task(controller: ScheduleController) -> None:
    found = entry(controller)
    controller.on_schedule("DELETED", found.live)
    assert found.stopped
    assert found.doorbell.is_set()
    assert (NS, "hourly") not in controller.schedules


def test_event_names_the_schedule_and_bounds_the_message() -> None:
    schedule = {"apiVersion": "headwater.dev/v1alpha1",
                "metadata": {"name": "hourly", "namespace": NS, "uid": "s1"}}
    event = schedule_event(schedule, "Warning", "MissedTicks", "x" * 5000,
                           datetime(2026, 3, 1, 12, tzinfo=UTC))
    assert event["involvedObject"] == {"apiVersion": "headwater.dev/v1alpha1",
                                       "kind": "Schedule", "name": "hourly",
                                       "namespace": NS, "uid": "s1"}
    assert event["metadata"] == {"generateName": "hourly.", "namespace": NS}
    assert (event["type"], event["reason"]) == ("Warning", "MissedTicks")
    assert len(event["message"]) == EVENT_MESSAGE_MAX_BYTES
    assert event["lastTimestamp"] == "2026-03-01T12:00:00Z"
    # The API server counts bytes: a non-ASCII message is cut on a character boundary.
    accented = schedule_event(schedule, "Warning", "MissedTicks", "é" * 1000,
                              datetime(2026, 3, 1, 12, tzinfo=UTC))
    assert accented["message"] == "é" * 512
    assert len(accented["message"].encode()) <= EVENT_MESSAGE_MAX_BYTES



async def test_a_failed_wake_up_is_retried_from_a_fresh_read_and_runs_the_tick_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The API server failing the status write must neither lose nor double the tick."""
    from tests.unit.scheduling.test_scheduling_reconciler import setup

    monkeypatch.setattr("headwater_operator.scheduling.controller.RETRY_SECONDS", (0.0,))
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
    clock = ManualClock(datetime(2026, 3, 1, 13, tzinfo=UTC))
    controller = ScheduleController(cast(kube.Kube, client), ["default"], clock=clock)
    controller.on_deployment("ADDED", {**client.objects["deployments", "etl"],
                                       "metadata": {"name": "etl", "namespace": "default",
                                                    "uid": "dep-uid"}})
    schedule = client.objects["schedules", "nightly"]
    controller.on_schedule("ADDED", {**schedule,
                                     "status": {"lastScheduleTime": "2026-03-01T12:00:00Z"}})
    entry_ = controller.schedules[("default", "nightly")]
    for _ in range(200):
        if (schedule.get("status") or {}).get("nextScheduleTime"):
            break
        await asyncio.sleep(0)
    try:
        assert schedule["status"]["nextScheduleTime"] == "2026-03-01T14:00:00Z"
        assert reads == ["schedules"], "the retry re-reads the Schedule once"
        runs = [name for plural, name in client.objects if plural == "flowruns"]
        assert len(runs) == 1
        assert client.creates == 1  # the retry's create was a 409: the same run
    finally:
        entry_.stopped = True
        entry_.doorbell.set()
        assert entry_.task is not None
        await entry_.task


async def test_a_refused_status_write_is_reported_once_and_not_retried(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """422 is an answer about what was sent: retrying sends the same and gets the same."""
    from tests.unit.scheduling.test_scheduling_reconciler import setup

    monkeypatch.setattr("headwater_operator.scheduling.controller.RETRY_SECONDS", (0.0,))
    client = setup({"interval": "1h"})
    attempts: list[str] = []

    async def refused_patch_status(resource: kube.Resource, name: str, *args: Any,
                                   **kwargs: Any) -> Any:
        attempts.append(name)
        raise kube.Invalid(422, "Invalid", f'Schedule.headwater.dev "{name}" is invalid: '
                                           "status.missedTicks: Invalid value: -1")

    monkeypatch.setattr(client, "patch_status", refused_patch_status)
    clock = ManualClock(datetime(2026, 3, 1, 13, tzinfo=UTC))
    controller = ScheduleController(cast(kube.Kube, client), ["default"], clock=clock)
    posted: list[tuple[str, str, str]] = []
    monkeypatch.setattr(controller, "_post_events",
                        lambda schedule, events, budget, now: posted.extend(events))
    controller.on_deployment("ADDED", {"metadata": {"name": "etl", "namespace": "default",
                                                    "uid": "dep-uid"}, "spec": {}})
    controller.on_schedule("ADDED", client.objects["schedules", "nightly"])
    entry_ = controller.schedules[("default", "nightly")]
    try:
        for _ in range(200):
            await asyncio.sleep(0)
        assert attempts == ["nightly"]
        assert [(type_, reason) for type_, reason, _ in posted] == [
            ("Warning", "StatusRejected")]
        assert "status.missedTicks" in posted[0][2]
    finally:
        entry_.stopped = True
        entry_.doorbell.set()
        assert entry_.task is not None
        await entry_.task
