"""The FlowRun state machine: each transition of docs/flowrun-lifecycle.md."""

from __future__ import annotations

from typing import Any

from headwater.contract import encode_summary
from headwater_operator import reasons
from headwater_operator.api import FlowRunPhase
from headwater_operator.flowruns.concurrency import SlotVerdict
from headwater_operator.flowruns.machine import Facts, decide, pod_creation_failed
from headwater_operator.flowruns.podfacts import PodFacts, pod_facts
from headwater_operator.flowruns.settings import parameter_errors
from test_flowrun_builders import (
    T0,
    at,
    iso,
    make_deployment,
    make_flow,
    make_pod,
    make_run,
    make_settings,
    terminated,
)

RUNNING = {"phase": "Running", "attempts": 1, "podName": "run-a-1",
           "startTime": iso(T0), "scheduledTime": iso(T0)}


def facts(seconds: float = 1, pod: dict[str, Any] | None = None, **kwargs: Any) -> Facts:
    run = kwargs.pop("run", None)
    deployment = kwargs.pop("deployment", None)
    settings = make_settings(run=run, deployment=deployment)
    pod_seen = pod_facts(pod) if pod is not None else kwargs.pop("pod_facts", None)
    return Facts(now=at(seconds), settings=settings, pod=pod_seen, **kwargs)


def completed_pod() -> dict[str, Any]:
    text = encode_summary({"state": "Completed", "reason": "Completed", "message": "ok",
                           "taskRuns": {"Completed": 2}})
    pod: dict[str, Any] = make_pod("Succeeded", container=terminated(0, text, finished=at(30)))
    return pod


def test_new_run_creates_attempt_one_pod_and_goes_pending() -> None:
    decision = decide(make_run(), facts())
    assert decision.create_pod == 1
    assert decision.status["phase"] == "Pending"
    assert decision.status["podName"] == "run-a-1"
    assert decision.status["scheduledTime"] == iso(T0)


def test_future_run_waits_for_its_scheduled_time() -> None:
    decision = decide(make_run(scheduledTime=iso(at(300))), facts())
    assert decision.create_pod is None
    assert decision.status["phase"] == "Scheduled"
    assert decision.wake_at == at(300)


def test_run_past_late_threshold_is_marked_late_and_still_starts() -> None:
    decision = decide(make_run(), facts(seconds=61))
    assert decision.became_late
    assert decision.create_pod == 1
    assert [c["type"] for c in decision.status["conditions"]] == ["Late"]


def test_invalid_parameters_fail_without_pod_and_name_the_parameter() -> None:
    schema = {"type": "object", "properties": {"day": {"type": "string"}},
              "required": ["day"]}
    errors = tuple(parameter_errors({"day": 5}, schema))
    decision = decide(make_run(), facts(parameter_errors=errors))
    assert decision.create_pod is None
    assert (decision.status["phase"], decision.status["reason"]) == (
        "Failed", reasons.INVALID_PARAMETERS)
    assert "'day'" in decision.status["message"]


def test_paused_deployment_holds_the_run() -> None:
    decision = decide(make_run(), facts(deployment=make_deployment(paused=True)))
    assert decision.create_pod is None
    assert decision.status["reason"] == reasons.DEPLOYMENT_PAUSED


def test_queue_verdict_waits_for_a_slot_and_cancel_verdict_cancels() -> None:
    queued = decide(make_run(), facts(slot=SlotVerdict.QUEUE))
    assert queued.status["phase"] == "AwaitingConcurrencySlot"
    assert queued.create_pod is None
    cancelled = decide(make_run(), facts(slot=SlotVerdict.CANCEL))
    assert (cancelled.status["phase"], cancelled.status["reason"]) == (
        "Cancelled", reasons.CONCURRENCY_LIMIT_REACHED)


def test_pending_attempt_becomes_running_with_start_time() -> None:
    run = make_run(status={"phase": "Pending", "attempts": 1, "podName": "run-a-1"})
    pod = make_pod("Running", container={"running": {"startedAt": iso(at(5))}})
    decision = decide(run, facts(pod=pod))
    assert decision.status["phase"] == "Running"
    assert decision.status["startTime"] == iso(at(5))


def test_running_attempt_with_no_news_writes_nothing() -> None:
    run = make_run(status=RUNNING)
    pod = make_pod("Running", container={"running": {"startedAt": iso(T0)}})
    assert decide(run, facts(pod=pod)).status == {}


