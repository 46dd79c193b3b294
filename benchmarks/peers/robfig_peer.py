"""Peer adapter: Kubernetes CronJob's and Argo's fire times, from robfig/cron v3.0.1.

The Kubernetes CronJob controller and Argo CronWorkflows compute fire times with
``github.com/robfig/cron/v3``. ``benchmarks/peers/robfig/main.go`` wraps that library;
``bash benchmarks/peers/install_robfig.sh`` builds it into ``.tools/robfig-peer``. This
module runs that binary on a list of shared-format cases::

    {"id": ..., "kind": "cron" | "interval" | "rrule", "expression": ...,
     "timezone": ..., "anchor": ... | None, "start": "...Z", "end": "...Z"}

and returns its answer::

    {"engine": "robfig/cron v3.0.1 (Kubernetes CronJob, Argo)",
     "results": [{"id": ..., "fires": [...]} | {"id": ..., "unsupported": "why"}],
     "us_per_tick": {"<case id>": float}}

``fires`` holds every instant with start < t <= end, UTC RFC 3339 with ``Z``, ascending,
duplicates kept. Run this file directly to see a few sample cases::

    .venv/bin/python benchmarks/peers/robfig_peer.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
BINARY = REPO_ROOT / ".tools" / "robfig-peer"
INSTALL_HINT = "bash benchmarks/peers/install_robfig.sh"

SAMPLE_CASES: list[dict[str, Any]] = [
    {
        "id": "ny-0130-fall",
        "kind": "cron",
        "expression": "30 1 * * *",
        "timezone": "America/New_York",
        "anchor": None,
        "start": "2026-10-31T04:00:00Z",
        "end": "2026-11-03T05:00:00Z",
    },
    {
        "id": "ny-0230-spring",
        "kind": "cron",
        "expression": "30 2 * * *",
        "timezone": "America/New_York",
        "anchor": None,
        "start": "2026-03-07T05:00:00Z",
        "end": "2026-03-10T04:00:00Z",
    },
    {
        "id": "london-daily-spring",
        "kind": "cron",
        "expression": "@daily",
        "timezone": "Europe/London",
        "anchor": None,
        "start": "2026-03-28T00:00:00Z",
        "end": "2026-03-31T00:00:00Z",
    },
    {
        "id": "ny-1d-interval",
        "kind": "interval",
        "expression": "1d",
        "timezone": "America/New_York",
        "anchor": "2026-01-01T02:30:00",
        "start": "2026-03-07T05:00:00Z",
        "end": "2026-03-10T04:00:00Z",
    },
]


def binary_path() -> Path | None:
    """The built peer binary, or None when it has not been built."""
    return BINARY if BINARY.is_file() else None


def run_cases(cases: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Answer ``cases`` with robfig/cron; None (with a hint on stderr) when not built."""
    binary = binary_path()
    if binary is None:
        print(
            f"robfig peer not built ({BINARY} missing); build it with: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return None
    completed = subprocess.run(
        [str(binary)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.stderr:
        sys.stderr.write(completed.stderr)
    if completed.returncode != 0:
        raise RuntimeError(
            f"{binary} exited with {completed.returncode}: {completed.stderr.strip()}"
        )
    answer: dict[str, Any] = json.loads(completed.stdout)
    return answer


def main() -> int:
    answer = run_cases(SAMPLE_CASES)
    if answer is None:
        return 1
    print(json.dumps(answer, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
