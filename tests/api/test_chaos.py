"""Ten random SIGKILLs of the operator while work flows: nothing lost, nothing twice, all done.

The harness is ``benchmarks/chaos.py`` (which runs 100 kills); this test runs the same
code with ``--quick``'s workload and 10 kills, so CI proves on every change what the
benchmark proves at length. The operator is a subprocess (``python -m
headwater_operator``) and the emulator runs in a child process of its own, so nothing
here shares the api fixtures' emulator or event loop.

It asserts counts, never times: lost ticks, duplicate runs, duplicate pods, stuck runs
and concurrency violations must all be 0. On failure the message is the benchmark's
table, with examples of each defect, and the operator's logs stay in ``tmp_path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import chaos  # benchmarks/ is not a package: found through sys.path

pytestmark = pytest.mark.slow


def test_ten_random_kills_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    result = chaos.run_chaos(chaos.QUICK, chaos.Chaos(kills=10, seed=11), tmp_path,
                             log=lambda _line: None)
    figures = {name: result[name] for name in chaos.FIGURES}
    assert figures == dict.fromkeys(chaos.FIGURES, 0), (
        f"\n{chaos.table(result)}\n\noperator logs: {tmp_path}")
    # The run did what it claims: it killed, runs retried, the limited queue was used.
    assert result["kills"] == 10
    assert result["retry_pods"] > 0
    assert result["max_running"].get(chaos.LIMITED) == chaos.QUICK.limit
