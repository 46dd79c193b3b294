"""Headwater's own CRDs (``crds/*.yaml``) under the checks a Kubernetes 1.32 server runs.

Each case is what a user of ``kubectl apply`` would see from a real cluster for a
mistake in a Flow, Deployment, FlowRun or Schedule, worded by the emulator's port of
apiextensions-apiserver v0.32.9 and kube-openapi.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater_dev import fielderrors as fe
from headwater_dev.apiextensions.defaulting import apply_defaults
from headwater_dev.apiextensions.fieldvalidation import (
    decode_error_message,
    strict_decoding_message,
    strict_errors,
)
from headwater_dev.apiextensions.pruning import prune, unknown_fields
from headwater_dev.apiextensions.validation import (
    RULES_NOT_CHECKED,
    has_blocking_errors,
    has_validation_rules,
    status_validation_errors,
    validation_errors,
)
from headwater_operator.api.common import QUANTITY_PATTERN

ROOT = Path(__file__).resolve().parents[3]


@functools.cache
def schema(kind: str) -> dict[str, Any]:
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            found: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            return found
    raise LookupError(kind)


def manifest(kind: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": kind,
            "metadata": {"name": "demo", "namespace": "default"}, "spec": spec, **extra}


def flow(**spec: Any) -> dict[str, Any]:
    return manifest("Flow", {"image": "ghcr.io/acme/etl:1.4.2",
                             "entrypoint": "etl.flows:daily", **spec})


def decoded(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the server's decoder leaves it: pruned, then defaulted."""
    kind_schema = schema(obj["kind"])
    return apply_defaults(kind_schema, prune(kind_schema, obj))


def messages(obj: dict[str, Any]) -> list[str]:
    return [error.message() for error in validation_errors(schema(obj["kind"]), decoded(obj))]


def test_a_flow_with_retries_three() -> None:
    obj = flow(retries="three")
    errors = validation_errors(schema("Flow"), decoded(obj))
    assert fe.invalid_error("Flow", "headwater.dev", "demo", errors).message == (
        'Flow.headwater.dev "demo" is invalid: spec.retries: Invalid value: "string": '
        'spec.retries in body must be of type integer: "string"')
    assert has_blocking_errors(errors)
    # Flow has CEL rules (spec.source's), which the type error keeps from running, so the
    # API server's 422 says so too, as for any CRD with rules (hasBlockingErr).
    assert has_validation_rules(schema("Flow"))
    assert fe.invalid_error("Flow", "headwater.dev", "demo",
                            [*errors, RULES_NOT_CHECKED]).message.endswith(
        '<nil>: Invalid value: "null": some validation rules were not checked because the '
        "object was invalid; correct the existing errors to complete validation]")


def test_a_misspelt_flow_field_is_dropped_or_refused() -> None:
    obj = flow(retires=3, timeoutSecond=60)
    assert unknown_fields(schema("Flow"), obj) == ["spec.retires", "spec.timeoutSecond"]
    assert "retires" not in prune(schema("Flow"), obj)["spec"]
    assert messages(obj) == [], "without Strict the write succeeds and the typo is gone"
    assert decode_error_message("Flow", "v1alpha1", strict_decoding_message(
        strict_errors([], unknown_fields(schema("Flow"), obj)))) == (
        'Flow in version "v1alpha1" cannot be handled as a Flow: strict decoding error: '
        'unknown field "spec.retires", unknown field "spec.timeoutSecond"')


def test_a_flow_without_an_image_and_with_a_bad_entrypoint() -> None:
    obj = flow(entrypoint="etl.flows")
    del obj["spec"]["image"]
    assert messages(obj) == [
        "spec.entrypoint: Invalid value: \"etl.flows\": spec.entrypoint in body should match "
        "'^[A-Za-z0-9_./-]+:[A-Za-z_][A-Za-z0-9_]*$'",
        "spec.image: Required value"]


def test_a_flow_with_an_unknown_pull_policy_and_a_bad_quantity() -> None:
    obj = flow(imagePullPolicy="Sometimes", resources={"limits": {"memory": "1GB"}})
    assert messages(obj) == [
        'spec.imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", '
        '"IfNotPresent", "Never"',
        'spec.resources.limits.memory: Invalid value: "1GB": spec.resources.limits.memory in '
        f"body should match '{QUANTITY_PATTERN}'"]


def test_a_fractional_cpu_number_is_not_an_int_or_string() -> None:
    # A Pod takes `cpu: 0.5`; this CRD's int-or-string quantity refuses a float.
    assert messages(flow(resources={"requests": {"cpu": 0.5}})) == [
        'spec.resources.requests.cpu: Invalid value: "number": spec.resources.requests.cpu in '
        'body must be of type integer,string: "number"',
        '<nil>: Invalid value: "": "spec.resources.requests.cpu" must validate at least one '
        "schema (anyOf)",
        'spec.resources.requests.cpu: Invalid value: "number": spec.resources.requests.cpu in '
        'body must be of type integer: "number"']


