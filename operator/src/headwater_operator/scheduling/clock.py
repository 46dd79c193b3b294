"""The scheduler's notion of time, injectable so tests never wait for real ticks.

The Schedule reconciler reads the time and sleeps only through a :class:`Clock`.
Production uses :data:`SYSTEM_CLOCK`; api tests install a clock whose time they move
forward by hand (``set_clock``), so "the operator was down for five ticks" takes
milliseconds, not minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Current time plus an interruptible sleep until an instant."""

    def now(self) -> datetime:
        """The current aware UTC instant."""
        ...

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        """Return at ``instant`` or as soon as ``wake`` is set, whichever is first."""
        ...


class SystemClock:
    """Wall-clock time and real sleeping."""

    def now(self) -> datetime:
        """The current aware UTC instant."""
        return datetime.now(UTC)

    async def sleep_until(self, instant: datetime, wake: asyncio.Event) -> None:
        """Sleep until ``instant`` unless ``wake`` is set first."""
        delay = (instant - self.now()).total_seconds()
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)


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
