"""The operator's one notion of time: what time it is, and "call me back at that instant".

Every controller reads the time and waits only through a :class:`Clock`, never through
``datetime.now`` or ``asyncio.sleep`` of its own, so that api tests and benchmarks can
stand time still and move it by hand (:class:`ManualClock`): "the operator was down for
five ticks" then takes milliseconds, not minutes.

What a clock must respect:

* :meth:`Clock.now` is an aware UTC instant, and never goes backwards on a
  :class:`ManualClock` (a :class:`SystemClock` follows the wall clock, like
  ``time.time`` and every Kubernetes controller).
* :meth:`Clock.call_at` runs a *synchronous, cheap* callback on the event loop once the
  clock has reached an instant (at once if it has already). Callbacks may be cancelled;
  a cancelled callback never runs. On a :class:`SystemClock` the wait is measured on the
  loop's monotonic clock from the moment of the call, so a wall-clock step does not make
  a callback fire early or late by the step (the instant is read, at the call, as "that
  many seconds from now").

Which clock the operator uses: :func:`get_clock` (the system clock unless a test installed
another with :func:`set_clock`). Components take a clock in their constructor and default
to :func:`get_clock` there.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Timer(Protocol):
    """A pending callback of :meth:`Clock.call_at`."""

    def cancel(self) -> None:
        """Make sure the callback does not run (no effect once it has)."""


class Clock(Protocol):
    """The current time, and callbacks at instants (see the module docstring)."""

    def now(self) -> datetime:
        """The current aware UTC instant."""
        ...

    def call_at(self, instant: datetime, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` on the running loop once the clock reaches ``instant``."""
        ...


async def sleep_until(clock: Clock, instant: datetime, wake: asyncio.Event) -> None:
    """Return once ``clock`` reaches ``instant`` or as soon as ``wake`` is set.

    ``wake`` is set by the timer itself, so callers clear it before they sleep again.
    One timer handle per sleep, no extra task: measurable with thousands of sleepers.
    """
    if instant <= clock.now():
        return
    timer = clock.call_at(instant, wake.set)
    try:
        await wake.wait()
    finally:
        timer.cancel()


class SystemClock:
    """Wall-clock time; callbacks on the event loop's timers."""

    def now(self) -> datetime:
        """The current aware UTC instant."""
        return datetime.now(UTC)

    def call_at(self, instant: datetime, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` in ``instant - now`` seconds (at once if that is not positive)."""
        delay = (instant - self.now()).total_seconds()
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)


class _ManualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that stands still until :meth:`advance` or :meth:`set` moves it.

    Moving it runs, in instant order, every callback whose instant has been reached,
    each on the event loop (``call_soon``) rather than inside the caller, exactly as a
    real timer would fire: advancing by five ticks wakes each sleeper once.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start instant, e.g. one in UTC")
        self._now = start.astimezone(UTC)
        self._timers: list[tuple[datetime, int, _ManualTimer]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        """The instant the clock was last moved to."""
        return self._now

    def call_at(self, instant: datetime, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` when the clock is moved to ``instant`` or later."""
        timer = _ManualTimer(callback)
        if instant <= self._now:
            asyncio.get_running_loop().call_soon(self._fire, timer)
        else:
            heapq.heappush(self._timers, (instant, next(self._order), timer))
        return timer

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` (never backwards) and fire what is due."""
        if seconds < 0:
            raise ValueError(f"a ManualClock only moves forward (got {seconds} s)")
        return self.set(self._now + timedelta(seconds=seconds))

    def set(self, instant: datetime) -> datetime:
        """Move to ``instant`` (not before the current time) and fire what is due."""
        if instant < self._now:
            raise ValueError(f"a ManualClock only moves forward: {instant} < {self._now}")
        self._now = instant.astimezone(UTC)
        loop = asyncio.get_running_loop()
        while self._timers and self._timers[0][0] <= self._now:
            _, _, timer = heapq.heappop(self._timers)
            loop.call_soon(self._fire, timer)
        return self._now

    @staticmethod
    def _fire(timer: _ManualTimer) -> None:
        if not timer.cancelled:
            timer.cancelled = True
            timer.callback()


SYSTEM_CLOCK: Clock = SystemClock()
_current: Clock = SYSTEM_CLOCK


def get_clock() -> Clock:
    """The clock the operator uses now."""
    return _current


def set_clock(clock: Clock) -> Clock:
    """Install ``clock`` (tests, benchmarks); returns the previous one to restore it."""
    global _current  # one process-wide clock, swapped only by tests
    previous, _current = _current, clock
    return previous
