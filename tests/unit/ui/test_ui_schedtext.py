"""A Schedule in words, and the month grid of its upcoming fire times."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from headwater.scheduling.expression import expression_from_spec
from headwater_operator.cli.preview import preview_ticks
from headwater_operator.ui.schedtext import describe_expression, month_grid


@pytest.mark.parametrize(("spec", "words"), [
    ({"cron": "0 6 * * 1-5"}, "at 06:00, on Monday through Friday"),
    ({"cron": "@daily"}, "at 00:00, every day"),
    ({"cron": "*/15 * * * *"}, "every 15 minutes"),
    ({"cron": "30 2 1 * *"}, "at 02:30, on day 1 of the month"),
    ({"cron": "0 */2 * * *"}, "at minute 0 past every 2 hours"),
    ({"cron": "0 9,17 * * MON-FRI"}, "at 09:00 and 17:00, on Monday through Friday"),
    ({"cron": "0 0 1 1,7 *"}, "at 00:00, on day 1 of the month, in January and July"),
    ({"cron": "* 3 * * *"}, "every minute from 03:00 through 03:59"),
    ({"cron": "0 0 13 * 5"}, "at 00:00, on day 13 of the month or on Friday"),
    ({"cron": "5 4 * * 0"}, "at 04:05, on Sunday"),
    ({"cron": "5 4 * * 7"}, "at 04:05, on Sunday"),
    ({"cron": "0 0 L * *"},
     "minute 0, hour 0, day-of-month L, month *, day-of-week * (cron)"),
    ({"interval": "1h30m"}, "every 1 hour 30 minutes"),
    ({"interval": "1d", "timezone": "Europe/Berlin"}, "every 1 day"),
    ({"interval": "15m", "anchorTime": "2024-01-01T00:05:00Z"},
     "every 15 minutes, counted from 2024-01-01 00:05:00"),
    ({"rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=6;BYMINUTE=0"},
     "every week on Monday, Wednesday and Friday at 06:00"),
    ({"rrule": "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=18"}, "every month on the last Friday at 18:00"),
    ({"rrule": "DTSTART:20260301T090000\nRRULE:FREQ=DAILY;INTERVAL=2;COUNT=5"},
     "every 2 days, 5 times in all, starting 2026-03-01 09:00"),
    ({"rrule": "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=1;BYHOUR=0"},
     "every year in March on the 1st at 00:00"),
])
def test_expressions_in_words(spec: dict[str, str], words: str) -> None:
    assert describe_expression(expression_from_spec(spec)) == words


def test_month_grid_places_ticks_on_their_local_day() -> None:
    zone = ZoneInfo("America/New_York")
    # 02:30 UTC on March 2 is still March 1 in New York.
    ticks = [datetime(2026, 3, 2, 2, 30, tzinfo=UTC), datetime(2026, 4, 10, 12, tzinfo=UTC)]
    months = month_grid(ticks, zone, date(2026, 3, 1))
    assert [m.title for m in months] == ["March 2026", "April 2026"]
    march = {cell.day: cell for week in months[0].weeks for cell in week if cell.day}
    assert march[date(2026, 3, 1)].times == ("21:30",)
    assert march[date(2026, 3, 1)].today
    assert march[date(2026, 3, 2)].times == ()
    assert all(len(week) == 7 for week in months[0].weeks)
    # March 2026 starts on a Sunday: six padding cells before it in a Monday-first week.
    assert [cell.day for cell in months[0].weeks[0]][:6] == [None] * 6
    april = {cell.day: cell for week in months[1].weeks for cell in week if cell.day}
    assert april[date(2026, 4, 10)].times == ("08:00",)


def test_month_grid_of_the_operators_next_ticks() -> None:
    schedule = {"metadata": {"name": "s"},
                "spec": {"cron": "0 6 * * 1-5", "timezone": "Europe/Berlin"}}
    now = datetime(2026, 3, 27, 12, tzinfo=UTC)  # a Friday; DST starts on the 29th
    rows = preview_ticks(schedule, None, 10, now)
    ticks = [datetime.fromisoformat(r["utc"].replace("Z", "+00:00")) for r in rows]
    months = month_grid(ticks, ZoneInfo("Europe/Berlin"), date(2026, 3, 27))
    cells = [c for m in months for w in m.weeks for c in w if c.times]
    assert len(cells) == 10
    assert {t for c in cells for t in c.times} == {"06:00"}
    assert all(c.day is not None and c.day.weekday() < 5 for c in cells)


def test_month_grid_stops_after_max_months_and_shows_at_least_this_month() -> None:
    ticks = [datetime(2027, 1, 1, tzinfo=UTC)]
    assert [m.title for m in month_grid(ticks, ZoneInfo("UTC"), date(2026, 3, 5))] == [
        "March 2026"]
    assert [m.title for m in month_grid([], ZoneInfo("UTC"), date(2026, 3, 5))] == [
        "March 2026"]
