"""Which FlowRuns the FlowRun controller wakes, and when: a run's end wakes only the runs
of its Deployment still waiting for a concurrency slot.

The watch callbacks (``on_flowrun``, ``on_pod``, ``on_deployment``) and ``untrack`` only
wake keys on the controller's work queue, so each test reads the queue
(``queue.pending``) instead of running steps. The runs' memberships are set up as a step
records them: ``members`` (the Deployment's tracked runs) and ``waiting`` (those in a
phase that holds no slot yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from headwater import contract
from headwater_operator import kube
from headwater_operator.controllers.flowruns import FlowRunController
from headwater_operator.informer import Store
from headwater_operator.runtime import DONE

NS = "default"


class NoEvents:
    def post(self, involved: Mapping[str, Any], type_: str, reason: str,
             message: str) -> None:
        raise AssertionError(f"unexpected Event {reason}")


class RunsKube(kube.Kube):
    """Answers GETs of FlowRuns from ``runs`` (404 when missing); nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, kube.JsonObject] = {}

    async def get(self, resource: kube.Resource, name: str, *,
                  namespace: str | None = None) -> kube.JsonObject:
        assert resource.plural == "flowruns"
        if name not in self.runs:
            raise kube.NotFound(404, "NotFound", f'flowruns.headwater.dev "{name}" not found')
        return self.runs[name]


def flowrun(name: str, phase: str | None = None, *, deployment: str = "nightly",
            cancel: bool = False, generation: int = 1) -> kube.JsonObject:
    return {"apiVersion": contract.API_VERSION, "kind": "FlowRun",
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}",
                         "generation": generation, "resourceVersion": "1",
                         "creationTimestamp": "2024-05-01T12:00:00Z"},
            "spec": {"deploymentRef": {"name": deployment}, "cancel": cancel},
            "status": {"phase": phase} if phase else {}}


def pod(name: str, run: str | None) -> kube.JsonObject:
    owners = [] if run is None else [{"apiVersion": contract.API_VERSION, "kind": "FlowRun",
                                      "name": run, "uid": f"uid-{run}", "controller": True}]
    return {"metadata": {"name": name, "namespace": NS, "ownerReferences": owners}}


def controller(client: kube.Kube | None = None) -> FlowRunController:
    return FlowRunController(client or RunsKube(), deployments=Store(), flows=Store(),
                             events=NoEvents())


def scene(holding: list[str], waiting: list[str]) -> FlowRunController:
    """Runs of Deployment ``nightly`` as their steps left them, plus a waiting run of
    Deployment ``hourly``; nothing is queued yet."""
    runs = controller()
    for name, deployment, waits in ([(name, "nightly", False) for name in holding]
                                    + [(name, "nightly", True) for name in waiting]
                                    + [("other", "hourly", True)]):
        key = (NS, name)
        runs.tracked.add(key)
        runs.members[(NS, deployment)].add(key)
        if waits:
            runs.waiting.add(key)
    return runs


def woken(runs: FlowRunController, names: list[str]) -> list[str]:
    return [name for name in names if runs.queue.pending((NS, name))]


def test_a_run_that_held_a_slot_wakes_the_waiting_runs_of_its_deployment_only() -> None:
    runs = scene(holding=["a", "b"], waiting=["queued-1", "queued-2"])
    runs.untrack((NS, "a"))
    # Not "b" (it holds a slot: another run's end changes nothing for it), not the other
    # Deployment's waiting run.
    assert woken(runs, ["a", "b", "queued-1", "queued-2", "other"]) == [
        "queued-1", "queued-2"]
    assert (NS, "a") not in runs.tracked
    assert (NS, "a") not in runs.members[(NS, "nightly")]


def test_a_waiting_run_that_goes_away_frees_no_slot() -> None:
    runs = scene(holding=["a"], waiting=["queued-1", "queued-2"])
    runs.untrack((NS, "queued-1"))
    assert woken(runs, ["a", "queued-1", "queued-2", "other"]) == []
    assert (NS, "queued-1") not in runs.waiting


def test_a_run_admitted_since_is_no_longer_woken() -> None:
    runs = scene(holding=["a"], waiting=["queued-1", "queued-2"])
    runs.waiting.discard((NS, "queued-1"))  # its step created a pod: Pending
    runs.untrack((NS, "a"))
    assert woken(runs, ["queued-1", "queued-2"]) == ["queued-2"]


