"""Retry timing, concurrency verdicts and settings precedence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from headwater import contract
from headwater_operator import kube, reasons
from headwater_operator.api import FlowRunPhase, RetryCause
from headwater_operator.api.deployment import ConcurrencySpec
from headwater_operator.flowruns.concurrency import (
    SlotVerdict,
    pod_owner_uids,
    slot_verdict,
)
from headwater_operator.flowruns.retry import (
    RetryPolicy,
    is_retryable,
    next_attempt_time,
    retry_delay,
)
from headwater_operator.flowruns.settings import merge_parameters, parameter_errors
from test_flowrun_builders import at, iso, make_deployment, make_flow, make_run, make_settings


def test_backoff_grows_geometrically_and_is_capped() -> None:
    policy = RetryPolicy(retries=5, delay_seconds=10, backoff_factor=2, max_delay_seconds=35)
    assert [retry_delay(policy, n).total_seconds() for n in (1, 2, 3)] == [10, 20, 35]


def test_next_attempt_time_never_comes_before_the_delay_at_second_precision() -> None:
    policy = RetryPolicy(retries=2, delay_seconds=1)
    assert next_attempt_time(policy, 1, at(0.2)) == at(2)  # not 1: that is 0.8 s later
    assert next_attempt_time(policy, 1, at(5)) == at(6)  # already whole: unchanged


@pytest.mark.parametrize(
    ("phase", "reason", "attempts", "expected"),
    [
        (FlowRunPhase.FAILED, reasons.FLOW_FAILED, 1, True),
        (FlowRunPhase.FAILED, reasons.FLOW_FAILED, 3, False),  # retries exhausted
        (FlowRunPhase.CRASHED, reasons.OOM_KILLED, 1, False),  # not in retryOn
        (FlowRunPhase.FAILED, reasons.INVALID_PARAMETERS, 1, False),  # never retried
        (FlowRunPhase.CANCELLED, reasons.CANCELLED, 1, False),
    ],
)
def test_retry_policy(phase: FlowRunPhase, reason: str, attempts: int, expected: bool) -> None:
    policy = RetryPolicy(retries=2, retry_on=frozenset({RetryCause.FAILED}))
    assert is_retryable(policy, phase, reason, attempts) is expected


def test_settings_precedence_run_over_deployment_over_flow() -> None:
    flow = make_flow(retries=1, timeoutSeconds=100, parameters={"a": 1, "b": 1, "c": 1})
    deployment = make_deployment(retries=2, timeoutSeconds=200, parameters={"b": 2, "c": 2})
    run = make_run(retries=3, parameters={"c": 3})
    settings = make_settings(run=run, flow=flow, deployment=deployment)
    assert settings.retry.retries == 3
    assert settings.timeout_seconds == 200
    assert settings.parameters == {"a": 1, "b": 2, "c": 3}


def test_merge_replaces_nested_values_whole() -> None:
    assert merge_parameters({"cfg": {"a": 1, "b": 2}}, {"cfg": {"a": 5}}) == {"cfg": {"a": 5}}


def test_invalid_schema_is_reported_instead_of_skipping_validation() -> None:
    errors = parameter_errors({"x": 1}, {"type": "nonsense"})
    assert errors
    assert "parametersSchema" in errors[0]


def test_valid_parameters_have_no_errors() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert parameter_errors({"n": 3}, schema) == []


def running(name: str) -> object:
    return make_run(name, status={"phase": "Running"})


def test_enqueue_admits_oldest_first_and_queues_the_rest() -> None:
    limit = ConcurrencySpec(limit=1)
    old = make_run("old", created=at(0), status={"phase": "AwaitingConcurrencySlot"})
    new = make_run("new", created=at(5))
    assert slot_verdict(new, limit, [old, new], at(10), with_pods=()) == SlotVerdict.QUEUE
    assert slot_verdict(old, limit, [old, new], at(10), with_pods=()) == SlotVerdict.ADMIT


def test_full_deployment_queues_or_cancels_per_strategy() -> None:
    active = make_run("busy", status={"phase": "AwaitingRetry"})
    run = make_run("next")
    assert slot_verdict(run, ConcurrencySpec(limit=1), [active], at(1),
                        with_pods=()) == SlotVerdict.QUEUE
    cancel_new = ConcurrencySpec.model_validate({"limit": 1, "collisionStrategy": "CancelNew"})
    assert slot_verdict(run, cancel_new, [active], at(1), with_pods=()) == SlotVerdict.CANCEL


def test_future_runs_do_not_take_queue_places() -> None:
    future = make_run("future", created=at(0), scheduledTime=iso(at(3600)))
    run = make_run("now", created=at(5))
    assert slot_verdict(run, ConcurrencySpec(limit=1), [future, run], at(10),
                        with_pods=()) == SlotVerdict.ADMIT


# An operator killed between creating a run's pod and writing its status (or whose status
# write failed) leaves a run with a pod and a waiting phase: issue #11, "random kills".
def test_a_run_with_a_pod_holds_its_slot_whatever_its_phase_says() -> None:
    limit = ConcurrencySpec(limit=1)
    backfill = make_run("backfill", created=at(8), scheduledTime=iso(at(0)))
    started = make_run("started", created=at(5), status={"phase": "Scheduled"})
    with_pods = {"uid-started"}
    # The older waiting run (by scheduled time) must not be admitted beside the pod ...
    assert slot_verdict(backfill, limit, [backfill, started], at(10),
                        with_pods=with_pods) == SlotVerdict.QUEUE
    # ... and the run with the pod is not queued behind it: its pod already runs.
    assert slot_verdict(started, limit, [backfill, started], at(10),
                        with_pods=with_pods) == SlotVerdict.ADMIT
    # By phase alone (no pods known), the backfill would have been admitted.
    assert slot_verdict(backfill, limit, [backfill, started], at(10),
                        with_pods=()) == SlotVerdict.ADMIT


def test_a_run_with_a_pod_is_never_cancelled_by_cancel_new() -> None:
    cancel_new = ConcurrencySpec.model_validate({"limit": 1, "collisionStrategy": "CancelNew"})
    busy = make_run("busy", status={"phase": "Running"})
    started = make_run("started", status={"phase": "AwaitingConcurrencySlot"})
    assert slot_verdict(started, cancel_new, [busy, started], at(1),
                        with_pods={"uid-busy", "uid-started"}) == SlotVerdict.ADMIT


def test_a_finished_run_holds_no_slot_even_while_its_pod_is_kept() -> None:
    done = make_run("done", status={"phase": "Completed"})
    run = make_run("next")
    assert slot_verdict(run, ConcurrencySpec(limit=1), [done, run], at(1),
                        with_pods={"uid-done"}) == SlotVerdict.ADMIT


def test_pod_owner_uids_counts_flowrun_controllers_only() -> None:
    def pod(*owners: dict[str, Any]) -> dict[str, Any]:
        return {"metadata": {"ownerReferences": list(owners)}}

    run_ref = {"apiVersion": contract.API_VERSION, "kind": "FlowRun", "name": "a",
               "uid": "uid-a", "controller": True}
    assert pod_owner_uids([
        pod(run_ref),
        pod({**run_ref, "uid": "uid-b", "controller": False}),  # not its controller
        pod({**run_ref, "uid": "uid-c", "kind": "Job"}),
        pod({**run_ref, "uid": "uid-d", "apiVersion": "example.com/v1"}),
        {"metadata": {}},
    ]) == {"uid-a"}


def test_pending_timeout_comes_from_deployment() -> None:
    settings = make_settings(deployment=make_deployment(pendingTimeoutSeconds=42))
    assert settings.pending_timeout == timedelta(seconds=42)


@pytest.mark.parametrize(
    ("code", "message", "final"),
    [
        (422, 'Pod "r-1" is invalid: spec.volumes[0].name: Required value', True),
        (403, 'pods "r-1" is forbidden: violates PodSecurity "restricted:latest"', True),
        (400, "the request body is not a Pod", True),
        # A full quota frees up when other pods end: the create is retried, not failed.
        (403, 'pods "r-1" is forbidden: exceeded quota: compute, requested: cpu=2', False),
        (500, "etcdserver: request timed out", False),
        (429, "too many requests", False),
    ],
)
def test_pod_rejection_is_final_only_when_a_retry_cannot_help(
    code: int, message: str, final: bool
) -> None:
    assert kube.is_final_rejection(code, message) is final
