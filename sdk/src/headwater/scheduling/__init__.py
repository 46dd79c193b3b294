"""When a schedule fires: the pure fire-time maths shared by the operator and ``serve()``.

One implementation, two users: the operator's Schedule controller (through
``headwater_operator.scheduling``, which re-exports this) and ``Flow.serve()``, the
local development scheduler. It lives in the SDK because the SDK must never import the
operator (``.importlinter``, contract ``sdk-independent``) while the operator depends on
the SDK; docs/decisions.md, "One fire-time implementation, in the SDK".

Pure domain code: no I/O, no clock of its own (instants are arguments), no import of
anything Kubernetes. Nothing here is imported when a flow runs, so it adds nothing to a
flow pod's cold start.

* :mod:`.expression` — parse and validate ``cron`` / ``interval`` / ``rrule`` + timezone;
* :mod:`.wallclock` — the DST rules (gap ticks fire at the gap's end, repeated hours once);
* :mod:`.fire_times` — ``next_fire_time``, ``previous_fire_time``, ``fire_times``.

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
from headwater.scheduling.fire_times import fire_times, next_fire_time, previous_fire_time
from headwater.scheduling.wallclock import local_wall_time, wall_to_instant

__all__ = [
    "ScheduleError",
    "ScheduleExpression",
    "ScheduleKind",
    "expression_from_spec",
    "fire_times",
    "local_wall_time",
    "next_fire_time",
    "parse_interval",
    "parse_schedule_expression",
    "parse_timezone",
    "previous_fire_time",
    "wall_to_instant",
]
