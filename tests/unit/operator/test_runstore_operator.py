"""The operator's side of the run store (docs/run-store.md, "The operator").

* The store root a flow-run pod gets (``HEADWATER_RUN_STORE``) follows the precedence
  ``Deployment.spec.runStore`` > ``resultStorage`` > the operator's ``--run-store`` > none.
* The status write that names an attempt's pod appends ``{attempt, url}`` to
  ``status.runRecords``; the one that records the attempt's outcome copies the summary's
  ``recordWritten`` into ``written``, and ``false`` posts ``RunRecordNotWritten``.
* Pruning deletes each pruned FlowRun's records under every root its ``runRecords``
  name, in real stores (local directories, fsspec's ``memory://``), and a store that
  fails to delete is reported, never in the way of the prune.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fsspec
import pytest
from headwater import contract, runstore
from headwater.contract import encode_summary
from headwater.results import resolve_storage
from headwater_operator import kube, reasons
from headwater_operator.api.validation import status_errors
from headwater_operator.clock import ManualClock
from headwater_operator.controllers.deployments import DeploymentController, record_roots
from headwater_operator.flowruns.machine import Facts, decide
from headwater_operator.flowruns.podfacts import pod_facts
from headwater_operator.flowruns.render import render_pod
from headwater_operator.flowruns.settings import RunSettings, resolve_settings
from headwater_operator.informer import Store
from test_deployment_status_coalescing import NOW, RecordingEvents
from test_flowrun_builders import (
    T0,
    at,
    iso,
    make_deployment,
    make_flow,
    make_pod,
    make_run,
    terminated,
)

RUNNING = {"phase": "Running", "attempts": 1, "podName": "run-a-1",
           "startTime": iso(T0), "scheduledTime": iso(T0)}
ATTEMPT_1 = "s3://runs/hw/flowruns/v1/ns/run-a/1"


def patched(patch: dict[str, Any]) -> dict[str, Any]:
    """A status merge patch as the stored status it leads to (``None`` removes a field)."""
    return {key: value for key, value in patch.items() if value is not None}


def settings_with(default: str | None = None, **deployment: Any) -> RunSettings:
    return resolve_settings(make_flow(), make_deployment(**deployment), make_run(),
                            default_run_store=default)


def pod_env(settings: RunSettings) -> dict[str, str]:
    pod = render_pod(make_run(), settings, 1, T0)
    (flow,) = pod["spec"]["containers"]
    return {var["name"]: var["value"] for var in flow["env"] if "value" in var}


# --- which store the pod gets ------------------------------------------------------------
@pytest.mark.parametrize(("deployment", "default", "expected"), [
    ({"runStore": {"url": "s3://runs/hw"}, "resultStorage": {"url": "s3://results"}},
     "s3://operator-default", "s3://runs/hw"),
    ({"resultStorage": {"url": "s3://results"}}, "s3://operator-default", "s3://results"),
    ({}, "s3://operator-default", "s3://operator-default"),
    ({}, None, None),
], ids=["runStore-wins", "then-resultStorage", "then-the-operator-default", "else-none"])
def test_the_pod_gets_the_run_store_by_precedence(
        deployment: dict[str, Any], default: str | None, expected: str | None) -> None:
    settings = settings_with(default, **deployment)
    assert settings.run_store == expected
    env = pod_env(settings)
    assert env.get(contract.ENV_RUN_STORE) == expected
    if "resultStorage" in deployment:  # results still go where resultStorage says
        assert env[contract.ENV_RESULT_STORAGE] == "s3://results"


def test_the_chosen_store_wins_over_the_same_variable_in_the_run_template() -> None:
    env = pod_env(settings_with(
        "s3://operator-default",
        runTemplate={"env": [{"name": contract.ENV_RUN_STORE, "value": "/elsewhere"}]}))
    assert env[contract.ENV_RUN_STORE] == "s3://operator-default"


def test_run_store_off_writes_no_record_and_records_no_location() -> None:
    settings = settings_with("s3://operator-default", runStore={"url": "off"},
                             resultStorage={"url": "s3://results"})
    assert pod_env(settings)[contract.ENV_RUN_STORE] == "off"  # the SDK writes none
    decision = decide(make_run(), Facts(now=at(1), settings=settings))
    assert decision.create_pod == 1
    assert "runRecords" not in decision.status


# --- status.runRecords -------------------------------------------------------------------
def test_starting_an_attempt_records_where_its_record_goes_in_the_same_status_write() -> None:
    settings = settings_with(runStore={"url": "s3://runs/hw/"})
    decision = decide(make_run(), Facts(now=at(1), settings=settings))
    assert decision.create_pod == 1
    assert decision.status["podName"] == "run-a-1"
    assert decision.status["runRecords"] == [{"attempt": 1, "url": ATTEMPT_1}]
    assert status_errors("FlowRun", patched(decision.status)) == []


def test_without_a_store_no_location_is_recorded() -> None:
    decision = decide(make_run(), Facts(now=at(1), settings=settings_with()))
    assert decision.create_pod == 1
    assert "runRecords" not in decision.status


def test_a_retry_appends_its_attempt_and_keeps_the_earlier_ones() -> None:
    run = make_run(retries=1, status={
        "phase": "AwaitingRetry", "attempts": 1, "podName": "run-a-1",
        "nextAttemptTime": iso(at(10)),
        "runRecords": [{"attempt": 1, "url": ATTEMPT_1, "written": True}]})
    # The Deployment's store changed since attempt 1: each entry keeps its own root.
    settings = settings_with(runStore={"url": "gs://new/root"})
    decision = decide(run, Facts(now=at(11), settings=settings))
    assert decision.create_pod == 2
    assert decision.status["runRecords"] == [
        {"attempt": 1, "url": ATTEMPT_1, "written": True},
        {"attempt": 2, "url": "gs://new/root/flowruns/v1/ns/run-a/2"},
    ]


def ended(summary: dict[str, Any], *, exit_code: int = 0,
          records: list[dict[str, Any]] | None = None, **spec: Any) -> Any:
    """Decide on a Running run whose pod just exited with ``summary``."""
    status = {**RUNNING, "runRecords": [{"attempt": 1, "url": ATTEMPT_1}]
              if records is None else records}
    run = make_run(status=status, **spec)
    phase = "Succeeded" if exit_code == 0 else "Failed"
    pod = make_pod(phase, container=terminated(
        exit_code, encode_summary(summary), "Completed" if exit_code == 0 else "Error",
        finished=at(30)))
    settings = resolve_settings(make_flow(), make_deployment(
        runStore={"url": "s3://runs/hw"}, retryDelaySeconds=5), run)
    return decide(run, Facts(now=at(40), settings=settings, pod=pod_facts(pod)))


COMPLETED: dict[str, Any] = {"version": 1, "state": "Completed", "reason": "Completed",
                             "message": "ok", "taskRuns": {"Completed": 3}}


def test_a_written_record_is_marked_in_the_status_write_that_ends_the_attempt() -> None:
    decision = ended({**COMPLETED, "recordWritten": True})
    assert decision.status["phase"] == "Completed"
    assert decision.status["runRecords"] == [
        {"attempt": 1, "url": ATTEMPT_1, "written": True}]
    assert status_errors("FlowRun", patched(decision.status)) == []
    assert reasons.RUN_RECORD_NOT_WRITTEN not in [event.reason for event in decision.events]


def test_a_record_not_written_is_marked_and_said_in_a_warning_naming_where() -> None:
    decision = ended({**COMPLETED, "recordWritten": False})
    assert decision.status["phase"] == "Completed"  # the flow's outcome is unaffected
    assert decision.status["runRecords"] == [
        {"attempt": 1, "url": ATTEMPT_1, "written": False}]
    assert [(e.type, e.reason) for e in decision.events] == [
        ("Normal", reasons.COMPLETED), ("Warning", reasons.RUN_RECORD_NOT_WRITTEN)]
    message = decision.events[-1].message
    assert "attempt 1" in message
    assert ATTEMPT_1 in message


def test_a_failed_attempt_awaiting_retry_is_marked_too() -> None:
    decision = ended({"version": 1, "state": "Failed", "reason": "Failed", "message": "boom",
                      "recordWritten": False}, exit_code=1, retries=1)
    assert decision.status["phase"] == "AwaitingRetry"
    assert decision.status["runRecords"][0]["written"] is False
    assert decision.events[-1].reason == reasons.RUN_RECORD_NOT_WRITTEN


def test_a_summary_that_does_not_say_leaves_the_entry_alone() -> None:
    for summary in (COMPLETED, {**COMPLETED, "recordWritten": "yes"}):  # absent; not a bool
        decision = ended(summary)
        assert decision.status["phase"] == "Completed"
        assert "runRecords" not in decision.status
        assert reasons.RUN_RECORD_NOT_WRITTEN not in [e.reason for e in decision.events]


def test_a_record_not_written_without_a_recorded_location_still_warns() -> None:
    # The pod wrote to a store the status never named (its entry was lost, or the pod
    # found one of its own): the Warning says so instead of naming a location.
    decision = ended({**COMPLETED, "recordWritten": False}, records=[])
    assert "runRecords" not in decision.status
    assert decision.events[-1].reason == reasons.RUN_RECORD_NOT_WRITTEN
    assert "names no location" in decision.events[-1].message


def test_a_cancelled_attempt_that_wrote_its_summary_is_marked() -> None:
    status = {**RUNNING, "phase": "Cancelling", "runRecords": [{"attempt": 1, "url": ATTEMPT_1}],
              "conditions": [{"type": "CancelRequested", "status": "True",
                              "reason": "CancelRequested", "message": "m",
                              "lastTransitionTime": iso(at(20))}]}
    run = make_run(status=status, cancel=True)
    summary = {"version": 1, "state": "Cancelled", "reason": "Cancelled",
               "message": "SIGTERM", "recordWritten": True}
    pod = make_pod("Failed", container=terminated(143, encode_summary(summary), "Error",
                                                  finished=at(25)))
    decision = decide(run, Facts(now=at(30), settings=settings_with(), pod=pod_facts(pod)))
    assert decision.status["phase"] == "Cancelled"
    assert decision.status["runRecords"] == [
        {"attempt": 1, "url": ATTEMPT_1, "written": True}]


# --- pruning deletes records ---------------------------------------------------------------
NS = "ns"
KEY = (NS, "nightly")


class DeletingClient(kube.Kube):
    """Deletes FlowRuns (recorded); ``fail_on`` names one whose delete raises (an outage)."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__()
        self.deleted: list[str] = []
        self.fail_on = fail_on

    async def delete(self, resource: kube.Resource, name: str, *,
                     namespace: str | None = None, **kwargs: Any) -> kube.JsonObject:
        assert (resource.plural, namespace) == ("flowruns", NS)
        if name == self.fail_on:
            raise kube.KubeError(503, "ServiceUnavailable", "the API server is down")
        self.deleted.append(name)
        return {}

    async def patch_status(self, resource: kube.Resource, name: str, patch: Any, *,
                           namespace: str | None = None) -> kube.JsonObject:
        return {}


