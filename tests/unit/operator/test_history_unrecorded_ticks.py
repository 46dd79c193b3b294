"""History pruning keeps a Schedule's finished run until that Schedule has recorded its tick.

A Schedule's run is created before ``status.lastScheduleTime`` covers its tick; if the run
were pruned in between, the next wake-up — a new leader after a kill, or a retry after a
failed status write — would plan that tick again from the older ``lastScheduleTime`` and
create the run a second time (the chaos test saw three ticks made twice). These tests
drive the Deployment controller's pruning with the Schedule's status as its watch shows
it, and the pure rule behind it (:func:`~headwater_operator.history.tick_is_recorded`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from headwater.contract import LABEL_SCHEDULE
from headwater_operator import kube
from headwater_operator.clock import ManualClock
from headwater_operator.controllers.deployments import DeploymentController
from headwater_operator.history import recorded_through, tick_is_recorded
from headwater_operator.informer import Store
from test_deployment_status_coalescing import NOW, RecordingEvents

NS = "ns"
KEY = (NS, "nightly")


def at(minute: int) -> datetime:
    return datetime(2024, 5, 1, 11, minute, tzinfo=UTC)


def stamp(minute: int) -> str:
    return f"2024-05-01T11:{minute:02d}:00Z"


def schedule(last: int | None, *, created: int = 0, name: str = "every5") -> dict[str, Any]:
    """A Schedule whose status records ticks through minute ``last`` (None: none yet)."""
    status = {} if last is None else {"lastScheduleTime": stamp(last)}
    return {"metadata": {"name": name, "namespace": NS, "creationTimestamp": stamp(created)},
            "spec": {"deploymentRef": {"name": "nightly"}, "interval": "5m"},
            "status": status}


# --- the rule --------------------------------------------------------------------------------
def test_recorded_through_is_the_later_of_the_last_tick_and_the_creation() -> None:
    assert recorded_through(schedule(20, created=3)) == at(20)
    assert recorded_through(schedule(None, created=3)) == at(3)
    # Deleted and created again under its name: the older last tick is not the new one's.
    assert recorded_through(schedule(20, created=40)) == at(40)
    assert recorded_through({"metadata": {"name": "x"}}) is None


def test_a_tick_is_recorded_up_to_and_including_the_recorded_instant() -> None:
    assert tick_is_recorded(at(20), at(20))
    assert tick_is_recorded(at(15), at(20))
    assert not tick_is_recorded(at(25), at(20))
    assert not tick_is_recorded(at(25), None)


# --- the controller ---------------------------------------------------------------------------
class Client(kube.Kube):
    """Deletes FlowRuns (recorded) and answers a GET of the Schedules in ``stored``."""

    def __init__(self, stored: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.deleted: list[str] = []
        self.stored = stored or {}
        self.gets: list[str] = []

    async def delete(self, resource: kube.Resource, name: str, *,
                     namespace: str | None = None, **kwargs: Any) -> kube.JsonObject:
        assert (resource.plural, namespace) == ("flowruns", NS)
        self.deleted.append(name)
        return {}

    async def get(self, resource: kube.Resource, name: str, *,
                  namespace: str | None = None) -> kube.JsonObject:
        assert (resource.plural, namespace) == ("schedules", NS)
        self.gets.append(name)
        if name not in self.stored:
            raise kube.NotFound(404, "NotFound", f"schedules {name!r} not found")
        return self.stored[name]

    async def patch_status(self, resource: kube.Resource, name: str, patch: Any, *,
                           namespace: str | None = None) -> kube.JsonObject:
        return {}


def controller(client: Client) -> tuple[DeploymentController, list[tuple[str, str]]]:
    """A Deployment keeping no finished run (limit 0), and the keys its queue was woken for."""
    deployments = Store()
    body = {"apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
            "metadata": {"name": "nightly", "namespace": NS, "uid": "u1", "generation": 1},
            "spec": {"flowRef": {"name": "etl"}, "history": {"successfulRunsLimit": 0}},
            "status": {}}
    deployments.on_event("ADDED", body)
    made = DeploymentController(client, deployments=deployments, flows=Store(),
                                events=RecordingEvents(), clock=ManualClock(NOW))
    made.on_deployment("ADDED", body)
    woken: list[tuple[str, str]] = []
    made.queue.wake = woken.append  # type: ignore[method-assign]
    return made, woken


def finished(made: DeploymentController, tick: int, *, schedule: str = "every5") -> str:
    """A Completed run of ``schedule``'s tick at minute ``tick``; returns its name."""
    name = f"{schedule}-{int(at(tick).timestamp())}"
    made.on_flowrun("MODIFIED", {
        "metadata": {"name": name, "namespace": NS, "creationTimestamp": stamp(tick),
                     "labels": {LABEL_SCHEDULE: schedule}},
        "spec": {"deploymentRef": {"name": "nightly"}, "scheduledTime": stamp(tick)},
        "status": {"phase": "Completed", "endTime": stamp(tick + 1)}})
    return name


