"""Mapping local wall-clock times to instants: Headwater's DST rules in one place.

Cron expressions, rrules and whole-day intervals name *wall-clock* times ("02:30 every
day in America/New_York"). Twice a year such a wall time is not a single instant:

* in a spring-forward gap it does not exist at all — Headwater fires at the instant the
  gap ends (the first existing wall time after it), so several ticks inside one gap
  collapse into a single firing;
* in a fall-back overlap it exists twice — Headwater fires at the first occurrence
  (``fold=0``) only.

Python's ``zoneinfo`` follows PEP 495 and silently maps a gap time with the offset from
before the transition (02:30 EST on the spring-forward day, i.e. 03:30 EDT), which is
neither rule; hence this module. Everything here is pure and works on ``ZoneInfo``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_SECOND = timedelta(seconds=1)


def local_wall_time(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive wall-clock time ``instant`` shows in ``tz`` (the fold is dropped)."""
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def wall_to_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The aware UTC instant at which a tick named by naive ``wall`` in ``tz`` fires.

    An existing wall time maps to itself; a repeated one to its first occurrence; one in
    a spring-forward gap to the end of the gap. The mapping is monotonic (never
    decreasing), which the fire-time iterators rely on.
    """
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if local_wall_time(first, tz) == wall:
        return first
    return _gap_end(wall, tz)


def _gap_end(wall: datetime, tz: ZoneInfo) -> datetime:
    """The transition instant of the gap containing ``wall`` (the gap's end, in UTC).

    PEP 495 gives the two readings of a gap time: with the offset before the transition
    (``fold=0``, the later instant) and after it (``fold=1``, the earlier one). The
    transition lies between them; binary search on whole seconds finds the first
    instant that already uses the post-transition offset.
    """
    late = wall.replace(tzinfo=tz, fold=0, microsecond=0).astimezone(UTC)
    early = wall.replace(tzinfo=tz, fold=1, microsecond=0).astimezone(UTC)
    low, high = min(early, late), max(early, late)
    after_offset = high.astimezone(tz).utcoffset()
    # Invariant: ``high`` uses the post-transition offset, ``low`` does not.
    while high - low > _SECOND:
        middle = low + _half(high - low)
        if middle.astimezone(tz).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high


def _half(span: timedelta) -> timedelta:
    """Half of ``span`` rounded down to whole seconds (transitions fall on seconds)."""
    return timedelta(seconds=int(span.total_seconds()) // 2)
