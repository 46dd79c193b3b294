"""A Schedule in words, and a month calendar of its upcoming fire times. Pure.

:func:`describe_expression` turns a validated
:class:`~headwater_operator.scheduling.ScheduleExpression` into a sentence
("at 06:00, Monday through Friday"; "every 15 minutes"; "weekly on Monday at 09:30").
It is written here rather than taken from a library (``cron-descriptor`` covers cron
only, and Headwater also has intervals and RFC 5545 rules): it reads the *canonical*
expression the operator parsed (macros expanded), so it never describes something the
operator would not run, and anything it does not recognise is described field by field
rather than guessed at. The zone is not part of the sentence; pages show it beside.

:func:`month_grid` lays fire times out as calendar months (weeks starting on Monday,
days in the schedule's zone), for an HTML table.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from headwater.scheduling.expression import DEFAULT_ANCHOR_WALL_TIME

from headwater_operator.scheduling import ScheduleExpression, ScheduleKind, wall_to_instant

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_DAY_NAMES = {name[:3].upper(): index for index, name in enumerate(_DAYS)}
_MONTHS = tuple(calendar.month_name)  # index 1..12
_MONTH_NAMES = {name[:3].upper(): index for index, name in enumerate(_MONTHS) if name}
_RRULE_DAYS = {"MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday",
               "FR": "Friday", "SA": "Saturday", "SU": "Sunday"}
_ITEM = re.compile(r"^(\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/([0-9]+))?$")


@dataclass(frozen=True)
class _Item:
    """One comma-separated part of a cron field: ``start[-end][/step]`` or ``*[/step]``."""

    start: int | None  # None: "*"
    end: int | None
    step: int | None


class _Unrecognised(ValueError):
    """A field uses syntax the describer does not put in words (``L``, ``#``, ``W``)."""


def _number(token: str, names: dict[str, int]) -> int:
    if token.isdigit():
        return int(token)
    found = names.get(token.upper())
    if found is None:
        raise _Unrecognised(token)
    return found


def _items(text: str, names: dict[str, int]) -> list[_Item]:
    items = []
    for part in text.split(","):
        match = _ITEM.match(part)
        if match is None:
            raise _Unrecognised(part)
        span, step = match.group(1), match.group(2)
        if span == "*":
            items.append(_Item(None, None, int(step) if step else None))
            continue
        low, _, high = span.partition("-")
        items.append(_Item(_number(low, names), _number(high, names) if high else None,
                           int(step) if step else None))
    return items


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _join(words: Sequence[str]) -> str:
    if len(words) <= 2:
        return " and ".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _values(items: list[_Item], low: int, high: int) -> list[int] | None:
    """The explicit values of a field, or None when it is "every" something."""
    values: list[int] = []
    for item in items:
        if item.start is None:
            return None
        end = item.end if item.end is not None else (high if item.step else item.start)
        values.extend(range(item.start, end + 1, item.step or 1))
    return sorted({v for v in values if low <= v <= high})


def _day_words(items: list[_Item]) -> str:
    parts = []
    for item in items:
        if item.start is None:
            parts.append(f"every {item.step}th day of the week" if item.step else "every day")
        elif item.end is not None and not item.step:
            parts.append(f"{_DAYS[item.start % 7]} through {_DAYS[item.end % 7]}")
        elif item.end is not None:
            parts.append(f"every {item.step}th day from {_DAYS[item.start % 7]} through "
                         f"{_DAYS[item.end % 7]}")
        else:
            parts.append(_DAYS[item.start % 7])
    return _join(parts)


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(
        number % 10, "th")
    return f"{number}{suffix}"


def _span_words(items: list[_Item], unit: str, names: Sequence[str] | None = None) -> str:
    parts = []
    for item in items:
        def show(value: int) -> str:
            return names[value] if names else str(value)
        if item.start is None:
            parts.append(f"every {_plural(item.step, unit)}" if item.step else f"every {unit}")
        elif item.end is not None:
            every = f"every {_plural(item.step, unit)} " if item.step else ""
            parts.append(f"{every}from {show(item.start)} through {show(item.end)}")
        elif item.step:
            parts.append(f"every {_plural(item.step, unit)} from {show(item.start)}")
        else:
            parts.append(show(item.start))
    return _join(parts)


def describe_cron(expression: str) -> str:
    """A canonical five-field cron expression in words."""
    minute, hour, dom, month, dow = expression.split()
    try:
        when = _cron_time(_items(minute, {}), _items(hour, {}))
        days = _cron_days(_items(dom, {}), _items(dow, _DAY_NAMES))
        months = _items(month, _MONTH_NAMES)
    except _Unrecognised:
        return (f"minute {minute}, hour {hour}, day-of-month {dom}, month {month}, "
                f"day-of-week {dow} (cron)")
    if not days and re.match(r"at \d\d:\d\d", when):
        days = "every day"
    text = when + (f", {days}" if days else "")
    month_values = _values(months, 1, 12)
    if month_values is None:
        if months[0].step:
            text += f", every {_plural(months[0].step, 'month')}"
    else:
        text += ", in " + _join([_MONTHS[m] for m in month_values])
    return text


def _cron_time(minutes: list[_Item], hours: list[_Item]) -> str:
    minute_values = _values(minutes, 0, 59)
    hour_values = _values(hours, 0, 23)
    if minute_values is not None and hour_values is not None:
        times = [f"{h:02d}:{m:02d}" for h in hour_values for m in minute_values]
        if len(times) <= 8:
            return "at " + _join(times)
    if minute_values is None and hour_values is None:
        step = minutes[0].step
        return (f"every {_plural(step, 'minute')}" if step and len(minutes) == 1
                else "every minute") + _hour_step(hours)
    if minute_values is None:
        step = minutes[0].step
        every = (f"every {_plural(step, 'minute')}" if step and len(minutes) == 1
                 else "every minute")
        assert hour_values is not None
        return f"{every} during hour {_span_words(hours, 'hour')}" if len(hour_values) > 1 \
            else f"{every} from {hour_values[0]:02d}:00 through {hour_values[0]:02d}:59"
    past = _join([str(m) for m in minute_values])
    minute_text = f"at minute {past}" if len(minute_values) == 1 else f"at minutes {past}"
    if hour_values is None:
        step = hours[0].step
        if step and len(hours) == 1 and hours[0].start is None:
            return f"{minute_text} past every {_plural(step, 'hour')}"
        return f"{minute_text} past every hour"
    return f"{minute_text} past hour {_span_words(hours, 'hour')}"


def _hour_step(hours: list[_Item]) -> str:
    if len(hours) == 1 and hours[0].start is None and hours[0].step:
        return f", every {_plural(hours[0].step, 'hour')}"
    return ""


def _cron_days(dom: list[_Item], dow: list[_Item]) -> str:
    any_dom = len(dom) == 1 and dom[0].start is None and not dom[0].step
    any_dow = len(dow) == 1 and dow[0].start is None and not dow[0].step
    dom_text = ("on day " + _span_words(dom, "day") + " of the month") if not any_dom else ""
    dow_text = ("on " + _day_words(dow)) if not any_dow else ""
    if dom_text and dow_text:  # cron runs when either matches
        return f"{dom_text} or {dow_text}"
    return dom_text or dow_text


def describe_interval(expr: ScheduleExpression) -> str:
    """``every 1 hour 30 minutes, aligned to 00:30`` (anchor in the schedule's zone)."""
    assert expr.interval is not None
    seconds = int(expr.interval.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [_plural(n, unit) for n, unit in ((days, "day"), (hours, "hour"),
                                              (minutes, "minute"), (secs, "second")) if n]
    text = "every " + " ".join(parts)
    if expr.anchor_time is not None and expr.anchor_time != wall_to_instant(
            DEFAULT_ANCHOR_WALL_TIME, expr.timezone):
        anchor = expr.anchor_time.astimezone(expr.timezone)
        text += f", counted from {anchor:%Y-%m-%d %H:%M:%S}"
    return text


def describe_rrule(canonical: str) -> str:
    """A canonical ``DTSTART…\\nRRULE:…`` rule in words; unknown parts are shown as written."""
    head, _, rule = canonical.rpartition("RRULE:")
    parts = dict(part.partition("=")[::2] for part in rule.split(";") if part)
    frequency = parts.pop("FREQ", "")
    interval = int(parts.pop("INTERVAL", "1") or 1)
    unit = {"YEARLY": "year", "MONTHLY": "month", "WEEKLY": "week", "DAILY": "day",
            "HOURLY": "hour", "MINUTELY": "minute", "SECONDLY": "second"}.get(frequency)
    if unit is None:
        return f"recurrence {rule}"
    text = f"every {_plural(interval, unit)}" if interval > 1 else f"every {unit}"
    if "BYMONTH" in parts:
        months = [_MONTHS[int(m)] for m in parts.pop("BYMONTH").split(",") if m.isdigit()]
        text += " in " + _join(months)
    if "BYMONTHDAY" in parts:
        days = [_ordinal(int(d)) if d.lstrip("-").isdigit() and int(d) > 0
                else f"{d} (from the end)" for d in parts.pop("BYMONTHDAY").split(",")]
        text += " on the " + _join(days)
    if "BYDAY" in parts:
        days = [_byday(d) for d in parts.pop("BYDAY").split(",")]
        text += " on " + _join(days)
    hours = parts.pop("BYHOUR", None)
    minutes = parts.pop("BYMINUTE", None)
    if hours is not None:
        hour_list = [int(h) for h in hours.split(",") if h.isdigit()]
        minute_list = [int(m) for m in (minutes or "0").split(",") if m.isdigit()]
        times = [f"{h:02d}:{m:02d}" for h in hour_list for m in minute_list]
        text += " at " + _join(times)
    elif minutes is not None:
        text += f" at minute {minutes} past the hour"
    if "COUNT" in parts:
        text += f", {_plural(int(parts.pop('COUNT')), 'time')} in all"
    if "UNTIL" in parts:
        text += f", until {parts.pop('UNTIL')}"
    parts.pop("BYSECOND", None)
    if parts:
        text += " (" + ";".join(f"{k}={v}" for k, v in parts.items()) + ")"
    start = head.strip().removeprefix("DTSTART:")
    if start and not start.startswith("20000101T000000"):
        text += f", starting {_ical_text(start)}"
    return text


def _ical_text(value: str) -> str:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%S").strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value


def _byday(token: str) -> str:
    match = re.fullmatch(r"([+-]?\d+)?([A-Z]{2})", token.upper())
    if match is None or match.group(2) not in _RRULE_DAYS:
        return token
    name = _RRULE_DAYS[match.group(2)]
    if match.group(1):
        number = int(match.group(1))
        return f"the {_ordinal(number)} {name}" if number > 0 else \
            f"the {'last' if number == -1 else _ordinal(-number) + ' last'} {name}"
    return name


def describe_expression(expr: ScheduleExpression) -> str:
    """The schedule in words (without its zone)."""
    if expr.kind is ScheduleKind.CRON:
        return describe_cron(expr.expression)
    if expr.kind is ScheduleKind.INTERVAL:
        return describe_interval(expr)
    return describe_rrule(expr.expression)


@dataclass(frozen=True)
class CalendarDay:
    """One cell of a month grid: a day of the month (or padding) and its fire times."""

    day: date | None
    times: tuple[str, ...] = ()
    today: bool = False


@dataclass(frozen=True)
class CalendarMonth:
    """A month as weeks (Monday first) of :class:`CalendarDay`."""

    year: int
    month: int
    weeks: tuple[tuple[CalendarDay, ...], ...]

    @property
    def title(self) -> str:
        """``March 2026``."""
        return f"{_MONTHS[self.month]} {self.year}"


WEEKDAY_HEADERS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def month_grid(ticks: Iterable[datetime], zone: ZoneInfo, today: date,
               max_months: int = 3) -> list[CalendarMonth]:
    """The months (from ``today``'s, at most ``max_months``) holding ``ticks``.

    Each tick is placed on its local day in ``zone`` and shown as ``HH:MM``; months with
    no tick after the first are still shown when a later month has one, so the grid has
    no holes.
    """
    by_day: dict[date, list[str]] = {}
    for tick in ticks:
        local = tick.astimezone(zone)
        by_day.setdefault(local.date(), []).append(f"{local:%H:%M}")
    first = today.replace(day=1)
    months_with_ticks = [(d.year - first.year) * 12 + d.month - first.month for d in by_day]
    last = max([m for m in months_with_ticks if 0 <= m < max_months], default=0)
    result = []
    cal = calendar.Calendar(firstweekday=0)
    for offset in range(last + 1):
        year, month = divmod(first.month - 1 + offset, 12)
        year, month = first.year + year, month + 1
        weeks = []
        for week in cal.monthdatescalendar(year, month):
            weeks.append(tuple(
                CalendarDay(day, tuple(by_day.get(day, ())), day == today)
                if day.month == month else CalendarDay(None) for day in week))
        result.append(CalendarMonth(year, month, tuple(weeks)))
    return result


