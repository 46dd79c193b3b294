"""Parsing and validation of a Schedule's expression: ``cron``, ``interval`` or ``rrule``.

Everything downstream (the operator's reconciler, ``headwater schedule preview``,
``headwater backfill`` and the benchmark) works from one :class:`ScheduleExpression`,
built here from plain values rather than from the pydantic models, so the CLI can preview
a YAML file without a cluster and every caller computes exactly the same fire times.

Validation errors are :class:`ScheduleError`; the message always starts with the field
that is wrong (``spec.cron``, ``spec.timezone``, …) and says how to fix it, because the
operator copies it verbatim into the Schedule's ``Invalid`` condition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from dateutil.rrule import rrule, rrulestr

from headwater.scheduling.wallclock import local_wall_time, wall_to_instant

DEFAULT_ANCHOR_WALL_TIME = datetime(2000, 1, 1)
"""Local wall time that anchors intervals (and rrules without DTSTART) by default."""

CRON_MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_DAY = timedelta(days=1)
_INTERVAL_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ICAL_DATETIME_FORMATS = ("%Y%m%dT%H%M%S", "%Y%m%d")
_FIXED_FREQUENCIES = {
    "WEEKLY": timedelta(weeks=1),
    "DAILY": timedelta(days=1),
    "HOURLY": timedelta(hours=1),
    "MINUTELY": timedelta(minutes=1),
    "SECONDLY": timedelta(seconds=1),
}


class ScheduleError(ValueError):
    """A Schedule's expression or timezone is invalid; the message names the field."""

    def __init__(self, field_path: str, problem: str) -> None:
        super().__init__(f"{field_path}: {problem}")
        self.field_path = field_path
        """The offending field, e.g. ``spec.cron``: the condition reason names it."""


class ScheduleKind(StrEnum):
    """Which of the three mutually exclusive spec fields defines the ticks."""

    CRON = "cron"
    INTERVAL = "interval"
    RRULE = "rrule"


@dataclass(frozen=True)
class ScheduleExpression:
    """A validated, normalised schedule expression.

    ``expression`` is the canonical text (cron macros expanded, whitespace collapsed,
    intervals as written but validated), so cosmetic edits do not change
    :func:`~headwater_operator.scheduling.schedule_fingerprint`.
    ``anchor_time`` is the aware UTC instant that phases an ``interval`` (``None`` for
    cron and rrule); ``rrule`` DTSTART lives in the parsed rule itself.
    """

    kind: ScheduleKind
    expression: str
    timezone: ZoneInfo
    anchor_time: datetime | None = None
    interval: timedelta | None = field(default=None, compare=False, repr=False)
    rule: rrule | None = field(default=None, compare=False, repr=False, hash=False)
    rule_period: timedelta | None = field(default=None, compare=False, repr=False)
    """Fixed length of one rrule period (FREQ x INTERVAL), or None when the rule has
    COUNT or a calendar frequency (monthly, yearly): then it is never rebased."""

    @property
    def whole_days(self) -> bool:
        """True for an interval that is a whole number of days (keeps wall-clock time)."""
        return self.interval is not None and self.interval % _DAY == timedelta(0)


def parse_schedule_expression(
    cron: str | None = None,
    interval: str | None = None,
    rrule: str | None = None,
    timezone: str = "UTC",
    anchor_time: datetime | str | None = None,
) -> ScheduleExpression:
    """Validate a Schedule's spec values and return the expression the scheduler uses.

    Exactly one of ``cron``, ``interval`` and ``rrule`` must be given. ``anchor_time``
    applies to intervals only; a naive value (or one without an offset) is read in
    ``timezone``. Raises :class:`ScheduleError` naming the field and the fix.
    """
    given = [name for name, value in (("cron", cron), ("interval", interval), ("rrule", rrule))
             if value is not None]
    if len(given) != 1:
        found = ", ".join(f"spec.{name}" for name in given) or "none of them"
        raise ScheduleError(
            "spec", f"set exactly one of spec.cron, spec.interval or spec.rrule (found {found})"
        )
    tz = parse_timezone(timezone)
    if anchor_time is not None and interval is None:
        raise ScheduleError(
            "spec.anchorTime", f"applies only to spec.interval; remove it from this {given[0]} "
            "schedule"
        )
    if cron is not None:
        return ScheduleExpression(ScheduleKind.CRON, parse_cron(cron), tz)
    if interval is not None:
        step = parse_interval(interval)
        anchor = _resolve_anchor(anchor_time, tz)
        return ScheduleExpression(ScheduleKind.INTERVAL, interval.strip(), tz, anchor, step)
    assert rrule is not None
    text, rule = parse_rrule(rrule, tz)
    return ScheduleExpression(
        ScheduleKind.RRULE, text, tz, rule=rule, rule_period=_rrule_period(text)
    )


