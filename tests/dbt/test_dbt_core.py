"""headwater-dbt with real dbt-core and dbt-duckdb (issue #16): dbt nodes become task runs,
models and seeds assets with the manifest's lineage, failures fail the flow unless asked
otherwise, a retry re-runs only the failed and skipped nodes, and a backfill window re-run
leaves the same rows."""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import ORDERS, last_record, query
from headwater import flow
from headwater.assets import read_latest
from headwater.results import resolve_storage
from headwater_dbt import DbtCoreRunner, DbtNodesFailed, asset_key, report_results

SCHEMA = json.loads(resources.files("headwater").joinpath(
    "data/run-record.schema.json").read_text())
FAILED = {"model.shop.payments_summary", "test.shop.assert_no_negative_amounts"}
SKIPPED = {"model.shop.fct_orders", "model.shop.customer_revenue"}


def runner(project: Path) -> DbtCoreRunner:
    return DbtCoreRunner(project, profiles_dir=project)


def dbt_task_runs(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The record's dbt task runs by node id (their task key is ``dbt.<unique_id>``)."""
    return {t["taskKey"].removeprefix("dbt."): t for t in record["taskRuns"]
            if t["taskKey"].startswith("dbt.")}


def test_failures_fail_the_flow_unless_asked_and_retry_reruns_only_failed_and_skipped(
        fresh_shop: Path) -> None:
    @flow
    def transform(raise_on_failure: bool = True) -> list[str]:
        report = runner(fresh_shop).build(raise_on_failure=raise_on_failure)
        return sorted(r.unique_id for r in report.results)

    # By default a failed node fails the flow, after every node was recorded.
    state = transform(return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, DbtNodesFailed)
    assert "model.shop.payments_summary" in str(state.data)
    record = last_record()
    jsonschema.Draft202012Validator(SCHEMA).validate(record)
    runs = dbt_task_runs(record)
    assert {n for n, t in runs.items() if t["state"] == "Failed"} == FAILED
    assert {n for n, t in runs.items() if t["state"] == "NotReady"} == SKIPPED
    model_error = runs["model.shop.payments_summary"]["attempts"][0]["error"]
    assert model_error["type"] == "DbtError"
    assert "payments does not exist" in model_error["message"]
    test_error = runs["test.shop.assert_no_negative_amounts"]["attempts"][0]["error"]
    assert test_error == {"type": "DbtTestFailure",
                          "message": "Got 1 result, configured to fail if != 0"}
    assert runs["test.shop.assert_no_negative_amounts"]["metadata"]["failures"] == 1
    assert runs["model.shop.customer_revenue"]["attempts"] == []

    # raise_on_failure=False: the flow completes and the record still shows the failures.
    state = transform(raise_on_failure=False, return_state=True)
    assert state.is_completed()
    record = last_record()
    runs = dbt_task_runs(record)
    assert {n for n, t in runs.items() if t["state"] == "Failed"} == FAILED
    (table,) = [a for a in record["artifacts"] if a["key"] == "dbt-build-results"]
    statuses = {row["node"]: row["status"] for row in table["data"]}
    assert statuses["model.shop.payments_summary"] == "error"
    assert statuses["test.shop.assert_no_negative_amounts"] == "fail"
    assert statuses["model.shop.customer_revenue"] == "skipped"
    assert statuses["model.shop.stg_orders"] == "success"
    assert {a["key"] for a in record["assets"]} == {
        asset_key({"database": "shop", "schema": "main", "alias": name}, "duckdb")
        for name in ("stg_orders", "stg_customers", "customers")}

    # Fix the data, then retry: only the failed and skipped nodes run again.
    import duckdb

    with duckdb.connect(str(fresh_shop / "shop.duckdb")) as con:
        con.execute("create table raw.payments as select 1 as payment_id")
        con.execute("update raw.orders set amount = 20 where amount < 0")

    @flow
    def retry() -> list[str]:
        return sorted(r.unique_id for r in runner(fresh_shop).retry().results)

    assert retry() == sorted(FAILED | SKIPPED)
    runs = dbt_task_runs(last_record())
    assert set(runs) == FAILED | SKIPPED
    assert {t["state"] for t in runs.values()} == {"Completed"}
    assert query(fresh_shop, "select count(*) from main.fct_orders") == [(len(ORDERS),)]


def test_lineage_and_task_runs_equal_the_manifest(clean_shop: Path) -> None:
    @flow
    def transform() -> list[bool]:
        return [r.live for r in runner(clean_shop).build().results]

    # Each node was recorded as it finished (dbt's NodeFinished event), not at the end.
    assert set(transform()) == {True}
    record = last_record()
    jsonschema.Draft202012Validator(SCHEMA).validate(record)
    manifest = json.loads((clean_shop / "target" / "manifest.json").read_text())
    run_results = json.loads((clean_shop / "target" / "run_results.json").read_text())
    relations = {**manifest["sources"], **{
        uid: node for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed", "snapshot")}}

    def key(uid: str) -> str:
        return asset_key(relations[uid], "duckdb")

    expected = {key(uid): sorted(key(parent) for parent in node["depends_on"].get("nodes", [])
                                 if parent in relations)
                for uid, node in relations.items() if not uid.startswith("source.")}
    assert {a["key"]: a["upstream"] for a in record["assets"]} == expected
    assert expected[key("model.shop.stg_orders")] == ["duckdb://shop/raw/orders"]
    assert expected[key("model.shop.customer_revenue")] == [
        "duckdb://shop/main/fct_orders", "duckdb://shop/main/stg_customers"]

    # Every executed node is one task run, with dbt's status, timing and compiled path.
    runs = dbt_task_runs(record)
    assert set(runs) == {r["unique_id"] for r in run_results["results"]}
    stg = runs["model.shop.stg_orders"]
    assert stg["metadata"]["compiledPath"] == str(
        clean_shop / "target/compiled/shop/models/staging/stg_orders.sql")
    assert Path(stg["metadata"]["compiledPath"]).is_file()
    assert runs["seed.shop.customers"]["metadata"]["rowsAffected"] == 3
    # Reported live from dbt's events, a node's attempt spans what run_results.json says
    # (compile start to execute end), and its execution time is dbt's.
    for result in run_results["results"]:
        (attempt,) = runs[result["unique_id"]]["attempts"]
        for bound, side, pick in (("startTime", "started_at", min),
                                  ("endTime", "completed_at", max)):
            expected_at = pick(datetime.fromisoformat(t[side].replace("Z", "+00:00"))
                               for t in result["timing"])
            recorded_at = datetime.fromisoformat(attempt[bound].replace("Z", "+00:00"))
            assert abs((recorded_at - expected_at).total_seconds()) < 0.002, (
                result["unique_id"], bound)
        assert runs[result["unique_id"]]["metadata"]["executionTime"] == pytest.approx(
            result["execution_time"], rel=1e-6)
    # Tests attach to their assets.
    by_key = {a["key"]: a for a in record["assets"]}
    assert by_key[key("model.shop.stg_orders")]["metadata"]["tests"] == {
        uid: "pass" for uid in runs if uid.startswith("test.shop.")}
    assert runs["test.shop.assert_no_negative_amounts"]["metadata"]["asset"] == key(
        "model.shop.stg_orders")
    # The asset records `headwater lineage` reads carry the same lineage.
    latest = read_latest(resolve_storage(None), key("model.shop.customer_revenue"))
    assert latest is not None
    assert latest["upstream"] == expected[key("model.shop.customer_revenue")]

    # dbt Cloud's path: the same documents, reported after the fact, record the same.
    @flow
    def from_documents() -> None:
        report_results(manifest, run_results)

    from_documents()
    again = last_record()
    assert set(dbt_task_runs(again)) == set(runs)
    assert {a["key"]: a["upstream"] for a in again["assets"]} == expected


def test_backfilling_the_same_window_twice_leaves_identical_row_counts(
        clean_shop: Path) -> None:
    window = {"start_date": "2026-03-02", "end_date": "2026-03-04"}
    in_window = [o for o in ORDERS if window["start_date"] <= o[2] < window["end_date"]]

    @flow
    def backfill(start_date: str, end_date: str, full_refresh: bool = False) -> int:
        report = runner(clean_shop).run(select="fct_orders", start_date=start_date,
                                        end_date=end_date, full_refresh=full_refresh)
        return len(report.results)

    assert backfill(**window, full_refresh=True) == 1
    first = query(clean_shop, "select count(*), count(distinct order_id) from main.fct_orders")
    assert first == [(len(in_window), len(in_window))]
    backfill(**window)
    assert query(clean_shop,
                 "select count(*), count(distinct order_id) from main.fct_orders") == first
    # The next window adds its own rows only.
    backfill("2026-03-04", "2026-03-05")
    assert query(clean_shop, "select count(*) from main.fct_orders") == [(len(in_window) + 1,)]


def test_source_freshness_checks_are_task_runs_and_a_warning_does_not_fail(
        clean_shop: Path) -> None:
    @flow
    def freshness() -> list[tuple[str, str]]:
        return [(r.unique_id, r.status) for r in runner(clean_shop).source_freshness().results]

    assert freshness() == [("source.shop.raw.orders", "warn")]
    (run,) = dbt_task_runs(last_record()).values()
    assert run["state"] == "Completed"
    assert run["stateHistory"][-1]["message"].startswith("warn")


def test_bad_arguments_name_the_field(clean_shop: Path, tmp_path: Path) -> None:
    dbt = runner(clean_shop)
    with pytest.raises(ValueError, match="full_refresh applies to build, run and seed"):
        dbt.args("test", full_refresh=True)
    with pytest.raises(ValueError, match="select/exclude do not apply to 'retry'"):
        dbt.args("retry", select="stg_orders")
    with pytest.raises(ValueError, match="not a dbt command"):
        dbt.args("destroy")
    with pytest.raises(ValueError, match=r"has no dbt_project\.yml"):
        DbtCoreRunner(tmp_path)
    args = dbt.args("build", select=["a", "b"], vars={"x": 1}, start_date="2026-03-01")
    assert args[args.index("--select") + 1:args.index("--select") + 3] == ["a", "b"]
    assert json.loads(args[args.index("--vars") + 1]) == {"x": 1, "start_date": "2026-03-01"}
