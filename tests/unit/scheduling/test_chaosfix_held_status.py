"""A held Schedule's ``status.active`` follows its runs; a wake-up that changes nothing
writes nothing (issue #11, "Held Schedules keep stale status.active")."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

import pytest
from headwater.contract import LABEL_SCHEDULE
from headwater_operator import kube
from headwater_operator.controllers.schedules import (
    Cache,
    ScheduleController,
    WatchState,
    _Entry,
    reconcile_schedule,
)
from headwater_operator.scheduling.status import active_entries, status_changes
from test_scheduling_reconciler import STARTED, T0, FakeKube, setup, status, wake

ENDED = "2026-03-01T12:30:00Z"


class CountingKube(FakeKube):
    """:class:`FakeKube` that counts status patches."""

    def __init__(self) -> None:
        super().__init__()
        self.status_patches = 0

    async def patch_status(self, resource: kube.Resource, name: str,
                           patch: Any, *, namespace: str) -> Any:
        self.status_patches += 1
        return await super().patch_status(resource, name, patch, namespace=namespace)


def scheduled_run(name: str, phase: str, **status_fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {LABEL_SCHEDULE: "nightly"}},
            "spec": {"scheduledTime": "2026-03-01T12:00:00Z"},
            "status": {"phase": phase, **status_fields}}


def held_schedule(how: str) -> CountingKube:
    """The Schedule ``nightly`` held ``how``, with a status that still lists two runs as
    active, of which one has since completed."""
    spec: dict[str, Any] = {"interval": "1m"}
    if how == "suspended":
        spec["suspend"] = True
    if how == "invalid":
        spec["timezone"] = "Mars/Olympus"
    client = CountingKube()
    client.objects.update(setup(spec, paused=how == "paused").objects)
    if how == "missing":
        del client.objects["deployments", "etl"]
    client.objects["flowruns", "nightly-a"] = scheduled_run("nightly-a", "Completed",
                                                            endTime=ENDED)
    client.objects["flowruns", "nightly-b"] = scheduled_run("nightly-b", "Running")
    status(client)["active"] = [
        {"name": name, "scheduledTime": "2026-03-01T12:00:00Z"}
        for name in ("nightly-a", "nightly-b")]
    return client


@pytest.mark.parametrize("how", ["suspended", "paused", "missing", "invalid"])
async def test_a_held_schedules_active_runs_follow_its_runs(how: str) -> None:
    client = held_schedule(how)
    result = await wake(client, WatchState(watching_since=STARTED), T0 + timedelta(hours=1))
    assert [entry["name"] for entry in status(client)["active"]] == ["nightly-b"]
    assert status(client)["lastSuccessfulTime"] == ENDED
    assert result.active == ["nightly-b"]  # the controller rings the Schedule at its end
    assert result.next_tick is None
    assert client.creates == 0


@pytest.mark.parametrize("how", ["suspended", "paused", "missing", "invalid"])
async def test_a_held_schedule_woken_again_writes_nothing(how: str) -> None:
    client = held_schedule(how)
    state = WatchState(watching_since=STARTED)
    await wake(client, state, T0 + timedelta(hours=1))
    assert client.status_patches == 1
    await wake(client, state, T0 + timedelta(hours=2))
    assert client.status_patches == 1
    # The last active run ends: exactly one write, which drops it.
    client.objects["flowruns", "nightly-b"]["status"] = {"phase": "Failed", "endTime": ENDED}
    await wake(client, state, T0 + timedelta(hours=3))
    assert client.status_patches == 2
    assert status(client)["active"] == []


async def test_an_active_schedule_woken_twice_between_ticks_writes_once() -> None:
    client = held_schedule("active")
    state = WatchState(watching_since=STARTED)
    await wake(client, state, T0 + timedelta(minutes=1, seconds=1))
    assert client.status_patches == 1
    await wake(client, state, T0 + timedelta(minutes=1, seconds=30))  # nothing due
    assert client.status_patches == 1


def test_active_entries_name_each_run_and_its_scheduled_time() -> None:
    runs = [scheduled_run("nightly-b", "Running"), {"metadata": {"name": "adhoc"}}]
    assert active_entries(runs) == [
        {"name": "nightly-b", "scheduledTime": "2026-03-01T12:00:00Z"},
        {"name": "adhoc", "scheduledTime": None}]


def test_status_changes_are_the_fields_a_merge_patch_would_alter() -> None:
    current = {"active": [], "expression": "every 1m", "nextScheduleTime": "x"}
    assert status_changes(current, {"active": [], "expression": "every 1m"}) == {}
    assert status_changes(current, {"lastScheduleTime": None}) == {}  # absent stays absent
    assert status_changes(current, {"nextScheduleTime": None}) == {"nextScheduleTime": None}
    assert status_changes(current, {"active": [{"name": "r"}]}) == {"active": [{"name": "r"}]}
    assert status_changes({}, {"missedTicks": 0}) == {"missedTicks": 0}


class NoEvents:
    """An EventRecorder for scenes that must post none."""

    def post(self, involved: Mapping[str, Any], type_: str, reason: str,
             message: str) -> None:
        raise AssertionError(f"unexpected Event {type_} {reason}: {message}")


class WitnessKube(CountingKube):
    """Records, at each FlowRun create, whether the run was already among the unseen."""

    def __init__(self, state: WatchState) -> None:
        super().__init__()
        self.state = state
        self.unseen_at_create: list[bool] = []

    async def create(self, resource: kube.Resource, body: Any, *, namespace: str) -> Any:
        self.unseen_at_create.append(body["metadata"]["name"] in self.state.unseen)
        return await super().create(resource, body, namespace=namespace)


async def test_a_run_created_then_deleted_before_the_next_wake_up_is_not_active() -> None:
    """The Deployment deleted right after a tick: the garbage collector deletes its runs
    before the held Schedule wakes. The watch showed the run, then its deletion; the run
    must not stay active as one of the Schedule's unseen creations."""
    state = WatchState(watching_since=STARTED)
    client = WitnessKube(state)
    client.objects.update(setup({"interval": "1m"}).objects)
    controller = ScheduleController(cast(kube.Kube, object()), events=NoEvents())
    controller.schedules["default", "nightly"] = _Entry(
        live=client.objects["schedules", "nightly"], watch=state)
    cache = controller.cache
    controller.on_deployment("ADDED", {"metadata": {"name": "etl", "namespace": "default",
                                                    "uid": "dep-uid"}, "spec": {}})
    body = client.objects["schedules", "nightly"]
    await reconcile_schedule(client, body, state, T0 + timedelta(minutes=1), cache=cache)  # type: ignore[arg-type]
    created = client.objects["flowruns", "nightly-1772366460"]
    # In the unseen before its create was sent, so the watch cannot show it first.
    assert client.unseen_at_create == [True]
    assert [entry["name"] for entry in status(client)["active"]] == ["nightly-1772366460"]

    created = {**created, "metadata": {**created["metadata"], "namespace": "default"}}
    controller.on_run("ADDED", created)
    assert state.unseen == {}
    controller.on_run("DELETED", created)
    controller.on_deployment("DELETED", {"metadata": {"name": "etl", "namespace": "default"}})
    del client.objects["deployments", "etl"]
    await reconcile_schedule(client, body, state, T0 + timedelta(minutes=1, seconds=5),  # type: ignore[arg-type]
                             cache=cache)
    assert status(client)["active"] == []


async def test_a_refused_run_leaves_no_unseen_entry() -> None:
    client = setup({"interval": "1m"})
    client.refusal = kube.KubeError(503, "ServiceUnavailable", "etcd is unavailable")
    state = WatchState(watching_since=STARTED)
    body = client.objects["schedules", "nightly"]
    with pytest.raises(kube.KubeError):
        await reconcile_schedule(client, body, state, T0 + timedelta(minutes=1),  # type: ignore[arg-type]
                                 cache=Cache(deployments={}, runs={}))
    assert state.unseen == {}
