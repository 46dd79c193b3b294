"""Run flows hermetically in tests, as ``prefect.testing.utilities`` does.

:func:`headwater_test_harness` (also importable under Prefect's name,
``prefect_test_harness``) points everything a run writes — results and caches,
artifacts, asset lineage, run records and logs — at a fresh temporary directory, and
puts the environment back when the block ends::

    @pytest.fixture(autouse=True, scope="session")
    def hermetic_runs():
        with headwater_test_harness():
            yield

What it must respect: it changes only this process's environment
(``HEADWATER_HOME``, ``HEADWATER_RESULT_STORAGE``, ``HEADWATER_RUN_STORE``) and restores
each variable exactly, set or unset; it deletes only the directory it made. Prefect's
harness starts a temporary API server; Headwater needs none, so there is nothing to wait
for and ``server_startup_timeout`` is accepted and ignored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from headwater import contract

_ISOLATED = (contract.ENV_HOME, contract.ENV_RESULT_STORAGE, contract.ENV_RUN_STORE)


@contextlib.contextmanager
def headwater_test_harness(server_startup_timeout: int | None = 30) -> Iterator[Path]:
    """Inside the block, runs keep everything under a new temporary ``HEADWATER_HOME``
    (yielded); outside it, the environment is as before and the directory is gone."""
    del server_startup_timeout  # there is no server to start
    saved = {name: os.environ.get(name) for name in _ISOLATED}
    home = Path(tempfile.mkdtemp(prefix="headwater-test-"))
    os.environ[contract.ENV_HOME] = str(home)
    # Result storage and the run store default to HEADWATER_HOME when unset.
    os.environ.pop(contract.ENV_RESULT_STORAGE, None)
    os.environ.pop(contract.ENV_RUN_STORE, None)
    try:
        yield home
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(home, ignore_errors=True)


prefect_test_harness = headwater_test_harness
"""Prefect's name for :func:`headwater_test_harness`."""

__all__ = ["headwater_test_harness", "prefect_test_harness"]
