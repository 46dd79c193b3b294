"""The run-record figures of ``benchmarks/sdk_overhead.py`` (issue 12) say what they claim.

The records-on/off comparison pairs the samples of each round; each test feeds figures
whose right answer is known (one noisy round, a final flush, a size just over the
limit) and checks the figure and the PASS/FAIL verdict. The workload side is checked
with real workload processes: with records on, the size it reports is the size of the
``record.json`` on disk; with ``HEADWATER_RUN_STORE=off`` it reports no record.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

import sdk_overhead as so  # benchmarks/ is not a package: found through sys.path

QUICK = so.build_workloads(quick=True)
FULL = so.build_workloads(quick=False)
COLD, SEQ_LARGE = FULL[0], FULL[2]


def sample(flow_s: float, *, wall_s: float = 0.2, units: int = 0,
           flush: float | None = None, size: int | None = None) -> so.Sample:
    report: dict[str, Any] = {"import_s": 0.04, "flow_s": flow_s, "units": units}
    if flush is not None:
        report.update(record=True, final_flush_s=flush, record_bytes=size)
    else:
        report["record"] = False
    return so.Sample(wall_s=wall_s, cpu_s=wall_s, maxrss_mb=25.0, import_s=0.04,
                     flow_s=flow_s, units=units, report=report)


def summary(workload: so.Workload, samples: list[so.Sample]) -> so.Summary:
    return so.Summary(
        engine="headwater", workload=workload.key, title=workload.title, size=workload.size,
        unit=workload.unit, units=samples[0].units,
        wall_s=min(s.wall_s for s in samples), wall_median_s=0.0,
        cpu_s=min(s.cpu_s for s in samples), maxrss_mb=25.0,
        import_s=0.04, flow_s=min(s.flow_s for s in samples), samples=samples)


def figures(*, added_per_task: float = 3e-6, flush: float = 0.05, size: int = 4_700_000,
            cold_wall_on: float = 0.15, n: int = 10_000,
            ) -> tuple[dict[str, so.Summary], dict[str, so.Summary]]:
    """Three rounds of cold start + ``n`` sequential tasks, records off and on.

    The empty flow costs 1 ms more with records on (its own 0.5 ms flush included). The
    ``n``-task flow costs ``added_per_task`` more per task plus ``flush``, except in
    round 2, where the machine stalled the records-on sample by 100 ms.
    """
    off_flows = [0.150, 0.160, 0.155]
    on_flows = [f + added_per_task * n + flush for f in off_flows]
    on_flows[1] += 0.1  # noise: the median must not see it
    cold_off = [sample(0.001, wall_s=0.12) for _ in range(3)]
    cold_on = [sample(0.002, wall_s=cold_wall_on, flush=0.0005, size=700) for _ in range(3)]
    seq_off = [sample(f, units=n) for f in off_flows]
    seq_on = [sample(f, units=n, flush=flush, size=size) for f in on_flows]
    on = {COLD.key: summary(COLD, cold_on), SEQ_LARGE.key: summary(SEQ_LARGE, seq_on)}
    off = {COLD.key: summary(COLD, cold_off), SEQ_LARGE.key: summary(SEQ_LARGE, seq_off)}
    return on, off


def verdicts(on: dict[str, so.Summary], off: dict[str, so.Summary],
             workloads: list[so.Workload] = FULL) -> dict[str, bool | None]:
    costs = so.record_costs(on, off, workloads)
    return {check.target.split(" (")[0]: check.passed
            for check in so.check_record_targets(costs, workloads)}


def test_paired_medians_ignore_one_noisy_round_and_separate_the_final_flush() -> None:
    on, off = figures(added_per_task=3e-6, flush=0.05)
    cold, seq = so.record_costs(on, off, FULL)

    assert cold.added_s == pytest.approx(0.001)  # the record's fixed price per run
    assert cold.added_excl_flush_s == pytest.approx(0.0005)
    # 3 µs per task plus a 50 ms flush over 10,000 tasks, less the empty flow's 1 ms.
    assert seq.added_s == pytest.approx(3e-6 + (0.05 - 0.001) / 10_000)
    assert seq.added_excl_flush_s == pytest.approx(3e-6 - 0.0005 / 10_000)
    assert seq.record_bytes == 4_700_000
    assert seq.final_flush_s == pytest.approx(0.05)
    assert seq.rounds == 3


@pytest.mark.parametrize(("change", "target"), [
    ({"added_per_task": 6e-6}, "run record adds <= 5.0 µs per task"),
    ({"size": 5_000_001}, "record of a 10,000-task run <= 5 MB"),
    ({"flush": 0.101}, "final flush <= 100.00 ms"),
    ({"cold_wall_on": 0.31}, "cold start with records on < 0.3 s"),
])
def test_each_target_fails_when_its_figure_is_over(change: dict[str, Any], target: str) -> None:
    passing = verdicts(*figures())
    assert passing == {
        "run record adds <= 5.0 µs per task": True,
        "record of a 10,000-task run <= 5 MB": True,
        "final flush <= 100.00 ms": True,
        "cold start with records on < 0.3 s": True,
    }
    failing = verdicts(*figures(**change))
    assert failing == {**passing, target: False}


def test_without_a_10000_task_run_the_size_is_extrapolated_not_judged() -> None:
    on, off = figures(n=QUICK[2].size, size=470_000)  # seq_large is 1,000 tasks (--quick)
    checks = so.check_record_targets(so.record_costs(on, off, QUICK), QUICK)
    size = next(c for c in checks if c.target.startswith("record of"))
    assert size.passed is None
    assert size.measured == ("not measured: sequential tasks x 1,000 wrote 470,000 B "
                             "(0.47 MB), about 4,700,000 B (4.70 MB) at 10,000")


def test_render_saved_keeps_the_engine_table_and_adds_the_record_section(
        tmp_path: Path) -> None:
    on, off = figures()
    workloads = [COLD, SEQ_LARGE]
    engines = {"headwater": {"version": "0.1.0 (test)", "python": "python"}}
    saved: dict[str, Any] = {"repeat": 3, "workloads": [asdict(w) for w in workloads],
             "environment": {"engines": engines},
             "results": {"headwater": {k: asdict(s) for k, s in on.items()},
                         so.RECORDS_OFF: {k: asdict(s) for k, s in off.items()}}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(saved), encoding="utf-8")
    text = so.render_saved(path)
    assert "| cold start < 0.3 s |" in text
    assert "| record of a 10,000-task run <= 5 MB | 4,700,000 B (4.70 MB)" in text
    assert "before records" not in text

    # --records-before adds a second table, against the SDK from before run records.
    saved["results"][so.RECORDS_BEFORE] = saved["results"][so.RECORDS_OFF]
    path.write_text(json.dumps(saved), encoding="utf-8")
    assert "| workload (median of 3 rounds) | in-flow per unit: before records |" in (
        so.render_saved(path))
    del saved["results"][so.RECORDS_BEFORE]

    # A results file from before the record comparison renders as it always did.
    del saved["results"][so.RECORDS_OFF]
    path.write_text(json.dumps(saved), encoding="utf-8")
    older = so.render_saved(path)
    assert "| cold start < 0.3 s |" in older
    assert "Run record" not in older


@pytest.fixture(scope="module")
def headwater() -> so.Engine:
    return so.headwater_engine(None, lambda _: None)


def test_the_workload_reports_the_size_of_the_record_it_wrote(headwater: so.Engine,
                                                               tmp_path: Path) -> None:
    home = tmp_path / "home"
    workload = so.Workload("seq", "sequential_tasks.py", 25, "task", "sequential tasks")
    got = so.run_workload_process(headwater, workload, home, 120)
    records = list(home.rglob("record.json"))
    assert len(records) == 1
    assert got.report["record"] is True
    assert got.report["record_written"] is True
    assert got.report["record_bytes"] == records[0].stat().st_size
    assert len(json.loads(records[0].read_text())["taskRuns"]) == 25
    assert got.report["final_flush_s"] > 0


def test_with_records_off_the_workload_reports_none(headwater: so.Engine,
                                                   tmp_path: Path) -> None:
    home = tmp_path / "home"
    got = so.run_workload_process(so.records_off(headwater), COLD, home, 120)
    assert got.report["record"] is False
    assert "final_flush_s" not in got.report
    assert not list(home.rglob("record.json"))
