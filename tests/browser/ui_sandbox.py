"""What the UI's browser tests share besides their fixtures: the repository's paths, the
sandbox handle (:class:`UiSandbox`) and :func:`wait_until`.

A module of its own (not ``conftest``): ``from conftest import ...`` finds whichever
``conftest`` pytest imported first under that name, another folder's when the whole
suite runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from headwater_dev import sandbox as sb

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = [REPO / "tests" / "browser" / "manifests", REPO / "examples" / "assets"]
TERMINAL = ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut")
FIRST_RUNS = ("report-first", "hostile-1", "nested-first")
"""The manifests' runs that must have finished before the tests start."""
WINDOW = (1280, 800)
STARTUP_TIMEOUT = 120.0

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, *,
               message: str = "condition", interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except (LookupError, AttributeError, TypeError) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} did not hold within {timeout:g}s; last: {last!r}")
        time.sleep(interval)


@dataclass
class UiSandbox:
    """The running sandbox: its UI's address and sync reads of its API's objects."""

    sandbox: sb.Sandbox
    log: Path
    namespace: str = "default"

    @property
    def url(self) -> str:
        """The UI's base address, ``http://127.0.0.1:<port>``."""
        assert self.sandbox.ui_url is not None
        return self.sandbox.ui_url

    def objects(self, plural: str) -> list[dict[str, Any]]:
        """Every object of ``plural`` in the namespace."""
        found: list[dict[str, Any]] = self.sandbox.emulator.objects(plural, self.namespace)
        return found

    def object(self, plural: str, name: str) -> dict[str, Any] | None:
        """One object, or None."""
        found: dict[str, Any] | None = self.sandbox.emulator.object(plural, name,
                                                                     self.namespace)
        return found

    def phase(self, run: str) -> str | None:
        """A FlowRun's phase (None: no such run, or no status yet)."""
        return ((self.object("flowruns", run) or {}).get("status") or {}).get("phase")

    def run_names(self) -> set[str]:
        """The names of every FlowRun."""
        return {r["metadata"]["name"] for r in self.objects("flowruns")}
