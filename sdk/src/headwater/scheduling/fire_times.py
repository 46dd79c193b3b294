"""When a schedule fires: ``next_fire_time``, ``previous_fire_time`` and ``fire_times``.

All three take and return aware instants (returned in UTC) and share one set of rules:

* cron and rrule iterate *naive local wall times* (croniter and dateutil never see a
  time zone — their own DST handling differs from ours) and map each wall time to an
  instant with :func:`~headwater.scheduling.wallclock.wall_to_instant`;
  because that mapping never decreases, skipping instants already passed is enough to
  collapse gap ticks and drop the second occurrence of a repeated hour;
* intervals shorter than a day (or not a whole number of days) are exact spacing in
  absolute time from the anchor; whole-day intervals step the anchor's local wall time
  by whole days and map it like a cron tick.

The anchor only fixes the phase: interval ticks exist on both sides of it.

Computing a cron, rrule or whole-day tick costs tens of microseconds (croniter and
dateutil step wall times in Python), and a wake-up asks for the same few ticks several
times (the next one, the newest due, the one before it, the counts between). A cron
fleet asks for the very same ticks once per Schedule: five thousand ``0 * * * *``
Schedules at the top of the hour. So each answer is remembered with the span of
questions it answers (:class:`_Answers`): ``next_fire_time(e, a) == n`` (or ``n``
following ``a`` in ``fire_times``) is the answer for every ``a <= x < n``;
``previous_fire_time(e, b) == p`` for every ``p < x <= b``; two such spans that overlap
make ``p`` and ``n`` neighbours, answering everything between them. The ticks are a
fixed set of instants (the wall-time mapping never decreases), so such an answer is what
the computation would return again. Exact-spacing intervals are plain arithmetic, not
remembered.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from croniter import CroniterError, croniter
from dateutil.rrule import rrule

from headwater.scheduling.expression import (
    DEFAULT_ANCHOR_WALL_TIME,
    ScheduleExpression,
    ScheduleKind,
)
from headwater.scheduling.wallclock import local_wall_time, wall_to_instant

MAX_DST_SHIFT = timedelta(hours=3)
"""More than any UTC-offset jump in the tz database (2h): the look-back margin."""

def next_fire_time(expr: ScheduleExpression, after: datetime) -> datetime | None:
    """The first tick strictly after the aware instant ``after`` (UTC), or ``None``.

    ``None`` only for an rrule that has ended (COUNT or UNTIL).
    """
    after = _require_aware(after)
    if _is_arithmetic(expr):
        return next(_exact_interval_forward(expr, after))
    answers = _answers_of(expr)
    known = answers.next_after(after)
    if known is not None:
        return known
    tick = next(_forward(expr, after), None)
    if tick is not None:
        answers.learn_next(after, tick)
    return tick


def previous_fire_time(expr: ScheduleExpression, before: datetime) -> datetime | None:
    """The last tick strictly before the aware instant ``before`` (UTC), or ``None``."""
    before = _require_aware(before)
    if _is_arithmetic(expr):
        return _exact_interval_previous(expr, before)
    answers = _answers_of(expr)
    known = answers.previous_before(before)
    if known is not None:
        return known
    if expr.kind is ScheduleKind.INTERVAL:
        tick = _day_interval_previous(expr, before)
    elif expr.kind is ScheduleKind.CRON:
        tick = _cron_previous(expr, before)
    else:
        tick = _rrule_previous(expr, before)
    if tick is not None:
        answers.learn_previous(tick, before)
    return tick


def fire_times(expr: ScheduleExpression, start: datetime, end: datetime) -> Iterator[datetime]:
    """Lazily yield every tick ``t`` with ``start < t <= end``, oldest first, no repeats."""
    end = _require_aware(end)
    after = _require_aware(start)
    if _is_arithmetic(expr):
        for spaced in _exact_interval_forward(expr, after):
            if spaced > end:
                return
            yield spaced
        return
    answers = _answers_of(expr)
    walk: Iterator[datetime] | None = None
    while True:
        tick: datetime | None = answers.next_after(after)
        if tick is None:
            # One walk serves consecutive unknown ticks (a new walk per tick would parse
            # and position croniter again each time).
            walk = walk or _forward(expr, after)
            tick = next(walk, None)
            if tick is None:
                return
            answers.learn_next(after, tick)
        else:
            walk = None  # it stands before this tick: walk again from it if needed
        if tick > end:
            return
        yield tick
        after = tick


def _is_arithmetic(expr: ScheduleExpression) -> bool:
    """Exact spacing in absolute time: every tick is a division away, nothing to remember."""
    return expr.kind is ScheduleKind.INTERVAL and not expr.whole_days


def _forward(expr: ScheduleExpression, after: datetime) -> Iterator[datetime]:
    """Strictly increasing ticks after ``after`` (not exact-spacing intervals), computed."""
    if expr.kind is ScheduleKind.INTERVAL:
        walls = _day_interval_walls(expr, after)
    elif expr.kind is ScheduleKind.CRON:
        walls = _cron_walls(expr.expression, local_wall_time(after, expr.timezone))
    else:
        walls = _rrule_walls(expr, local_wall_time(after, expr.timezone))
    return _instants_after(walls, expr, after)


def _instants_after(
    walls: Iterator[datetime], expr: ScheduleExpression, after: datetime
) -> Iterator[datetime]:
    """Map wall times to instants, keeping only new instants later than ``after``."""
    last = after
    for wall in walls:
        instant = wall_to_instant(wall, expr.timezone)
        if instant > last:
            last = instant
            yield instant


# --- remembered answers ------------------------------------------------------------
ANSWERS_PER_EXPRESSION = 8
"""Answers kept per expression and direction (the newest): a wake-up needs two or three."""
EXPRESSIONS_REMEMBERED = 1024
"""Expressions whose answers are kept (the least recently used go first)."""

_LOCK = threading.Lock()


@dataclass
class _Answers:
    """One expression's remembered answers, each with the span of questions it answers.

    ``nexts``: tick ``n`` -> the earliest ``a`` known to have ``next_fire_time(a) == n``;
    ``previouses``: tick ``p`` -> the latest ``b`` known to have
    ``previous_fire_time(b) == p``. Both only ever widen towards the neighbouring tick.
    """

    nexts: OrderedDict[datetime, datetime] = field(default_factory=OrderedDict)
    previouses: OrderedDict[datetime, datetime] = field(default_factory=OrderedDict)

    def next_after(self, after: datetime) -> datetime | None:
        with _LOCK:
            for tick, earliest in self.nexts.items():
                if earliest <= after < tick:
                    return tick
        return None

    def previous_before(self, before: datetime) -> datetime | None:
        with _LOCK:
            for tick, latest in self.previouses.items():
                if tick < before <= latest:
                    return tick
        return None

    def learn_next(self, after: datetime, tick: datetime) -> None:
        with _LOCK:
            _keep(self.nexts, tick, min(after, self.nexts.get(tick, after)))
            for earlier, latest in list(self.previouses.items()):
                self._join(earlier, latest, after, tick)

    def learn_previous(self, tick: datetime, before: datetime) -> None:
        with _LOCK:
            _keep(self.previouses, tick, max(before, self.previouses.get(tick, before)))
            for later, earliest in list(self.nexts.items()):
                self._join(tick, before, earliest, later)

    def _join(self, earlier: datetime, before: datetime, after: datetime,
              later: datetime) -> None:
        """No tick in ``(earlier, before)`` nor in ``(after, later)``, both ends ticks: when
        the spans overlap (``earlier <= after < before``), the two ticks are consecutive,
        so each answers the other's whole span (a fleet's wake-ups, each at its own
        ``now``, then all fall inside it)."""
        if earlier <= after < before:
            _keep(self.previouses, earlier, max(later, self.previouses.get(earlier, later)))
            _keep(self.nexts, later, min(earlier, self.nexts.get(later, earlier)))


def _keep(answers: OrderedDict[datetime, datetime], tick: datetime, bound: datetime) -> None:
    answers[tick] = bound
    answers.move_to_end(tick)
    while len(answers) > ANSWERS_PER_EXPRESSION:
        answers.popitem(last=False)


_ANSWERS: OrderedDict[ScheduleExpression, _Answers] = OrderedDict()


def _answers_of(expr: ScheduleExpression) -> _Answers:
    """The remembered answers of ``expr`` (equal expressions have equal ticks)."""
    with _LOCK:
        answers = _ANSWERS.get(expr)
        if answers is None:
            answers = _ANSWERS[expr] = _Answers()
            while len(_ANSWERS) > EXPRESSIONS_REMEMBERED:
                _ANSWERS.popitem(last=False)
        else:
            _ANSWERS.move_to_end(expr)
        return answers


# --- intervals ---------------------------------------------------------------------


def _exact_interval_forward(expr: ScheduleExpression, after: datetime) -> Iterator[datetime]:
    anchor, step = _interval_parts(expr)
    tick = anchor + ((after - anchor) // step + 1) * step
    while True:
        yield tick
        tick += step


def _exact_interval_previous(expr: ScheduleExpression, before: datetime) -> datetime:
    anchor, step = _interval_parts(expr)
    # ceil((before - anchor) / step) - 1, in integer arithmetic on timedeltas.
    return anchor + (-((anchor - before) // step) - 1) * step


def _day_interval_walls(expr: ScheduleExpression, after: datetime) -> Iterator[datetime]:
    anchor, step = _interval_parts(expr)
    anchor_wall = local_wall_time(anchor, expr.timezone)
    # Wall times up to after's own wall time map to instants <= after (monotonic
    # mapping), so starting at that period loses nothing.
    index = (local_wall_time(after, expr.timezone) - anchor_wall) // step
    while True:
        yield anchor_wall + index * step
        index += 1


def _day_interval_previous(expr: ScheduleExpression, before: datetime) -> datetime | None:
    anchor, step = _interval_parts(expr)
    tz = expr.timezone
    anchor_wall = local_wall_time(anchor, tz)
    index = -((anchor_wall - (local_wall_time(before, tz) + MAX_DST_SHIFT)) // step)
    while True:
        instant = wall_to_instant(anchor_wall + index * step, tz)
        if instant < before:
            return instant
        index -= 1


def _interval_parts(expr: ScheduleExpression) -> tuple[datetime, timedelta]:
    assert expr.anchor_time is not None
    assert expr.interval is not None
    return expr.anchor_time, expr.interval


# --- cron --------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _cron_prototype(expression: str) -> croniter:
    return croniter(expression, DEFAULT_ANCHOR_WALL_TIME)


def _croniter_at(expression: str, start: datetime) -> croniter:
    """A croniter positioned at ``start``.

    Parsing the expression is two thirds of croniter's cost per call, so each
    expression is parsed once and shallow-copied (the copy's position is its own).
    """
    iterator = copy.copy(_cron_prototype(expression))
    iterator.set_current(start, force=True)
    return iterator


def _cron_walls(expression: str, after_wall: datetime) -> Iterator[datetime]:
    iterator = _croniter_at(expression, after_wall)
    while True:
        try:
            yield iterator.get_next(datetime)
        except CroniterError:
            return


def _cron_previous(expr: ScheduleExpression, before: datetime) -> datetime | None:
    # Start late enough that a wall time in the first occurrence of a repeated hour,
    # later on the clock than ``before`` but earlier in time, is not missed. Only an
    # offset change near ``before`` makes that possible; elsewhere (most of the year,
    # and always in UTC) the wall clock at ``before`` is the start, which spares a
    # minutely cron 180 croniter steps back through the margin on every look-up.
    start = local_wall_time(before, expr.timezone)
    if _offset_changes_near(before, expr):
        start += MAX_DST_SHIFT
    iterator = _croniter_at(expr.expression, start)
    while True:
        try:
            wall = iterator.get_prev(datetime)
        except CroniterError:
            return None
        instant = wall_to_instant(wall, expr.timezone)
        if instant < before:
            return instant


def _offset_changes_near(instant: datetime, expr: ScheduleExpression) -> bool:
    """Whether the time zone's UTC offset changes within ``MAX_DST_SHIFT`` of ``instant``
    (no zone changes its offset twice within six hours)."""
    tz = expr.timezone
    offset = instant.astimezone(tz).utcoffset()
    return ((instant - MAX_DST_SHIFT).astimezone(tz).utcoffset() != offset
            or (instant + MAX_DST_SHIFT).astimezone(tz).utcoffset() != offset)


# --- rrule -------------------------------------------------------------------------


def _rule(expr: ScheduleExpression) -> rrule:
    assert expr.rule is not None
    return expr.rule


def _rrule_walls(expr: ScheduleExpression, after_wall: datetime) -> Iterator[datetime]:
    yield from _rebased(expr, after_wall, periods_back=1).xafter(after_wall, inc=False)


def _rrule_previous(expr: ScheduleExpression, before: datetime) -> datetime | None:
    start = local_wall_time(before, expr.timezone) + MAX_DST_SHIFT
    # A sparse rule (e.g. one day a year) may have nothing in the last few periods:
    # widen the search before falling back to iterating from DTSTART.
    for periods_back in (2, 400, None):
        rule = _rebased(expr, start, periods_back)
        wall = rule.before(start)
        while wall is not None:
            instant = wall_to_instant(wall, expr.timezone)
            if instant < before:
                return instant
            wall = rule.before(wall)
    return None


def _rebased(expr: ScheduleExpression, target: datetime, periods_back: int | None) -> rrule:
    """An equivalent rule whose DTSTART is a few whole periods before ``target``.

    dateutil iterates from DTSTART, which costs milliseconds for a daily rule anchored
    years ago (and far more for hourly ones). Moving DTSTART by whole periods of a
    fixed-length frequency keeps every occurrence after the new DTSTART's period (the
    defaults RFC 5545 derives from DTSTART — time of day, weekday — are unchanged by
    whole periods). Rules with COUNT depend on every earlier occurrence and are not
    rebased; nor are monthly and yearly ones, which are cheap to iterate anyway.
    """
    rule = _rule(expr)
    period = expr.rule_period
    if periods_back is None or period is None:
        return rule
    dtstart = _dtstart(expr)
    shift = (target - dtstart) // period - periods_back
    if shift <= 0:
        return rule
    rebased: rrule = rule.replace(dtstart=dtstart + shift * period)
    return rebased


def _dtstart(expr: ScheduleExpression) -> datetime:
    """The rule's DTSTART, from the canonical text (first line)."""
    first_line = expr.expression.split("\n", 1)[0]
    return datetime.strptime(first_line.removeprefix("DTSTART:"), "%Y%m%dT%H%M%S")


def _require_aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"expected an aware datetime (with a UTC offset), got {instant!r}")
    return instant.astimezone(UTC)
