"""The ``headwater_home`` fixture the SDK's and the storage tests share (each folder's
conftest imports it, autouse): every test gets its own ``HEADWATER_HOME`` and none of the
``HEADWATER_*`` storage variables from outside, so no test reads or writes
``~/.headwater`` or another test's store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from headwater import results


@pytest.fixture(autouse=True)
def headwater_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's HEADWATER_HOME (result storage and run store default to it)."""
    home = tmp_path / "hw-home"
    monkeypatch.setenv("HEADWATER_HOME", str(home))
    monkeypatch.delenv("HEADWATER_RESULT_STORAGE", raising=False)
    monkeypatch.delenv("HEADWATER_RUN_STORE", raising=False)
    results._storage_cache.clear()
    yield home
    results._storage_cache.clear()
