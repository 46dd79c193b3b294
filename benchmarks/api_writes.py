"""API writes per FlowRun scenario: the table in docs/flowrun-lifecycle.md, re-measured.

Runs ``tests/api/test_flowrun_lifecycle.py`` (the real operator, in-process, against the
emulated API server, pods driven by the scripted kubelet) with
``HEADWATER_API_WRITES_OUT`` set, so every scenario records the writes the *operator*
made (told from the test's and the kubelet stand-in's by User-Agent), then prints one
markdown row per scenario::

    .venv/bin/python benchmarks/api_writes.py            # the table on stdout
    .venv/bin/python benchmarks/api_writes.py --json writes.json -- -k cancel

Each test also asserts its scenario's upper bound, so a regression fails the test suite
whether or not anyone reruns this script. The numbers are counts, not timings: they do
not depend on the machine, except where a test cannot control whether the operator sees
a short-lived phase (then the count is lower, never higher). The last column is the
exception: the Deployment handler writes run counts at most once per second per
Deployment (``handlers/deployments.py``), so it counts the seconds a scenario's runs
were changing more than their phases (before coalescing it was one patch per phase:
4 for a simple run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests" / "api" / "test_flowrun_lifecycle.py"
REPORT_ENV = "HEADWATER_API_WRITES_OUT"
HEADER = (
    "| Scenario | Final phase / reason | Operator writes (bound) | By verb and resource "
    "| Deployment status patches (Deployment handler, coalesced ≤ 1/s) |\n"
    "|---|---|---|---|---|"
)


def format_breakdown(counts: Mapping[str, int]) -> str:
    """``{"create pods": 1, "patch flowruns/status": 3}`` → ``pods create 1, …``."""
    parts = []
    for key, count in sorted(counts.items(), key=lambda item: item[0].split(" ", 1)[::-1]):
        verb, resource = key.split(" ", 1)
        parts.append(f"{resource} {verb} {count}")
    return ", ".join(parts) or "–"


def format_row(entry: Mapping[str, Any]) -> str:
    """One markdown table row for a scenario recorded by the lifecycle tests."""
    bookkeeping = sum(entry.get("bookkeeping", {}).values())
    return (f"| {entry['scenario']} | {entry['outcome']} | {entry['writes']} "
            f"(≤ {entry['bound']}) | {format_breakdown(entry['breakdown'])} | {bookkeeping} |")


def format_table(entries: Sequence[Mapping[str, Any]]) -> str:
    """The whole markdown table, scenarios in the order the tests ran."""
    return "\n".join([HEADER, *(format_row(entry) for entry in entries)])


def measure(pytest_args: Sequence[str], out: Path) -> int:
    """Run the lifecycle api tests, recording into ``out``; returns pytest's exit code."""
    env = {**os.environ, REPORT_ENV: str(out)}
    command = [sys.executable, "-m", "pytest", str(TESTS), "-q", "-p", "no:cacheprovider",
               *pytest_args]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the table; non-zero when a test (so a bound) failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, help="also keep the raw figures in this file")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="headwater-api-writes-") as tmp:
        out = args.json or Path(tmp) / "writes.json"
        code = measure(args.pytest_args, out)
        if not out.exists():
            print("no figures were recorded (did the tests run?)", file=sys.stderr)
            return code or 1
        entries = json.loads(out.read_text(encoding="utf-8"))
    print()
    print(format_table(entries))
    return code


if __name__ == "__main__":
    sys.exit(main())
