"""Fire times across DST, leap days, intervals and rrules: the rules users rely on."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from headwater_operator.scheduling import (
    ScheduleExpression,
    fire_times,
    next_fire_time,
    parse_schedule_expression,
    previous_fire_time,
)

NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"


def utc(*fields: int) -> datetime:
    """An aware UTC datetime from (year, month, day[, hour[, minute[, second]]])."""
    year, month, day, hour, minute, second = (*fields, 0, 0, 0)[:6]
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local_iso(expr: ScheduleExpression, ticks: list[datetime]) -> list[str]:
    return [tick.astimezone(expr.timezone).isoformat() for tick in ticks]


def ticks(expr: ScheduleExpression, start: datetime, end: datetime) -> list[datetime]:
    return list(fire_times(expr, start, end))


def one_per_local_day(expr: ScheduleExpression, found: list[datetime]) -> None:
    days = Counter(tick.astimezone(expr.timezone).date() for tick in found)
    assert all(count == 1 for count in days.values()), days


# --- cron across DST -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "spring_day", "fall_day"),
    [
        ("0 2 * * *", "2026-03-08T03:00:00-04:00", "2026-11-01T02:00:00-05:00"),
        ("30 2 * * *", "2026-03-08T03:00:00-04:00", "2026-11-01T02:30:00-05:00"),
    ],
)
def test_new_york_daily_early_morning_fires_once_per_local_day(
    cron: str, spring_day: str, fall_day: str
) -> None:
    expr = parse_schedule_expression(cron=cron, timezone=NEW_YORK)
    minute = int(cron.split(maxsplit=1)[0])

    spring = ticks(expr, utc(2026, 3, 6), utc(2026, 3, 11))
    assert local_iso(expr, spring) == [
        f"2026-03-06T02:{minute:02d}:00-05:00",
        f"2026-03-07T02:{minute:02d}:00-05:00",
        spring_day,  # 02:xx does not exist: fires once, when the gap ends
        f"2026-03-09T02:{minute:02d}:00-04:00",
        f"2026-03-10T02:{minute:02d}:00-04:00",
    ]
    fall = ticks(expr, utc(2026, 10, 30), utc(2026, 11, 3))
    assert local_iso(expr, fall) == [
        f"2026-10-30T02:{minute:02d}:00-04:00",
        f"2026-10-31T02:{minute:02d}:00-04:00",
        fall_day,
        f"2026-11-02T02:{minute:02d}:00-05:00",
    ]
    one_per_local_day(expr, spring + fall)


def test_repeated_hour_fires_at_first_occurrence_only() -> None:
    expr = parse_schedule_expression(cron="30 1 * * *", timezone=NEW_YORK)
    found = ticks(expr, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12))
    # 01:30 happens at 05:30Z (EDT) and again at 06:30Z (EST): only the first fires.
    assert found == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_berlin_daily_across_both_changes() -> None:
    expr = parse_schedule_expression(cron="30 2 * * *", timezone=BERLIN)
    spring = ticks(expr, utc(2026, 3, 28), utc(2026, 3, 31))
    assert local_iso(expr, spring) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:00–03:00 skipped on 29 March
        "2026-03-30T02:30:00+02:00",
    ]
    fall = ticks(expr, utc(2026, 10, 24), utc(2026, 10, 27))
    assert fall == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    one_per_local_day(expr, spring + fall)


def test_every_15_minutes_through_spring_forward_collapses_gap_ticks() -> None:
    expr = parse_schedule_expression(cron="*/15 * * * *", timezone=NEW_YORK)
    found = ticks(expr, utc(2026, 3, 8, 6, 20), utc(2026, 3, 8, 7, 31))
    assert local_iso(expr, found) == [
        "2026-03-08T01:30:00-05:00",
        "2026-03-08T01:45:00-05:00",
        "2026-03-08T03:00:00-04:00",  # 02:00, 02:15, 02:30, 02:45 and 03:00: one firing
        "2026-03-08T03:15:00-04:00",
        "2026-03-08T03:30:00-04:00",
    ]


def test_every_15_minutes_through_fall_back_skips_the_repeat() -> None:
    expr = parse_schedule_expression(cron="*/15 * * * *", timezone=NEW_YORK)
    found = ticks(expr, utc(2026, 11, 1, 4, 50), utc(2026, 11, 1, 7, 16))
    assert local_iso(expr, found) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:15:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:45:00-04:00",
        "2026-11-01T02:00:00-05:00",
        "2026-11-01T02:15:00-05:00",
    ]


def test_next_fire_time_from_inside_the_repeated_hour() -> None:
    expr = parse_schedule_expression(cron="*/15 * * * *", timezone=NEW_YORK)
    # 06:20Z is 01:20 EST, the second 01:20: the EDT 01:30/01:45 are already past.
    assert next_fire_time(expr, utc(2026, 11, 1, 6, 20)) == utc(2026, 11, 1, 7, 0)
    assert previous_fire_time(expr, utc(2026, 11, 1, 6, 20)) == utc(2026, 11, 1, 5, 45)


def test_previous_fire_time_right_after_the_gap() -> None:
    expr = parse_schedule_expression(cron="*/15 * * * *", timezone=NEW_YORK)
    assert previous_fire_time(expr, utc(2026, 3, 8, 7, 0, 1)) == utc(2026, 3, 8, 7, 0)
    assert previous_fire_time(expr, utc(2026, 3, 8, 7, 0)) == utc(2026, 3, 8, 6, 45)


def test_leap_day_cron_fires_only_on_29_february() -> None:
    expr = parse_schedule_expression(cron="0 0 29 2 *", timezone="UTC")
    found = ticks(expr, utc(2023, 1, 1), utc(2033, 1, 1))
    assert found == [utc(2024, 2, 29), utc(2028, 2, 29), utc(2032, 2, 29)]
    assert previous_fire_time(expr, utc(2027, 6, 1)) == utc(2024, 2, 29)


def test_leap_day_in_a_zone_maps_to_the_right_instant() -> None:
    expr = parse_schedule_expression(cron="0 0 29 2 *", timezone=BERLIN)
    assert next_fire_time(expr, utc(2025, 1, 1)) == utc(2028, 2, 28, 23)


@pytest.mark.parametrize(
    ("macro", "after", "expected"),
    [
        ("@hourly", utc(2026, 5, 5, 10, 10), utc(2026, 5, 5, 11)),
        ("@daily", utc(2026, 5, 5, 10), utc(2026, 5, 6)),
        ("@midnight", utc(2026, 5, 5, 10), utc(2026, 5, 6)),
        ("@weekly", utc(2026, 5, 5, 10), utc(2026, 5, 10)),  # next Sunday
        ("@monthly", utc(2026, 5, 5, 10), utc(2026, 6, 1)),
        ("@yearly", utc(2026, 5, 5, 10), utc(2027, 1, 1)),
        ("@annually", utc(2026, 5, 5, 10), utc(2027, 1, 1)),
    ],
)
def test_cron_macros(macro: str, after: datetime, expected: datetime) -> None:
    expr = parse_schedule_expression(cron=macro)
    assert next_fire_time(expr, after) == expected


def test_next_fire_time_is_strictly_after() -> None:
    expr = parse_schedule_expression(cron="0 * * * *")
    assert next_fire_time(expr, utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 6)
    assert previous_fire_time(expr, utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 4)


def test_instants_in_other_offsets_are_accepted_and_utc_is_returned() -> None:
    expr = parse_schedule_expression(cron="0 * * * *")
    after = datetime.fromisoformat("2026-01-01T05:30:00+02:00")
    result = next_fire_time(expr, after)
    assert result == utc(2026, 1, 1, 4)
    assert result is not None
    assert result.tzinfo is UTC


def test_naive_instants_are_rejected() -> None:
    expr = parse_schedule_expression(cron="0 * * * *")
    with pytest.raises(ValueError, match="aware"):
        next_fire_time(expr, datetime(2026, 1, 1))


# --- intervals -------------------------------------------------------------------------


def test_hourly_interval_keeps_exact_spacing_across_dst() -> None:
    expr = parse_schedule_expression(interval="1h", timezone=NEW_YORK)
    for start in (utc(2026, 3, 8, 3), utc(2026, 11, 1, 3)):
        found = ticks(expr, start, start + timedelta(hours=8))
        assert len(found) == 8
        assert {b - a for a, b in itertools.pairwise(found)} == {timedelta(hours=1)}


def test_daily_interval_keeps_local_wall_time_across_dst() -> None:
    expr = parse_schedule_expression(
        interval="1d", timezone=NEW_YORK, anchor_time="2026-01-01T09:00:00"
    )
    found = ticks(expr, utc(2026, 3, 6), utc(2026, 3, 10)) + ticks(
        expr, utc(2026, 10, 30), utc(2026, 11, 3)
    )
    local_times = {tick.astimezone(expr.timezone).strftime("%H:%M") for tick in found}
    assert local_times == {"09:00"}
    assert len(found) == 8
    # ... which means 23h and 25h apart in absolute time on the change days.
    assert found[2] - found[1] == timedelta(hours=23)
    assert found[6] - found[5] == timedelta(hours=25)


def test_sub_day_interval_is_phased_by_anchor() -> None:
    expr = parse_schedule_expression(interval="90s", anchor_time="2026-01-01T00:00:30Z")
    assert next_fire_time(expr, utc(2026, 1, 1, 0, 1)) == utc(2026, 1, 1, 0, 2)
    assert next_fire_time(expr, utc(2026, 1, 1, 0, 2)) == utc(2026, 1, 1, 0, 3, 30)
    # The anchor fixes the phase only: ticks exist before it too.
    assert previous_fire_time(expr, utc(2026, 1, 1)) == utc(2025, 12, 31, 23, 59)


def test_default_anchor_is_midnight_2000_in_the_zone() -> None:
    expr = parse_schedule_expression(interval="7h", timezone=BERLIN)
    assert expr.anchor_time == utc(1999, 12, 31, 23)


def test_multi_day_interval_counts_days_from_anchor() -> None:
    expr = parse_schedule_expression(
        interval="3d", timezone=BERLIN, anchor_time="2026-03-27T02:30:00"
    )
    found = ticks(expr, utc(2026, 3, 26), utc(2026, 4, 3))
    assert local_iso(expr, found) == [
        "2026-03-27T02:30:00+01:00",
        "2026-03-30T02:30:00+02:00",
        "2026-04-02T02:30:00+02:00",
    ]


def test_whole_day_interval_in_a_gap_fires_at_gap_end() -> None:
    expr = parse_schedule_expression(
        interval="1d", timezone=NEW_YORK, anchor_time="2026-03-01T02:30:00"
    )
    assert next_fire_time(expr, utc(2026, 3, 8)) == utc(2026, 3, 8, 7)
    assert previous_fire_time(expr, utc(2026, 3, 9)) == utc(2026, 3, 8, 7)


# --- rrule -----------------------------------------------------------------------------


def test_rrule_daily_at_0230_across_dst() -> None:
    expr = parse_schedule_expression(
        rrule="RRULE:FREQ=DAILY;BYHOUR=2;BYMINUTE=30", timezone=NEW_YORK
    )
    spring = ticks(expr, utc(2026, 3, 7), utc(2026, 3, 10))
    assert local_iso(expr, spring) == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]
    fall = ticks(expr, utc(2026, 10, 31), utc(2026, 11, 3))
    assert local_iso(expr, fall) == [
        "2026-10-31T02:30:00-04:00",
        "2026-11-01T02:30:00-05:00",
        "2026-11-02T02:30:00-05:00",
    ]


def test_rrule_in_repeated_hour_fires_once() -> None:
    expr = parse_schedule_expression(rrule="FREQ=DAILY;BYHOUR=1;BYMINUTE=30", timezone=NEW_YORK)
    found = ticks(expr, utc(2026, 10, 31, 12), utc(2026, 11, 1, 12))
    assert found == [utc(2026, 11, 1, 5, 30)]


def test_rrule_naive_dtstart_is_read_in_the_schedule_zone() -> None:
    expr = parse_schedule_expression(
        rrule="DTSTART:20260105T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO,TH", timezone=BERLIN
    )
    found = ticks(expr, utc(2026, 1, 1), utc(2026, 1, 13))
    assert local_iso(expr, found) == [
        "2026-01-05T09:00:00+01:00",
        "2026-01-08T09:00:00+01:00",
        "2026-01-12T09:00:00+01:00",
    ]


def test_rrule_utc_dtstart_and_until_are_converted() -> None:
    expr = parse_schedule_expression(
        rrule="DTSTART:20260105T080000Z\nRRULE:FREQ=DAILY;UNTIL=20260107T080000Z",
        timezone=BERLIN,
    )
    found = ticks(expr, utc(2026, 1, 1), utc(2026, 2, 1))
    assert found == [utc(2026, 1, 5, 8), utc(2026, 1, 6, 8), utc(2026, 1, 7, 8)]
    assert next_fire_time(expr, utc(2026, 1, 7, 8)) is None


def test_rrule_tzid_dtstart_is_converted_to_the_schedule_zone() -> None:
    expr = parse_schedule_expression(
        rrule="DTSTART;TZID=Asia/Tokyo:20260105T170000\nRRULE:FREQ=DAILY", timezone="UTC"
    )
    assert next_fire_time(expr, utc(2026, 1, 1)) == utc(2026, 1, 5, 8)


def test_rrule_with_count_ends() -> None:
    expr = parse_schedule_expression(
        rrule="DTSTART:20260101T000000\nRRULE:FREQ=HOURLY;COUNT=3", timezone="UTC"
    )
    assert ticks(expr, utc(2025, 1, 1), utc(2027, 1, 1)) == [
        utc(2026, 1, 1, 0), utc(2026, 1, 1, 1), utc(2026, 1, 1, 2)
    ]
    assert previous_fire_time(expr, utc(2027, 1, 1)) == utc(2026, 1, 1, 2)


def test_sparse_rrule_previous_searches_far_enough_back() -> None:
    expr = parse_schedule_expression(rrule="FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29", timezone="UTC")
    assert previous_fire_time(expr, utc(2031, 1, 1)) == utc(2028, 2, 29)
    assert next_fire_time(expr, utc(2029, 1, 1)) == utc(2032, 2, 29)


def test_rrule_monthly_uses_dtstart_defaults() -> None:
    expr = parse_schedule_expression(rrule="FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=23")
    assert next_fire_time(expr, utc(2028, 2, 1)) == utc(2028, 2, 29, 23)


def test_fire_times_is_lazy_and_ordered() -> None:
    expr = parse_schedule_expression(cron="* * * * *")
    iterator = fire_times(expr, utc(2026, 1, 1), utc(9999, 1, 1))
    first = [next(iterator) for _ in range(3)]
    assert first == [utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 2), utc(2026, 1, 1, 0, 3)]


def test_fire_times_includes_end_and_excludes_start() -> None:
    expr = parse_schedule_expression(cron="0 0 * * *")
    assert ticks(expr, utc(2026, 1, 1), utc(2026, 1, 3)) == [utc(2026, 1, 2), utc(2026, 1, 3)]


def test_daily_cron_over_a_whole_year_fires_once_per_day() -> None:
    for zone in (NEW_YORK, BERLIN, "Australia/Lord_Howe"):  # Lord Howe shifts by 30 min
        expr = parse_schedule_expression(cron="30 2 * * *", timezone=zone)
        found = ticks(expr, utc(2026, 1, 1), utc(2027, 1, 1))
        one_per_local_day(expr, found)
        days = {tick.astimezone(expr.timezone).date() for tick in found}
        assert len(days) >= 365
        assert date(2026, 3, 8) in days
