"""Pod facts → attempt outcome: every Crashed reason and the normal endings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from headwater.contract import SUMMARY_REASON_INVALID_PARAMETERS, encode_summary
from headwater_operator import reasons
from headwater_operator.api import FlowRunPhase
from headwater_operator.flowruns.podfacts import observe_attempt, pod_facts
from test_flowrun_builders import T0, at, make_pod, terminated

TIMEOUT = timedelta(seconds=600)


def observe(pod: dict[str, Any] | None, seconds: float = 10) -> Any:
    return observe_attempt(pod_facts(pod), "run-a-1", at(seconds), TIMEOUT)


def summary(state: str, **extra: Any) -> str:
    return encode_summary({"state": state, "reason": state, "message": f"flow {state}",
                           **extra})  # type: ignore[typeddict-item]


def test_pending_pod_within_timeout_is_still_starting() -> None:
    assert observe(make_pod("Pending")).phase == FlowRunPhase.PENDING


def test_running_pod_reports_its_start_time() -> None:
    pod = make_pod("Running", container={"running": {"startedAt": "2024-05-01T10:00:05Z"}})
    observed = observe(pod)
    assert observed.phase == FlowRunPhase.RUNNING
    assert observed.started == at(5)


def test_completed_summary_gives_completed_with_counts() -> None:
    text = summary("Completed", taskRuns={"Completed": 3}, artifacts=["report"])
    observed = observe(make_pod("Succeeded", container=terminated(0, text)))
    assert (observed.phase, observed.reason) == (FlowRunPhase.COMPLETED, reasons.COMPLETED)
    assert observed.summary is not None
    assert observed.summary["taskRuns"] == {"Completed": 3}


@pytest.mark.parametrize(
    ("state", "phase", "reason"),
    [
        ("Failed", FlowRunPhase.FAILED, reasons.FLOW_FAILED),
        ("TimedOut", FlowRunPhase.FAILED, reasons.TIMED_OUT),
        ("Crashed", FlowRunPhase.CRASHED, reasons.ENGINE_CRASHED),
        ("Cancelled", FlowRunPhase.CRASHED, reasons.POD_TERMINATED),
    ],
)
def test_summary_state_maps_to_phase_and_reason(state: str, phase: FlowRunPhase,
                                                reason: str) -> None:
    observed = observe(make_pod("Failed", container=terminated(1, summary(state), "Error")))
    assert (observed.phase, observed.reason) == (phase, reason)


def test_parameters_the_engine_rejected_fail_the_run_with_invalid_parameters() -> None:
    text = encode_summary({"state": "Failed", "reason": SUMMARY_REASON_INVALID_PARAMETERS,
                           "message": "Flow 'hello' received invalid parameters: unknown "
                                      "parameter 'nme' (the flow takes: name)."})
    observed = observe(make_pod("Failed", container=terminated(1, text, "Error")))
    assert (observed.phase, observed.reason) == (FlowRunPhase.FAILED,
                                                 reasons.INVALID_PARAMETERS)
    assert "unknown parameter 'nme'" in observed.message


def test_missing_summary_is_crashed_and_names_the_command() -> None:
    observed = observe(make_pod("Succeeded", container=terminated(0, None)))
    assert observed.reason == reasons.MISSING_RUN_SUMMARY
    assert "headwater execute" in (observed.message or "")


def test_garbage_summary_is_crashed_and_shows_the_log_tail() -> None:
    pod = make_pod("Failed", container=terminated(1, "ModuleNotFoundError: no module etl"))
    observed = observe(pod)
    assert observed.reason == reasons.INVALID_RUN_SUMMARY
    assert "ModuleNotFoundError" in (observed.message or "")


def test_oom_killed_container_is_crashed_with_memory_advice() -> None:
    observed = observe(make_pod("Failed", container=terminated(137, None, "OOMKilled")))
    assert observed.reason == reasons.OOM_KILLED
    assert "limits.memory" in (observed.message or "")


def test_evicted_pod_is_crashed() -> None:
    observed = observe(make_pod("Failed", reason="Evicted"))
    assert (observed.phase, observed.reason) == (FlowRunPhase.CRASHED, reasons.EVICTED)


def test_deadline_exceeded_is_failed_timed_out() -> None:
    pod = make_pod("Failed", reason="DeadlineExceeded",
                   container=terminated(137, None, "Error"))
    observed = observe(pod)
    assert (observed.phase, observed.reason) == (FlowRunPhase.FAILED, reasons.TIMED_OUT)


def test_pod_gone_is_crashed_pod_deleted() -> None:
    observed = observe(None)
    assert (observed.phase, observed.reason) == (FlowRunPhase.CRASHED, reasons.POD_DELETED)
    assert "spec.cancel" in (observed.message or "")


def test_running_pod_being_deleted_by_someone_else_is_pod_deleted() -> None:
    pod = make_pod("Running", deleting=True, container={"running": {}})
    assert observe(pod).reason == reasons.POD_DELETED


@pytest.mark.parametrize(
    "pod",
    [
        make_pod("Failed", reason="NodeLost"),
        make_pod("Unknown"),
        make_pod("Running", container={"running": {}},
                 conditions=[{"type": "DisruptionTarget", "status": "True",
                              "reason": "DeletionByTaintManager"}]),
        make_pod("Running", container={"running": {}},
                 conditions=[{"type": "Ready", "status": "False", "reason": "NodeLost"}]),
    ],
)
def test_node_lost_variants_are_crashed_node_lost(pod: dict[str, Any]) -> None:
    assert observe(pod).reason == reasons.NODE_LOST


def test_unschedulable_waits_for_the_pending_timeout() -> None:
    pod = make_pod("Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                           "reason": "Unschedulable",
                                           "message": "0/3 nodes: Insufficient cpu"}])
    assert observe(pod, seconds=599).phase == FlowRunPhase.PENDING
    observed = observe(pod, seconds=600)
    assert observed.reason == reasons.UNSCHEDULABLE
    assert observed.delete_pod
    assert "Insufficient cpu" in (observed.message or "")


@pytest.mark.parametrize("waiting", ["ErrImagePull", "ImagePullBackOff"])
def test_image_pull_failure_past_timeout_is_crashed(waiting: str) -> None:
    pod = make_pod("Pending", container={"waiting": {"reason": waiting, "message": "not found"}})
    assert observe(pod, seconds=30).phase == FlowRunPhase.PENDING
    observed = observe(pod, seconds=601)
    assert observed.reason == reasons.IMAGE_PULL_FAILED
    assert "Flow.spec.image" in (observed.message or "")


def test_invalid_image_name_crashes_without_waiting() -> None:
    pod = make_pod("Pending", container={"waiting": {"reason": "InvalidImageName"}})
    assert observe(pod, seconds=1).reason == reasons.IMAGE_PULL_FAILED


def test_create_container_config_error_names_the_missing_secret() -> None:
    pod = make_pod("Pending", container={"waiting": {
        "reason": "CreateContainerConfigError", "message": 'secret "db" not found'}})
    observed = observe(pod, seconds=600)
    assert observed.reason == reasons.CREATE_CONTAINER_CONFIG_ERROR
    assert 'secret "db" not found' in (observed.message or "")


def test_pending_for_another_reason_past_timeout_is_pending_timeout() -> None:
    pod = make_pod("Pending", created=T0,
                   container={"waiting": {"reason": "ContainerCreating"}})
    assert observe(pod, seconds=700).reason == reasons.PENDING_TIMEOUT
