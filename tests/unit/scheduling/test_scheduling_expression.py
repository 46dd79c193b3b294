"""Validation of a Schedule's expression: errors name the field and the fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from headwater_operator.scheduling import (
    ScheduleError,
    ScheduleKind,
    parse_interval,
    parse_schedule_expression,
    schedule_fingerprint,
    scheduled_run_name,
    tick_window,
    window_parameters,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d", timedelta(hours=24)),
        ("2d12h", timedelta(hours=60)),
        (" 1H ", timedelta(hours=1)),
    ],
)
def test_interval_durations(text: str, expected: timedelta) -> None:
    assert parse_interval(text) == expected


@pytest.mark.parametrize("text", ["", "0s", "1x", "m15", "1.5h", "30m1h", "-1h", "1 h"])
def test_bad_intervals_name_the_field(text: str) -> None:
    with pytest.raises(ScheduleError, match=r"^spec\.interval: ") as info:
        parse_interval(text)
    assert info.value.field_path == "spec.interval"


@pytest.mark.parametrize(
    ("kwargs", "field", "hint"),
    [
        ({}, "spec", "exactly one"),
        ({"cron": "* * * * *", "interval": "1m"}, "spec", "spec.cron, spec.interval"),
        ({"cron": "* * * * * *"}, "spec.cron", "6 fields; write 5"),
        ({"cron": "0 0 * *"}, "spec.cron", "4 fields"),
        ({"cron": "61 * * * *"}, "spec.cron", "minute 0-59"),
        ({"cron": "@fortnightly"}, "spec.cron", "unknown macro"),
        ({"cron": "0 0 30 2 *"}, "spec.cron", "never matches"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "spec.timezone", "IANA"),
        ({"cron": "0 2 * * *", "timezone": ""}, "spec.timezone", "must not be empty"),
        ({"cron": "0 2 * * *", "anchor_time": "2026-01-01T00:00:00Z"}, "spec.anchorTime",
         "only to spec.interval"),
        ({"interval": "1h", "anchor_time": "yesterday"}, "spec.anchorTime", "RFC 3339"),
        ({"rrule": "FREQ=SOMETIMES"}, "spec.rrule", "not a valid RFC 5545"),
        ({"rrule": "DTSTART:20260101T000000"}, "spec.rrule", "found 0 RRULE"),
        ({"rrule": "EXDATE:20260101T000000\nRRULE:FREQ=DAILY"}, "spec.rrule", "unsupported"),
        ({"rrule": "DTSTART:tomorrow\nRRULE:FREQ=DAILY"}, "spec.rrule", "iCalendar"),
    ],
)
def test_invalid_specs_name_field_and_fix(
    kwargs: dict[str, str], field: str, hint: str
) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule_expression(**kwargs)
    assert info.value.field_path == field
    assert str(info.value).startswith(f"{field}: ")
    assert hint in str(info.value)


def test_cron_is_normalised() -> None:
    expr = parse_schedule_expression(cron="  0   2 * *  * ")
    assert expr.kind is ScheduleKind.CRON
    assert expr.expression == "0 2 * * *"
    assert parse_schedule_expression(cron="@DAILY").expression == "0 0 * * *"


def test_naive_anchor_is_read_in_the_zone_and_aware_one_is_kept() -> None:
    naive = parse_schedule_expression(
        interval="1h", timezone="Europe/Berlin", anchor_time=datetime(2026, 7, 1, 12)
    )
    assert naive.anchor_time == datetime(2026, 7, 1, 10, tzinfo=UTC)
    aware = parse_schedule_expression(
        interval="1h", timezone="Europe/Berlin", anchor_time="2026-07-01T12:00:00Z"
    )
    assert aware.anchor_time == datetime(2026, 7, 1, 12, tzinfo=UTC)


def test_fingerprint_changes_with_what_decides_ticks_only() -> None:
    base = schedule_fingerprint(parse_schedule_expression(cron="0 2 * * *"))
    assert base == schedule_fingerprint(parse_schedule_expression(cron=" 0 2  * * * "))
    assert base == schedule_fingerprint(parse_schedule_expression(cron="0 2 * * *"))
    others = {
        schedule_fingerprint(parse_schedule_expression(cron="0 3 * * *")),
        schedule_fingerprint(parse_schedule_expression(cron="0 2 * * *", timezone="Asia/Tokyo")),
        schedule_fingerprint(parse_schedule_expression(interval="1d")),
        schedule_fingerprint(
            parse_schedule_expression(interval="1d", anchor_time="2026-01-01T02:00:00Z")
        ),
    }
    assert base not in others
    assert len(others) == 4
    assert len(base) == 16


def test_run_name_is_deterministic_and_fits_a_kubernetes_name() -> None:
    tick = datetime(2026, 3, 8, 7, tzinfo=UTC)
    name = scheduled_run_name("n" * 52, tick)
    assert name == "n" * 52 + "-1772953200"
    assert len(name) <= 63
    same_instant = datetime.fromisoformat("2026-03-08T03:00:00-04:00")
    assert scheduled_run_name("n" * 52, same_instant) == name


def test_tick_window_spans_the_previous_tick() -> None:
    expr = parse_schedule_expression(cron="0 0 * * *", timezone="America/New_York")
    tick = datetime(2026, 3, 9, 4, tzinfo=UTC)
    start, end = tick_window(expr, tick)
    assert (start, end) == (datetime(2026, 3, 8, 5, tzinfo=UTC), tick)
    assert end - start == timedelta(hours=23)


def test_window_parameters_as_dates_and_datetimes() -> None:
    expr = parse_schedule_expression(cron="0 0 * * *", timezone="America/New_York")
    tick = datetime(2026, 3, 9, 4, tzinfo=UTC)
    assert window_parameters(expr, tick, "start_date", "end_date", "Date") == {
        "start_date": "2026-03-08",
        "end_date": "2026-03-09",
    }
    assert window_parameters(expr, tick, "start", "end", "DateTime") == {
        "start": "2026-03-08T00:00:00-05:00",
        "end": "2026-03-09T00:00:00-04:00",
    }
    assert window_parameters(expr, tick, None, "end", "Date") == {"end": "2026-03-09"}
    with pytest.raises(ValueError, match=r"spec\.windowParameters\.format"):
        window_parameters(expr, tick, "start", "end", "Week")


def test_window_of_an_rrule_first_tick_is_empty() -> None:
    expr = parse_schedule_expression(rrule="DTSTART:20260101T000000\nRRULE:FREQ=DAILY")
    first = datetime(2026, 1, 1, tzinfo=UTC)
    assert tick_window(expr, first) == (first, first)
