"""The operator's one clock keeps the promises of :mod:`headwater_operator.clock`.

A :class:`ManualClock` fires what is due in instant order, on the event loop, never
goes backwards, and never fires a cancelled callback; :func:`sleep_until` returns at the
instant or at a wake-up; a :class:`SystemClock` measures its waits on the loop. Nothing
here waits for real time beyond a few milliseconds.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from headwater_operator.clock import (
    SYSTEM_CLOCK,
    ManualClock,
    SystemClock,
    get_clock,
    set_clock,
    sleep_until,
)

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def spin(turns: int = 5) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


# --- ManualClock -----------------------------------------------------------------------------
def test_a_manual_clock_needs_an_aware_start_and_reads_utc() -> None:
    with pytest.raises(ValueError, match="ManualClock needs an aware start instant"):
        ManualClock(datetime(2026, 3, 1, 12))
    east = ManualClock(datetime(2026, 3, 1, 14, tzinfo=timezone(timedelta(hours=2))))
    assert east.now() == T0
    assert east.now().tzinfo is UTC


async def test_moving_the_clock_fires_what_is_due_in_instant_order() -> None:
    clock = ManualClock(T0)
    fired: list[str] = []
    for name, seconds in [("c", 30), ("a", 10), ("late", 3600), ("b", 20), ("b2", 20)]:
        clock.call_at(at(seconds), functools.partial(fired.append, name))
    assert clock.advance(30) == at(30)
    assert fired == [], "callbacks run on the loop, not inside advance()"
    await spin()
    assert fired == ["a", "b", "b2", "c"]  # same instant: in the order they were asked
    clock.set(at(3599))
    await spin()
    assert fired == ["a", "b", "b2", "c"]
    clock.set(at(3600))
    await spin()
    assert fired == ["a", "b", "b2", "c", "late"]


async def test_each_callback_fires_once_however_far_the_clock_moves() -> None:
    clock = ManualClock(T0)
    fired: list[datetime] = []
    clock.call_at(at(5), lambda: fired.append(clock.now()))
    clock.advance(60)  # "the operator was down for a while"
    clock.advance(60)
    await spin()
    assert fired == [at(120)], "fired once, and it sees the time the clock was moved to"


async def test_an_instant_already_reached_fires_at_once_on_the_loop() -> None:
    clock = ManualClock(T0)
    fired: list[str] = []
    clock.call_at(T0, lambda: fired.append("now"))
    clock.call_at(at(-60), lambda: fired.append("past"))
    assert fired == []
    await spin()
    assert fired == ["now", "past"]


async def test_the_clock_never_goes_backwards() -> None:
    clock = ManualClock(T0)
    clock.advance(10)
    with pytest.raises(ValueError, match=r"only moves forward \(got -1 s\)"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.set(at(9))
    assert clock.now() == at(10)
    clock.set(at(10))  # standing still is allowed
    assert clock.now() == at(10)


async def test_a_cancelled_callback_never_fires() -> None:
    clock = ManualClock(T0)
    fired: list[str] = []
    early = clock.call_at(at(10), lambda: fired.append("early"))
    due = clock.call_at(at(10), lambda: fired.append("due"))
    now = clock.call_at(T0, lambda: fired.append("now"))
    early.cancel()
    now.cancel()  # already handed to the loop, cancelled before it ran
    clock.advance(10)
    due.cancel()  # due and handed to the loop, cancelled before it ran
    await spin()
    assert fired == []
    clock.advance(3600)
    await spin()
    assert fired == []


async def test_cancelling_after_firing_changes_nothing() -> None:
    clock = ManualClock(T0)
    fired: list[str] = []
    timer = clock.call_at(at(1), lambda: fired.append("fired"))
    clock.advance(1)
    await spin()
    timer.cancel()
    assert fired == ["fired"]


async def test_a_callback_may_schedule_the_next_one() -> None:
    # What a ticking Schedule does: its wake-up asks for the next tick.
    clock = ManualClock(T0)
    fired: list[datetime] = []

    def tick() -> None:
        fired.append(clock.now())
        clock.call_at(clock.now() + timedelta(seconds=10), tick)

    clock.call_at(at(10), tick)
    for _ in range(3):
        clock.advance(10)
        await spin()
    assert fired == [at(10), at(20), at(30)]


# --- sleep_until ----------------------------------------------------------------------------
async def test_sleep_until_returns_when_the_clock_reaches_the_instant() -> None:
    clock = ManualClock(T0)
    wake = asyncio.Event()
    sleeper = asyncio.create_task(sleep_until(clock, at(60), wake))
    await spin()
    clock.advance(59)
    await spin()
    assert not sleeper.done()
    clock.advance(1)
    await spin()
    assert sleeper.done()
    await sleeper


async def test_sleep_until_an_instant_reached_returns_at_once_without_a_timer() -> None:
    clock = ManualClock(T0)
    wake = asyncio.Event()
    await sleep_until(clock, T0, wake)
    await sleep_until(clock, at(-1), wake)
    assert not wake.is_set()


async def test_sleep_until_returns_at_a_wake_up_and_leaves_no_timer_behind() -> None:
    clock = ManualClock(T0)
    wake = asyncio.Event()
    sleeper = asyncio.create_task(sleep_until(clock, at(60), wake))
    await spin()
    wake.set()  # a watch event: look now
    await spin()
    assert sleeper.done()
    wake.clear()
    clock.advance(60)  # the abandoned timer must not set the next sleep's event
    await spin()
    assert not wake.is_set()


async def test_sleep_until_on_a_cancelled_sleeper_cancels_its_timer() -> None:
    clock = ManualClock(T0)
    wake = asyncio.Event()
    sleeper = asyncio.create_task(sleep_until(clock, at(60), wake))
    await spin()
    sleeper.cancel()
    await spin()
    clock.advance(60)
    await spin()
    assert not wake.is_set()


# --- SystemClock and the process's clock ------------------------------------------------------
async def test_the_system_clock_is_aware_utc_and_fires_on_the_loop() -> None:
    clock = SystemClock()
    now = clock.now()
    assert now.tzinfo is UTC
    fired = asyncio.Event()
    clock.call_at(now - timedelta(hours=1), fired.set)  # already past: at once
    async with asyncio.timeout(5):  # a hang guard, not a timed assertion
        await fired.wait()
    soon = asyncio.Event()
    clock.call_at(clock.now() + timedelta(milliseconds=5), soon.set)
    async with asyncio.timeout(5):
        await soon.wait()


async def test_a_cancelled_system_timer_never_fires() -> None:
    clock = SystemClock()
    fired = asyncio.Event()
    clock.call_at(clock.now() + timedelta(milliseconds=1), fired.set).cancel()
    await asyncio.sleep(0.02)
    assert not fired.is_set()


def test_the_process_clock_is_the_system_clock_until_a_test_installs_another() -> None:
    assert get_clock() is SYSTEM_CLOCK
    manual = ManualClock(T0)
    previous = set_clock(manual)
    try:
        assert previous is SYSTEM_CLOCK
        assert get_clock() is manual
    finally:
        assert set_clock(previous) is manual
    assert get_clock() is SYSTEM_CLOCK
