"""Deployment triggers: the pure decisions (triggering.py) and the controller's wake-ups
against an in-memory API (names are deterministic, a replay creates nothing, the asset
rule waits for every upstream key)."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from headwater_operator import kube
from headwater_operator.api.common import DNS_SUBDOMAIN_PATTERN
from headwater_operator.api.flowrun import FLOWRUN_NAME_MAX_LENGTH
from headwater_operator.api.validation import validate_manifest
from headwater_operator.clock import ManualClock
from headwater_operator.controllers.triggers import TriggerController
from headwater_operator.informer import Store
from headwater_operator.kubetime import format_time
from headwater_operator.triggering import (
    RunFacts,
    after_deployment_events,
    fresh_materializations,
    handled_mark,
    triggered_run_name,
    upstream_keys,
)

NS = "ns"
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def facts(name: str, deployment: str, phase: str = "Completed", *, end: int | None = 5,
          created: int = 0, assets: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> RunFacts:
    return RunFacts(name=name, uid=f"uid-{name}", deployment=deployment, phase=phase,
                    created=at(created), end=None if end is None else at(end), assets=assets)


# --- the pure decisions -------------------------------------------------------------------
def test_run_names_are_deterministic_valid_and_fit() -> None:
    first = triggered_run_name("transform", "afterDeployment/ingest", ["uid-1"])
    assert first == triggered_run_name("transform", "afterDeployment/ingest", ["uid-1"])
    assert first.startswith("transform-")
    assert len(first) == len("transform-") + 10
    assert first != triggered_run_name("transform", "afterDeployment/ingest", ["uid-2"])
    # The set of materializing runs, in whatever order they were found.
    assert (triggered_run_name("d", "assets", ["b", "a"])
            == triggered_run_name("d", "assets", ["a", "b"]))
    long = triggered_run_name("x" * 240 + "-.y", "assets", ["a"])
    assert len(long) <= FLOWRUN_NAME_MAX_LENGTH
    assert re.fullmatch(DNS_SUBDOMAIN_PATTERN, long)


def test_after_deployment_counts_completed_runs_of_the_upstream_since_declared() -> None:
    trigger = {"afterDeployment": {"name": "ingest"}}
    runs = [facts("old", "ingest", end=1), facts("ok", "ingest", end=6),
            facts("bad", "ingest", "Failed", end=7), facts("running", "ingest", "Running",
                                                             end=None),
            facts("other", "elsewhere", end=8)]
    assert [run.name for run in after_deployment_events(trigger, runs, at(5))] == ["ok"]
    failed_too = {"afterDeployment": {"name": "ingest", "phases": ["Completed", "Failed"]}}
    assert [run.name for run in after_deployment_events(failed_too, runs, at(5))] == [
        "ok", "bad"]


def test_assets_wait_for_every_upstream_key_newer_than_the_last_run() -> None:
    keys = ["lake://orders", "lake://customers"]
    orders = facts("t1", "transform", end=10, assets=(("lake://orders", ()),))
    customers = facts("c1", "crm", end=12, assets=(("lake://customers", ()),))
    stale_customers = facts("c0", "crm", end=3, assets=(("lake://customers", ()),))
    last = facts("d1", "dash", "Running", created=5, end=None)
    # Some upstream fresh: nothing.
    assert fresh_materializations(keys, [orders, stale_customers], deployment="dash",
                                  since=T0, own=[last]) is None
    # All fresh: the newest materialization of each key.
    found = fresh_materializations(keys, [orders, customers, stale_customers],
                                   deployment="dash", since=T0, own=[last])
    assert found is not None
    assert {k: r.name for k, r in found.items()} == {
        "lake://orders": "t1", "lake://customers": "c1"}
    # A failed run materialized nothing that counts.
    failed = facts("c2", "crm", "Failed", end=13, assets=())
    assert fresh_materializations(keys, [orders, failed], deployment="dash",
                                  since=T0, own=[last]) is None


def test_within_one_second_the_provenance_tells_what_the_last_run_covered() -> None:
    keys = ["lake://orders", "lake://customers"]
    orders = facts("t1", "transform", end=5, assets=(("lake://orders", ()),))
    customers = facts("c1", "crm", end=5, assets=(("lake://customers", ()),))
    newer_orders = facts("t2", "transform", end=5, assets=(("lake://orders", ()),))
    # The last run was created in the same second as all three ended, triggered by two:
    # only orders is fresh again (t2), customers is not.
    last = RunFacts(name="d1", uid="uid-d1", deployment="dash", phase="Running",
                    created=at(5), end=None, triggered_by=frozenset({"uid-t1", "uid-c1"}))
    runs = [orders, customers, newer_orders]
    assert fresh_materializations(keys, runs, deployment="dash", since=T0, own=[last]) is None
    # A manual last run covered nothing: the same second counts as fresh.
    manual = RunFacts(name="d1", uid="uid-d1", deployment="dash", phase="Running",
                      created=at(5), end=None)
    assert fresh_materializations(keys, runs, deployment="dash", since=T0,
                                  own=[manual]) is not None
    # Two own runs created in that second, whatever their names' order: what triggered
    # either one is covered.
    newer_customers = facts("c2", "crm", end=5, assets=(("lake://customers", ()),))
    second = RunFacts(name="a0", uid="uid-a0", deployment="dash", phase="Running",
                      created=at(5), end=None, triggered_by=frozenset({"uid-t2", "uid-c2"}))
    assert fresh_materializations(keys, [*runs, newer_customers], deployment="dash",
                                  since=T0, own=[last, second]) is None


def test_upstream_keys_come_from_the_latest_run_lineage_unless_declared() -> None:
    own = [facts("d1", "dash", end=1, assets=(("bi://sales", ("lake://a",)),)),
           facts("d2", "dash", end=2, assets=(("bi://sales", ("lake://a", "lake://b")),))]
    assert upstream_keys({"assets": {}}, own) == ["lake://a", "lake://b"]
    assert upstream_keys({"assets": {"upstream": ["x"]}}, own) == ["x"]
    assert upstream_keys({"assets": {}}, []) == []


# --- the controller, against an in-memory API ----------------------------------------------
class FakeKube(kube.Kube):
    """FlowRuns and Deployments in dicts; creates and status patches recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, kube.JsonObject] = {}
        self.deployments: dict[str, kube.JsonObject] = {}
        self.created: list[str] = []
        self.patched_runs: list[str] = []

    async def get(self, resource: kube.Resource, name: str, *,
                  namespace: str | None = None) -> kube.JsonObject:
        found = self.runs.get(name)
        if found is None:
            raise kube.NotFound(404, "NotFound", f'{resource.plural} "{name}" not found')
        return copy.deepcopy(found)

    async def create(self, resource: kube.Resource, body: Mapping[str, Any], *,
                     namespace: str | None = None) -> kube.JsonObject:
        name = body["metadata"]["name"]
        if name in self.runs:
            raise kube.AlreadyExists(409, "AlreadyExists", f'flowruns "{name}" already exists')
        stored = copy.deepcopy(dict(body))
        stored["metadata"].update(uid=f"uid-{name}", creationTimestamp=format_time(at(30)))
        self.runs[name] = stored
        self.created.append(name)
        return copy.deepcopy(stored)

    async def patch(self, resource: kube.Resource, name: str,
                    patch: Mapping[str, Any] | Any, *, namespace: str | None = None,
                    subresource: str | None = None) -> kube.JsonObject:
        if resource is kube.FLOWRUNS:  # a merge patch of annotations (the handled marks)
            found = self.runs.get(name)
            if found is None:
                raise kube.NotFound(404, "NotFound", f'flowruns "{name}" not found')
            found["metadata"].setdefault("annotations", {}).update(
                patch["metadata"]["annotations"])
            self.patched_runs.append(name)
            return copy.deepcopy(found)
        body = self.deployments[name]
        body.setdefault("status", {}).update(patch["status"])
        return copy.deepcopy(body)


