"""Schedule-expression checks for the API models, delegating to the scheduler's parser.

The models and the operator must agree exactly on what a valid ``cron``, ``interval``,
``rrule`` and ``timezone`` are: a Schedule that passes ``kubectl apply`` (or the offline
validator) and is then marked ``Invalid`` by the scheduler would be a trap. So there is
one parser, :mod:`headwater.scheduling.expression`, and this module only adapts
its :class:`ScheduleError` (whose message starts with the field path) to the plain
``ValueError`` that pydantic expects (pydantic adds the field path itself).

The two regular expressions below are the coarse shape checks written into the CRD
schema, so ``kubectl`` rejects the obvious typos before the object is stored.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule
from headwater.scheduling.expression import (
    CRON_MACROS,
    ScheduleError,
    parse_cron,
    parse_timezone,
)
from headwater.scheduling.expression import parse_interval as _parse_interval
from headwater.scheduling.expression import parse_rrule as _parse_rrule

__all__ = [
    "CRON_MACROS",
    "CRON_PATTERN",
    "INTERVAL_PATTERN",
    "check_cron",
    "check_interval",
    "check_rrule",
    "check_timezone",
    "parse_interval",
    "parse_rrule",
]

INTERVAL_PATTERN = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
"""Shape of an interval string: days, hours, minutes, seconds, each optional, in order."""

CRON_PATTERN = r"^(@[a-z]+|\S+(\s+\S+){4})$"
"""Coarse shape check used in the CRD (five fields or a macro); the parser does the rest."""


def _problem(exc: ScheduleError) -> ValueError:
    """The scheduler's message without its field prefix (pydantic prefixes the location)."""
    return ValueError(str(exc).removeprefix(f"{exc.field_path}: "))


def parse_interval(text: str) -> timedelta:
    """Parse an interval such as ``90s``, ``15m``, ``1h30m`` or ``1d`` (a day is 24 h)."""
    try:
        return _parse_interval(text)
    except ScheduleError as exc:
        raise _problem(exc) from None


def check_interval(text: str) -> str:
    """Return ``text`` unchanged when it is a valid, positive interval."""
    parse_interval(text)
    return text


def check_cron(expression: str) -> str:
    """Return ``expression`` (whitespace-normalised) when it is a valid cron expression.

    Five fields (minute hour day-of-month month day-of-week) or a macro such as
    ``@daily``, as Kubernetes CronJob accepts; expressions that never fire are rejected.
    """
    try:
        parse_cron(expression)
    except ScheduleError as exc:
        raise _problem(exc) from None
    return " ".join(expression.split())


def check_timezone(name: str) -> str:
    """Return ``name`` when it is an IANA time zone known to this Python (zoneinfo)."""
    try:
        parse_timezone(name)
    except ScheduleError as exc:
        raise _problem(exc) from None
    return name


def parse_rrule(text: str, tz: ZoneInfo | None = None) -> rrule:
    """Parse an RFC 5545 recurrence (optionally with a ``DTSTART`` line) in zone ``tz``."""
    try:
        return _parse_rrule(text, tz or ZoneInfo("UTC"))[1]
    except ScheduleError as exc:
        raise _problem(exc) from None


def check_rrule(text: str) -> str:
    """Return ``text`` when it parses as a single recurrence rule."""
    parse_rrule(text)
    return text
