"""Behaviour of the v1alpha1 models that the operator, scheduler and CLI rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from headwater_operator.api import (
    API_VERSION,
    KINDS,
    PLURALS,
    TERMINAL_PHASES,
    CatchupPolicy,
    CollisionStrategy,
    ConcurrencyPolicy,
    ConcurrencySpec,
    Deployment,
    Flow,
    FlowRun,
    FlowRunPhase,
    FlowRunSpec,
    InvalidResourceError,
    LocalObjectReference,
    ObjectMeta,
    RetryCause,
    Schedule,
    ScheduleSpec,
    check_cron,
    parse_interval,
    parse_resource,
)


def manifest(kind: str, spec: dict[str, Any], name: str = "x") -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


def test_terminal_phases() -> None:
    assert {p for p in FlowRunPhase if p.terminal} == TERMINAL_PHASES == {
        FlowRunPhase.COMPLETED,
        FlowRunPhase.FAILED,
        FlowRunPhase.CRASHED,
        FlowRunPhase.CANCELLED,
    }
    assert FlowRunPhase.AWAITING_CONCURRENCY_SLOT.value == "AwaitingConcurrencySlot"


def test_kinds_and_plurals() -> None:
    assert PLURALS == {
        "Flow": "flows",
        "Deployment": "deployments",
        "Schedule": "schedules",
        "FlowRun": "flowruns",
        "Block": "blocks",
        "Variable": "variables",
        "ConcurrencyLimit": "concurrencylimits",
        "Automation": "automations",
    }
    assert KINDS["FlowRun"] is FlowRun


def test_parse_applies_documented_defaults() -> None:
    deployment = parse_resource(manifest("Deployment", {"flowRef": {"name": "hello"}}))
    assert isinstance(deployment, Deployment)
    assert deployment.spec.paused is False
    assert deployment.spec.concurrency is None
    assert deployment.spec.retry_on == [RetryCause.FAILED, RetryCause.CRASHED]
    assert deployment.spec.history.successful_runs_limit == 10
    assert ConcurrencySpec(limit=1).collision_strategy is CollisionStrategy.ENQUEUE

    schedule = parse_resource(
        manifest("Schedule", {"deploymentRef": {"name": "hello"}, "cron": "@daily"})
    )
    assert isinstance(schedule, Schedule)
    assert schedule.spec.timezone == "UTC"
    assert schedule.spec.concurrency_policy is ConcurrencyPolicy.ALLOW
    assert schedule.spec.catchup.policy is CatchupPolicy.LATEST

    flow = parse_resource(manifest("Flow", {"image": "i:1", "entrypoint": "pkg.mod:run"}))
    assert isinstance(flow, Flow)
    assert flow.spec.command == ["headwater", "execute"]


def test_wire_form_is_camel_case_without_nulls_and_round_trips() -> None:
    run = FlowRun(
        metadata=ObjectMeta(name="hello-1", namespace="etl"),
        spec=FlowRunSpec(
            deployment_ref=LocalObjectReference(name="hello"),
            scheduled_time=datetime(2024, 5, 1, 6, tzinfo=UTC),
            parameters={"name": "Ada"},
        ),
    )
    wire = run.to_wire()
    assert wire["apiVersion"] == "headwater.dev/v1alpha1"
    assert wire["kind"] == "FlowRun"
    assert wire["metadata"] == {"name": "hello-1", "namespace": "etl"}
    assert wire["spec"]["deploymentRef"] == {"name": "hello"}
    assert wire["spec"]["scheduledTime"] == "2024-05-01T06:00:00Z"
    assert "flowRef" not in wire["spec"]
    assert parse_resource(wire) == run


def test_unknown_metadata_fields_are_kept() -> None:
    body = manifest("Flow", {"image": "i:1", "entrypoint": "pkg.mod:run"})
    body["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    flow = parse_resource(body)
    assert flow.to_wire()["metadata"]["managedFields"] == [{"manager": "kubectl"}]


def test_status_tolerates_fields_from_a_newer_operator() -> None:
    body = manifest("FlowRun", {"flowRef": {"name": "hello"}})
    body["status"] = {"phase": "Running", "attempts": 1, "fieldFromTheFuture": 3}
    run = parse_resource(body)
    assert isinstance(run, FlowRun)
    assert run.status.phase is FlowRunPhase.RUNNING


def test_parse_resource_names_every_bad_field() -> None:
    body = manifest(
        "Deployment",
        {"flowRef": {"name": "hello"}, "concurrency": {"limit": 0}, "pasued": True},
        name="ingest",
    )
    body["metadata"]["namespace"] = "etl"
    with pytest.raises(InvalidResourceError) as caught:
        parse_resource(body)
    assert caught.value.errors == [
        "spec.concurrency.limit: must be ≥ 1 (got 0)",
        "spec.pasued: unknown field (check the spelling; unknown fields are rejected, "
        "not ignored)",
    ]
    assert str(caught.value).startswith("Deployment etl/ingest is invalid:")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"apiVersion": "v1", "kind": "Pod"}, "apiVersion: expected 'headwater.dev/v1alpha1'"),
        ({"apiVersion": API_VERSION, "kind": "Widget"}, "kind: expected one of Flow, "),
    ],
)
def test_parse_resource_rejects_foreign_objects(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidResourceError, match=message):
        parse_resource(body)


@pytest.mark.parametrize(
    "spec",
    [
        {"cron": "0 6 * * 1-5"},
        {"cron": "@annually"},
        {"cron": "@midnight"},
        {"interval": "1h30m", "anchorTime": "2024-01-01T00:30:00+01:00"},
        {"rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=6;BYMINUTE=0"},
        {"rrule": "DTSTART:20240101T060000\nRRULE:FREQ=DAILY"},
    ],
)
def test_each_schedule_kind_is_accepted_alone(spec: dict[str, Any]) -> None:
    parsed = ScheduleSpec.model_validate({"deploymentRef": {"name": "d"}, **spec})
    assert parsed.expression


def test_schedule_expression_for_kubectl_get() -> None:
    def expression(**spec: str) -> str:
        return ScheduleSpec.model_validate({"deploymentRef": {"name": "d"}, **spec}).expression

    assert expression(cron="0  6 * * *") == "0 6 * * *"
    assert expression(interval="15m") == "every 15m"
    assert expression(rrule="FREQ=DAILY") == "rrule FREQ=DAILY"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", 90), ("15m", 900), ("1h30m", 5400), ("1d", 86400), ("2d3h4m5s", 183845)],
)
def test_parse_interval(text: str, expected: int) -> None:
    assert parse_interval(text) == timedelta(seconds=expected)


@pytest.mark.parametrize("text", ["", "0s", "0h0m", "15", "1m1h", "1.5h", "15 m", "-5m"])
def test_parse_interval_rejects(text: str) -> None:
    # Every rejection shows a valid example, so the user can copy the shape.
    with pytest.raises(ValueError, match=r"e\.g\. '(1m|15m|90s)'"):
        parse_interval(text)


@pytest.mark.parametrize("expression", ["* * * *", "0 0 6 * * *", "@fortnightly", "0 25 * * *"])
def test_check_cron_rejects(expression: str) -> None:
    # The message shows the accepted shape: five fields or a known macro.
    with pytest.raises(ValueError, match=r"5 .minute hour|valid cron expression|use one of @"):
        check_cron(expression)


def test_schedule_name_limit_is_52() -> None:
    spec = {"deploymentRef": {"name": "d"}, "cron": "@daily"}
    parse_resource(manifest("Schedule", spec, name="a" * 52))
    with pytest.raises(InvalidResourceError, match=r"metadata\.name: Schedule names are limited"):
        parse_resource(manifest("Schedule", spec, name="a" * 53))


def test_scalars_are_not_coerced() -> None:
    with pytest.raises(InvalidResourceError, match=r"spec\.cancel"):
        parse_resource(manifest("FlowRun", {"flowRef": {"name": "f"}, "cancel": "true"}))
    with pytest.raises(InvalidResourceError, match=r"spec\.retries"):
        parse_resource(manifest("FlowRun", {"flowRef": {"name": "f"}, "retries": "3"}))


def test_python_names_and_wire_names_both_work() -> None:
    by_name = ConcurrencySpec(limit=2, collision_strategy=CollisionStrategy.CANCEL_NEW)
    by_alias = ConcurrencySpec.model_validate({"limit": 2, "collisionStrategy": "CancelNew"})
    assert by_name == by_alias


def test_schedule_accepts_the_shared_object_meta_and_still_checks_the_name() -> None:
    spec = ScheduleSpec(deployment_ref=LocalObjectReference(name="d"), cron="@daily")
    schedule = Schedule(metadata=ObjectMeta(name="nightly", labels={"team": "data"}), spec=spec)
    assert schedule.to_wire()["metadata"] == {"name": "nightly", "labels": {"team": "data"}}
    with pytest.raises(ValueError, match=r"limited to 52 characters"):
        Schedule(metadata=ObjectMeta(name="n" * 53), spec=spec)
