"""Assets: lineage inferred from data, versions, skip-on-unchanged, metadata, records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from headwater import Asset, add_asset_metadata, flow, materialize
from headwater.assets import asset_history, read_latest
from headwater.engine import LAST_RUN_TREE
from headwater.results import resolve_storage

RAW = "file://lake/raw/orders"
CLEAN = "file://lake/processed/orders"
REPORT = "warehouse://analytics/daily"
calls: list[str] = []


@materialize(RAW)
def extract(day: str) -> list[int]:
    calls.append("extract")
    return [1, 2, 3] if day == "d1" else [4, 5]


@materialize(CLEAN)
def clean(rows: list[int]) -> list[int]:
    calls.append("clean")
    add_asset_metadata(CLEAN, {"row_count": len(rows)})
    return [r * 10 for r in rows]


@materialize(Asset(REPORT), asset_deps=["postgres://crm/customers"])
def report(rows: list[int]) -> int:
    calls.append("report")
    return sum(rows)


@flow
def pipeline(day: str) -> int:
    return report(clean(extract(day)))


@flow
def pipeline_with_futures(day: str) -> int:
    raw = extract.submit(day)
    return report.submit(clean.submit(raw)).result()


def _summary_assets() -> dict[str, dict[str, Any]]:
    return {a["key"]: a for a in LAST_RUN_TREE[0].assets}


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def test_lineage_is_inferred_from_parameters() -> None:
    assert pipeline("d1") == 60
    assets = _summary_assets()
    assert assets[RAW]["upstream"] == []
    assert assets[CLEAN]["upstream"] == [RAW]
    assert assets[REPORT]["upstream"] == [CLEAN, "postgres://crm/customers"]
    assert assets[CLEAN]["upstreamVersions"][RAW] == assets[RAW]["version"]


def test_lineage_is_inferred_through_futures() -> None:
    pipeline_with_futures("d1")
    assert _summary_assets()[REPORT]["upstream"] == [CLEAN, "postgres://crm/customers"]


def test_second_run_skips_unchanged_assets() -> None:
    pipeline("d1")
    first = _summary_assets()
    calls.clear()
    assert pipeline("d1") == 60
    second = _summary_assets()
    assert calls == []
    assert all(a["skipped"] for a in second.values())
    assert {k: a["version"] for k, a in first.items()} == {
        k: a["version"] for k, a in second.items()}
    assert [tr.state.name for tr in LAST_RUN_TREE[0].task_runs] == ["Cached"] * 3


def test_changed_input_rematerializes_downstream() -> None:
    pipeline("d1")
    before = _summary_assets()
    calls.clear()
    assert pipeline("d2") == 90
    after = _summary_assets()
    assert calls == ["extract", "clean", "report"]
    assert all(before[k]["version"] != after[k]["version"] for k in before)


def test_going_back_to_old_inputs_rebuilds_because_asset_moved_on() -> None:
    pipeline("d1")
    pipeline("d2")
    calls.clear()
    pipeline("d1")
    # The assets currently hold d2's data, so d1 must be written again.
    assert calls == ["extract", "clean", "report"]


def test_refresh_cache_forces_rematerialization() -> None:
    @flow
    def forced() -> list[int]:
        return extract.with_options(refresh_cache=True)("d1")

    forced()
    calls.clear()
    forced()
    assert calls == ["extract"]


def test_history_and_metadata_are_recorded(headwater_home: Path) -> None:
    pipeline("d1")
    first_run_id = LAST_RUN_TREE[0].root.id
    pipeline("d1")  # skipped: no new history entry
    storage = resolve_storage(None)
    history = asset_history(storage, CLEAN)
    assert len(history) == 1
    assert history[0]["metadata"] == {"row_count": 3}
    assert history[0]["flowRunId"] == first_run_id
    latest = read_latest(storage, CLEAN)
    assert latest is not None
    assert latest["version"] == history[0]["version"]


def test_lineage_file_is_written_per_run(headwater_home: Path) -> None:
    pipeline("d1")
    run_id = LAST_RUN_TREE[0].root.id
    lineage = json.loads((headwater_home / "runs" / run_id / "lineage.json").read_text())
    assert {a["key"] for a in lineage["assets"]} == {RAW, CLEAN, REPORT}


def test_invalid_asset_key_is_explained() -> None:
    with pytest.raises(ValueError, match="use a URI such as"):
        Asset("not a uri")


def test_add_asset_metadata_outside_materialize_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="inside the @materialize task"):
        add_asset_metadata(CLEAN, {"x": 1})