def test_a_deployment_with_a_negative_history_limit() -> None:
    obj = manifest("Deployment", {"flowRef": {"name": "etl"},
                                  "history": {"successfulRunsLimit": -1}})
    assert messages(obj) == [
        "spec.history.successfulRunsLimit: Invalid value: -1: "
        "spec.history.successfulRunsLimit in body should be greater than or equal to 0"]


def test_a_deployment_retrying_on_the_same_outcome_twice() -> None:
    obj = manifest("Deployment", {"flowRef": {"name": "etl"},
                                  "retryOn": ["Failed", "Crashed", "Failed"]})
    assert messages(obj) == ['spec.retryOn[2]: Duplicate value: "Failed"']


def test_a_deployment_with_a_bad_collision_strategy_and_no_limit() -> None:
    obj = manifest("Deployment", {"flowRef": {"name": "etl"},
                                  "concurrency": {"collisionStrategy": "Queue"}})
    assert messages(obj) == [
        'spec.concurrency.collisionStrategy: Unsupported value: "Queue": supported values: '
        '"Enqueue", "CancelNew"',
        "spec.concurrency.limit: Required value"]


def test_a_flow_run_with_a_bad_scheduled_time() -> None:
    obj = manifest("FlowRun", {"deploymentRef": {"name": "etl"},
                               "scheduledTime": "2024-05-01 06:00"})
    errors = validation_errors(schema("FlowRun"), decoded(obj))
    assert [error.message() for error in errors] == [
        'spec.scheduledTime: Invalid value: "2024-05-01 06:00": spec.scheduledTime in body '
        'must be of type date-time: "2024-05-01 06:00"']
    assert errors[0].type == fe.ErrorType.TYPE_INVALID
    # FlowRun has CEL rules, which a type error keeps from running: the 422 says so.
    assert has_validation_rules(schema("FlowRun"))
    assert has_blocking_errors(errors)
    assert fe.invalid_error("FlowRun", "headwater.dev", "demo",
                            [*errors, RULES_NOT_CHECKED]).message == (
        'FlowRun.headwater.dev "demo" is invalid: [spec.scheduledTime: Invalid value: '
        '"2024-05-01 06:00": spec.scheduledTime in body must be of type date-time: '
        '"2024-05-01 06:00", <nil>: Invalid value: "null": some validation rules were not '
        "checked because the object was invalid; correct the existing errors to complete "
        "validation]")


def test_a_flow_run_status_write_with_an_unknown_phase() -> None:
    old = manifest("FlowRun", {"deploymentRef": {"name": "etl"}})
    new = {**old, "status": {"phase": "Done", "attempts": -1}}
    assert [error.message() for error in status_validation_errors(
        schema("FlowRun"), decoded(new), old)] == [
        "status.attempts: Invalid value: -1: attempts in body should be greater than or "
        "equal to 0",
        'status.phase: Unsupported value: "Done": supported values: "Scheduled", "Late", '
        '"AwaitingConcurrencySlot", "Pending", "Running", "AwaitingRetry", "Retrying", '
        '"Cancelling", "Completed", "Failed", "Crashed", "Cancelled"']


def test_a_schedule_with_a_bad_interval_and_a_long_cron() -> None:
    obj = manifest("Schedule", {"deploymentRef": {"name": "etl"}, "interval": "5 minutes",
                                "cron": "0 " * 70})
    assert messages(obj) == [
        "spec.cron: Too long: may not be more than 128 bytes",
        "spec.interval: Invalid value: \"5 minutes\": spec.interval in body should match "
        "'^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$'"]


def test_a_schedule_without_a_deployment() -> None:
    assert messages(manifest("Schedule", {"cron": "0 6 * * *"})) == [
        "spec.deploymentRef: Required value"]


def test_an_update_keeps_an_unchanged_invalid_value() -> None:
    # CRDValidationRatcheting: a value valid under an older CRD may stay as it is.
    old = flow(retries=-1)
    assert messages(old) == [
        "spec.retries: Invalid value: -1: spec.retries in body should be greater than or "
        "equal to 0"]
    new = flow(retries=-1, tags=["nightly"])
    assert validation_errors(schema("Flow"), decoded(new), decoded(old)) == []
    assert validation_errors(schema("Flow"), decoded(flow(retries=-2)), decoded(old)) != []


@pytest.mark.parametrize("path", sorted(
    str(path.relative_to(ROOT)) for path in (ROOT / "examples").glob("*/*.yaml")))
def test_the_examples_are_valid_and_have_no_unknown_fields(path: str) -> None:
    for obj in yaml.safe_load_all((ROOT / path).read_text()):
        if not obj or obj.get("apiVersion") != "headwater.dev/v1alpha1":
            continue
        assert unknown_fields(schema(obj["kind"]), obj) == []
        assert messages(obj) == []
