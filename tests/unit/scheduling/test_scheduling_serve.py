"""``flow.serve()`` fires when the operator would: the same schedule, the same instants.

serve()'s ticks (:func:`headwater.serve.upcoming`) are compared with what the operator's
Schedule controller computes (``headwater_operator.scheduling.fire_times``, re-exported
from ``headwater.scheduling``) for the Schedule manifest ``flow.deploy()`` writes for the
same Prefect arguments, across both 2026 DST changes in America/New_York; the expected
instants are also written out, so a change to the shared rules shows up here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest
from headwater import flow
from headwater.deployments import DeployRequest, collect_schedules
from headwater.schedules import Cron, Interval, RRule, Schedule
from headwater.serve import served_schedules, upcoming
from headwater_operator.api import Schedule as ScheduleResource
from headwater_operator.api import parse_resource
from headwater_operator.scheduling import expression_from_spec, fire_times


@flow
def nightly(n: int = 1) -> int:
    return n


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def operator_ticks(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """What the operator fires for the Schedule that deploy() writes for ``schedule``."""
    request = DeployRequest(flow=nightly, entrypoint="flows.py:nightly", name="nightly",
                            image="ghcr.io/acme/etl:1", schedules=(schedule,))
    manifest = request.schedule_manifests()[0]
    resource = parse_resource(manifest)  # the operator's own model accepts it
    assert isinstance(resource, ScheduleResource)
    return list(fire_times(expression_from_spec(manifest["spec"]), start, end))


def served_ticks(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    served = served_schedules("nightly", [schedule], {})
    ticks = []
    for tick, _ in upcoming(served, start):
        if tick > end:
            return ticks
        ticks.append(tick)
    return ticks


SPRING = (utc("2026-03-06T00:00"), utc("2026-03-10T00:00"))
FALL = (utc("2026-10-30T00:00"), utc("2026-11-03T00:00"))


@pytest.mark.parametrize(("schedule", "window", "expected"), [
    # 02:30 does not exist on 8 March: it fires at the gap's end, 03:00 EDT (07:00Z).
    (Cron("30 2 * * *", timezone="America/New_York"), SPRING,
     ["2026-03-06T07:30", "2026-03-07T07:30", "2026-03-08T07:00", "2026-03-09T06:30"]),
    # 01:30 happens twice on 1 November: it fires once, at the first (EDT, 05:30Z).
    (Cron("30 1 * * *", timezone="America/New_York"), FALL,
     ["2026-10-30T05:30", "2026-10-31T05:30", "2026-11-01T05:30", "2026-11-02T06:30"]),
    # A whole-day interval keeps the wall-clock time (local midnight) across the change.
    (Interval(timedelta(days=1), timezone="America/New_York"), SPRING,
     ["2026-03-06T05:00", "2026-03-07T05:00", "2026-03-08T05:00", "2026-03-09T04:00"]),
    (RRule("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", timezone="America/New_York"), SPRING,
     ["2026-03-06T07:30", "2026-03-07T07:30", "2026-03-08T07:00", "2026-03-09T06:30"]),
])
def test_serve_fires_at_the_instants_the_operator_computes(
        schedule: Schedule, window: tuple[datetime, datetime], expected: list[str]) -> None:
    served = served_ticks(schedule, *window)
    assert served == operator_ticks(schedule, *window)
    assert served == [utc(text) for text in expected]


def test_one_second_interval_ticks_every_whole_second_as_in_the_cluster() -> None:
    start = utc("2026-12-07T20:00:00.400000")
    schedule = collect_schedules(interval=1)[0]
    served = served_ticks(schedule, start, start + timedelta(seconds=3))
    assert served == operator_ticks(schedule, start, start + timedelta(seconds=3))
    assert served == [utc("2026-12-07T20:00:01"), utc("2026-12-07T20:00:02"),
                      utc("2026-12-07T20:00:03")]


def test_several_schedules_interleave_in_time_with_their_own_parameters() -> None:
    served = served_schedules("etl", [Cron("0 * * * *", parameters={"full": False}),
                                      Cron("0 0 * * *", parameters={"full": True},
                                           slug="daily")], {"full": None, "n": 3})
    ticks = list(islice(upcoming(served, utc("2026-12-07T22:30")), 4))
    assert [(tick, s.name, dict(s.parameters)) for tick, s in ticks] == [
        (utc("2026-12-07T23:00"), "etl-1", {"full": False, "n": 3}),
        (utc("2026-12-08T00:00"), "etl-1", {"full": False, "n": 3}),
        (utc("2026-12-08T00:00"), "etl-daily", {"full": True, "n": 3}),
        (utc("2026-12-08T01:00"), "etl-1", {"full": False, "n": 3}),
    ]


def test_an_inactive_schedule_never_fires() -> None:
    served = served_schedules("etl", [Cron("0 * * * *", active=False),
                                      Cron("30 * * * *")], {})
    ticks = list(islice(upcoming(served, utc("2026-12-07T22:00")), 2))
    assert [tick for tick, _ in ticks] == [utc("2026-12-07T22:30"), utc("2026-12-07T23:30")]
