"""Fixtures for SDK unit tests: isolated result storage and a fake clock/sleep."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from headwater import async_engine, engine, results


@pytest.fixture(autouse=True)
def headwater_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own HEADWATER_HOME; no test touches ~/.headwater."""
    home = tmp_path / "hw-home"
    monkeypatch.setenv("HEADWATER_HOME", str(home))
    monkeypatch.delenv("HEADWATER_RESULT_STORAGE", raising=False)
    results._storage_cache.clear()
    yield home
    results._storage_cache.clear()


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry delays (sync and async engines) instead of sleeping."""
    recorded: list[float] = []

    async def async_sleep(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(engine, "sleep", recorded.append)
    monkeypatch.setattr(async_engine, "sleep", async_sleep)
    return recorded
