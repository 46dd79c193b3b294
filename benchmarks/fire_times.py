"""Cost of computing fire times: microseconds per tick, per schedule kind.

Run from the repository root::

    .venv/bin/python benchmarks/fire_times.py [--ticks 2000] [--repeats 5]

Two numbers per schedule: ``next_fire_time`` called once per tick from the previous tick
(what the reconciler does each time it wakes) and ``fire_times`` iterating lazily (what
``schedule preview`` and ``backfill`` do). Each figure is the best of ``--repeats`` runs,
so it measures the code rather than a noisy neighbour. All schedules are in
America/New_York and the walk starts in late February 2026, so it crosses the March
spring-forward change.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime

from headwater_operator.scheduling import (
    ScheduleExpression,
    fire_times,
    next_fire_time,
    parse_schedule_expression,
)

START = datetime(2026, 2, 20, tzinfo=UTC)
ZONE = "America/New_York"

CASES: list[tuple[str, Callable[[], ScheduleExpression]]] = [
    ("cron */15 * * * *", lambda: parse_schedule_expression(cron="*/15 * * * *", timezone=ZONE)),
    ("cron 30 2 * * *", lambda: parse_schedule_expression(cron="30 2 * * *", timezone=ZONE)),
    ("cron 0 0 29 2 *", lambda: parse_schedule_expression(cron="0 0 29 2 *", timezone=ZONE)),
    ("interval 15m", lambda: parse_schedule_expression(interval="15m", timezone=ZONE)),
    ("interval 1d", lambda: parse_schedule_expression(interval="1d", timezone=ZONE)),
    (
        "rrule DAILY 02:30",
        lambda: parse_schedule_expression(
            rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30", timezone=ZONE
        ),
    ),
    (
        "rrule MINUTELY;INTERVAL=15",
        lambda: parse_schedule_expression(rrule="FREQ=MINUTELY;INTERVAL=15", timezone=ZONE),
    ),
    (
        "rrule WEEKLY MO,WE,FR 09:00",
        lambda: parse_schedule_expression(
            rrule="FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=9;BYMINUTE=0", timezone=ZONE
        ),
    ),
]


def per_tick_next(expr: ScheduleExpression, ticks: int) -> float:
    """Seconds per tick when each tick is computed by a fresh ``next_fire_time`` call."""
    tick: datetime | None = START
    began = time.perf_counter()
    for _ in range(ticks):
        assert tick is not None
        tick = next_fire_time(expr, tick)
    return (time.perf_counter() - began) / ticks


def per_tick_iterate(expr: ScheduleExpression, ticks: int) -> float:
    """Seconds per tick when iterating ``fire_times`` lazily."""
    iterator = fire_times(expr, START, datetime(9999, 1, 1, tzinfo=UTC))
    began = time.perf_counter()
    for _ in range(ticks):
        next(iterator)
    return (time.perf_counter() - began) / ticks


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2000, help="ticks per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="best of this many runs")
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, "
          f"{args.ticks} ticks, best of {args.repeats}")
    print(f"{'schedule':<30} {'next_fire_time µs/tick':>24} {'fire_times µs/tick':>20}")
    for label, build in CASES:
        expr = build()
        ticks = args.ticks if "29 2" not in label else max(1, args.ticks // 100)
        single = min(per_tick_next(expr, ticks) for _ in range(args.repeats))
        lazy = min(per_tick_iterate(expr, ticks) for _ in range(args.repeats))
        print(f"{label:<30} {single * 1e6:>24.1f} {lazy * 1e6:>20.1f}")


if __name__ == "__main__":
    main()
