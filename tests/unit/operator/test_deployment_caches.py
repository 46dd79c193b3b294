"""What the Deployment controller keeps between reconciles follows what it was made from.

A busy Deployment is reconciled at every transition of every run, so two results are
kept instead of being recomputed each time: the spec's verdict
(:func:`~headwater_operator.readiness.check_deployment`, a full validation) until the
Deployment's or its Flow's spec changes, and each finished run's pruning record (its
timestamps parsed) until the run's facts change or the run goes. A stale copy would be a
wrong ``Ready`` or a wrong prune: these tests change what each was made from and look at
what the controller then writes and deletes.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from headwater_operator import kube, readiness
from headwater_operator.api import TERMINAL_PHASES
from headwater_operator.clock import ManualClock
from headwater_operator.controllers import deployments as deployments_module
from headwater_operator.controllers.deployments import DeploymentController, to_record
from headwater_operator.history import Deletion, HistoryPolicy, runs_to_delete
from headwater_operator.informer import Store
from headwater_operator.readiness import RunFacts

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
NS = "default"
KEY = (NS, "nightly")
SCHEMA = {"type": "object", "properties": {"limit": {"type": "integer"}}}


class Client(kube.Kube):
    """Records status patches and deletions."""

    def __init__(self) -> None:
        super().__init__()
        self.patches: list[dict[str, Any]] = []
        self.deleted: list[str] = []

    async def patch_status(self, resource: kube.Resource, name: str,
                           patch: Mapping[str, Any] | Sequence[Any], *,
                           namespace: str | None = None) -> kube.JsonObject:
        assert isinstance(patch, Mapping)
        self.patches.append(dict(patch["status"]))
        return {}

    async def delete(self, resource: kube.Resource, name: str, *,
                     namespace: str | None = None, **kwargs: Any) -> kube.JsonObject:
        assert resource.plural == "flowruns"
        self.deleted.append(name)
        return {}


class Events:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str]] = []

    def post(self, involved: Mapping[str, Any], type_: str, reason: str,
             message: str) -> None:
        self.posted.append((type_, reason, message))


class Scene:
    """Deployment ``nightly`` of Flow ``hello``; one status write window per reconcile."""

    def __init__(self, history: Mapping[str, Any] | None = None) -> None:
        self.client, self.events = Client(), Events()
        self.deployments, self.flows = Store(), Store()
        self.monotonic = 100.0
        self.controller = DeploymentController(
            self.client, deployments=self.deployments, flows=self.flows, events=self.events,
            clock=ManualClock(NOW), monotonic=lambda: self.monotonic, status_interval=1.0)
        self.flow({"image": "example/flow:1", "entrypoint": "flows/hello.py:hello",
                   "parametersSchema": SCHEMA})
        self.generation = 0
        self.deployment({"flowRef": {"name": "hello"}, "parameters": {"limit": 1},
                         **({"history": dict(history)} if history else {})})

    def flow(self, spec: Mapping[str, Any]) -> None:
        self.flows.on_event("MODIFIED", {"metadata": {"name": "hello", "namespace": NS},
                                         "spec": dict(spec)})

    def deployment(self, spec: Mapping[str, Any]) -> None:
        self.generation += 1
        body = {"metadata": {"name": "nightly", "namespace": NS, "uid": "u1",
                             "generation": self.generation},
                "spec": dict(spec), "status": {}}
        self.deployments.on_event("MODIFIED", body)
        self.controller.on_deployment("MODIFIED", body)

    def run(self, name: str, phase: str, *, end: str | None = None,
            type_: str = "MODIFIED") -> None:
        status: dict[str, Any] = {"phase": phase}
        if end is not None:
            status["endTime"] = end
        self.controller.on_flowrun(type_, {
            "metadata": {"name": name, "namespace": NS,
                         "creationTimestamp": "2024-05-01T11:50:00Z"},
            "spec": {"deploymentRef": {"name": "nightly"}}, "status": status})

    async def reconcile(self) -> Any:
        self.monotonic += 5  # past the coalescing window: every change is written
        return await self.controller.reconcile(KEY)

    def ready(self) -> tuple[str, str]:
        written = [patch for patch in self.client.patches if "conditions" in patch]
        [ready] = [c for c in written[-1]["conditions"] if c["type"] == "Ready"]
        return ready["status"], ready["reason"]


@pytest.fixture
def judged(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Deployments :func:`check_deployment` judged, in order."""
    calls: list[str] = []

    def counting(name: str, spec: Mapping[str, Any],
                 flow_spec: Mapping[str, Any] | None) -> readiness.Verdict:
        calls.append(name)
        return readiness.check_deployment(name, spec, flow_spec)

    monkeypatch.setattr(deployments_module, "check_deployment", counting)
    return calls


async def test_the_spec_is_judged_once_while_runs_come_and_go(judged: list[str]) -> None:
    scene = Scene()
    await scene.reconcile()
    for phase in ("Pending", "Running", "Completed"):
        scene.run("r1", phase, end="2024-05-01T11:59:00Z" if phase == "Completed" else None)
        await scene.reconcile()
    assert judged == ["nightly"]
    assert scene.ready() == ("True", "Valid")
    assert scene.client.patches[-1]["lastRun"]["phase"] == "Completed"