class Events:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str]] = []

    def post(self, involved: Mapping[str, Any], type_: str, reason: str,
             message: str) -> None:
        self.posted.append((type_, reason, message))


def deployment(name: str, *triggers: dict[str, Any], paused: bool = False,
               generation: int = 1) -> kube.JsonObject:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}",
                         "generation": generation, "creationTimestamp": format_time(T0)},
            "spec": {"flowRef": {"name": name}, "paused": paused, "triggers": list(triggers)}}


def flowrun(name: str, deployment: str, phase: str, *, end: int = 5,
            parameters: dict[str, Any] | None = None,
            assets: list[dict[str, Any]] | None = None) -> kube.JsonObject:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}",
                         "creationTimestamp": format_time(at(end - 1))},
            "spec": {"deploymentRef": {"name": deployment}, "parameters": parameters or {}},
            "status": {"phase": phase, "endTime": format_time(at(end)),
                       "assets": assets or []}}


class World:
    """One controller over a fake API: the informers' events are delivered by hand."""

    def __init__(self) -> None:
        self.client = FakeKube()
        self.store = Store()
        self.events = Events()
        self.clock = ManualClock(at(20))
        self.controller = TriggerController(self.client, deployments=self.store,
                                            events=self.events, clock=self.clock)

    def add_deployment(self, body: kube.JsonObject) -> None:
        self.client.deployments[body["metadata"]["name"]] = body
        self.store.on_event("ADDED", body)
        self.controller.on_deployment("ADDED", body)

    def add_run(self, body: kube.JsonObject) -> None:
        self.client.runs[body["metadata"]["name"]] = body
        self.controller.on_run("ADDED", body)

    async def reconcile(self, name: str) -> None:
        await self.controller.reconcile((NS, name))

    def deliver_created(self) -> None:
        for name in self.client.created:
            self.controller.on_run("ADDED", self.client.runs[name])


