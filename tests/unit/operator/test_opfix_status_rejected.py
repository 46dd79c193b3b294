"""Status writes the API server refuses: decided once, never retried in a loop."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from headwater.contract import encode_summary
from headwater_operator import reasons
from headwater_operator.api import FlowRunPhase
from headwater_operator.flowruns.machine import Decision, status_rejected
from headwater_operator.flowruns.podfacts import observe_attempt, pod_facts
from test_flowrun_builders import T0, at, make_pod, make_run, terminated

RUNNING = {"phase": "Running", "attempts": 1, "podName": "run-a-1",
           "startTime": "2024-05-01T10:00:00Z"}
ERROR = ('FlowRun.headwater.dev "run-a" is invalid: status.taskRuns.completed: Invalid '
         'value: "string": status.taskRuns.completed in body must be of type integer')


def test_a_refused_ending_becomes_crashed_status_rejected_and_keeps_the_pod() -> None:
    run = make_run(status=RUNNING)
    refused = Decision(status={"phase": "Completed", "taskRuns": {"completed": "three"}})
    decision = status_rejected(run, refused, ERROR, at(90))
    assert decision.phase == FlowRunPhase.CRASHED
    assert decision.status["reason"] == reasons.STATUS_REJECTED
    assert ERROR in decision.status["message"]
    assert "taskRuns" not in decision.status  # only what a terminal status needs
    assert decision.status["endTime"] == "2024-05-01T10:01:30Z"
    assert decision.crash_reason == reasons.STATUS_REJECTED
    assert decision.delete_pod is None  # the pod has finished: its logs stay
    assert [e.reason for e in decision.events] == [reasons.STATUS_REJECTED]
    assert reasons.STATUS_REJECTED in reasons.CRASH_REASONS


def test_a_refused_transition_of_a_live_attempt_stops_its_pod() -> None:
    run = make_run(status={**RUNNING, "phase": "Pending"})
    decision = status_rejected(run, Decision(status={"phase": "Running"}), ERROR, at(5))
    assert decision.delete_pod == "run-a-1"


def test_a_refused_start_of_an_attempt_stops_the_pod_it_created() -> None:
    run = make_run(status={**RUNNING, "phase": "AwaitingRetry"})
    started = Decision(status={"phase": "Retrying", "podName": "run-a-2"}, create_pod=2)
    assert status_rejected(run, started, ERROR, at(5)).delete_pod == "run-a-2"


def test_a_summary_of_the_wrong_types_is_refused_before_any_status_write() -> None:
    text = encode_summary({"version": 1, "state": "Completed", "reason": "Completed",
                           "message": "done", "taskRuns": {"completed": "three"},  # type: ignore[dict-item]
                           "artifacts": ["report", 7]})  # type: ignore[list-item]
    pod: dict[str, Any] = make_pod("Succeeded", container=terminated(0, text))
    pod["status"]["containerStatuses"][0]["image"] = "ghcr.io/acme/not-the-sdk:2"
    observed = observe_attempt(pod_facts(pod), "run-a-1", T0 + timedelta(minutes=2),
                               timedelta(minutes=10))
    assert (observed.phase, observed.reason) == (FlowRunPhase.CRASHED,
                                                 reasons.INVALID_RUN_SUMMARY)
    assert observed.summary is None  # none of its fields reach the status
    assert "status.taskRuns.completed: 'three' is not of type 'integer'" in observed.message
    assert "status.artifacts[1]: 7 is not of type 'string'" in observed.message
    assert "Image ghcr.io/acme/not-the-sdk:2 wrote it" in observed.message
