"""Task runs and asset materializations recorded after the fact (headwater.external), as
integrations such as headwater-dbt report work the engine did not call: they reach the run
record (held to its schema), the summary's counts and the asset records `lineage` reads."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest
from headwater import engine, flow, record_asset_materialization, record_task_run, runstore
from headwater.assets import read_latest
from headwater.results import resolve_storage
from headwater.summary import build_summary

SCHEMA = json.loads(resources.files("headwater").joinpath(
    "data/run-record.schema.json").read_text())


@flow
def reports_external_work() -> str:
    ok = record_task_run("model.shop.orders", outcome="completed", start_time=1000.0,
                         end_time=1002.5, task_key="dbt.model.shop.orders",
                         metadata={"rowsAffected": 12, "compiledPath": "target/x.sql"})
    record_asset_materialization("duckdb://main/orders", task_run=ok, version="v1",
                                 upstream=["duckdb://main/raw_orders"],
                                 metadata={"rows": 12})
    bad = record_task_run("model.shop.revenue", outcome="failed", start_time=1003.0,
                          end_time=1004.0, message="Binder Error: column x not found",
                          error_type="DbtDatabaseError")
    skipped = record_task_run("model.shop.report", outcome="not_ready", start_time=None,
                              end_time=1004.0, message="skipped: an upstream node failed")
    return f"{ok.name} {bad.name} {skipped.name}"


def test_external_task_runs_and_assets_reach_the_record_summary_and_asset_records() -> None:
    assert reports_external_work() == ("model.shop.orders-0 model.shop.revenue-0 "
                                       "model.shop.report-0")
    tree = engine.LAST_RUN_TREE[0]
    record = runstore.read_record(tree.recorder.location.url)
    jsonschema.Draft202012Validator(SCHEMA).validate(record)
    runs: dict[str, dict[str, Any]] = {t["name"]: t for t in record["taskRuns"]}

    ok = runs["model.shop.orders-0"]
    assert ok["taskKey"] == "dbt.model.shop.orders"
    assert ok["state"] == "Completed"
    assert [s["name"] for s in ok["stateHistory"]] == ["Pending", "Running", "Completed"]
    assert ok["attempts"] == [{"number": 1, "state": "Completed",
                               "startTime": "1970-01-01T00:16:40.000Z",
                               "endTime": "1970-01-01T00:16:42.500Z"}]
    assert ok["metadata"] == {"rowsAffected": 12, "compiledPath": "target/x.sql"}

    bad = runs["model.shop.revenue-0"]
    assert bad["state"] == "Failed"
    assert bad["attempts"][0]["error"] == {"type": "DbtDatabaseError",
                                           "message": "Binder Error: column x not found"}

    skipped = runs["model.shop.report-0"]
    assert skipped["state"] == "NotReady"
    assert skipped["attempts"] == []

    (asset,) = record["assets"]
    assert asset["key"] == "duckdb://main/orders"
    assert asset["taskRunId"] == ok["id"]
    assert asset["upstreamVersions"] == {"duckdb://main/raw_orders": "external"}
    latest = read_latest(resolve_storage(None), "duckdb://main/orders")
    assert latest is not None
    assert latest["version"] == "v1"
    assert latest["metadata"] == {"rows": 12}

    counts = build_summary(tree)["taskRuns"]
    assert counts == {"Completed": 1, "Failed": 1, "NotReady": 1}


def test_recording_needs_a_flow_run_and_valid_times() -> None:
    with pytest.raises(RuntimeError, match="inside a flow run"):
        record_task_run("x", outcome="completed", start_time=1.0, end_time=2.0)

    @flow
    def bad_times() -> None:
        record_task_run("x", outcome="completed", start_time=5.0, end_time=2.0)

    with pytest.raises(ValueError, match="before start_time"):
        bad_times()

    @flow
    def no_start() -> None:
        record_task_run("x", outcome="failed", start_time=None, end_time=2.0)

    with pytest.raises(ValueError, match="needs start_time"):
        no_start()


def test_upstream_versions_are_the_latest_this_run_materialized_at_that_point() -> None:
    @flow
    def rebuilds_an_asset() -> None:
        def step(key: str, version: str, upstream: list[str]) -> None:
            ran = record_task_run(key, outcome="completed", start_time=1.0, end_time=2.0)
            record_asset_materialization(key, task_run=ran, version=version,
                                         upstream=upstream)

        step("duckdb://main/a", "a1", [])
        step("duckdb://main/c", "c1", ["duckdb://main/a"])
        step("duckdb://main/a", "a2", [])
        step("duckdb://main/b", "b1", ["duckdb://main/a", "duckdb://main/c"])

    rebuilds_an_asset()
    assets = engine.LAST_RUN_TREE[0].assets
    versions = {(a["key"], a["version"]): a["upstreamVersions"] for a in assets}
    assert versions[("duckdb://main/c", "c1")] == {"duckdb://main/a": "a1"}
    assert versions[("duckdb://main/b", "b1")] == {"duckdb://main/a": "a2",
                                                   "duckdb://main/c": "c1"}
