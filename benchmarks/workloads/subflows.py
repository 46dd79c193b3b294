"""Subflows: a parent flow calls a child flow N times, each with its own run record.

The time above the empty-flow baseline is the per-subflow overhead.
"""

import time
from typing import TYPE_CHECKING

from _bench import count, emit, engine

if TYPE_CHECKING or engine() == "headwater":
    from headwater import flow
else:
    from prefect import flow

IMPORTED = time.perf_counter()


@flow
def child(i: int) -> int:
    """Return ``i``: a subflow that does nothing but exist."""
    return i


@flow
def parent(n: int) -> int:
    """Run ``n`` subflows one after another."""
    return sum(child(i) for i in range(n))


if __name__ == "__main__":
    n = count(100)
    started = time.perf_counter()
    result = parent(n)
    ended = time.perf_counter()
    assert result == n * (n - 1) // 2, f"parent({n}) returned {result!r}"
    emit(IMPORTED, started, ended, units=n)