def controller(client: DeletingClient, events: RecordingEvents) -> DeploymentController:
    deployments, flows = Store(), Store()
    body = {"apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
            "metadata": {"name": "nightly", "namespace": NS, "uid": "u1", "generation": 1},
            "spec": {"flowRef": {"name": "etl"},
                     "history": {"successfulRunsLimit": 1}}, "status": {}}
    deployments.on_event("ADDED", body)
    made = DeploymentController(client, deployments=deployments, flows=flows, events=events,
                                clock=ManualClock(NOW))
    made.on_deployment("ADDED", body)
    return made


def finished_run(made: DeploymentController, name: str, end_second: int,
                 urls: list[str]) -> None:
    made.on_flowrun("MODIFIED", {
        "metadata": {"name": name, "namespace": NS, "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"deploymentRef": {"name": "nightly"}},
        "status": {"phase": "Completed", "endTime": f"2024-05-01T11:30:{end_second:02d}Z",
                   "runRecords": [{"attempt": i + 1, "url": url} for i, url in
                                  enumerate(urls)]}})


def write_record(root: str, name: str, attempt: int) -> None:
    """A record (and a log segment) where the SDK would write them."""
    storage = resolve_storage(runstore.attempt_url(root, NS, name, attempt))
    storage.write(runstore.RECORD_FILE, b'{"schemaVersion": "headwater.dev/run-record/v1"}')
    storage.write(runstore.segment_name(0), b'{"message": "hello"}\n')


def has_records(root: str, name: str) -> bool:
    storage = resolve_storage(root)
    return bool(storage.list(runstore.flowrun_path(NS, name) + "/1"))


def test_record_roots_are_distinct_and_skip_what_is_not_a_store_location() -> None:
    assert record_roots([
        "s3://a/x/flowruns/v1/ns/r/1", "s3://a/x/flowruns/v1/ns/r/2",
        "/data/flowruns/v1/ns/r/3", "s3://elsewhere/r/4",
    ]) == ["s3://a/x", "/data"]


async def test_pruning_deletes_the_records_under_every_root_and_keeps_the_kept_runs(
        tmp_path: Path) -> None:
    local = str(tmp_path / "store")
    memory = "memory://runstore-prune-test"
    for root in (local, memory):
        write_record(root, "old", 1 if root == local else 2)
        write_record(root, "new", 1)
    client, events = DeletingClient(), RecordingEvents()
    made = controller(client, events)
    finished_run(made, "old", 1, [runstore.attempt_url(local, NS, "old", 1),
                                  runstore.attempt_url(memory, NS, "old", 2)])
    finished_run(made, "new", 2, [runstore.attempt_url(local, NS, "new", 1)])
    try:
        await made.reconcile(KEY)
        assert client.deleted == ["old"]
        assert not (tmp_path / "store" / "flowruns" / "v1" / NS / "old").exists()
        assert not fsspec.filesystem("memory").exists(
            "/runstore-prune-test/flowruns/v1/ns/old")
        assert has_records(local, "new")  # the kept run's records stay
        posted = [reason for _, _, reason, _ in events.posted]
        assert reasons.HISTORY_PRUNED in posted
        assert reasons.RUN_RECORDS_NOT_DELETED not in posted
    finally:
        fsspec.filesystem("memory").rm("/runstore-prune-test", recursive=True)


async def test_a_store_that_cannot_delete_is_reported_and_the_run_is_pruned_anyway(
        tmp_path: Path) -> None:
    broken = tmp_path / "not-a-directory"
    broken.write_text("a file where the store's root should be")
    good = str(tmp_path / "store")
    write_record(good, "old", 2)
    client, events = DeletingClient(), RecordingEvents()
    made = controller(client, events)
    finished_run(made, "old", 1, [runstore.attempt_url(str(broken), NS, "old", 1),
                                  runstore.attempt_url(good, NS, "old", 2)])
    finished_run(made, "new", 2, [])
    await made.reconcile(KEY)
    assert client.deleted == ["old"]
    assert not (tmp_path / "store" / "flowruns" / "v1" / NS / "old").exists()  # the other root
    warnings = [(name, message) for name, type_, reason, message in events.posted
                if reason == reasons.RUN_RECORDS_NOT_DELETED and type_ == "Warning"]
    assert len(warnings) == 1
    name, message = warnings[0]
    assert name == "nightly"  # on the Deployment
    assert f"{broken}/flowruns/v1/ns/old/" in message
    assert "'old'" in message
    assert "NotADirectoryError" in message


async def test_records_of_runs_pruned_before_an_api_failure_are_still_deleted(
        tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    for name in ("a-old", "b-old"):
        write_record(root, name, 1)
    client, events = DeletingClient(fail_on="b-old"), RecordingEvents()
    made = controller(client, events)
    finished_run(made, "a-old", 1, [runstore.attempt_url(root, NS, "a-old", 1)])
    finished_run(made, "b-old", 2, [runstore.attempt_url(root, NS, "b-old", 1)])
    finished_run(made, "new", 3, [])
    with pytest.raises(kube.KubeError):  # the work queue retries the reconcile
        await made.reconcile(KEY)
    assert client.deleted == ["a-old"]
    assert not has_records(root, "a-old")
    assert has_records(root, "b-old")  # its FlowRun is still there: so are its records



def test_pods_get_the_ui_address_when_the_operator_knows_it() -> None:
    """``--ui-url`` reaches every flow-run pod as HEADWATER_UI_URL (the SDK's
    ``runtime.flow_run.ui_url``); without it the pod gets no such variable."""
    with_ui = resolve_settings(make_flow(), make_deployment(), make_run(),
                               ui_url="https://hw.example.com")
    assert pod_env(with_ui)[contract.ENV_UI_URL] == "https://hw.example.com"
    assert contract.ENV_UI_URL not in pod_env(settings_with())