async def test_an_upstream_run_creates_one_run_with_mapped_parameters_and_provenance() -> None:
    world = World()
    world.add_deployment(deployment("transform", {"afterDeployment": {
        "name": "ingest", "parameters": {"start_date": "{{ run.parameters.start_date }}",
                                         "rows": "{{ run.parameters.rows }}"}}}))
    world.add_run(flowrun("ingest-1", "ingest", "Completed",
                          parameters={"start_date": "2026-11-01", "rows": 3}))
    await world.reconcile("transform")

    [name] = world.client.created
    run = world.client.runs[name]
    assert name == triggered_run_name("transform", "afterDeployment/ingest", ["uid-ingest-1"])
    assert run["spec"]["parameters"] == {"start_date": "2026-11-01", "rows": 3}
    assert run["spec"]["trigger"] == "deployment"
    assert run["metadata"]["labels"]["headwater.dev/triggered-by"] == "ingest-1"
    assert run["metadata"]["annotations"]["headwater.dev/triggered-by-runs"] == (
        "ingest-1/uid-ingest-1")
    assert validate_manifest(run) == []


async def test_a_replay_creates_nothing() -> None:
    world = World()
    world.add_deployment(deployment("transform", {"afterDeployment": {"name": "ingest"}}))
    world.add_run(flowrun("ingest-1", "ingest", "Completed"))
    await world.reconcile("transform")
    assert len(world.client.created) == 1

    # The same process woken again (an informer relist) creates nothing.
    await world.reconcile("transform")
    # A new leader that never saw the run it created (the watch lags): 409, nothing new.
    fresh = TriggerController(world.client, deployments=world.store, events=world.events,
                              clock=world.clock)
    fresh.on_deployment("ADDED", world.client.deployments["transform"])
    fresh.on_run("ADDED", world.client.runs["ingest-1"])
    await fresh.reconcile((NS, "transform"))
    assert len(world.client.created) == 1
    assert len(world.client.runs) == 2


async def test_a_run_deleted_by_history_is_not_made_again_after_a_restart() -> None:
    world = World()
    world.add_deployment(deployment("transform", {"afterDeployment": {"name": "ingest"}}))
    world.add_run(flowrun("ingest-1", "ingest", "Completed"))
    await world.reconcile("transform")
    [name] = world.client.created
    # The upstream run is marked as handled by this trigger once its run exists.
    mark = handled_mark("transform", "afterDeployment/ingest")
    assert world.client.runs["ingest-1"]["metadata"]["annotations"][mark] == name
    # History deletes the triggered run (its name is free again); a new leader relists.
    del world.client.runs[name]
    fresh = TriggerController(world.client, deployments=world.store, events=world.events,
                              clock=world.clock)
    fresh.on_deployment("ADDED", world.client.deployments["transform"])
    fresh.on_run("ADDED", world.client.runs["ingest-1"])
    await fresh.reconcile((NS, "transform"))
    assert world.client.created == [name]
    # A leader that died between the create and the mark: the next one marks it.
    world.client.runs["ingest-1"]["metadata"]["annotations"].pop(mark)
    world.client.runs[name] = {"metadata": {"name": name, "uid": "uid-x"},
                               "spec": {"deploymentRef": {"name": "transform"}}}
    again = TriggerController(world.client, deployments=world.store, events=world.events,
                              clock=world.clock)
    again.on_deployment("ADDED", world.client.deployments["transform"])
    again.on_run("ADDED", world.client.runs["ingest-1"])
    again.on_run("ADDED", world.client.runs[name])
    await again.reconcile((NS, "transform"))
    assert world.client.created == [name]
    assert world.client.runs["ingest-1"]["metadata"]["annotations"][mark] == name


async def test_failed_old_and_paused_upstream_runs_trigger_nothing() -> None:
    world = World()
    # Declared by an edit (generation 2) seen at minute 20: older runs do not count.
    world.add_deployment(deployment("transform", {"afterDeployment": {"name": "ingest"}},
                                    generation=2))
    world.add_run(flowrun("before-declared", "ingest", "Completed", end=10))
    world.add_run(flowrun("failed", "ingest", "Failed", end=25))
    await world.reconcile("transform")
    assert world.client.created == []

    # Paused: a run ending meanwhile is dropped, and stays dropped after the unpause.
    paused = deployment("transform", {"afterDeployment": {"name": "ingest"}}, paused=True,
                        generation=3)
    world.clock.set(at(40))
    world.add_deployment(paused)
    world.add_run(flowrun("while-paused", "ingest", "Completed", end=35))
    await world.reconcile("transform")
    world.add_deployment(deployment("transform", {"afterDeployment": {"name": "ingest"}},
                                    generation=4))
    await world.reconcile("transform")
    assert world.client.created == []

    world.add_run(flowrun("after", "ingest", "Completed", end=45))
    await world.reconcile("transform")
    assert [world.client.runs[n]["metadata"]["labels"]["headwater.dev/triggered-by"]
            for n in world.client.created] == ["after"]


