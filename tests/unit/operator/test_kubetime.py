"""Kubernetes timestamps as the operator reads them: what the API server's ``date-time``
format accepts, the operator must be able to parse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from headwater_operator.kubetime import format_time, parse_time


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
