"""plan_ticks: missed ticks, catch-up policies, starting deadline, cap, edits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from headwater_operator.scheduling import (
    ScheduleError,
    SkipReason,
    TickPlan,
    parse_schedule_expression,
    plan_ticks,
)

HOURLY = parse_schedule_expression(cron="0 * * * *")
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 1, 2, hour, minute, second, tzinfo=UTC)


def plan(**overrides: object) -> TickPlan:
    arguments: dict[str, object] = {
        "last_tick": at(0),
        "now": at(5, 0, 2),  # operator comes back 2 s after the 05:00 tick ...
        "starting_deadline_seconds": None,
        "catchup_policy": "Latest",
        "max_catchup_runs": None,
        "created_at": CREATED,
        "watching_since": at(5, 0, 1),  # ... having started at 05:00:01: 5 ticks missed
    }
    arguments.update(overrides)
    return plan_ticks(HOURLY, **arguments)  # type: ignore[arg-type]


def test_on_time_tick_runs_under_every_policy() -> None:
    for policy in ("None", "Latest", "All"):
        result = plan(last_tick=at(4), now=at(5, 0, 1), watching_since=at(4, 30),
                      catchup_policy=policy)
        assert result.to_run == [at(5)]
        assert result.skipped_count == 0
        assert result.next_tick == at(6)
        assert result.handled_through == at(5)


def test_catchup_none_runs_no_missed_tick() -> None:
    result = plan(catchup_policy="None")
    assert result.to_run == []
    assert result.skipped_count == 5
    assert result.skipped_by_reason == {SkipReason.CATCHUP_POLICY_NONE: 5}
    assert [example.tick for example in result.skipped_examples] == [
        at(5), at(4), at(3), at(2), at(1)
    ]
    assert result.handled_through == at(5)
    assert result.next_tick == at(6)


def test_catchup_latest_runs_only_the_newest_missed_tick() -> None:
    result = plan(catchup_policy="Latest")
    assert result.to_run == [at(5)]
    assert result.skipped_by_reason == {SkipReason.CATCHUP_POLICY_LATEST: 4}
    assert "4 CatchupPolicyLatest" in result.describe_skipped()
    assert "spec.startingDeadlineSeconds" in result.describe_skipped()


def test_catchup_all_runs_every_missed_tick_oldest_first() -> None:
    result = plan(catchup_policy="All")
    assert result.to_run == [at(1), at(2), at(3), at(4), at(5)]
    assert result.skipped_count == 0
    assert result.describe_skipped() == "no ticks were skipped"


def test_cap_keeps_the_newest_ticks() -> None:
    result = plan(catchup_policy="All", max_catchup_runs=2)
    assert result.to_run == [at(4), at(5)]
    assert result.skipped_by_reason == {SkipReason.MAX_RUNS_EXCEEDED: 3}
    assert [example.tick for example in result.skipped_examples] == [at(3), at(2), at(1)]


def test_cap_applies_to_on_time_ticks_too() -> None:
    five_second = parse_schedule_expression(interval="5s")
    result = plan_ticks(
        five_second, last_tick=at(5), now=at(5, 0, 20), starting_deadline_seconds=None,
        catchup_policy="All", max_catchup_runs=3, created_at=CREATED, watching_since=at(4),
    )
    assert result.to_run == [at(5, 0, 10), at(5, 0, 15), at(5, 0, 20)]
    assert result.skipped_by_reason == {SkipReason.MAX_RUNS_EXCEEDED: 1}


def test_starting_deadline_excludes_old_ticks() -> None:
    # now is 05:00:02, so a 2h0m5s deadline reaches back to 02:59:57.
    result = plan(catchup_policy="All", starting_deadline_seconds=2 * 3600 + 5)
    assert result.to_run == [at(3), at(4), at(5)]
    assert result.skipped_by_reason == {SkipReason.STARTING_DEADLINE_EXCEEDED: 2}
    assert {example.reason for example in result.skipped_examples} == {
        SkipReason.STARTING_DEADLINE_EXCEEDED
    }


def test_starting_deadline_boundary_is_inclusive() -> None:
    # A tick exactly startingDeadlineSeconds old may still start; one microsecond more may not.
    inside = plan(catchup_policy="All", now=at(5), starting_deadline_seconds=3600)
    assert inside.to_run == [at(4), at(5)]
    outside = plan(catchup_policy="All", now=at(5), starting_deadline_seconds=3599.999999)
    assert outside.to_run == [at(5)]
    assert outside.skipped_by_reason == {SkipReason.STARTING_DEADLINE_EXCEEDED: 4}


def test_no_tick_outside_the_deadline_even_with_latest() -> None:
    result = plan(catchup_policy="Latest", now=at(5, 30), starting_deadline_seconds=60)
    assert result.to_run == []
    assert result.skipped_by_reason == {SkipReason.STARTING_DEADLINE_EXCEEDED: 5}
    assert result.handled_through == at(5)
    assert result.next_tick == at(6)


def test_new_schedule_never_fires_for_times_before_it_existed() -> None:
    result = plan(last_tick=None, created_at=at(4, 30), now=at(4, 40), catchup_policy="All")
    assert result.to_run == []
    assert result.skipped_count == 0
    assert result.handled_through is None
    assert result.next_tick == at(5)


def test_edit_never_fires_by_itself() -> None:
    # Last tick 03:00 under the old expression; edited to */10 at 04:35 (created_at is the
    # edit time). Ticks of the new expression between 03:00 and 04:35 must not fire.
    edited = parse_schedule_expression(cron="*/10 * * * *")
    result = plan_ticks(
        edited, last_tick=None, now=at(4, 35), starting_deadline_seconds=None,
        catchup_policy="All", max_catchup_runs=None, created_at=at(4, 35),
        watching_since=at(0),
    )
    assert result.to_run == []
    assert result.next_tick == at(4, 40)
    later = plan_ticks(
        edited, last_tick=result.handled_through, now=at(4, 40), starting_deadline_seconds=None,
        catchup_policy="All", max_catchup_runs=None, created_at=at(4, 35), watching_since=at(0),
    )
    assert later.to_run == [at(4, 40)]


def test_last_tick_is_never_fired_twice() -> None:
    result = plan(last_tick=at(5), now=at(5, 0, 3), catchup_policy="All")
    assert result.to_run == []
    assert result.handled_through == at(5)


def test_without_watching_since_every_due_tick_counts_as_missed() -> None:
    result = plan(watching_since=None, last_tick=at(4), now=at(5, 0, 1), catchup_policy="None")
    assert result.to_run == []
    assert result.skipped_by_reason == {SkipReason.CATCHUP_POLICY_NONE: 1}


def test_resume_after_suspension_uses_the_policy() -> None:
    # Suspended from 01:30 to 05:10: the four ticks in between were missed.
    result = plan(last_tick=at(1), now=at(5, 10), watching_since=at(5, 10), catchup_policy="All",
                  max_catchup_runs=3)
    assert result.to_run == [at(3), at(4), at(5)]
    assert result.skipped_by_reason == {SkipReason.MAX_RUNS_EXCEEDED: 1}


def test_huge_gaps_are_counted_with_a_bound() -> None:
    minutely = parse_schedule_expression(cron="* * * * *")
    result = plan_ticks(
        minutely, last_tick=CREATED, now=CREATED + timedelta(days=30),
        starting_deadline_seconds=60, catchup_policy="Latest", max_catchup_runs=None,
        created_at=CREATED, watching_since=None,
    )
    assert result.to_run == [CREATED + timedelta(days=30)]
    assert not result.counts_exact
    assert result.skipped_count >= 2000
    assert "+" in result.describe_skipped()


def test_exact_intervals_are_counted_exactly_however_long_the_gap() -> None:
    every_second = parse_schedule_expression(interval="1s")
    result = plan_ticks(
        every_second, last_tick=CREATED, now=CREATED + timedelta(days=1),
        starting_deadline_seconds=10, catchup_policy="None", max_catchup_runs=None,
        created_at=CREATED, watching_since=None,
    )
    assert result.counts_exact
    assert result.skipped_count == 86_400
    assert result.skipped_by_reason == {
        SkipReason.STARTING_DEADLINE_EXCEEDED: 86_389,
        SkipReason.CATCHUP_POLICY_NONE: 11,
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"catchup_policy": "Sometimes"}, "spec.catchup.policy"),
        ({"max_catchup_runs": 0}, "spec.catchup.maxRuns"),
    ],
)
def test_invalid_policy_values_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ScheduleError) as info:
        plan(**overrides)
    assert info.value.field_path == field
