"""headwater.schedules (Prefect 3's Cron, Interval, RRule), and what serve/deploy refuse."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from headwater import flow
from headwater.loader import load_flow
from headwater.schedules import Cron, Interval, RRule, Schedule


def test_constructors_take_prefect_s_arguments() -> None:
    cron = Cron("0 6 * * 1-5", timezone="Europe/Paris", day_or=False, active=False,
                parameters={"region": "eu"}, slug="weekday-mornings")
    assert (cron.cron, cron.timezone, cron.day_or, cron.active, cron.parameters, cron.slug) == (
        "0 6 * * 1-5", "Europe/Paris", False, False, {"region": "eu"}, "weekday-mornings")
    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    assert Interval(90, anchor_date=anchor).interval == timedelta(seconds=90)
    assert Interval(timedelta(hours=1)).anchor_date is None  # Headwater's default phase
    assert RRule("RRULE:FREQ=WEEKLY;BYDAY=MO", timezone="UTC").rrule == \
        "RRULE:FREQ=WEEKLY;BYDAY=MO"
    assert Cron("@daily").parameters == {}
    with pytest.raises(TypeError):
        Cron(cron="0 6 * * *")  # type: ignore[misc]  # positional-only, as in Prefect


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Cron("0 6 * *"), "must have five fields"),
    (lambda: Cron("0 6 * * *", timezone="Mars/Olympus"), "is not an IANA time zone"),
    (lambda: RRule("every day"), "must be an RFC 5545 rule"),
    (lambda: Interval(0), "interval must be positive"),
    (lambda: Interval("1h"), "a timedelta or a number of seconds"),
    (lambda: Schedule(cron="* * * * *", rrule="RRULE:FREQ=DAILY"), "exactly one of"),
])
def test_malformed_schedules_say_what_is_wrong(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_serve_without_a_schedule_and_deploy_without_an_image_say_what_is_missing() -> None:
    @flow
    def nightly() -> None:
        pass

    with pytest.raises(ValueError, match=r"serve\(\) needs an active schedule"):
        nightly.serve(name="nightly")
    with pytest.raises(ValueError, match=r"deploy\(\) needs image="), \
            pytest.warns(UserWarning, match="work_pool_name='k8s' is ignored"):
        nightly.deploy(name="nightly", work_pool_name="k8s")


def test_a_file_written_for_serve_is_a_valid_entrypoint(tmp_path: Path) -> None:
    path = tmp_path / "served.py"
    path.write_text(textwrap.dedent("""
        from datetime import timedelta

        from headwater import flow
        from headwater.schedules import Cron, Interval

        @flow
        def refresh(n: int = 2) -> int:
            return n * 2

        if __name__ == "__main__":
            refresh.serve(name="refresh", schedules=[Cron("*/5 * * * *"),
                                                     Interval(timedelta(hours=1))])
    """))
    loaded = load_flow(f"{path}:refresh")
    assert loaded(n=4) == 8
