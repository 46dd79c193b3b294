"""examples/dbt in ``headwater dev``: the seed pipeline on DuckDB, through the real operator.

The sandbox's pods run with ``--pod-python``, the environment ``scripts/bootstrap.sh``
makes for headwater-dbt (``.venv-dbt``: dbt-core pins what the main environment's tools
cannot share). What a user sees is asserted: the ad-hoc run Completes, its dbt nodes are
task runs, and ``headwater lineage`` shows the mart's upstream models as recorded from the
manifest, reaching back to the tables the Python ingestion loaded.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pytest
from headwater_dev import sandbox as sb

REPO = Path(__file__).resolve().parents[2]
DBT_PYTHON = REPO / ".venv-dbt" / "bin" / "python"


def _dbt_python() -> Path:
    assert DBT_PYTHON.is_file(), (
        f"{DBT_PYTHON} is missing: `bash scripts/bootstrap.sh` makes the headwater-dbt "
        "environment these tests run the example's pods with")
    return DBT_PYTHON


def _upstream_of(key: str, home: Path) -> str:
    """The Upstream section ``headwater lineage`` prints for ``key``."""
    printed = subprocess.run([sys.executable, "-m", "headwater", "lineage", key, "--store",
                              str(home)], capture_output=True, text=True, check=True).stdout
    return printed.split("Upstream:")[1].split("Downstream:")[0]


async def test_the_dbt_example_completes_and_records_its_lineage(tmp_path: Path) -> None:
    options = sb.SandboxOptions(
        manifests=[REPO / "examples" / "dbt"], workdir=REPO, state_dir=tmp_path / "state",
        out=io.StringIO(), refresh_seconds=0.2, until_complete=True, duration=240,
        pod_python=str(_dbt_python()))
    result = await sb.Sandbox(options).run()
    phases = {run["metadata"]["name"]: run["status"].get("phase") for run in result.runs}
    assert len(phases) == 1, phases
    assert list(phases.values()) == ["Completed"], options.out.getvalue()[-3000:]
    run = result.runs[0]
    task_runs = run["status"].get("taskRuns") or {}
    # ingest, 18 dbt nodes (seeds, staging views, marts and their tests), 3 dashboards
    assert task_runs.get("Completed", 0) >= 20, task_runs
    home = tmp_path / "state" / "home"
    upstream = _upstream_of("duckdb://jaffle/main/orders", home)
    assert "duckdb://jaffle/main/stg_orders" in upstream
    assert "duckdb://jaffle/main/stg_payments" in upstream
    assert "duckdb://jaffle/raw/orders" in _upstream_of("duckdb://jaffle/main/stg_orders", home)


def test_pod_python_must_be_an_executable(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    sb.add_arguments(parser)
    args = parser.parse_args(["--pod-python", str(tmp_path / "nope")])
    with pytest.raises(sb.SandboxError, match=r"--pod-python .*nope: not an executable file"):
        sb.options_from_args(args, cwd=REPO)
    args = parser.parse_args(["--pod-python", str(_dbt_python())])
    assert sb.options_from_args(args, cwd=REPO).pod_python == str(DBT_PYTHON)
