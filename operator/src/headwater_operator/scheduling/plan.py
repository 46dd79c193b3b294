"""Which ticks to fire now, and which missed ticks to skip: :func:`plan_ticks`.

The reconciler calls this every time it wakes (at a tick, at start-up, after an edit or
a resume) and does exactly what the plan says, so the whole missed-tick policy is here,
pure and unit-tested:

* A tick is *due* when ``baseline < tick <= now``. The baseline is the last tick the
  schedule dealt with, but never earlier than the moment the current expression took
  effect (creation or the last edit): a new or edited schedule never fires a run for a
  time before it existed in that form.
* A due tick older than ``startingDeadlineSeconds`` is never run.
* A due tick that came while the operator was watching the schedule (after
  ``watching_since``) is *on time* and always runs. Older ones were *missed* (operator
  down, schedule suspended) and the catch-up policy decides: ``None`` runs none of them,
  ``Latest`` runs the newest one unless an on-time tick already runs, ``All`` runs them
  all.
* Never more than ``maxRuns`` runs per plan; the newest ticks win.

Counting skipped ticks is bounded (:data:`COUNT_LIMIT`), so a minutely schedule that was
suspended for a year costs a bounded amount of work; the count is then a lower bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from headwater.scheduling.expression import ScheduleError, ScheduleExpression, ScheduleKind
from headwater.scheduling.fire_times import (
    fire_times,
    next_fire_time,
    previous_fire_time,
)

CatchupPolicyName = Literal["None", "Latest", "All"]
CATCHUP_POLICIES: tuple[str, ...] = ("None", "Latest", "All")

DEFAULT_MAX_CATCHUP_RUNS = 100
"""Cap on runs from one catch-up when ``spec.catchup.maxRuns`` is unset (protects etcd)."""
COUNT_LIMIT = 2_000
"""Most ticks counted one by one in a plan; beyond it, counts are lower bounds."""
MAX_EXAMPLES = 5
"""How many skipped ticks a plan lists by instant (for the Event and condition)."""

_EPSILON = timedelta(microseconds=1)


class SkipReason(StrEnum):
    """Why a due tick was not run; also the reason text in Events."""

    STARTING_DEADLINE_EXCEEDED = "StartingDeadlineExceeded"
    CATCHUP_POLICY_NONE = "CatchupPolicyNone"
    CATCHUP_POLICY_LATEST = "CatchupPolicyLatest"
    MAX_RUNS_EXCEEDED = "MaxRunsExceeded"


_MISSED_REASON: dict[CatchupPolicyName, SkipReason] = {
    "None": SkipReason.CATCHUP_POLICY_NONE,
    "Latest": SkipReason.CATCHUP_POLICY_LATEST,
    "All": SkipReason.MAX_RUNS_EXCEEDED,
}
"""Why a missed (not on-time) tick inside the deadline is skipped, per policy."""


@dataclass(frozen=True)
class SkippedTick:
    """One tick the plan did not run, and why."""

    tick: datetime
    reason: SkipReason


@dataclass(frozen=True)
class TickPlan:
    """The decision for one wake-up of a Schedule."""

    to_run: list[datetime]
    """Due ticks to create runs for now, oldest first."""
    next_tick: datetime | None
    """The first tick after ``now`` (``status.nextScheduleTime``); None if none left."""
    handled_through: datetime | None
    """The newest due tick, run or skipped: the schedule's new last tick (unchanged when
    nothing was due), so no tick is ever considered twice."""
    skipped_count: int = 0
    skipped_by_reason: dict[SkipReason, int] = field(default_factory=dict)
    skipped_examples: list[SkippedTick] = field(default_factory=list)
    """Up to :data:`MAX_EXAMPLES` skipped ticks, newest first."""
    counts_exact: bool = True
    """False when more than :data:`COUNT_LIMIT` ticks had to be counted."""

    def describe_skipped(self) -> str:
        """A one-line human summary of the skipped ticks, for an Event or a condition."""
        if not self.skipped_count:
            return "no ticks were skipped"
        plus = "" if self.counts_exact else "+"
        parts = ", ".join(
            f"{count}{plus} {reason.value}" for reason, count in self.skipped_by_reason.items()
        )
        newest = ", ".join(example.tick.isoformat() for example in self.skipped_examples)
        return (
            f"skipped {self.skipped_count}{plus} missed tick(s) ({parts}); newest: {newest}. "
            "Raise spec.startingDeadlineSeconds or spec.catchup (policy, maxRuns) to run "
            "more of them, or backfill the window with `headwater backfill`"
        )


def plan_ticks(
    expr: ScheduleExpression,
    *,
    last_tick: datetime | None,
    now: datetime,
    starting_deadline_seconds: float | None,
    catchup_policy: str,
    max_catchup_runs: int | None,
    created_at: datetime,
    watching_since: datetime | None = None,
) -> TickPlan:
    """Decide which due ticks to run now and which missed ones to skip.

    ``last_tick`` is the schedule's last handled tick under its current expression
    (``None`` for a new schedule or after an edit); ``created_at`` is when the current
    expression took effect (creation, or the moment an edit was observed);
    ``watching_since`` is when the operator started watching the schedule continuously
    (its daemon started, or suspension was lifted). All instants are aware.
    """
    policy = _validate_policy(catchup_policy)
    cap = _validate_cap(max_catchup_runs)
    baseline = created_at if last_tick is None else max(last_tick, created_at)
    next_tick = next_fire_time(expr, max(baseline, now))
    newest_due = _newest_ticks(expr, baseline, now, 2)
    if not newest_due:
        return TickPlan(to_run=[], next_tick=next_tick, handled_through=last_tick)

    floor = (
        None if starting_deadline_seconds is None
        else now - timedelta(seconds=starting_deadline_seconds)
    )
    eligible_after = baseline if floor is None else max(baseline, floor - _EPSILON)

    def on_time(tick: datetime) -> bool:
        return watching_since is not None and tick > watching_since

    if len(newest_due) == 1 and newest_due[0] > eligible_after and (
            policy != "None" or on_time(newest_due[0])):
        # Nearly every wake-up at a tick: one tick due, and it runs. Nothing was skipped,
        # so nothing to count (a fleet firing together does this thousands of times).
        return TickPlan(to_run=newest_due, next_tick=next_tick,
                        handled_through=newest_due[0])
    candidates = _newest_ticks(expr, eligible_after, now, cap)  # newest first
    punctual = [tick for tick in candidates if on_time(tick)]
    if policy == "All":
        chosen = candidates
    elif policy == "Latest":
        chosen = punctual or candidates[:1]
    else:
        chosen = punctual

    def reason(tick: datetime) -> SkipReason:
        if floor is not None and tick < floor:
            return SkipReason.STARTING_DEADLINE_EXCEEDED
        return SkipReason.MAX_RUNS_EXCEEDED if on_time(tick) else _MISSED_REASON[policy]

    punctual_after = min(now, max(eligible_after, watching_since or now))
    by_reason, exact = _count_skipped(
        expr, (baseline, eligible_after, punctual_after, now), set(chosen), policy
    )
    examples = _skipped_examples(expr, baseline, now, set(chosen), reason)
    return TickPlan(
        to_run=sorted(chosen),
        next_tick=next_tick,
        handled_through=newest_due[0],
        skipped_count=sum(by_reason.values()),
        skipped_by_reason=by_reason,
        skipped_examples=examples,
        counts_exact=exact,
    )


def count_fire_times(
    expr: ScheduleExpression, start: datetime, end: datetime, limit: int = COUNT_LIMIT
) -> tuple[int, bool]:
    """How many ticks ``t`` have ``start < t <= end``, and whether the count is exact.

    Exact-spacing intervals are counted arithmetically; other kinds one by one up to
    ``limit`` (the count is then ``limit`` and not exact).
    """
    if end <= start:
        return 0, True
    if expr.kind is ScheduleKind.INTERVAL and not expr.whole_days:
        assert expr.anchor_time is not None
        assert expr.interval is not None
        anchor, step = expr.anchor_time, expr.interval
        return (end - anchor) // step - (start - anchor) // step, True
    count = 0
    for _ in fire_times(expr, start, end):
        if count == limit:
            return count, False
        count += 1
    return count, True


def _count_skipped(
    expr: ScheduleExpression,
    bounds: tuple[datetime, datetime, datetime, datetime],
    chosen: set[datetime],
    policy: CatchupPolicyName,
) -> tuple[dict[SkipReason, int], bool]:
    """Skipped-tick counts by reason.

    ``bounds`` splits the due range into three parts that each share one reason:
    (baseline, eligible_after] too late, (eligible_after, punctual_after] missed,
    (punctual_after, now] on time.
    """
    baseline, eligible_after, punctual_after, now = bounds
    too_late, exact_late = count_fire_times(expr, baseline, eligible_after)
    missed, exact_missed = count_fire_times(expr, eligible_after, punctual_after)
    punctual, exact_punctual = count_fire_times(expr, punctual_after, now)
    chosen_punctual = sum(1 for tick in chosen if tick > punctual_after)
    chosen_missed = len(chosen) - chosen_punctual
    counts: Counter[SkipReason] = Counter()
    counts[SkipReason.STARTING_DEADLINE_EXCEEDED] += too_late
    counts[_MISSED_REASON[policy]] += missed - chosen_missed
    counts[SkipReason.MAX_RUNS_EXCEEDED] += punctual - chosen_punctual
    by_reason = {reason: count for reason, count in counts.items() if count > 0}
    return by_reason, exact_late and exact_missed and exact_punctual


def _skipped_examples(
    expr: ScheduleExpression,
    baseline: datetime,
    now: datetime,
    chosen: set[datetime],
    reason: Callable[[datetime], SkipReason],
) -> list[SkippedTick]:
    newest = _newest_ticks(expr, baseline, now, len(chosen) + MAX_EXAMPLES)
    skipped = [SkippedTick(tick, reason(tick)) for tick in newest if tick not in chosen]
    return skipped[:MAX_EXAMPLES]


def _newest_ticks(
    expr: ScheduleExpression, after: datetime, through: datetime, limit: int
) -> list[datetime]:
    """Up to ``limit`` ticks ``t`` with ``after < t <= through``, newest first."""
    ticks: list[datetime] = []
    tick = previous_fire_time(expr, through + _EPSILON)
    while tick is not None and tick > after and len(ticks) < limit:
        ticks.append(tick)
        tick = previous_fire_time(expr, tick)
    return ticks


def _validate_policy(policy: str) -> CatchupPolicyName:
    if policy == "None":
        return "None"
    if policy == "Latest":
        return "Latest"
    if policy == "All":
        return "All"
    raise ScheduleError(
        "spec.catchup.policy", f"{policy!r} is not a catch-up policy; use one of "
        + ", ".join(CATCHUP_POLICIES)
    )


def _validate_cap(cap: int | None) -> int:
    if cap is None:
        return DEFAULT_MAX_CATCHUP_RUNS
    if cap < 1:
        raise ScheduleError(
            "spec.catchup.maxRuns", f"must be at least 1 (got {cap}); use policy None to "
            "run no missed ticks"
        )
    return cap