def test_completed_pod_completes_the_run_with_summary_and_duration() -> None:
    decision = decide(make_run(status=RUNNING), facts(seconds=40, pod=completed_pod()))
    assert decision.status["phase"] == "Completed"
    assert decision.status["taskRuns"] == {"Completed": 2}
    assert decision.status["durationSeconds"] == 30.0
    assert decision.status["endTime"] == iso(at(30))


def test_failed_attempt_with_retries_left_awaits_retry_then_starts_attempt_two() -> None:
    run = make_run(status=RUNNING, retries=2)
    text = encode_summary({"state": "Failed", "reason": "Failed", "message": "boom"})
    pod = make_pod("Failed", container=terminated(1, text, "Error"))
    deployment = make_deployment(retryDelaySeconds=10)
    decision = decide(run, facts(seconds=60, pod=pod, run=run, deployment=deployment))
    assert decision.status["phase"] == "AwaitingRetry"
    assert decision.status["nextAttemptTime"] == iso(at(70))
    waiting = make_run(retries=2, status={**RUNNING, **decision.status})
    assert decide(waiting, facts(seconds=65, run=waiting)).create_pod is None
    retry = decide(waiting, facts(seconds=70, run=waiting))
    assert retry.create_pod == 2
    assert (retry.status["phase"], retry.status["podName"]) == ("Retrying", "run-a-2")


def test_parameters_the_engine_rejected_are_not_retried() -> None:
    run = make_run(status=RUNNING, retries=2)
    text = encode_summary({"state": "Failed", "reason": "InvalidParameters",
                           "message": "unknown parameter 'nme'"})
    pod = make_pod("Failed", container=terminated(1, text, "Error"))
    decision = decide(run, facts(seconds=60, pod=pod, run=run, deployment=make_deployment()))
    assert (decision.status["phase"], decision.status["reason"]) == (
        "Failed", "InvalidParameters")
    assert decision.status.get("nextAttemptTime") is None  # cleared, no retry planned


def test_failed_last_attempt_is_final_and_says_how_many_attempts() -> None:
    run = make_run(status={**RUNNING, "attempts": 3, "podName": "run-a-3"}, retries=2)
    text = encode_summary({"state": "Failed", "reason": "Failed", "message": "boom"})
    pod = make_pod("Failed", container=terminated(1, text, "Error"))
    decision = decide(run, facts(pod=pod, run=run))
    assert (decision.status["phase"], decision.status["reason"]) == (
        "Failed", reasons.FLOW_FAILED)
    assert "after 3 attempts" in decision.status["message"]


def test_crash_not_in_retry_on_is_final() -> None:
    run = make_run(status=RUNNING, retries=3)
    decision = decide(run, facts(pod_facts=PodFacts(exists=False), run=run,
                                 deployment=make_deployment(retryOn=["Failed"])))
    assert (decision.status["phase"], decision.status["reason"]) == (
        "Crashed", reasons.POD_DELETED)
    assert decision.crash_reason == reasons.POD_DELETED


def test_cancel_of_queued_run_cancels_without_pod() -> None:
    run = make_run(cancel=True, status={"phase": "AwaitingConcurrencySlot"})
    decision = decide(run, facts())
    assert decision.status["phase"] == "Cancelled"
    assert decision.delete_pod is None


def test_cancel_of_a_waiting_run_whose_pod_exists_deletes_that_pod() -> None:
    """The pod is created before the status names it: an operator killed in between
    leaves a waiting run with a running pod, which a cancel must stop too."""
    run = make_run(cancel=True, status={"phase": "AwaitingConcurrencySlot"})
    decision = decide(run, facts(pod=make_pod("Running"),
                                 deployment=make_deployment(cancelGracePeriodSeconds=20)))
    assert decision.status["phase"] == "Cancelled"
    assert (decision.delete_pod, decision.delete_grace_seconds) == ("run-a-1", 20)
    assert "pod run-a-1" in decision.status["message"]
    # Between attempts: the next attempt's pod, by the same token.
    waiting = make_run(cancel=True, status={**RUNNING, "phase": "AwaitingRetry"})
    between = decide(waiting, facts(pod=make_pod("Pending")))
    assert (between.status["phase"], between.delete_pod) == ("Cancelled", "run-a-2")
    # One already being deleted is left to finish.
    gone = decide(run, facts(pod=make_pod("Running", deleting=True)))
    assert gone.delete_pod is None


def test_cancel_of_running_run_deletes_pod_with_grace_then_records_cancelled() -> None:
    run = make_run(cancel=True, status=RUNNING)
    begin = decide(run, facts(deployment=make_deployment(cancelGracePeriodSeconds=20)))
    assert begin.status["phase"] == "Cancelling"
    assert (begin.delete_pod, begin.delete_grace_seconds) == ("run-a-1", 20)
    cancelling = make_run(cancel=True, status={**RUNNING, **begin.status})
    done = decide(cancelling, facts(seconds=5, pod_facts=PodFacts(exists=False)))
    assert (done.status["phase"], done.status["reason"]) == ("Cancelled", reasons.CANCELLED)


