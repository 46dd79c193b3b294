"""The ingestion example honours the scheduler's window: [start_date, end_date).

A daily Schedule with ``windowParameters`` gives the 06:00 run on 2 March
``start_date=2026-03-01, end_date=2026-03-02``; the next run starts where it ended. If
the flow treated ``end_date`` as inclusive, every day would be loaded twice.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

INGEST = Path(__file__).resolve().parents[3] / "examples" / "flows" / "ingest.py"


@pytest.fixture(scope="module")
def ingest_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_ingest", INGEST)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_consecutive_windows_tile_without_overlap(ingest_module: ModuleType) -> None:
    mar1, mar2, mar3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
    first = ingest_module.days_between(mar1, mar2)
    second = ingest_module.days_between(mar2, mar3)
    assert first == [mar1]
    assert second == [mar2]
    assert first + second == ingest_module.days_between(mar1, mar3)


def test_flow_loads_each_day_of_the_window_once(
    ingest_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path))
    totals = ingest_module.ingest(start_date="2024-01-01", end_date="2024-01-08")
    assert totals["days"] == 7


def test_empty_window_is_rejected(ingest_module: ModuleType, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="end_date is exclusive"):
        ingest_module.ingest(start_date="2024-01-02", end_date="2024-01-02")
