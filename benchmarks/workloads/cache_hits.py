"""Cache hits across processes: N calls of a task cached by its inputs.

The harness runs this script twice with the same home directory. The first run
computes and persists N results; the second (timed) run should find every one in the
cache, which it proves by reporting ``executed == 0``. The time above the empty-flow
baseline is the per-hit overhead: computing the key, finding and loading the result.
"""

import time
from typing import TYPE_CHECKING

from _bench import count, emit, engine

if TYPE_CHECKING or engine() == "headwater":
    from headwater import flow, task
    from headwater.cache_policies import INPUTS
else:
    from prefect import flow, task
    from prefect.cache_policies import INPUTS

IMPORTED = time.perf_counter()
executed = 0


@task(cache_policy=INPUTS)
def square(x: int) -> int:
    """Return ``x * x`` and count how often the body really ran."""
    global executed  # noqa: PLW0603 - a module counter is the simplest honest probe
    executed += 1
    return x * x


@flow
def cached(n: int) -> int:
    """Call ``square`` for ``range(n)``; on a warm cache no body runs."""
    return sum(square(i) for i in range(n))


if __name__ == "__main__":
    n = count(1000)
    started = time.perf_counter()
    result = cached(n)
    ended = time.perf_counter()
    assert result == sum(i * i for i in range(n)), f"cached({n}) returned {result!r}"
    emit(IMPORTED, started, ended, units=n, executed=executed)