def adhoc(made: DeploymentController, name: str) -> None:
    made.on_flowrun("MODIFIED", {
        "metadata": {"name": name, "namespace": NS, "creationTimestamp": stamp(1)},
        "spec": {"deploymentRef": {"name": "nightly"}},
        "status": {"phase": "Completed", "endTime": stamp(2)}})


async def test_runs_of_ticks_the_schedule_has_not_recorded_are_kept_until_it_does() -> None:
    client = Client()
    made, woken = controller(client)
    made.on_schedule("ADDED", schedule(10))
    recorded = finished(made, 10)
    unrecorded = [finished(made, 15), finished(made, 20), finished(made, 25)]
    adhoc(made, "by-hand")

    await made.reconcile(KEY)
    assert sorted(client.deleted) == sorted(["by-hand", recorded])
    assert client.gets == []  # the watch knows the Schedule

    # Its status moves on to 20:00: the Deployment is woken, and prunes what it covers.
    woken.clear()  # (by the runs' events)
    made.on_schedule("MODIFIED", schedule(20))
    assert woken == [KEY]
    await made.reconcile(KEY)
    assert sorted(client.deleted) == sorted(["by-hand", recorded, *unrecorded[:2]])

    # A status write that changes nothing it records (conditions, active) wakes nothing.
    woken.clear()
    made.on_schedule("MODIFIED", schedule(20))
    assert woken == []
    made.on_schedule("MODIFIED", schedule(25))
    assert woken == [KEY]
    await made.reconcile(KEY)
    assert sorted(client.deleted) == sorted(["by-hand", recorded, *unrecorded])


async def test_a_deleted_schedule_releases_its_runs() -> None:
    client = Client()
    made, woken = controller(client)
    made.on_schedule("ADDED", schedule(10))
    kept = finished(made, 15)
    await made.reconcile(KEY)
    assert client.deleted == []

    woken.clear()  # (by the run's event)
    made.on_schedule("DELETED", schedule(10))
    assert woken == [KEY]
    await made.reconcile(KEY)
    assert client.gets == ["every5"]  # not in the watch: the API server says it is gone
    assert client.deleted == [kept]


async def test_a_schedule_the_watch_does_not_show_is_asked_for_before_its_run_goes() -> None:
    client = Client(stored={"every5": schedule(10)})
    made, _woken = controller(client)
    kept = finished(made, 15)
    pruned = finished(made, 10)

    await made.reconcile(KEY)
    assert client.deleted == [pruned]  # 10:00 is recorded; 15:00 is not
    assert set(client.gets) == {"every5"}
    assert kept in made.runs[KEY]


async def test_a_labelled_run_without_a_tick_is_pruned_like_any_other() -> None:
    client = Client()
    made, _woken = controller(client)
    made.on_schedule("ADDED", schedule(None))
    made.on_flowrun("MODIFIED", {
        "metadata": {"name": "by-hand", "namespace": NS, "creationTimestamp": stamp(1),
                     "labels": {LABEL_SCHEDULE: "every5"}},
        "spec": {"deploymentRef": {"name": "nightly"}},
        "status": {"phase": "Completed", "endTime": stamp(2)}})

    await made.reconcile(KEY)
    assert client.deleted == ["by-hand"]