async def test_a_spec_change_is_judged_again(judged: list[str]) -> None:
    scene = Scene()
    await scene.reconcile()
    scene.deployment({"flowRef": {"name": "hello"}, "parameters": {"limit": "many"}})
    await scene.reconcile()
    assert scene.ready() == ("False", "InvalidParameters")
    scene.deployment({"flowRef": {"name": "hello"}, "parameters": {"limit": 2}})
    await scene.reconcile()
    assert scene.ready() == ("True", "Valid")
    assert judged == ["nightly"] * 3


async def test_a_flow_spec_change_is_judged_again(judged: list[str]) -> None:
    scene = Scene()
    await scene.reconcile()
    scene.flow({"image": "example/flow:1", "entrypoint": "flows/hello.py:hello",
                "parametersSchema": {"type": "object",
                                     "properties": {"limit": {"type": "string"}}}})
    await scene.reconcile()
    assert scene.ready() == ("False", "InvalidParameters")
    assert judged == ["nightly"] * 2


async def test_a_deleted_deployment_recreated_alike_is_judged_again(
        judged: list[str]) -> None:
    scene = Scene()
    await scene.reconcile()
    body = scene.deployments.get(*KEY)
    assert body is not None
    scene.deployments.on_event("DELETED", body)
    scene.controller.on_deployment("DELETED", body)
    scene.generation = 0
    scene.deployment(dict(body["spec"]))
    await scene.reconcile()
    assert judged == ["nightly"] * 2


async def test_a_run_whose_facts_changed_is_pruned_by_its_new_end() -> None:
    scene = Scene(history={"ttlSecondsAfterFinished": 60})
    scene.run("r1", "Completed", end="2024-05-01T11:59:30Z")
    result = await scene.reconcile()
    assert result.requeue_at == NOW + timedelta(seconds=30)  # kept: 30 s to go
    assert scene.client.deleted == []
    # The same run, with other facts (here its end, as a restore from a backup might
    # write it): its record is made again, so the TTL counts from the new end.
    scene.run("r1", "Completed", end="2024-05-01T11:58:00Z")
    await scene.reconcile()
    assert scene.client.deleted == ["r1"]


async def test_a_run_that_goes_takes_its_record_along() -> None:
    scene = Scene(history={"successfulRunsLimit": 1})
    scene.run("r1", "Completed", end="2024-05-01T11:58:00Z")
    scene.run("r2", "Completed", end="2024-05-01T11:59:00Z")
    await scene.reconcile()
    assert scene.client.deleted == ["r1"]
    assert set(scene.controller.records[KEY]) == {"r1", "r2"}
    scene.run("r1", "Completed", end="2024-05-01T11:58:00Z", type_="DELETED")
    assert set(scene.controller.records[KEY]) == {"r2"}
    scene.run("r2", "Completed", end="2024-05-01T11:59:00Z", type_="DELETED")
    assert KEY not in scene.controller.records
    assert KEY not in scene.controller.runs


async def test_runs_within_the_history_limits_are_not_even_sorted_for_pruning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    passes: list[int] = []

    def counting(runs: Any, policy: HistoryPolicy, now: datetime) -> list[Deletion]:
        runs = list(runs)
        passes.append(len(runs))
        return runs_to_delete(runs, policy, now)

    monkeypatch.setattr(deployments_module, "runs_to_delete", counting)
    scene = Scene(history={"successfulRunsLimit": 2, "failedRunsLimit": 1})
    for name, end in (("r1", "2024-05-01T11:57:00Z"), ("r2", "2024-05-01T11:58:00Z")):
        for phase in ("Pending", "Running", "Completed"):
            scene.run(name, phase, end=end if phase == "Completed" else None)
            await scene.reconcile()
    scene.run("f1", "Failed", end="2024-05-01T11:58:30Z")
    await scene.reconcile()
    assert passes == []  # two successful and one failed run: nothing can be over a limit
    scene.run("r3", "Completed", end="2024-05-01T11:59:00Z")
    await scene.reconcile()
    assert passes == [4]
    assert scene.client.deleted == ["r1"]
    assert ("Normal", "HistoryPruned") in [(t, r) for t, r, _ in scene.events.posted]


@pytest.mark.parametrize("history", [
    {}, {"successfulRunsLimit": 0}, {"successfulRunsLimit": 2, "failedRunsLimit": 0},
    {"successfulRunsLimit": 1, "failedRunsLimit": 1},
    {"successfulRunsLimit": 5, "ttlSecondsAfterFinished": 60}])
def test_within_limits_never_hides_a_deletion(history: Mapping[str, Any]) -> None:
    policy = HistoryPolicy.from_spec(history)
    phases = [None, "Pending", "Running", "Completed", "Failed", "Crashed", "Cancelled"]
    for count in range(4):
        for combo in itertools.product(phases, repeat=count):
            runs = [RunFacts(name=f"r{i}", phase=phase, created="2024-05-01T11:00:00Z",
                             end_time=None if i % 2 else "2024-05-01T11:00:00Z")
                    for i, phase in enumerate(combo)]
            if deployments_module.within_limits(runs, policy):
                finished = [to_record(run) for run in runs if run.phase in TERMINAL_PHASES]
                assert runs_to_delete(finished, policy, NOW) == [], (combo, history)
