"""Kubernetes timestamps as the operator reads them: what the API server's ``date-time``
format accepts, the operator must be able to parse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from headwater_operator.kubetime import format_micro_time, format_time, parse_time


@pytest.mark.parametrize("text", [
    "2024-05-01T06:00:00Z", "2024-05-01t06:00:00z", "2024-05-01T08:00:00+02:00",
    "2024-05-01T06:00:00.000Z",
])
def test_rfc3339_timestamps_parse_to_utc(text: str) -> None:
    # RFC 3339 letters are case-insensitive and the server's format check takes them.
    assert parse_time(text) == datetime(2024, 5, 1, 6, tzinfo=UTC)


def test_empty_is_none_and_formatting_round_trips() -> None:
    assert parse_time(None) is None
    assert parse_time("") is None
    moment = datetime(2024, 5, 1, 6, 30, 15, 999, tzinfo=UTC)
    assert format_time(moment) == "2024-05-01T06:30:15Z"
    assert parse_time(format_time(moment)) == moment.replace(microsecond=0)


def test_micro_time_is_written_as_the_api_server_writes_it_and_read_back() -> None:
    # A Lease's renewTime: six fractional digits, UTC, "Z" (metav1.MicroTime's
    # RFC3339Micro), whatever offset the datetime had.
    moment = datetime(2026, 11, 22, 4, 0, 0, 123456, tzinfo=UTC)
    east = moment.astimezone(timezone(timedelta(hours=2)))
    assert format_micro_time(moment) == "2026-11-22T04:00:00.123456Z"
    assert format_micro_time(east) == "2026-11-22T04:00:00.123456Z"
    assert format_micro_time(moment.replace(microsecond=0)) == "2026-11-22T04:00:00.000000Z"
    assert parse_time(format_micro_time(east)) == moment


def test_times_are_written_in_utc_with_a_z_whatever_their_offset() -> None:
    # A status compared byte for byte with the stored one must not differ by notation.
    west = datetime(2024, 5, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert format_time(west) == "2024-05-01T06:00:00Z"


def test_naive_values_are_taken_as_utc() -> None:
    naive = datetime(2024, 5, 1, 6)
    assert parse_time("2024-05-01T06:00:00") == datetime(2024, 5, 1, 6, tzinfo=UTC)
    assert parse_time(naive) == datetime(2024, 5, 1, 6, tzinfo=UTC)
    assert format_time(naive) == "2024-05-01T06:00:00Z"
    assert format_micro_time(naive) == "2024-05-01T06:00:00.000000Z"


def test_an_aware_datetime_is_normalised_to_utc() -> None:
    east = datetime(2024, 5, 1, 8, tzinfo=timezone(timedelta(hours=2)))
    parsed = parse_time(east)
    assert parsed == datetime(2024, 5, 1, 6, tzinfo=UTC)
    assert parsed is not None
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01T00:00:00Z", "12:00"])
def test_text_that_is_not_a_timestamp_is_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is Python's own
        parse_time(text)
