"""The scheduler's notion of time, injectable so tests never wait for real ticks.

The Schedule reconciler reads the time and sleeps only through a :class:`Clock`.
Production uses :data:`SYSTEM_CLOCK`; api tests install a clock whose time they move
forward by hand (``set_clock``), so "the operator was down for five ticks" takes
milliseconds, not minutes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Current time plus an interruptible sleep until an instant."""

    def now(self) -> datetime:
        """The current aware UTC instant."""
        ...

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        """Return at ``instant`` or as soon as ``wake`` is set, whichever is first.

        ``wake`` may be left set on return; callers clear it before they sleep again.
        """
        ...


class SystemClock:
    """Wall-clock time and real sleeping."""

    def now(self) -> datetime:
        """The current aware UTC instant."""
        return datetime.now(UTC)

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        """Sleep until ``instant`` unless ``wake`` is set first.

        The timer sets ``wake`` itself (callers clear it before they next sleep): one
        timer handle per sleep, where ``asyncio.wait_for`` would add a task and a timeout
        per sleep — measurable with a thousand Schedules ticking every few seconds.
        """
        delay = (instant - self.now()).total_seconds()
        if delay <= 0:
            return
        timer = asyncio.get_running_loop().call_later(delay, wake.set)
        try:
            await wake.wait()
        finally:
            timer.cancel()


class ManualClock:
    """A clock that stands still until :meth:`advance` moves it (api tests, benchmarks).

    Every sleeper re-checks its deadline whenever the time moves, so advancing by five
    ticks wakes each Schedule's task once, exactly as a real outage of that length would.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start instant, e.g. one in UTC")
        self._now = start.astimezone(UTC)
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        """The instant the clock was last moved to."""
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` (never backwards) and wake every sleeper."""
        if seconds < 0:
            raise ValueError(f"a ManualClock only moves forward (got {seconds} s)")
        return self.set(self._now + timedelta(seconds=seconds))

    def set(self, instant: datetime) -> datetime:
        """Move to ``instant`` (not before the current time) and wake every sleeper."""
        if instant < self._now:
            raise ValueError(f"a ManualClock only moves forward: {instant} < {self._now}")
        self._now = instant.astimezone(UTC)
        # A fresh event per move: sleepers waiting on the old one all wake exactly once.
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        return self._now

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        """Return once the clock reaches ``instant`` or ``wake`` is set."""
        while self._now < instant and not wake.is_set():
            moved = asyncio.ensure_future(self._moved.wait())
            woken = asyncio.ensure_future(wake.wait())
            try:
                await asyncio.wait({moved, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                moved.cancel()
                woken.cancel()


SYSTEM_CLOCK: Clock = SystemClock()
_current: Clock = SYSTEM_CLOCK


def get_clock() -> Clock:
    """The clock the scheduler uses now."""
    return _current


def set_clock(clock: Clock) -> Clock:
    """Install ``clock`` (tests); returns the previous one so it can be restored."""
    global _current  # one process-wide clock, swapped only by tests
    previous, _current = _current, clock
    return previous
