"""What one FlowRun step reads and keeps: its pod from the watch, and no memory of a run
the watch has seen end.

Each test drives :meth:`FlowRunController.reconcile` (what the work queue calls) against
a fake client that answers from dicts and counts every request, with the watch's events
fed to ``on_flowrun``/``on_pod`` as the informers would deliver them.

* A pod the watch (or our own create) has shown is not read again at every step: a
  successful run's steps read no pod at all. A pod the watch has not shown (after a
  restart the pod watch may list it before the run is tracked) is read once.
* A pod event wakes the run only when it changes the pod's facts, all a step decides
  from (the scheduler's binding changes none).
* "Gone" ends an attempt for good (the run crashes), so only the API server's 404 says
  so: a ``DELETED`` event is confirmed with a read. The pod watch is filtered by label,
  so a pod whose label was removed looks deleted there but still runs: it is read at
  every step, as the watch will show none of its changes.
* A step whose terminal status patch is answered after the watch delivered that very
  status keeps no view of the run: nothing would ever drop it.
* A step parses the run's body again only for another ``resourceVersion``, and resolves
  its settings again only when the run's spec (its ``generation``), its Deployment or its
  Flow changed: a run held while its Deployment is paused starts at the first step after
  the Deployment is resumed, and a run whose spec changed is resolved from the new spec.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from headwater import contract
from headwater_operator import kube
from headwater_operator.api import FlowRun
from headwater_operator.clock import ManualClock
from headwater_operator.controllers import flowruns as flowruns_module
from headwater_operator.controllers.flowruns import FlowRunController
from headwater_operator.informer import Store
from headwater_operator.runtime import AGAIN, DONE

NS = "ns"
RUN = "run-a"
POD = "run-a-1"
STARTED = "2024-05-01T10:00:05Z"
FINISHED = "2024-05-01T10:00:08Z"
NOW = datetime(2024, 5, 1, 10, 0, 9, tzinfo=UTC)


class Events:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def post(self, involved: Mapping[str, Any], type_: str, reason: str,
             message: str) -> None:
        self.reasons.append(reason)


class FakeKube(kube.Kube):
    """FlowRuns and pods in dicts; every request counted as ``(verb, plural)``.

    ``on_status_patch`` runs before a status patch answers: the watch delivering the
    written body first.
    """

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, kube.JsonObject] = {}
        self.pods: dict[str, kube.JsonObject] = {}
        self.requests: Counter[tuple[str, str]] = Counter()
        self.version = 10
        self.on_status_patch: Callable[[kube.JsonObject], None] | None = None

    def _bump(self, body: kube.JsonObject) -> kube.JsonObject:
        self.version += 1
        body["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(body)

    async def get(self, resource: kube.Resource, name: str, *,
                  namespace: str | None = None) -> kube.JsonObject:
        self.requests["get", resource.plural] += 1
        found = (self.pods if resource.plural == "pods" else self.runs).get(name)
        if found is None:
            raise kube.NotFound(404, "NotFound", f'{resource.plural} "{name}" not found')
        return copy.deepcopy(found)

    async def create(self, resource: kube.Resource, body: Mapping[str, Any], *,
                     namespace: str | None = None) -> kube.JsonObject:
        self.requests["create", resource.plural] += 1
        assert resource.plural == "pods"
        stored = copy.deepcopy(dict(body))
        stored["metadata"].update(namespace=NS, creationTimestamp="2024-05-01T10:00:01Z")
        stored["status"] = {"phase": "Pending"}
        self.pods[stored["metadata"]["name"]] = stored
        return self._bump(stored)

    async def patch(self, resource: kube.Resource, name: str,
                    patch: Mapping[str, Any] | Any, *, namespace: str | None = None,
                    subresource: str | None = None) -> kube.JsonObject:
        self.requests["patch", f"{resource.plural}/{subresource}"] += 1
        run = self.runs[name]
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != run["metadata"]["resourceVersion"]:
            raise kube.Conflict(409, "Conflict", "the object has been modified")
        status = run.setdefault("status", {})
        for field, value in patch["status"].items():
            if value is None:
                status.pop(field, None)
            else:
                status[field] = value
        written = self._bump(run)
        if self.on_status_patch is not None:
            self.on_status_patch(copy.deepcopy(written))
        return written


def flowrun(**status: Any) -> kube.JsonObject:
    return {"apiVersion": contract.API_VERSION, "kind": "FlowRun",
            "metadata": {"name": RUN, "namespace": NS, "uid": "uid-run-a", "generation": 1,
                         "resourceVersion": "5",
                         "creationTimestamp": "2024-05-01T10:00:00Z"},
            "spec": {"deploymentRef": {"name": "nightly"}}, "status": status}


def pod(phase: str, state: Mapping[str, Any] | None = None) -> kube.JsonObject:
    body: kube.JsonObject = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": POD, "namespace": NS, "resourceVersion": "7",
                     "creationTimestamp": "2024-05-01T10:00:01Z",
                     "labels": {contract.LABEL_MANAGED_BY: contract.MANAGED_BY_VALUE},
                     "ownerReferences": [{"apiVersion": contract.API_VERSION,
                                          "kind": "FlowRun", "name": RUN,
                                          "uid": "uid-run-a", "controller": True}]},
        "spec": {"containers": [{"name": "flow", "image": "ghcr.io/acme/etl:1.0"}]},
        "status": {"phase": phase}}
    if state is not None:
        body["status"]["containerStatuses"] = [{"name": "flow", "state": dict(state)}]
    return body


RUNNING_POD = pod("Running", {"running": {"startedAt": STARTED}})
SUMMARY: contract.RunSummary = {  # type: ignore[typeddict-item]
    "version": contract.SUMMARY_VERSION, "state": "Completed", "reason": "Completed",
    "message": "the flow run finished: Completed"}
SUCCEEDED_POD = pod("Succeeded", {"terminated": {
    "exitCode": 0, "reason": "Completed", "startedAt": STARTED, "finishedAt": FINISHED,
    "message": contract.encode_summary(SUMMARY)}})


def scene(run: kube.JsonObject) -> tuple[FlowRunController, FakeKube, Events]:
    """A controller whose stores hold Deployment ``nightly`` and its Flow, with ``run``
    stored and delivered by the watch."""
    client, events = FakeKube(), Events()
    deployments, flows = Store(), Store()
    deployments.on_event("ADDED", {
        "apiVersion": contract.API_VERSION, "kind": "Deployment",
        "metadata": {"name": "nightly", "namespace": NS, "resourceVersion": "1",
                     "generation": 1},
        "spec": {"flowRef": {"name": "etl"}}})
    flows.on_event("ADDED", {
        "apiVersion": contract.API_VERSION, "kind": "Flow",
        "metadata": {"name": "etl", "namespace": NS, "resourceVersion": "1", "generation": 1},
        "spec": {"image": "ghcr.io/acme/etl:1.0", "entrypoint": "etl.flows:ingest"}})
    controller = FlowRunController(client, deployments=deployments, flows=flows,
                                   events=events, clock=ManualClock(NOW))
    client.runs[RUN] = copy.deepcopy(run)
    controller.on_flowrun("ADDED", run)
    return controller, client, events


def running_scene() -> tuple[FlowRunController, FakeKube, Events]:
    controller, client, events = scene(flowrun(
        phase="Running", attempts=1, podName=POD, startTime=STARTED))
    client.pods[POD] = copy.deepcopy(RUNNING_POD)
    return controller, client, events


async def test_a_successful_run_reads_no_pod_its_creation_and_the_watch_showed() -> None:
    controller, client, events = scene(flowrun())
    assert await controller.reconcile((NS, RUN)) == AGAIN  # pod created, Pending written
    assert client.runs[RUN]["status"]["phase"] == "Pending"
    assert await controller.reconcile((NS, RUN)) != AGAIN  # our create's answer: Pending
    client.pods[POD] = copy.deepcopy(RUNNING_POD)
    controller.on_pod("MODIFIED", RUNNING_POD)
    assert await controller.reconcile((NS, RUN)) == AGAIN
    assert client.runs[RUN]["status"]["phase"] == "Running"
    client.pods[POD] = copy.deepcopy(SUCCEEDED_POD)
    controller.on_pod("MODIFIED", SUCCEEDED_POD)
    assert await controller.reconcile((NS, RUN)) == DONE
    assert client.runs[RUN]["status"]["phase"] == "Completed"
    assert events.reasons == ["PodCreated", "Started", "Completed"]
    assert client.requests["get", "pods"] == 0, client.requests


async def test_a_pod_the_watch_has_not_shown_is_read_once() -> None:
    # After a restart the pod watch may list the pod before the run is tracked.
    controller, client, _ = running_scene()
    assert await controller.reconcile((NS, RUN)) != AGAIN
    assert await controller.reconcile((NS, RUN)) != AGAIN
    assert client.requests["get", "pods"] == 1


async def test_a_pod_deleted_on_the_watch_is_gone_only_when_the_api_server_says_so() -> None:
    controller, client, _ = running_scene()
    unlabelled = copy.deepcopy(RUNNING_POD)
    unlabelled["metadata"]["labels"] = {}
    client.pods[POD] = unlabelled
    # The label was removed: the selector-filtered watch reports the pod as deleted.
    controller.on_pod("DELETED", RUNNING_POD)
    assert await controller.reconcile((NS, RUN)) != AGAIN
    assert client.runs[RUN]["status"]["phase"] == "Running", "the pod still runs"
    # The watch shows this pod no more, so each step reads it (the timers still wake it).
    assert await controller.reconcile((NS, RUN)) != AGAIN
    assert client.requests["get", "pods"] == 2
    del client.pods[POD]  # now it is really gone
    assert await controller.reconcile((NS, RUN)) == DONE
    assert client.runs[RUN]["status"]["phase"] == "Crashed"
    assert client.requests["get", "pods"] == 3


async def test_no_view_is_kept_of_a_run_whose_end_the_watch_showed_before_the_patch_answered(
        ) -> None:
    controller, client, _ = running_scene()
    client.pods[POD] = copy.deepcopy(SUCCEEDED_POD)
    controller.on_pod("MODIFIED", SUCCEEDED_POD)
    client.on_status_patch = lambda written: controller.on_flowrun("MODIFIED", written)
    assert await controller.reconcile((NS, RUN)) == DONE
    assert client.runs[RUN]["status"]["phase"] == "Completed"
    assert (NS, RUN) not in controller.tracked
    assert (NS, RUN) not in controller.views, "nothing would ever drop this view"
    assert (NS, RUN) not in controller.pods_seen


async def test_a_run_whose_end_the_watch_has_not_shown_keeps_its_view_until_it_does() -> None:
    # A late (or replayed) event of an older body must not start the run over.
    controller, client, _ = running_scene()
    client.pods[POD] = copy.deepcopy(SUCCEEDED_POD)
    controller.on_pod("MODIFIED", SUCCEEDED_POD)
    assert await controller.reconcile((NS, RUN)) == DONE
    assert (NS, RUN) in controller.views
    controller.on_flowrun("MODIFIED", copy.deepcopy(client.runs[RUN]))
    assert (NS, RUN) not in controller.views


async def test_a_pod_update_wakes_its_run_only_when_it_changes_what_a_step_decides_from(
        ) -> None:
    controller, client, _ = scene(flowrun())
    assert await controller.reconcile((NS, RUN)) == AGAIN  # pod created, Pending written
    woken: list[tuple[str, str]] = []
    controller.queue.wake = woken.append  # type: ignore[method-assign]
    created = copy.deepcopy(client.pods[POD])
    controller.on_pod("ADDED", created)  # the watch shows what our create answered
    bound = copy.deepcopy(created)
    bound["spec"]["nodeName"] = "node-1"  # the scheduler's binding: facts unchanged
    bound["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    controller.on_pod("MODIFIED", bound)
    assert woken == []
    controller.on_pod("MODIFIED", RUNNING_POD)
    assert woken == [(NS, RUN)]
    controller.on_pod("MODIFIED", RUNNING_POD)  # a replay
    assert woken == [(NS, RUN)]
    controller.on_pod("DELETED", RUNNING_POD)  # gone changes everything
    assert woken == [(NS, RUN)] * 2


async def test_a_step_parses_and_resolves_again_only_what_changed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    resolved: list[str] = []
    real_parse = FlowRun.model_validate.__func__  # type: ignore[attr-defined]
    real_resolve = flowruns_module.resolve_settings

    def parse(cls: type[FlowRun], body: Any, **kwargs: Any) -> FlowRun:
        parsed.append(body["metadata"]["resourceVersion"])
        return real_parse(cls, body, **kwargs)  # type: ignore[no-any-return]

    def resolve(*args: Any, **kwargs: Any) -> Any:
        resolved.append(args[1].metadata.resource_version)  # the Deployment's
        return real_resolve(*args, **kwargs)

    monkeypatch.setattr(FlowRun, "model_validate", classmethod(parse))
    monkeypatch.setattr(flowruns_module, "resolve_settings", resolve)
    controller, client, _ = scene(flowrun())
    paused = copy.deepcopy(controller.deployments.get(NS, "nightly"))
    assert paused is not None
    paused["spec"]["paused"] = True
    paused["metadata"].update(resourceVersion="2", generation=2)
    controller.deployments.on_event("MODIFIED", paused)
    controller.on_deployment("MODIFIED", paused)

    assert await controller.reconcile((NS, RUN)) == AGAIN  # held: Scheduled written
    assert client.runs[RUN]["status"]["reason"] == "DeploymentPaused"
    assert await controller.reconcile((NS, RUN)) != AGAIN  # the written body: held still
    assert await controller.reconcile((NS, RUN)) != AGAIN  # nothing changed
    assert parsed == ["5", "11"]
    assert resolved == ["2"], "settings read the spec: our status write kept them"
    assert client.requests["create", "pods"] == 0

    resumed = copy.deepcopy(paused)
    resumed["spec"]["paused"] = False
    resumed["metadata"].update(resourceVersion="3", generation=3)
    controller.deployments.on_event("MODIFIED", resumed)
    controller.on_deployment("MODIFIED", resumed)
    assert await controller.reconcile((NS, RUN)) == AGAIN
    assert client.requests["create", "pods"] == 1, "resumed: the run started"
    assert client.runs[RUN]["status"]["phase"] == "Pending"
    assert parsed == ["5", "11"], "the run's body had not changed"
    assert resolved == ["2", "3"]


async def test_a_run_whose_spec_changed_is_resolved_from_the_new_spec() -> None:
    run = flowrun()
    run["spec"]["scheduledTime"] = "2024-05-01T10:01:09Z"  # a minute after NOW
    controller, client, _ = scene(run)
    assert await controller.reconcile((NS, RUN)) == AGAIN  # Scheduled written
    assert await controller.reconcile((NS, RUN)) != AGAIN  # waiting for its time
    # The user sets a timeout on the waiting run: a spec change (generation 2); its
    # Deployment and Flow do not change.
    changed = copy.deepcopy(client.runs[RUN])
    changed["spec"]["timeoutSeconds"] = 30
    changed["metadata"]["generation"] = 2
    client.runs[RUN] = client._bump(changed)
    controller.on_flowrun("MODIFIED", copy.deepcopy(client.runs[RUN]))
    assert isinstance(controller.clock, ManualClock)
    controller.clock.advance(60)
    assert await controller.reconcile((NS, RUN)) == AGAIN
    assert client.requests["create", "pods"] == 1
    assert client.pods[POD]["spec"]["activeDeadlineSeconds"] == 30
