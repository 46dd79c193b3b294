"""Prefect's fire times for schedule cases: the Prefect side of ``schedule_peers.py``.

Runs INSIDE ``benchmarks/.venv-prefect`` (never the repo's venv)::

    benchmarks/.venv-prefect/bin/python benchmarks/peers/prefect_dates.py < cases.json

stdin: a JSON list of cases, or ``{"cases": [...], "timing": bool}`` (timing defaults to
true). A case is ``{"id", "kind": "cron"|"interval"|"rrule", "expression", "timezone",
"anchor": naive local time | null, "start", "end"}`` plus an optional ``"ticks"`` (how
many consecutive next-fire-time calls to time; 2,000 by default).

stdout: ``{"engine": "prefect <version>", "results": [{"id", "fires": [...]} |
{"id", "unsupported": "why"}], "us_per_tick": {id: float}, "rounds": {id: int}}``
(``rounds``: how many of the best-of-5 timing rounds ran before the per-case budget of
30 s was spent).

Prefect is called as its server does: the scheduler service
(``prefect.server.services.scheduler``) creates runs through
``models.deployments._generate_scheduled_flow_runs``, which iterates
``schedule._get_dates_generator(n=..., start=..., end=...)`` of the server-side schedule
classes in ``prefect.server.schemas.schedules``. The public ``get_dates`` is an ``async``
wrapper that sorts that same generator's output, so the generator is what is called here.
Its ``start`` is inclusive; the cases ask for ``start < t <= end``, so ticks equal to
``start`` are dropped.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

from prefect.server.schemas.schedules import (  # type: ignore[import-not-found, unused-ignore]
    CronSchedule,
    IntervalSchedule,
    RRuleSchedule,
)

DEFAULT_TICKS = 2000
ROUNDS = 5
BUDGET_S = 30.0
HEADWATER_DEFAULT_ANCHOR = datetime(2000, 1, 1)
"""Headwater anchors an interval without ``anchorTime`` at 2000-01-01 00:00 local time;
Prefect's default would be "now", so the null anchor is given to Prefect explicitly to
compare the same ticks."""
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ONE_SECOND = timedelta(seconds=1)


class DateSource(Protocol):
    """The part of Prefect's server schedule classes used here."""

    def _get_dates_generator(
        self, n: int | None = None, start: datetime | None = None, end: datetime | None = None
    ) -> Iterator[datetime]: ...


def parse_duration(text: str) -> timedelta:
    """Headwater's interval form (``1h``, ``1d``, ``1h30m``) as a timedelta."""
    match = _DURATION.fullmatch(text.strip())
    if not match or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def build_schedule(case: dict[str, Any]) -> DateSource:
    """Prefect's server-side schedule object for one case."""
    kind, expression, zone = case["kind"], case["expression"], case["timezone"]
    if kind == "cron":
        return cast(DateSource, CronSchedule(cron=expression, timezone=zone))
    if kind == "rrule":
        return cast(DateSource, RRuleSchedule(rrule=expression, timezone=zone))
    if kind == "interval":
        wall = (datetime.fromisoformat(case["anchor"]) if case.get("anchor")
                else HEADWATER_DEFAULT_ANCHOR)
        anchor = wall.replace(tzinfo=ZoneInfo(zone))
        schedule = IntervalSchedule(interval=parse_duration(expression), anchor_date=anchor,
                                    timezone=zone)
        return cast(DateSource, schedule)
    raise ValueError(f"unknown kind {kind!r}")


def parse_instant(text: str) -> datetime:
    """An RFC 3339 instant (``Z`` allowed) as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def utc_text(instant: datetime) -> str:
    """``2026-03-08T07:00:00Z``: any aware datetime (stdlib or pendulum) in UTC."""
    moment = datetime.fromtimestamp(instant.timestamp(), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def window_fires(schedule: DateSource, start: datetime, end: datetime) -> list[str]:
    """Every tick with start < t <= end, as the scheduler service would list them."""
    ticks = [tick for tick in schedule._get_dates_generator(n=None, start=start, end=end)
             if start < tick <= end]
    return [utc_text(tick) for tick in sorted(ticks, key=lambda t: t.timestamp())]


def next_after(schedule: DateSource, after: datetime) -> datetime:
    """The first tick strictly after ``after`` (all cases tick on whole seconds)."""
    return next(iter(schedule._get_dates_generator(n=1, start=after + _ONE_SECOND)))


def us_per_tick(schedule: DateSource, start: datetime, ticks: int) -> tuple[float, int]:
    """Best of ROUNDS: microseconds per consecutive next-fire-time call, and the rounds run.

    Rounds stop early once BUDGET_S has been spent on the case (at least one round runs):
    Prefect's rrule walks from its 2020 DTSTART on every call, tens of ms per tick.
    """
    best = float("inf")
    spent = 0.0
    rounds = 0
    while rounds < ROUNDS and (rounds == 0 or spent < BUDGET_S):
        tick = start
        began = time.perf_counter()
        for _ in range(ticks):
            tick = next_after(schedule, tick)
        elapsed = time.perf_counter() - began
        spent += elapsed
        rounds += 1
        best = min(best, elapsed)
    return best / ticks * 1e6, rounds


def run(cases: list[dict[str, Any]], timing: bool) -> dict[str, Any]:
    """The adapter's answer for ``cases``."""
    results: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    rounds: dict[str, int] = {}
    for case in cases:
        try:
            schedule = build_schedule(case)
            start, end = parse_instant(case["start"]), parse_instant(case["end"])
            results.append({"id": case["id"], "fires": window_fires(schedule, start, end)})
        except Exception as error:  # any refusal is reported as unsupported
            results.append({"id": case["id"], "unsupported": f"{type(error).__name__}: "
                                                              f"{error}"})
            continue
        if timing:
            ticks = int(case.get("ticks") or DEFAULT_TICKS)
            timings[case["id"]], rounds[case["id"]] = us_per_tick(schedule, start, ticks)
    version = importlib.metadata.version("prefect")
    return {"engine": f"prefect {version}", "results": results, "us_per_tick": timings,
            "rounds": rounds}


def main() -> int:
    """Read cases from stdin, write the answer to stdout."""
    payload = json.load(sys.stdin)
    if isinstance(payload, list):
        cases, timing = payload, True
    else:
        cases, timing = payload["cases"], bool(payload.get("timing", True))
    json.dump(run(cases, timing), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
