"""Exact, DST-correct scheduling: pure functions shared by the operator, CLI and benchmarks.

Pure domain code: no I/O, no clock of its own (instants are arguments). The Schedule
controller (:mod:`headwater_operator.controllers.schedules`) applies these decisions.

* :mod:`headwater.scheduling` (in the SDK, re-exported here) — parsing the expression,
  the DST rules and the fire times themselves: ``Flow.serve()`` fires with the same code,
  and the SDK may not import the operator (docs/decisions.md, "One fire-time
  implementation, in the SDK");
* :mod:`.plan` — ``plan_ticks``: which due ticks run now, which missed ones are skipped;
* :mod:`.runs` — deterministic run names, window parameters, the expression fingerprint;
* :mod:`.status` — what a Schedule's status and conditions say, and whether a wake-up
  changes the status at all.

The rules are documented for users in ``docs/scheduling.md``.
"""

from headwater.scheduling.expression import (
    ScheduleError,
    ScheduleExpression,
    ScheduleKind,
    expression_from_spec,
    parse_interval,
    parse_schedule_expression,
    parse_timezone,
)
from headwater.scheduling.fire_times import (
    fire_times,
    next_fire_time,
    previous_fire_time,
)
from headwater.scheduling.wallclock import local_wall_time, wall_to_instant

from headwater_operator.scheduling.plan import (
    SkippedTick,
    SkipReason,
    TickPlan,
    count_fire_times,
    plan_ticks,
)
from headwater_operator.scheduling.runs import (
    schedule_fingerprint,
    scheduled_run_name,
    tick_window,
    window_parameters,
)

__all__ = [
    "ScheduleError",
    "ScheduleExpression",
    "ScheduleKind",
    "SkipReason",
    "SkippedTick",
    "TickPlan",
    "count_fire_times",
    "expression_from_spec",
    "fire_times",
    "local_wall_time",
    "next_fire_time",
    "parse_interval",
    "parse_schedule_expression",
    "parse_timezone",
    "plan_ticks",
    "previous_fire_time",
    "schedule_fingerprint",
    "scheduled_run_name",
    "tick_window",
    "wall_to_instant",
    "window_parameters",
]
