"""Sequential trivial tasks: a flow calls a task N times, each call using the last result.

Every call is a direct (synchronous) task call, so the time above the empty-flow
baseline is the engine's per-task overhead: state tracking, context, logging.
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
def increment(x: int) -> int:
    """Return ``x + 1``: as little work as a task can do."""
    return x + 1


@flow
def sequential(n: int) -> int:
    """Chain ``n`` task calls so that none can be skipped or reordered."""
    x = 0
    for _ in range(n):
        x = increment(x)
    return x


if __name__ == "__main__":
    n = count(1000)
    started = time.perf_counter()
    result = sequential(n)
    ended = time.perf_counter()
    # A wrong result means the workload did not run as intended: fail the sample.
    assert result == n, f"sequential({n}) returned {result!r}"
    emit(IMPORTED, started, ended, units=n)
