"""Flow and Deployment Ready/Paused conditions and the Deployment's run counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from headwater_operator.readiness import (
    RunFacts,
    check_deployment,
    check_flow,
    deployment_status,
    flow_status,
    last_run,
    run_counts,
    status_patch,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
    "required": ["name"],
}


def flow_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "image": "ghcr.io/acme/etl:1",
        "entrypoint": "flows/etl.py:etl",
        "parametersSchema": SCHEMA,
    }
    spec.update(overrides)
    return spec


def deployment_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"flowRef": {"name": "etl"}}
    spec.update(overrides)
    return spec


def test_valid_flow_is_ready() -> None:
    verdict = check_flow("etl", flow_spec())

    assert verdict.ready
    assert verdict.reason == "Valid"


def test_flow_with_invalid_json_schema_names_the_problem() -> None:
    bad = {"type": "object", "properties": {"limit": {"type": "integr"}}}

    verdict = check_flow("etl", flow_spec(parametersSchema=bad))

    assert not verdict.ready
    assert verdict.reason == "InvalidParametersSchema"
    assert "spec.parametersSchema" in verdict.message
    assert "'integr'" in verdict.message
    assert "properties/limit/type" in verdict.message
    assert "headwater schema" in verdict.message


def test_flow_schema_must_describe_an_object() -> None:
    verdict = check_flow("etl", flow_spec(parametersSchema={"type": "array"}))

    assert verdict.reason == "InvalidParametersSchema"
    assert "'object'" in verdict.message


def test_flow_with_malformed_entrypoint() -> None:
    verdict = check_flow("etl", flow_spec(entrypoint="flows/etl.py"))

    assert not verdict.ready
    assert verdict.reason == "InvalidEntrypoint"
    assert "spec.entrypoint" in verdict.message
    assert "pkg.module:function" in verdict.message


def test_flow_with_other_spec_errors_is_invalid_spec() -> None:
    verdict = check_flow("etl", flow_spec(retries=-1))

    assert verdict.reason == "InvalidSpec"
    assert "spec.retries" in verdict.message


def test_flow_defaults_that_break_the_schema_name_the_parameter() -> None:
    verdict = check_flow("etl", flow_spec(parameters={"limit": "ten"}))

    assert verdict.reason == "InvalidParameters"
    assert "spec.parameters.limit" in verdict.message
    assert "'ten' is not of type 'integer'" in verdict.message


def test_flow_defaults_may_omit_required_parameters() -> None:
    assert check_flow("etl", flow_spec(parameters={"limit": 3})).ready


def test_deployment_without_its_flow() -> None:
    verdict = check_deployment("nightly", deployment_spec(), None)

    assert verdict.reason == "FlowNotFound"
    assert "'etl'" in verdict.message
    assert "spec.flowRef.name" in verdict.message


def test_deployment_of_a_broken_flow_is_not_ready_and_says_why() -> None:
    verdict = check_deployment(
        "nightly", deployment_spec(), flow_spec(parametersSchema={"type": 5})
    )

    assert verdict.reason == "FlowNotReady"
    assert "InvalidParametersSchema" in verdict.message


def test_deployment_parameters_checked_against_the_flow_schema() -> None:
    bad = check_deployment("nightly", deployment_spec(parameters={"limit": 0}), flow_spec())
    good = check_deployment("nightly", deployment_spec(parameters={"limit": 2}), flow_spec())

    assert bad.reason == "InvalidParameters"
    assert "spec.parameters.limit" in bad.message
    assert "Flow 'etl'" in bad.message
    assert good.ready


def test_deployment_with_invalid_spec() -> None:
    verdict = check_deployment(
        "nightly", deployment_spec(concurrency={"limit": 0}), flow_spec()
    )

    assert verdict.reason == "InvalidSpec"
    assert "spec.concurrency.limit" in verdict.message


def run(name: str, phase: str | None, created_minute: int, **kw: str) -> RunFacts:
    created = (NOW + timedelta(minutes=created_minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return RunFacts(name=name, phase=phase, created=created, **kw)


@pytest.mark.parametrize(
    ("phase", "counts"),
    [
        ("Pending", (1, 0)),
        ("Running", (1, 0)),
        ("AwaitingRetry", (1, 0)),
        ("Retrying", (1, 0)),
        ("Cancelling", (1, 0)),
        ("AwaitingConcurrencySlot", (0, 1)),
        ("Scheduled", (0, 0)),
        ("Completed", (0, 0)),
        ("Crashed", (0, 0)),
        (None, (0, 0)),
    ],
)
def test_run_counts_by_phase(phase: str | None, counts: tuple[int, int]) -> None:
    assert run_counts([run("r", phase, 0)]) == counts


def test_last_run_is_the_newest_created() -> None:
    runs = [
        run("b", "Completed", 1, scheduled_time="2024-05-01T12:01:00Z",
            end_time="2024-05-01T12:02:00Z"),
        run("a", "Running", 0),
    ]

    assert last_run(runs) == {
        "name": "b",
        "phase": "Completed",
        "scheduledTime": "2024-05-01T12:01:00Z",
        "endTime": "2024-05-01T12:02:00Z",
    }
    assert last_run([]) is None


def test_deployment_status_is_stable_when_nothing_changed() -> None:
    runs = [run("a", "Running", 0), run("b", "AwaitingConcurrencySlot", 1)]
    first = deployment_status("nightly", deployment_spec(), generation=2, current=None,
                              flow_spec=flow_spec(), runs=runs, now=NOW)

    again = deployment_status("nightly", deployment_spec(), generation=2, current=first,
                              flow_spec=flow_spec(), runs=runs, now=NOW + timedelta(hours=1))

    assert again == first
    assert status_patch(first, again) == {}
    assert first["activeRuns"] == 1
    assert first["queuedRuns"] == 1
    assert first["observedGeneration"] == 2
    assert first["lastRun"]["name"] == "b"


def test_paused_deployment_stays_ready_with_a_paused_condition() -> None:
    status = deployment_status("nightly", deployment_spec(paused=True), generation=1,
                               current=None, flow_spec=flow_spec(), runs=[], now=NOW)

    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["Ready"]["status"] == "True"
    assert by_type["Paused"]["status"] == "True"
    assert by_type["Paused"]["reason"] == "DeploymentPaused"
    assert "lastRun" not in status


def test_flow_appearing_flips_ready_and_moves_transition_time_only_then() -> None:
    missing = deployment_status("nightly", deployment_spec(), generation=1, current=None,
                                flow_spec=None, runs=[], now=NOW)
    later = NOW + timedelta(minutes=3)

    found = deployment_status("nightly", deployment_spec(), generation=1, current=missing,
                              flow_spec=flow_spec(), runs=[], now=later)

    patch = status_patch(missing, found)
    ready = {c["type"]: c for c in patch["conditions"]}["Ready"]
    paused = {c["type"]: c for c in patch["conditions"]}["Paused"]
    assert ready["reason"] == "Valid"
    assert ready["lastTransitionTime"] == "2024-05-01T12:03:00Z"
    assert paused["lastTransitionTime"] == "2024-05-01T12:00:00Z"
    assert set(patch) == {"conditions"}


def test_status_patch_clears_last_run_when_every_run_is_gone() -> None:
    before = deployment_status("nightly", deployment_spec(), generation=1, current=None,
                               flow_spec=flow_spec(), runs=[run("a", "Completed", 0)], now=NOW)
    after = deployment_status("nightly", deployment_spec(), generation=1, current=before,
                              flow_spec=flow_spec(), runs=[], now=NOW)

    assert status_patch(before, after) == {"lastRun": None}


def test_flow_status_reports_generation_and_ready() -> None:
    status = flow_status("etl", flow_spec(), generation=4, current=None, now=NOW)

    assert status["observedGeneration"] == 4
    assert status["conditions"][0]["type"] == "Ready"
    assert status["conditions"][0]["observedGeneration"] == 4
    assert status_patch(status, flow_status("etl", flow_spec(), generation=4, current=status,
                                            now=NOW + timedelta(days=1))) == {}