async def test_assets_trigger_fires_once_when_all_upstream_are_fresh() -> None:
    world = World()
    world.add_deployment(deployment("dashboards", {"assets": {
        "upstream": ["lake://orders", "lake://customers"]}}))
    world.add_run(flowrun("orders-1", "transform", "Completed", end=6,
                          assets=[{"key": "lake://orders"}]))
    await world.reconcile("dashboards")
    assert world.client.created == []  # customers not materialized yet

    world.add_run(flowrun("customers-1", "crm", "Completed", end=8,
                          assets=[{"key": "lake://customers"}]))
    await world.reconcile("dashboards")
    await world.reconcile("dashboards")  # before the watch shows the new run
    world.deliver_created()
    await world.reconcile("dashboards")  # after: its creation is the new bar
    assert len(world.client.created) == 1
    run = world.client.runs[world.client.created[0]]
    assert run["spec"]["trigger"] == "asset"
    assert run["metadata"]["annotations"]["headwater.dev/triggered-by-runs"] == (
        "orders-1/uid-orders-1,customers-1/uid-customers-1")

    # History deletes that run, the operator restarts: its fire is remembered in
    # status.triggers (since, covered), not only by the run's existence.
    deleted = world.client.runs.pop(world.client.created[0])
    world.controller.on_run("DELETED", deleted)
    status = world.client.deployments["dashboards"]["status"]["triggers"]
    assert status[0]["covered"] == ["uid-customers-1", "uid-orders-1"]
    restarted = TriggerController(world.client, deployments=world.store, events=world.events,
                                  clock=world.clock)
    world.store.on_event("MODIFIED", world.client.deployments["dashboards"])
    restarted.on_deployment("ADDED", world.client.deployments["dashboards"])
    for run in world.client.runs.values():
        restarted.on_run("ADDED", run)
    await restarted.reconcile((NS, "dashboards"))
    await world.reconcile("dashboards")
    assert len(world.client.created) == 1

    # One key fresh again is not enough; both is.
    world.add_run(flowrun("orders-2", "transform", "Completed", end=40,
                          assets=[{"key": "lake://orders"}]))
    await world.reconcile("dashboards")
    assert len(world.client.created) == 1
    world.add_run(flowrun("customers-2", "crm", "Completed", end=41,
                          assets=[{"key": "lake://customers"}]))
    await world.reconcile("dashboards")
    assert len(world.client.created) == 2


async def test_an_invalid_trigger_says_which_field_and_fires_nothing() -> None:
    world = World()
    world.add_deployment(deployment("transform", {"afterDeployment": {
        "name": "ingest", "parameters": {"start_date": "{{ run.parameters.start_date "}}}))
    world.add_run(flowrun("ingest-1", "ingest", "Completed"))
    await world.reconcile("transform")
    assert world.client.created == []
    [(type_, reason, message)] = world.events.posted
    assert (type_, reason) == ("Warning", "InvalidTrigger")
    assert "spec.triggers[0].afterDeployment.parameters.start_date" in message


async def test_a_template_that_fails_on_the_run_is_a_warning_not_a_retry() -> None:
    world = World()
    world.add_deployment(deployment("transform", {"afterDeployment": {
        "name": "ingest", "parameters": {"start_date": "{{ run.parameters.missing }}"}}}))
    world.add_run(flowrun("ingest-1", "ingest", "Completed"))
    await world.reconcile("transform")
    assert world.client.created == []
    assert [(t, r) for t, r, _ in world.events.posted] == [("Warning", "TriggerFailed")]
    assert "spec.triggers[0].afterDeployment.parameters.start_date" in world.events.posted[0][2]


@pytest.mark.parametrize(("spec_triggers", "field"), [
    ([{"afterDeployment": {"name": "transform"}}], "spec.triggers[0].afterDeployment.name"),
    ([{"afterDeployment": {"name": "a", "phase": ["Completed"]}}],
     "spec.triggers[0].afterDeployment.phase"),
    ([{}], "spec.triggers[0]"),
])
def test_bad_triggers_are_refused_naming_the_field(spec_triggers: list[Any],
                                                   field: str) -> None:
    body = deployment("transform", *spec_triggers)
    errors = validate_manifest(body)
    assert any(error.startswith(f"{field}:") for error in errors), errors
