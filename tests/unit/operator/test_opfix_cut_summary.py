"""A run summary the kubelet cut: the phase comes from what is left, or a clear reason.

The kubelet keeps the *first* 12288 // (containers + initContainers) bytes of each
termination message (kubernetes pkg/kubelet/status/status_manager.go ``normalizeStatus``)
and the *last* 4096 bytes of the file (kuberuntime ``getTerminationMessage``,
pkg/util/tail ``ReadAtMost``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from headwater import contract
from headwater.summary import fit_summary
from headwater_dev import podstatus
from headwater_operator import reasons
from headwater_operator.api import FlowRunPhase
from headwater_operator.flowruns.podfacts import kubelet_cut, observe_attempt, pod_facts
from test_flowrun_builders import at, make_pod, terminated


def pod_with(containers: int, message: str, exit_code: int = 0) -> dict[str, Any]:
    """A finished pod of ``containers`` containers whose flow container wrote ``message``,
    as the kubelet reports it."""
    pod = make_pod("Succeeded" if exit_code == 0 else "Failed",
                   container=terminated(exit_code, podstatus.cap_for_pod(
                       podstatus.read_termination_file(message), containers)))
    pod["spec"] = {"containers": [{"name": "flow"}] + [
        {"name": f"sidecar-{i}"} for i in range(containers - 1)]}
    return pod


def observe(pod: dict[str, Any]) -> Any:
    return observe_attempt(pod_facts(pod), "run-a-1", at(120), timedelta(seconds=600))


def full_summary(state: str = "Completed") -> str:
    summary: Any = {
        "version": 1, "state": state, "reason": state, "message": f"flow {state}",
        "taskRuns": {"Completed": 7},
        "assets": [{"key": f"s3://lake/part-{i:04d}", "version": "v1", "upstream": []}
                   for i in range(100)],
    }
    text = fit_summary(summary)
    assert len(text) > 4000
    return text


def test_a_summary_cut_at_its_end_still_completes_the_run_and_says_so() -> None:
    observed = observe(pod_with(4, full_summary()))
    assert (observed.phase, observed.reason) == (FlowRunPhase.COMPLETED, reasons.COMPLETED)
    assert observed.message.startswith("flow Completed (the kubelet cut pod run-a-1's run "
                                       "summary to its first 3072 bytes")
    assert "4 containers" in observed.message
    assert observed.summary is not None
    assert observed.summary["taskRuns"] == {"Completed": 7}


def test_a_failed_run_cut_by_the_kubelet_is_still_failed() -> None:
    observed = observe(pod_with(6, full_summary("Failed"), exit_code=1))
    assert (observed.phase, observed.reason) == (FlowRunPhase.FAILED, reasons.FLOW_FAILED)


def test_a_summary_cut_before_its_state_is_crashed_with_the_kubelet_named() -> None:
    text = '{"version":1,"flowRunId":"' + "x" * 4000 + '","state":"Completed"}'
    observed = observe(pod_with(5, text))
    assert (observed.phase, observed.reason) == (FlowRunPhase.CRASHED,
                                                 reasons.INVALID_RUN_SUMMARY)
    assert "the kubelet cut pod run-a-1's run summary to its first 2457 bytes" in (
        observed.message)
    assert "cut before its field 'state'" in observed.message


def test_a_message_longer_than_4096_bytes_lost_its_start() -> None:
    text = "log line\n" * 600  # 5400 bytes written by something that is not the engine
    observed = observe(pod_with(1, text, exit_code=1))
    assert observed.reason == reasons.INVALID_RUN_SUMMARY
    assert "longer than 4096 bytes" in observed.message


def test_a_short_invalid_message_is_not_taken_for_a_cut_one() -> None:
    observed = observe(pod_with(4, '{"state":"Completed","reason":"x",', exit_code=1))
    assert observed.reason == reasons.INVALID_RUN_SUMMARY
    assert "kubelet" not in observed.message


def test_kubelet_cut() -> None:
    assert kubelet_cut("x" * 3072, 4) == "end"
    assert kubelet_cut("x" * 3000, 4) is None
    assert kubelet_cut("x" * 4096, 3) == "start"  # 3 containers: 4096 each, no end cut
    assert kubelet_cut('{"a":' + "x" * 4091, 1) is None
    assert contract.termination_message_cap(4) == 3072
