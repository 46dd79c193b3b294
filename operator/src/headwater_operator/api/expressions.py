"""Parsing and checking of schedule expressions: cron, interval durations, RRULEs, zones.

Pure functions shared by the models (to reject bad specs with a precise message) and the
scheduler (to compute fire times). Each ``check_*`` function returns the normalised value
or raises ``ValueError`` with a message that says what is wrong and shows a valid example.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from dateutil.rrule import rrule, rruleset, rrulestr

CRON_MACROS: frozenset[str] = frozenset(
    {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"}
)
"""Macros accepted in place of a five-field cron expression."""

INTERVAL_PATTERN = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
"""Shape of an interval string: days, hours, minutes, seconds, each optional, in order."""

_INTERVAL_RE = re.compile(INTERVAL_PATTERN)
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}

CRON_PATTERN = r"^(@[a-z]+|\S+(\s+\S+){4})$"
"""Coarse shape check used in the CRD (five fields or a macro); croniter does the rest."""


def parse_interval(text: str) -> timedelta:
    """Parse an interval such as ``90s``, ``15m``, ``1h30m`` or ``1d`` (a day is 24 h).

    >>> parse_interval("1h30m")
    datetime.timedelta(seconds=5400)
    """
    match = _INTERVAL_RE.fullmatch(text)
    if not text or match is None:
        raise ValueError(
            f"{text!r} is not a duration: use a number with units d, h, m, s in that "
            "order, e.g. '90s', '15m', '1h30m' or '1d'"
        )
    seconds = sum(int(part[:-1]) * _UNIT_SECONDS[part[-1]] for part in match.groups() if part)
    if seconds <= 0:
        raise ValueError(f"{text!r} must be greater than zero, e.g. '15m'")
    return timedelta(seconds=seconds)


def check_interval(text: str) -> str:
    """Return ``text`` unchanged when it is a valid, positive interval."""
    parse_interval(text)
    return text


def check_cron(expression: str) -> str:
    """Return ``expression`` (whitespace-normalised) when it is a valid cron expression.

    Five fields (minute hour day-of-month month day-of-week) or one of
    :data:`CRON_MACROS`, as Kubernetes CronJob accepts. Expressions that can never fire
    (``0 0 30 2 *``) are rejected too.
    """
    normalised = " ".join(expression.split())
    if normalised.startswith("@"):
        if normalised not in CRON_MACROS:
            raise ValueError(
                f"{expression!r} is not a cron macro; use one of {', '.join(sorted(CRON_MACROS))}"
            )
        return normalised
    if len(normalised.split(" ")) != 5 or not croniter.is_valid(normalised):
        raise ValueError(
            f"{expression!r} is not a valid cron expression: use five fields "
            "'minute hour day-of-month month day-of-week', e.g. '0 6 * * 1-5', or a macro "
            "such as '@daily'"
        )
    try:
        croniter(normalised, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError as exc:
        raise ValueError(f"cron expression {expression!r} never fires") from exc
    return normalised


def check_timezone(name: str) -> str:
    """Return ``name`` when it is an IANA time zone known to this Python (zoneinfo)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as 'UTC', "
            "'Europe/Berlin' or 'America/New_York'"
        ) from exc
    return name


def parse_rrule(text: str, dtstart: datetime | None = None) -> rrule | rruleset:
    """Parse an RFC 5545 recurrence rule (optionally with ``DTSTART``/``RRULE:`` lines)."""
    try:
        return rrulestr(text, dtstart=dtstart or datetime(2000, 1, 1, tzinfo=UTC))
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise ValueError(
            f"{text!r} is not a valid RFC 5545 recurrence rule ({exc}); "
            "e.g. 'FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=6;BYMINUTE=0'"
        ) from exc


def check_rrule(text: str) -> str:
    """Return ``text`` when it parses as a recurrence rule."""
    parse_rrule(text)
    return text
