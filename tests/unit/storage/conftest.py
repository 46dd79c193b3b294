"""Fixtures for the storage tests: the S3 server (tests/support/s3_server.py) and an
isolated ``HEADWATER_HOME``, so no test reads or writes ``~/.headwater``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from headwater import results
from s3_server import broken_endpoint, s3, s3_server  # noqa: F401  (fixtures shared with tests/api)


@pytest.fixture(autouse=True)
def headwater_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own HEADWATER_HOME and no HEADWATER_* from outside."""
    home = tmp_path / "hw-home"
    monkeypatch.setenv("HEADWATER_HOME", str(home))
    monkeypatch.delenv("HEADWATER_RESULT_STORAGE", raising=False)
    monkeypatch.delenv("HEADWATER_RUN_STORE", raising=False)
    results._storage_cache.clear()
    yield home
    results._storage_cache.clear()
