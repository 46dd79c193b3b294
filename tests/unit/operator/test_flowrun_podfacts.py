"""Pod facts → attempt outcome: every Crashed reason and the normal endings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from headwater.contract import SUMMARY_REASON_INVALID_PARAMETERS, encode_summary
from headwater_operator import reasons
from headwater_operator.api import FlowRunPhase
from headwater_operator.flowruns.podfacts import (
    gone_pod_facts,
    observe_attempt,
    pod_facts,
    start_blocker,
)
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


# --- node loss, as Kubernetes >= 1.29 reports it (see the podfacts docstring) ------------
RUNNING_STATE = {"running": {"startedAt": "2024-05-01T10:00:05Z"}}
NOT_READY = [{"type": "ContainersReady", "status": "True"},
             {"type": "Ready", "status": "False"}]
"""What pkg/controller/util/node MarkPodsNotReady leaves: Ready False, ContainersReady True."""


def disruption(reason: str, message: str) -> dict[str, Any]:
    return {"type": "DisruptionTarget", "status": "True", "reason": reason, "message": message}


TAINT_EVICTED = disruption("DeletionByTaintManager",
                           "Taint manager: deleting due to NoExecute taint")
POD_GC = disruption("DeletionByPodGC", "PodGC: node no longer exists")
SHUTDOWN = "Pod was terminated in response to imminent node shutdown."


@pytest.mark.parametrize(
    ("pod", "says"),
    [
        # taint eviction: condition first, then a graceful delete no kubelet confirms
        (make_pod("Running", container=RUNNING_STATE, conditions=[*NOT_READY, TAINT_EVICTED],
                  deleting=True), "DeletionByTaintManager"),
        (make_pod("Running", container=RUNNING_STATE, conditions=[TAINT_EVICTED]),
         "DeletionByTaintManager"),
        # pod GC, Node object deleted: phase Failed over a container still "running"
        (make_pod("Failed", container=RUNNING_STATE, conditions=[*NOT_READY, POD_GC],
                  deleting=True), "no longer exists"),
        # pod GC, node tainted out-of-service: phase Failed, no condition
        (make_pod("Failed", container=RUNNING_STATE, conditions=NOT_READY, deleting=True),
         "out of service"),
        # graceful node shutdown: the kubelet stopped the container (SIGTERM → Cancelled)
        (make_pod("Failed", reason="Terminated",
                  container=terminated(3, summary("Cancelled"), "Error"),
                  conditions=[disruption("TerminationByKubelet", SHUTDOWN)]), "shut down"),
        (make_pod("Failed", reason="NodeShutdown"), "shut down"),
        # a pod deleted (e.g. force-deleted by hand) on a node that stopped reporting
        (make_pod("Running", container=RUNNING_STATE, conditions=NOT_READY, deleting=True),
         "stopped reporting"),
        (make_pod("Unknown"), "phase Unknown"),
    ],
)
def test_node_loss_is_crashed_node_lost_and_says_what_kubernetes_did(
        pod: dict[str, Any], says: str) -> None:
    observed = observe(pod)
    assert (observed.phase, observed.reason) == (FlowRunPhase.CRASHED, reasons.NODE_LOST)
    assert says in (observed.message or "")
    assert "retries" in (observed.message or "")  # what to do
    assert not observed.delete_pod  # Kubernetes is already deleting it, or it is over


def test_a_node_that_stopped_reporting_is_not_yet_a_lost_run() -> None:
    # The node may come back; Kubernetes waits for the pod's toleration (300 s) too.
    pod = make_pod("Running", container=RUNNING_STATE, conditions=NOT_READY)
    assert observe(pod).phase == FlowRunPhase.RUNNING
    assert not pod_facts(make_pod("Running", container=RUNNING_STATE, conditions=[
        {"type": "ContainersReady", "status": "False"}, {"type": "Ready", "status": "False",
                                                        "reason": "ContainersNotReady"}],
    )).node_stopped_reporting


def test_a_pod_gone_after_its_node_went_is_node_lost_by_its_last_known_state() -> None:
    # Pod GC patches the condition and force-deletes at once: the tracker finds a 404,
    # and only the body of the watch's DELETED event still says why.
    last = make_pod("Failed", container=RUNNING_STATE, conditions=[*NOT_READY, POD_GC])
    observed = observe_attempt(gone_pod_facts(last), "run-a-1", at(10), TIMEOUT)
    assert (observed.reason, observed.started) == (reasons.NODE_LOST, at(5))
    assert "no longer exists" in (observed.message or "")
    deleted_on_dead_node = make_pod("Running", container=RUNNING_STATE, conditions=NOT_READY)
    assert observe_attempt(gone_pod_facts(deleted_on_dead_node), "run-a-1", at(10),
                           TIMEOUT).reason == reasons.NODE_LOST


@pytest.mark.parametrize("last", [None, make_pod("Running", container=RUNNING_STATE)])
def test_a_pod_gone_from_a_healthy_node_is_pod_deleted(last: dict[str, Any] | None) -> None:
    observed = observe_attempt(gone_pod_facts(last), "run-a-1", at(10), TIMEOUT)
    assert observed.reason == reasons.POD_DELETED


def test_work_that_finished_before_the_node_went_counts() -> None:
    pod = make_pod("Succeeded", container=terminated(0, summary("Completed")),
                   conditions=[TAINT_EVICTED])
    assert observe(pod).reason == reasons.COMPLETED


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


# --- containers the kubelet does not start (see start_blocker) ----------------------------
RUN_AS_ROOT = ('container has runAsNonRoot and image will run as root (pod: '
               '"run-a-1_ns(0b5a9c2e-1f6d-4c1e-9a43-5d2f0c7e8b11)", container: flow)')
NON_NUMERIC = ("container has runAsNonRoot and image has non-numeric user (app), cannot verify "
               'user is non-root (pod: "run-a-1_ns(0b5a9c2e)", container: flow)')
ROOT_UID = ('container\'s runAsUser breaks non-root policy (pod: "run-a-1_ns(0b5a9c2e)", '
            "container: flow)")
BAD_IMAGE = ('Failed to apply default image tag "ghcr.io/Acme/etl:1": couldn\'t parse image '
             'reference "ghcr.io/Acme/etl:1": invalid reference format: repository name '
             "(Acme/etl) must be lowercase")


def waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason}
    if message is not None:
        state["message"] = message
    return make_pod("Pending", container={"waiting": state})


@pytest.mark.parametrize(
    ("pod", "reason", "advice"),
    [
        (waiting("CreateContainerConfigError", RUN_AS_ROOT),
         reasons.CREATE_CONTAINER_CONFIG_ERROR, "USER 1000"),
        (waiting("CreateContainerConfigError", NON_NUMERIC),
         reasons.CREATE_CONTAINER_CONFIG_ERROR, "runAsUser"),
        (waiting("CreateContainerConfigError", ROOT_UID),
         reasons.CREATE_CONTAINER_CONFIG_ERROR, "remove runAsUser: 0"),
        (waiting("InvalidImageName", BAD_IMAGE), reasons.IMAGE_PULL_FAILED, "Flow.spec.image"),
        (waiting("ErrImageNeverPull", 'Container image "etl:1" is not present with pull policy '
                                      "of Never"), reasons.IMAGE_PULL_FAILED, "imagePullPolicy"),
    ],
)
def test_a_container_that_can_never_start_crashes_at_once_and_is_final(
        pod: dict[str, Any], reason: str, advice: str) -> None:
    observed = observe(pod, seconds=1)
    assert (observed.phase, observed.reason) == (FlowRunPhase.CRASHED, reason)
    message = observed.message or ""
    kubelet_says = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert kubelet_says in message  # the kubelet's own words …
    assert advice in message  # … and what to do
    assert observed.final
    assert observed.delete_pod


@pytest.mark.parametrize(
    ("message", "names"),
    [
        ("couldn't find key password in Secret ns/db", "add key password to Secret ns/db"),
        ("couldn't find key region in ConfigMap ns/settings",
         "add key region to ConfigMap ns/settings"),
        ('secret "db" not found', "create Secret db"),
        ('configmap "settings" not found', "create ConfigMap settings"),
    ],
)
def test_a_missing_secret_or_configmap_gets_a_short_grace_then_crashes(
        message: str, names: str) -> None:
    pod = waiting("CreateContainerConfigError", message)
    still = observe(pod, seconds=59)
    assert (still.phase, still.wake_at) == (FlowRunPhase.PENDING, at(60))
    observed = observe(pod, seconds=60)
    assert (observed.phase, observed.reason) == (FlowRunPhase.CRASHED,
                                                 reasons.CREATE_CONTAINER_CONFIG_ERROR)
    assert message in (observed.message or "")
    assert names in (observed.message or "")
    assert observed.delete_pod
    assert not observed.final  # it can heal: retries may help


def test_the_config_error_grace_is_an_operator_setting_bounded_by_the_pending_timeout() -> None:
    facts = pod_facts(waiting("CreateContainerConfigError", 'secret "db" not found'))
    longer = timedelta(seconds=300)
    assert observe_attempt(facts, "run-a-1", at(200), TIMEOUT, longer).phase == (
        FlowRunPhase.PENDING)
    assert observe_attempt(facts, "run-a-1", at(300), TIMEOUT, longer).ended
    short_timeout = timedelta(seconds=20)
    assert observe_attempt(facts, "run-a-1", at(20), short_timeout, longer).ended


def test_other_waiting_reasons_wait_for_the_pending_timeout() -> None:
    assert start_blocker("ErrImagePull", "not found") is None
    assert start_blocker("ContainerCreating", None) is None
    assert start_blocker("CreateContainerConfigError", "failed to prepare subPath") is None
    pod = waiting("CreateContainerConfigError", "failed to prepare subPath for volumeMount")
    assert observe(pod, seconds=599).phase == FlowRunPhase.PENDING
    observed = observe(pod, seconds=600)
    assert (observed.reason, observed.final) == (reasons.CREATE_CONTAINER_CONFIG_ERROR, False)


def test_pending_for_another_reason_past_timeout_is_pending_timeout() -> None:
    pod = make_pod("Pending", created=T0,
                   container={"waiting": {"reason": "ContainerCreating"}})
    assert observe(pod, seconds=700).reason == reasons.PENDING_TIMEOUT
