"""Properties every schedule satisfies, in every zone, around every instant."""

from __future__ import annotations

import importlib
import itertools
from datetime import UTC, datetime, timedelta

from headwater_operator.scheduling import (
    ScheduleExpression,
    fire_times,
    next_fire_time,
    parse_schedule_expression,
    previous_fire_time,
)
from hypothesis import given, settings
from hypothesis import strategies as st

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"]

expressions = st.one_of(
    st.builds(
        lambda cron, tz: parse_schedule_expression(cron=cron, timezone=tz),
        st.sampled_from(["* * * * *", "*/15 * * * *", "30 2 * * *", "0 1,2,3 * * *",
                         "5 * * * 0", "@daily"]),
        st.sampled_from(ZONES),
    ),
    st.builds(
        lambda interval, tz: parse_schedule_expression(interval=interval, timezone=tz),
        st.sampled_from(["7m", "1h", "1h30m", "1d", "2d", "25h"]),
        st.sampled_from(ZONES),
    ),
    st.builds(
        lambda rule, tz: parse_schedule_expression(rrule=rule, timezone=tz),
        st.sampled_from(
            ["FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "FREQ=HOURLY;INTERVAL=5", "FREQ=WEEKLY;BYDAY=SU"]
        ),
        st.sampled_from(ZONES),
    ),
)
# Instants clustered around the 2026 DST changes, where the rules matter most.
instants = st.builds(
    lambda base, offset: base + timedelta(seconds=offset),
    st.sampled_from(
        [
            datetime(2026, 3, 8, 7, tzinfo=UTC),
            datetime(2026, 3, 29, 1, tzinfo=UTC),
            datetime(2026, 10, 25, 1, tzinfo=UTC),
            datetime(2026, 11, 1, 6, tzinfo=UTC),
            datetime(2026, 4, 5, 15, tzinfo=UTC),
        ]
    ),
    st.integers(min_value=-3 * 86_400, max_value=3 * 86_400),
)


@settings(max_examples=150, deadline=None)
@given(expressions, instants)
def test_fire_times_strictly_increase_and_agree_with_next(
    expr: ScheduleExpression, start: datetime
) -> None:
    found = list(itertools.islice(fire_times(expr, start, start + timedelta(days=3)), 200))
    assert all(a < b for a, b in itertools.pairwise(found))
    assert all(tick > start for tick in found)
    if found:
        assert next_fire_time(expr, start) == found[0]
        for earlier, later in itertools.pairwise(found[:20]):
            assert next_fire_time(expr, earlier) == later
            assert previous_fire_time(expr, later) == earlier


@settings(max_examples=150, deadline=None)
@given(expressions, instants)
def test_previous_and_next_bracket_any_instant(expr: ScheduleExpression, instant: datetime) -> None:
    before = previous_fire_time(expr, instant)
    after = next_fire_time(expr, instant)
    assert before is not None
    assert after is not None
    assert before < instant < after
    # Between them only the instant itself may be a tick.
    assert list(fire_times(expr, before, after)) in ([after], [instant, after])


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["30 2 * * *", "0 1 * * *", "59 23 * * *"]),
    st.sampled_from(ZONES),
    st.sampled_from([datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC)]),
)
def test_daily_cron_fires_once_per_local_day(cron: str, zone: str, start: datetime) -> None:
    expr = parse_schedule_expression(cron=cron, timezone=zone)
    found = list(fire_times(expr, start, start + timedelta(days=120)))
    days = [tick.astimezone(expr.timezone).date() for tick in found]
    assert len(days) == len(set(days))
    assert len(days) >= 119



# The module, not the function of the same name the package exports.
FIRE_TIMES_MODULE = importlib.import_module("headwater.scheduling.fire_times")
Answers = tuple[datetime | None, datetime | None, list[datetime]]


def _answers(expr: ScheduleExpression, at: datetime, *, cold: bool) -> Answers:
    """Next and previous tick around ``at``, and the ticks of the two hours before it;
    ``cold``: each computed with no answer remembered from before."""
    def forget() -> None:
        if cold:
            FIRE_TIMES_MODULE._ANSWERS.clear()

    forget()
    following = next_fire_time(expr, at)
    forget()
    preceding = previous_fire_time(expr, at)
    forget()
    return following, preceding, list(fire_times(expr, at - timedelta(hours=2), at))


@settings(max_examples=150, deadline=None)
@given(expressions, st.lists(instants, min_size=2, max_size=12))
def test_remembered_answers_are_the_computed_ones(
    expr: ScheduleExpression, asked: list[datetime]
) -> None:
    # A fleet asks about one expression at nearby instants, in any order; whatever the
    # earlier questions left behind, each answer is what a cold computation says.
    FIRE_TIMES_MODULE._ANSWERS.clear()
    warm = [_answers(expr, at, cold=False) for instant in asked
            for at in (instant, instant + timedelta(seconds=1), instant - timedelta(hours=1))]
    cold = [_answers(expr, at, cold=True) for instant in asked
            for at in (instant, instant + timedelta(seconds=1), instant - timedelta(hours=1))]
    assert warm == cold
