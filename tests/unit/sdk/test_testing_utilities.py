"""headwater.testing.utilities: the hermetic harness under Headwater's and Prefect's names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from headwater import flow, task
from headwater.engine import LAST_RUN_TREE
from headwater.testing.utilities import headwater_test_harness, prefect_test_harness


@task(persist_result=True)
def double(x: int) -> int:
    return 2 * x


@flow
def doubles(x: int) -> int:
    return double(x)


def test_runs_inside_the_harness_write_only_under_its_temporary_home(
        headwater_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    elsewhere = tmp_path / "shared-results"
    monkeypatch.setenv("HEADWATER_RESULT_STORAGE", str(elsewhere))
    with headwater_test_harness() as home:
        assert os.environ["HEADWATER_HOME"] == str(home)
        assert doubles(4) == 8
        location = LAST_RUN_TREE[0].task_runs[0].result_location or ""
        assert location.startswith(str(home))
        assert any((home / "flowruns").rglob("record.json"))  # the run record too
    assert not home.exists()
    assert os.environ["HEADWATER_HOME"] == str(headwater_home)
    assert os.environ["HEADWATER_RESULT_STORAGE"] == str(elsewhere)  # restored exactly
    assert not elsewhere.exists()


def test_the_prefect_name_is_the_same_harness_and_restores_unset_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEADWATER_RUN_STORE", raising=False)
    assert prefect_test_harness is headwater_test_harness
    with prefect_test_harness(server_startup_timeout=5) as home:
        os.environ["HEADWATER_RUN_STORE"] = "off"  # a test may change it inside
        assert home.is_dir()
    assert "HEADWATER_RUN_STORE" not in os.environ
