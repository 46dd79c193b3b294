"""Fixtures for the Prefect-compatibility suite: each test gets its own HEADWATER_HOME,
retry delays are recorded instead of slept, and flow files load as fresh modules."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import isolated_home
import pytest
from headwater import async_engine, engine

FLOWS = Path(__file__).parent / "flows"

headwater_home = isolated_home.headwater_home  # autouse: each test's own HEADWATER_HOME

_loads = itertools.count()


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry delays the engine asked for (sync and async), in order, instead of sleeping."""
    recorded: list[float] = []

    async def async_sleep(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(engine, "sleep", recorded.append)
    monkeypatch.setattr(async_engine, "sleep", async_sleep)
    return recorded


@pytest.fixture
def load() -> Callable[[str], ModuleType]:
    """Import ``flows/<name>.py`` as a new module (its module-level state starts fresh),
    as ``python <file>`` or an entrypoint would, minus the ``__main__`` block."""

    def load_file(name: str) -> ModuleType:
        path = FLOWS / f"{name}.py"
        module_name = f"compat_flow_{name}_{next(_loads)}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module

    return load_file
