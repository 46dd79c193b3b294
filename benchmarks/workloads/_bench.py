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
    if engine() == "headwater":
        figures.update(run_record_figures())
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(figures, out)
    else:
        print(json.dumps(figures))


def run_record_figures() -> dict[str, Any]:
    """What Headwater's run record of the last root flow run cost (issue 12).

    ``record`` says whether one was written (``HEADWATER_RUN_STORE=off`` writes none);
    ``final_flush_s`` is the recorder's final flush, which ran inside the outermost flow
    call (so ``flow_s`` includes it); ``record_bytes`` is the size of ``record.json``.
    Called after the flow returned, so this reads what the engine kept and imports
    nothing new; the Prefect side never calls it.
    """
    engine_module = sys.modules.get("headwater.engine")
    trees = getattr(engine_module, "LAST_RUN_TREE", None)
    # An SDK from before run records has no ``recorder``: it wrote none.
    recorder = getattr(trees[0], "recorder", None) if trees else None
    if recorder is None:
        return {"record": False}
    from headwater import runstore

    data = recorder.storage.read(f"{recorder.location.path}/{runstore.RECORD_FILE}")
    return {
        "record": True,
        "record_written": recorder.written,
        "final_flush_s": recorder.final_flush_seconds,
        "record_bytes": None if data is None else len(data),
    }
