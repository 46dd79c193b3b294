"""examples/dbt (the jaffle shop) end to end: ingestion's assets are the dbt sources'
upstream, dbt's models and the dashboards are recorded, and running the same window
again (a backfill re-run) leaves the same rows."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from types import ModuleType

import duckdb
import pytest
from conftest import last_record

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dbt" / "jaffle_flow.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("jaffle_flow", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_jaffle_shop_runs_end_to_end_and_a_window_rerun_keeps_its_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAFFLE_WAREHOUSE_DIR", str(tmp_path))  # the flow sets it too
    example = load_example()
    window = {"start_date": dt.date(2026, 3, 1), "end_date": dt.date(2026, 3, 3),
              "warehouse_dir": str(tmp_path)}

    def counts() -> list[tuple[int, int, int]]:
        with duckdb.connect(str(tmp_path / "jaffle.duckdb")) as con:
            return con.execute(
                "select (select count(*) from raw.orders), (select count(*) from main.orders),"
                " (select count(distinct order_id) from main.orders)").fetchall()

    first = example.jaffle_shop(**window)
    assert first["dbt_nodes"] == 18
    assert sorted(first["dashboards"]) == ["order-status", "revenue", "top-customers"]
    record = last_record()
    assets = {a["key"]: a for a in record["assets"]}
    raw_orders = assets["duckdb://jaffle/raw/orders"]
    stg_orders = assets["duckdb://jaffle/main/stg_orders"]
    # Lineage runs from the Python ingestion through dbt: the source's key is the
    # ingestion's asset, at the version this run materialized.
    assert stg_orders["upstreamVersions"] == {"duckdb://jaffle/raw/orders":
                                              raw_orders["version"]}
    assert assets["duckdb://jaffle/main/orders"]["upstream"] == [
        "duckdb://jaffle/main/stg_orders", "duckdb://jaffle/main/stg_payments"]
    keys = {a["key"] for a in record["artifacts"]}
    assert {"dbt-build-results", "dashboard-revenue", "dashboard-top-customers",
            "dashboard-order-status"} <= keys
    before = counts()
    assert before[0][0] == first["loaded"]["orders"] == before[0][1] == before[0][2]

    example.jaffle_shop(**window)
    assert counts() == before
