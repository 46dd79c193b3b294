"""Retry timing, concurrency verdicts and settings precedence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from headwater_operator import kube, reasons
from headwater_operator.api import FlowRunPhase, RetryCause
from headwater_operator.api.deployment import ConcurrencySpec
from headwater_operator.flowruns.concurrency import SlotVerdict, slot_verdict
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
    assert slot_verdict(new, limit, [old, new], at(10)) == SlotVerdict.QUEUE
    assert slot_verdict(old, limit, [old, new], at(10)) == SlotVerdict.ADMIT


def test_full_deployment_queues_or_cancels_per_strategy() -> None:
    active = make_run("busy", status={"phase": "AwaitingRetry"})
    run = make_run("next")
    assert slot_verdict(run, ConcurrencySpec(limit=1), [active], at(1)) == SlotVerdict.QUEUE
    cancel_new = ConcurrencySpec.model_validate({"limit": 1, "collisionStrategy": "CancelNew"})
    assert slot_verdict(run, cancel_new, [active], at(1)) == SlotVerdict.CANCEL


def test_future_runs_do_not_take_queue_places() -> None:
    future = make_run("future", created=at(0), scheduledTime=iso(at(3600)))
    run = make_run("now", created=at(5))
    assert slot_verdict(run, ConcurrencySpec(limit=1), [future, run], at(10)) == \
        SlotVerdict.ADMIT


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