def test_the_last_run_of_a_deployment_leaves_no_membership_behind() -> None:
    runs = scene(holding=["a"], waiting=[])
    runs.untrack((NS, "a"))
    assert (NS, "nightly") not in runs.members, "memory follows the active runs"
    runs.untrack((NS, "a"))  # untracking twice is harmless
    assert woken(runs, ["a", "other"]) == []


def test_a_deployment_spec_change_still_wakes_every_run_but_its_status_churn_does_not(
) -> None:
    runs = scene(holding=["a"], waiting=["queued-1"])
    body = {"metadata": {"name": "nightly", "namespace": NS, "generation": 3}}
    runs.on_deployment("ADDED", body)  # first seen: its runs look again
    assert woken(runs, ["a", "queued-1", "other"]) == ["a", "queued-1"]

    runs = scene(holding=["a"], waiting=["queued-1"])
    runs.deployment_generations[(NS, "nightly")] = 3
    runs.on_deployment("MODIFIED", {**body, "status": {"activeRuns": 4}})  # same generation
    assert woken(runs, ["a", "queued-1"]) == []
    runs.on_deployment("MODIFIED", {"metadata": {**body["metadata"], "generation": 4}})
    assert woken(runs, ["a", "queued-1", "other"]) == ["a", "queued-1"]


def test_a_new_run_is_tracked_and_woken_and_its_status_echoes_wake_nothing() -> None:
    runs = controller()
    runs.on_flowrun("ADDED", flowrun("r"))
    assert runs.tracked == {(NS, "r")}
    assert woken(runs, ["r"]) == ["r"]

    runs = controller()
    runs.tracked.add((NS, "r"))
    runs.on_flowrun("MODIFIED", flowrun("r", "Running"))  # our own status write, echoed
    assert woken(runs, ["r"]) == []
    view = runs.views[(NS, "r")].current()
    assert view is not None
    assert view["status"] == {"phase": "Running"}, "but the body is kept for the next step"
    runs.on_flowrun("MODIFIED", flowrun("r", "Running", cancel=True, generation=2))
    assert woken(runs, ["r"]) == ["r"], "a cancel request wakes it"


def test_a_terminal_or_deleted_run_wakes_its_step_only_if_it_was_tracked() -> None:
    runs = controller()
    runs.on_flowrun("ADDED", flowrun("done-long-ago", "Completed"))
    assert runs.tracked == set()
    assert woken(runs, ["done-long-ago"]) == []

    runs = controller()
    runs.tracked.add((NS, "r"))
    runs.on_flowrun("MODIFIED", flowrun("r", "Failed"))
    assert woken(runs, ["r"]) == ["r"], "its step finds it over and untracks it"
    assert (NS, "r") not in runs.views


@pytest.mark.parametrize("kind", ["ADDED", "MODIFIED", "DELETED"])
def test_pods_wake_their_tracked_run_only(kind: str) -> None:
    runs = controller()
    runs.tracked.add((NS, "r"))
    runs.on_pod(kind, pod("r-1", "r"))
    runs.on_pod(kind, pod("s-1", "s"))  # a finished (untracked) run's pod
    runs.on_pod(kind, pod("stray", None))
    assert woken(runs, ["r", "s"]) == ["r"]
    assert set(runs.pods_seen) == {(NS, "r")}, "pods of untracked runs are not kept"
    assert runs.pods_seen[(NS, "r")]["r-1"].body["metadata"]["name"] == "r-1"


@pytest.mark.parametrize("stored", [flowrun("a", "Completed"), None])
async def test_a_step_that_finds_its_run_over_or_gone_wakes_the_waiting_runs(
        stored: kube.JsonObject | None) -> None:
    """End to end through ``reconcile``: the run's last watch event woke it; its step
    reads it (finished, or deleted: only this step can tell), untracks it, and frees
    its slot."""
    client = RunsKube()
    if stored is not None:
        client.runs["a"] = stored
    runs = controller(client)
    for name, waits in (("a", False), ("queued-1", True)):
        runs.tracked.add((NS, name))
        runs.members[(NS, "nightly")].add((NS, name))
        if waits:
            runs.waiting.add((NS, name))
    runs.on_flowrun("DELETED" if stored is None else "MODIFIED",
                    stored or flowrun("a", "Running"))
    assert woken(runs, ["a", "queued-1"]) == ["a"]
    assert await runs.reconcile((NS, "a")) == DONE  # what the queue's worker calls
    assert woken(runs, ["queued-1"]) == ["queued-1"]
    assert (NS, "a") not in runs.tracked
    assert runs.members[(NS, "nightly")] == {(NS, "queued-1")}