def parse_timezone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name`` or raise :class:`ScheduleError` on ``spec.timezone``."""
    hint = "use an IANA name such as 'UTC', 'Europe/Berlin' or 'America/New_York'"
    if not isinstance(name, str) or not name.strip():
        raise ScheduleError("spec.timezone", f"must not be empty; {hint}")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError("spec.timezone", f"unknown time zone {name!r}; {hint}") from None


def parse_cron(text: str) -> str:
    """Validate a 5-field cron expression or macro and return its canonical 5 fields."""
    stripped = " ".join(text.split())
    expanded = CRON_MACROS.get(stripped.lower(), stripped)
    if expanded.startswith("@"):
        macros = ", ".join(CRON_MACROS)
        raise ScheduleError("spec.cron", f"unknown macro {stripped!r}; use one of {macros}")
    fields = expanded.split(" ")
    if len(fields) != 5:
        raise ScheduleError(
            "spec.cron",
            f"{text!r} has {len(fields)} fields; write 5 (minute hour day-of-month month "
            "day-of-week), e.g. '30 2 * * *', or a macro such as @daily",
        )
    if not croniter.is_valid(expanded):
        raise ScheduleError(
            "spec.cron", f"{text!r} is not a valid cron expression; check each field's "
            "range (minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-7)"
        )
    try:
        croniter(expanded, DEFAULT_ANCHOR_WALL_TIME).get_next(datetime)
    except CroniterError:
        raise ScheduleError(
            "spec.cron", f"{text!r} never matches a real date (e.g. 30 February); fix the "
            "day-of-month and month fields"
        ) from None
    return expanded


def parse_interval(text: str) -> timedelta:
    """Parse a duration such as ``90s``, ``15m``, ``1h30m`` or ``1d`` (a day is 24h)."""
    compact = text.strip().lower() if isinstance(text, str) else ""
    match = _INTERVAL_RE.fullmatch(compact)
    if not compact or match is None:
        raise ScheduleError(
            "spec.interval", f"{text!r} is not a duration; write e.g. '90s', '15m', '1h30m' "
            "or '1d' (units d, h, m, s in that order)"
        )
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    step = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if step <= timedelta(0):
        raise ScheduleError("spec.interval", f"{text!r} must be longer than zero, e.g. '1m'")
    return step


def parse_rrule(text: str, tz: ZoneInfo) -> tuple[str, rrule]:
    """Parse an RFC 5545 recurrence (``RRULE:`` line, optional ``DTSTART``).

    The rule is built over *naive local wall times* in ``tz``: the scheduler maps each
    occurrence to an instant with the same DST rules as cron. A DTSTART with ``Z`` or
    ``TZID`` is converted to the schedule's zone; a naive one is read in it. Without
    DTSTART the rule starts at 2000-01-01T00:00 local, which supplies the defaults
    RFC 5545 takes from DTSTART (time of day, weekday, day of month).
    """
    lines = [line.strip() for line in text.replace("\\n", "\n").splitlines() if line.strip()]
    dtstart = DEFAULT_ANCHOR_WALL_TIME
    rule_values: list[str] = []
    for line in lines:
        name = re.split(r"[:;]", line, maxsplit=1)[0].upper()
        if name == "DTSTART":
            dtstart = _parse_dtstart(line, tz)
        elif name == "RRULE":
            rule_values.append(line.split(":", 1)[1] if ":" in line else "")
        elif name.startswith("FREQ=") or "FREQ=" in line.upper():
            rule_values.append(line)
        else:
            raise ScheduleError(
                "spec.rrule", f"unsupported line {line!r}; only DTSTART and one RRULE are "
                "allowed, e.g. 'RRULE:FREQ=DAILY;BYHOUR=2;BYMINUTE=30'"
            )
    if len(rule_values) != 1:
        raise ScheduleError(
            "spec.rrule", f"found {len(rule_values)} RRULE lines; write exactly one, e.g. "
            "'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9'"
        )
    value = _localise_until(rule_values[0].strip(), tz)
    try:
        rule = rrulestr(f"RRULE:{value}", dtstart=dtstart)
    except (ValueError, TypeError) as exc:
        raise ScheduleError(
            "spec.rrule", f"{value!r} is not a valid RFC 5545 rule: {exc}"
        ) from None
    if not isinstance(rule, rrule):
        raise ScheduleError("spec.rrule", "must be a single RRULE, not a set")
    canonical = f"DTSTART:{dtstart:%Y%m%dT%H%M%S}\nRRULE:{value.upper()}"
    return canonical, rule


def _rrule_period(canonical: str) -> timedelta | None:
    """The fixed period of a canonical rule, or None if it must not be rebased."""
    value = canonical.rsplit("RRULE:", 1)[1]
    parts = dict(part.partition("=")[::2] for part in value.split(";"))
    unit = _FIXED_FREQUENCIES.get(parts.get("FREQ", ""))
    if unit is None or "COUNT" in parts:
        return None
    return unit * int(parts.get("INTERVAL", "1") or 1)


def _parse_dtstart(line: str, tz: ZoneInfo) -> datetime:
    """Turn a DTSTART line into a naive wall time in ``tz``."""
    head, _, value = line.partition(":")
    params = dict(
        part.split("=", 1) for part in head.split(";")[1:] if "=" in part
    )
    utc = value.endswith("Z")
    parsed = _parse_ical_datetime(value.removesuffix("Z"), "spec.rrule")
    if utc:
        return local_wall_time(parsed.replace(tzinfo=UTC), tz)
    if "TZID" in params:
        source = parse_timezone(params["TZID"])
        return local_wall_time(wall_to_instant(parsed, source), tz)
    return parsed


def _localise_until(value: str, tz: ZoneInfo) -> str:
    """Rewrite a UTC ``UNTIL=…Z`` as a naive local wall time so it matches DTSTART."""
    parts = value.split(";")
    for index, part in enumerate(parts):
        key, _, until = part.partition("=")
        if key.upper() == "UNTIL" and until.upper().endswith("Z"):
            instant = _parse_ical_datetime(until[:-1], "spec.rrule").replace(tzinfo=UTC)
            parts[index] = f"UNTIL={local_wall_time(instant, tz):%Y%m%dT%H%M%S}"
    return ";".join(parts)


def _parse_ical_datetime(value: str, field_path: str) -> datetime:
    for fmt in _ICAL_DATETIME_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ScheduleError(
        field_path, f"{value!r} is not an iCalendar date-time; write e.g. 20260308T023000"
    )


def _resolve_anchor(anchor_time: datetime | str | None, tz: ZoneInfo) -> datetime:
    """Return the interval's anchor as an aware UTC instant."""
    if anchor_time is None:
        return wall_to_instant(DEFAULT_ANCHOR_WALL_TIME, tz)
    value: Any = anchor_time
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ScheduleError(
                "spec.anchorTime", f"{anchor_time!r} is not an RFC 3339 time; write e.g. "
                "'2026-01-01T09:00:00+01:00' or '2026-01-01T09:00:00' (read in spec.timezone)"
            ) from None
    if value.tzinfo is None:
        return wall_to_instant(value, tz)
    instant: datetime = value.astimezone(UTC)
    return instant


EXPRESSION_FIELDS = ("cron", "interval", "rrule", "timezone", "anchorTime")
"""The spec fields :func:`expression_from_spec` reads."""


def expression_from_spec(spec: Mapping[str, Any]) -> ScheduleExpression:
    """The :class:`ScheduleExpression` of a Schedule spec in wire form (camelCase)."""
    return parse_schedule_expression(
        cron=spec.get("cron"), interval=spec.get("interval"), rrule=spec.get("rrule"),
        timezone=spec.get("timezone") or "UTC", anchor_time=spec.get("anchorTime"),
    )
