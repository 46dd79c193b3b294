"""Tiny helpers shared by the benchmark workloads (standard library only).

Kept import-light on purpose: it is imported before the orchestrator under test, and
anything it pulls in would be charged to the cold-start figure of both engines.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

STARTED = time.perf_counter()
"""Set when the workload imports this module, i.e. before the engine is imported."""

REPORT_ENV = "BENCH_REPORT"
"""The harness names a file here; the workload writes its in-process figures to it."""


def engine() -> str:
    """Return the engine under test: ``argv[1]`` or ``$BENCH_ENGINE`` (prefect|headwater)."""
    name = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BENCH_ENGINE", "")
    if name not in ("prefect", "headwater"):
        raise SystemExit(f"usage: {sys.argv[0]} prefect|headwater [count]; got {name!r}")
    return name


def count(default: int) -> int:
    """Return the workload size from ``argv[2]`` (tasks, subflows, ...), else ``default``."""
    return int(sys.argv[2]) if len(sys.argv) > 2 else default


def emit(imported_at: float, flow_started: float, flow_ended: float, **extra: Any) -> None:
    """Write the in-process timings (seconds) and workload checks for the harness.

    ``import_s`` covers importing the engine, ``flow_s`` the outermost flow call.
    Without ``$BENCH_REPORT`` (a manual run) the figures go to stdout instead.
    """
    import json

    figures = {
        "import_s": imported_at - STARTED,
        "flow_s": flow_ended - flow_started,
        **extra,
    }
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(figures, out)
    else:
        print(json.dumps(figures))