def test_cancelling_past_deadline_is_forced() -> None:
    run = make_run(cancel=True, status=RUNNING)
    begin = decide(run, facts(seconds=0))
    cancelling = make_run(cancel=True, status={**RUNNING, **begin.status})
    still_running = make_pod("Running", deleting=True, container={"running": {}})
    assert decide(cancelling, facts(seconds=59, pod=still_running)).status == {}
    forced = decide(cancelling, facts(seconds=61, pod=still_running))
    assert forced.status["reason"] == reasons.CANCEL_FORCED
    assert forced.delete_grace_seconds == 0


def test_setup_error_fails_unstarted_run() -> None:
    decision = decide(make_run(), Facts(now=T0, setup_error=(reasons.DEPLOYMENT_NOT_FOUND,
                                                             "Deployment ns/x missing")))
    assert (decision.status["phase"], decision.status["reason"]) == (
        "Failed", reasons.DEPLOYMENT_NOT_FOUND)


def test_running_run_whose_deployment_was_deleted_still_follows_its_pod() -> None:
    # A kubectl-created run has no owner reference, so deleting its Deployment leaves it
    # running: the pod it has must still decide its end, or the run is Running forever.
    gone = (reasons.DEPLOYMENT_NOT_FOUND, "Deployment ns/x missing")
    run = make_run(status=RUNNING)
    decision = decide(run, Facts(now=at(40), setup_error=gone, pod=pod_facts(completed_pod())))
    assert (decision.status["phase"], decision.status["reason"]) == (
        "Completed", reasons.COMPLETED)
    still = decide(run, Facts(now=at(40), setup_error=gone,
                              pod=pod_facts(make_pod("Running", container={"running": {}}))))
    assert still.status == {}


def test_terminal_run_is_never_touched() -> None:
    run = make_run(status={"phase": "Completed"}, cancel=True)
    assert decide(run, facts()).status == {}


def test_rejected_pod_is_crashed_and_never_retried() -> None:
    decision = pod_creation_failed(make_run(retries=3), 1, "spec.volumes[0]: invalid", T0)
    assert (decision.status["phase"], decision.status["reason"]) == (
        "Crashed", reasons.POD_CREATION_FAILED)


def test_flow_defaults_are_used_for_run_without_deployment_settings() -> None:
    settings = make_settings(flow=make_flow(retries=4, parameters={"x": 1}))
    assert settings.retry.retries == 4
    assert settings.parameters == {"x": 1}
    assert FlowRunPhase.COMPLETED.terminal


def test_a_container_refused_for_good_is_crashed_at_once_and_not_retried() -> None:
    run = make_run(status={"phase": "Pending", "attempts": 1, "podName": "run-a-1",
                           "scheduledTime": iso(T0)}, retries=3)
    pod = make_pod("Pending", container={"waiting": {
        "reason": "CreateContainerConfigError",
        "message": 'container has runAsNonRoot and image will run as root (pod: '
                   '"run-a-1_ns(uid-1)", container: flow)'}})
    decision = decide(run, facts(seconds=2, pod=pod, run=run))
    assert (decision.status["phase"], decision.status["reason"]) == (
        "Crashed", reasons.CREATE_CONTAINER_CONFIG_ERROR)
    assert decision.delete_pod == "run-a-1"
    # Crashed, not AwaitingRetry, with 3 retries left: a new pod would be refused alike.
    assert decision.status["nextAttemptTime"] is None


def test_a_missing_secret_wakes_the_run_when_its_grace_runs_out_then_is_retried() -> None:
    run = make_run(status={"phase": "Pending", "attempts": 1, "podName": "run-a-1",
                           "scheduledTime": iso(T0)}, retries=1)
    pod = make_pod("Pending", container={"waiting": {
        "reason": "CreateContainerConfigError", "message": 'secret "db" not found'}})
    waiting = decide(run, facts(seconds=5, pod=pod, run=run))
    assert (waiting.status, waiting.wake_at) == ({}, at(60))  # not the 600 s pending timeout
    ended = decide(run, facts(seconds=60, pod=pod, run=run))
    assert (ended.status["phase"], ended.status["reason"]) == (
        "AwaitingRetry", reasons.CREATE_CONTAINER_CONFIG_ERROR)  # the Secret may appear
