"""Routine Schedule Events are rate-limited; a wake-up reads what it needs without GETs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from headwater_operator.controllers.schedules import fresh_schedule
from headwater_operator.scheduling.events import EventBudget, should_post

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_a_fresh_budget_allows_the_burst_then_refuses() -> None:
    budget = EventBudget(burst=3, refill_seconds=300)

    allowed = [budget.allow(T0 + timedelta(seconds=second)) for second in range(5)]

    assert allowed == [True, True, True, False, False]


def test_one_event_is_earned_back_per_refill_period() -> None:
    budget = EventBudget(burst=2, refill_seconds=300)
    assert budget.allow(T0)
    assert budget.allow(T0)

    assert not budget.allow(T0 + timedelta(seconds=299))
    assert budget.allow(T0 + timedelta(seconds=301))
    assert not budget.allow(T0 + timedelta(seconds=302))


def test_an_idle_schedule_earns_back_no_more_than_the_burst() -> None:
    budget = EventBudget(burst=2, refill_seconds=60)
    assert budget.allow(T0)
    assert budget.allow(T0)

    later = T0 + timedelta(days=1)
    allowed = [budget.allow(later) for _ in range(3)]

    assert allowed == [True, True, False]


def test_a_clock_that_steps_back_neither_earns_nor_crashes() -> None:
    budget = EventBudget(burst=1, refill_seconds=60)
    assert budget.allow(T0 + timedelta(seconds=120))

    assert not budget.allow(T0)
    assert not budget.allow(T0 + timedelta(seconds=150))
    assert budget.allow(T0 + timedelta(seconds=181))


def test_warnings_are_always_posted_and_spend_nothing() -> None:
    budget = EventBudget(burst=1, refill_seconds=300)

    assert all(should_post("Warning", budget, T0) for _ in range(10))
    assert should_post("Normal", budget, T0)
    assert not should_post("Normal", budget, T0)
    assert should_post("Warning", budget, T0)


def test_after_an_edit_a_wake_up_takes_the_new_spec_but_keeps_its_own_status() -> None:
    live = {"metadata": {"name": "s", "generation": 2}, "spec": {"interval": "5m"},
            "status": {"lastScheduleTime": "2026-03-01T11:00:00Z"}}
    written = {"metadata": {"name": "s", "generation": 1}, "spec": {"interval": "1m"},
               "status": {"lastScheduleTime": "2026-03-01T12:00:00Z"}}

    fresh = fresh_schedule(live, written=written)

    assert fresh["metadata"]["generation"] == 2
    assert fresh["spec"] == {"interval": "5m"}
    assert fresh["status"] == {"lastScheduleTime": "2026-03-01T12:00:00Z"}
    fresh["spec"]["interval"] = "1h"  # a copy: the watched object is shared, never written to
    assert live["spec"] == {"interval": "5m"}
    fresh["status"]["lastScheduleTime"] = None  # nor is the controller's own last write
    assert written["status"] == {"lastScheduleTime": "2026-03-01T12:00:00Z"}


def test_at_the_first_wake_up_the_whole_live_object_is_taken() -> None:
    live = {"metadata": {"name": "s"}, "spec": {"interval": "5m"},
            "status": {"nextScheduleTime": "2026-03-01T12:05:00Z"}}

    assert fresh_schedule(live, written=None) == live
