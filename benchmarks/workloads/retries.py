"""Retries: N tasks that each fail FAILURES times, then succeed, with no retry delay.

The time above the empty-flow baseline, divided by the number of attempts
(``N * (FAILURES + 1)``), is the per-attempt overhead of failing, recording the
retry and running again.
"""

import time
from typing import TYPE_CHECKING

from _bench import count, emit, engine

if TYPE_CHECKING or engine() == "headwater":
    from headwater import flow, task
else:
    from prefect import flow, task

IMPORTED = time.perf_counter()
FAILURES = 3
attempts: dict[int, int] = {}


class TransientError(RuntimeError):
    """What a flaky extract raises before it succeeds."""


@task(retries=FAILURES, retry_delay_seconds=0)
def flaky(i: int) -> int:
    """Fail on the first FAILURES attempts for each ``i``, then return ``i``."""
    attempts[i] = attempts.get(i, 0) + 1
    if attempts[i] <= FAILURES:
        raise TransientError(f"attempt {attempts[i]} of task {i} fails on purpose")
    return i


@flow
def retrying(n: int) -> int:
    """Run ``n`` flaky tasks one after another; every one succeeds on its last retry."""
    return sum(flaky(i) for i in range(n))


if __name__ == "__main__":
    n = count(100)
    started = time.perf_counter()
    result = retrying(n)
    ended = time.perf_counter()
    assert result == n * (n - 1) // 2, f"retrying({n}) returned {result!r}"
    total = sum(attempts.values())
    assert total == n * (FAILURES + 1), f"expected {n * (FAILURES + 1)} attempts, saw {total}"
    emit(IMPORTED, started, ended, units=total, attempts=total)
