"""``.map`` over N inputs on the engine's default task runner (a thread pool in both).

The time above the empty-flow baseline is the per-task overhead of submitting, running
and collecting futures.
"""

import time
from typing import TYPE_CHECKING

from _bench import count, emit, engine

if TYPE_CHECKING or engine() == "headwater":
    from headwater import flow, task
else:
    from prefect import flow, task

IMPORTED = time.perf_counter()


@task
def double(x: int) -> int:
    """Return ``2 * x``: as little work as a task can do."""
    return 2 * x


@flow
def mapped(n: int) -> int:
    """Map ``double`` over ``range(n)`` and wait for every result."""
    futures = double.map(range(n))
    return sum(future.result() for future in futures)


if __name__ == "__main__":
    n = count(1000)
    started = time.perf_counter()
    result = mapped(n)
    ended = time.perf_counter()
    assert result == n * (n - 1), f"mapped({n}) returned {result!r}"
    emit(IMPORTED, started, ended, units=n)
