"""Fire times across daylight-saving changes, side by side: Headwater, Prefect, robfig/cron.

Run from the repository root::

    .venv/bin/python benchmarks/schedule_peers.py            # verdicts + cost per tick
    .venv/bin/python benchmarks/schedule_peers.py --quick    # verdicts only, no timing
    .venv/bin/python benchmarks/schedule_peers.py --json out.json

For the same cases (New York's and Berlin's 2026 changes, a leap-day cron) it lists every
fire time of each engine in a UTC window covering the local day before, of and after the
change, and judges each engine against the rules Headwater documents
(docs/scheduling.md, "Daylight-saving time"):

* cron, rrule and whole-day intervals: exactly one fire per local day the expression
  names, at the named wall time; at the end of the gap when that time does not exist; at
  its first occurrence when it exists twice;
* intervals shorter than a day: exact spacing in absolute time from the anchor.

The expected instants are computed here, independently of Headwater's code: a named wall
time fires at the first instant at which the local clock shows that time *or later*
(found by scanning UTC minutes), which is the named time itself, the gap's end, or the
first of two occurrences; named times that land on the same instant fire once.

Engines:

* Headwater: ``headwater_operator.scheduling`` in-process (``parse_schedule_expression``
  and ``fire_times`` / ``next_fire_time``, the operator's own code);
* Prefect: ``benchmarks/peers/prefect_dates.py`` in ``benchmarks/.venv-prefect`` (installed
  on first use by ``sdk_overhead.py``'s helper from ``requirements-prefect.txt``), JSON
  cases on stdin, JSON answer on stdout;
* robfig/cron (Kubernetes CronJob, Argo): ``benchmarks/peers/robfig_peer.py`` when present
  and built; otherwise reported as not available.

Cost per tick: microseconds per consecutive next-fire-time call from the window's start,
best of 5 rounds of 2,000 ticks (20 for the leap-day cron: 2,000 leap days would run past
the year 9999). The markdown report goes to stdout, progress to stderr, everything to
``benchmarks/results/schedule_peers-<UTC time>.json`` (or ``--json PATH``).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from headwater_operator.scheduling import (
    ScheduleExpression,
    fire_times,
    next_fire_time,
    parse_interval,
    parse_schedule_expression,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PREFECT_ADAPTER = BENCH_DIR / "peers" / "prefect_dates.py"
ROBFIG_ADAPTER = BENCH_DIR / "peers" / "robfig_peer.py"
ROBFIG_HINT = "needs Go and robfig/cron v3: bash benchmarks/peers/install_robfig.sh"

TICKS = 2000
LEAP_TICKS = 20
ROUNDS = 5
HEADWATER_DEFAULT_ANCHOR = datetime(2000, 1, 1)
"""Headwater's anchor (local wall time) for an interval or rrule that names none."""
ENGINES = ("headwater", "prefect", "robfig")
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)

LogFn = Callable[[str], None]


# --- cases -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One schedule and its window, in the shared adapter format."""

    id: str
    group: str
    kind: str
    expression: str
    timezone: str
    start: datetime
    end: datetime
    anchor: str | None = None
    ticks: int = TICKS

    def as_json(self) -> dict[str, Any]:
        """The shared format both peer adapters read."""
        return {"id": self.id, "kind": self.kind, "expression": self.expression,
                "timezone": self.timezone, "anchor": self.anchor,
                "start": utc_text(self.start), "end": utc_text(self.end),
                "ticks": self.ticks}


def local_midnight(day: date, zone: str) -> datetime:
    """The UTC instant of local midnight starting ``day`` in ``zone``."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def around(day: date, zone: str) -> tuple[datetime, datetime]:
    """UTC window from local midnight of the day before to the end of the day after."""
    return local_midnight(day - DAY, zone), local_midnight(day + 2 * DAY, zone)


def hours_of(day: date, zone: str, first: int, last: int) -> tuple[datetime, datetime]:
    """UTC window from local ``first``:00 to ``last``:00 on ``day`` (both existing)."""
    tz = ZoneInfo(zone)
    begin = datetime(day.year, day.month, day.day, first, tzinfo=tz)
    finish = datetime(day.year, day.month, day.day, last, tzinfo=tz)
    return begin.astimezone(UTC), finish.astimezone(UTC)


def build_cases() -> list[Case]:
    """The cases of the brief, grouped by change."""
    ny, berlin = "America/New_York", "Europe/Berlin"
    spring, fall = date(2026, 3, 8), date(2026, 11, 1)
    cases: list[Case] = []

    group = ""

    def add(key: str, kind: str, expression: str, zone: str,
            window: tuple[datetime, datetime], *, anchor: str | None = None,
            ticks: int = TICKS) -> None:
        cases.append(Case(key, group, kind, expression, zone, window[0], window[1], anchor,
                          ticks))

    group = "America/New_York spring forward (8 Mar 2026)"
    add("ny-spring-cron-0200", "cron", "0 2 * * *", ny, around(spring, ny))
    add("ny-spring-cron-0230", "cron", "30 2 * * *", ny, around(spring, ny))
    add("ny-spring-cron-every15", "cron", "*/15 * * * *", ny, hours_of(spring, ny, 0, 5))
    add("ny-spring-cron-0900", "cron", "0 9 * * *", ny, around(spring, ny))
    add("ny-spring-interval-1h", "interval", "1h", ny, around(spring, ny))
    add("ny-spring-interval-1d", "interval", "1d", ny, around(spring, ny),
        anchor="2026-01-01T02:30:00")
    add("ny-spring-rrule-0230", "rrule", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", ny,
        around(spring, ny))

    group = "America/New_York fall back (1 Nov 2026)"
    add("ny-fall-cron-0130", "cron", "30 1 * * *", ny, around(fall, ny))
    add("ny-fall-cron-0100", "cron", "0 1 * * *", ny, around(fall, ny))
    add("ny-fall-cron-every15", "cron", "*/15 * * * *", ny, hours_of(fall, ny, 0, 3))
    add("ny-fall-cron-0900", "cron", "0 9 * * *", ny, around(fall, ny))
    add("ny-fall-interval-1h", "interval", "1h", ny, around(fall, ny))
    add("ny-fall-rrule-0130", "rrule", "FREQ=DAILY;BYHOUR=1;BYMINUTE=30", ny,
        around(fall, ny))

    group = "Europe/Berlin (29 Mar and 25 Oct 2026)"
    add("berlin-spring-cron-0230", "cron", "30 2 * * *", berlin,
        around(date(2026, 3, 29), berlin))
    add("berlin-fall-cron-0230", "cron", "30 2 * * *", berlin,
        around(date(2026, 10, 25), berlin))

    group = "Leap day (UTC, 2027-01-01 to 2029-01-01)"
    add("utc-leap-day-cron", "cron", "0 0 29 2 *", "UTC",
        (datetime(2027, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC)),
        ticks=LEAP_TICKS)
    return cases


# --- times ---------------------------------------------------------------------------


def utc_text(instant: datetime) -> str:
    """``2026-03-08T07:00:00Z``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str) -> datetime:
    """An RFC 3339 instant as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def wall_of(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive local wall time ``instant`` shows in ``tz``."""
    return instant.astimezone(tz).replace(tzinfo=None)


def local_label(instant: datetime, zone: str, with_day: bool = True) -> str:
    """``8 Mar 03:00 EDT`` (or without the day)."""
    local = instant.astimezone(ZoneInfo(zone))
    clock = f"{local:%H:%M} {local.tzname()}"
    return f"{local.day} {local:%b} {clock}" if with_day else clock


def first_showing(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant at which the local clock shows ``wall`` or later.

    Scans UTC in 15-minute steps from 15 h before (no UTC offset is larger), then in
    minutes (every transition in these zones falls on a whole minute).
    """
    probe = wall.replace(tzinfo=UTC) - timedelta(hours=15)
    step = timedelta(minutes=15)
    while wall_of(probe, tz) < wall:
        probe += step
    candidate = probe - step + MINUTE
    while wall_of(candidate, tz) < wall:
        candidate += MINUTE
    return candidate


# --- the rules: expected fires --------------------------------------------------------


def cron_field(text: str, low: int, high: int) -> set[int]:
    """The values one cron field names (``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n``, lists)."""
    values: set[int] = set()
    for part in text.split(","):
        span, _, stride = part.partition("/")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (int(x) for x in span.split("-"))
        else:
            first = last = int(span)
            if stride:
                last = high
        values.update(range(first, last + 1, int(stride or 1)))
    return values


def cron_walls(expression: str, first_day: date, last_day: date) -> list[datetime]:
    """Naive wall times a 5-field cron names on local days ``first_day..last_day``."""
    minute, hour, dom, month, dow = expression.split()
    minutes, hours = cron_field(minute, 0, 59), cron_field(hour, 0, 23)
    doms, months = cron_field(dom, 1, 31), cron_field(month, 1, 12)
    dows = {d % 7 for d in cron_field(dow, 0, 7)}
    walls: list[datetime] = []
    day = first_day
    while day <= last_day:
        dom_ok, dow_ok = day.day in doms, (day.isoweekday() % 7) in dows
        # Standard cron: when both day fields are restricted, either may match.
        both = dom != "*" and dow != "*"
        if day.month in months and ((dom_ok or dow_ok) if both else (dom_ok and dow_ok)):
            walls.extend(datetime(day.year, day.month, day.day, h, m)
                         for h in sorted(hours) for m in sorted(minutes))
        day += DAY
    return walls


def named_walls(case: Case, tz: ZoneInfo) -> list[datetime]:
    """Every naive local wall time the expression names near the window (a day's margin)."""
    low = wall_of(case.start, tz) - DAY
    high = wall_of(case.end, tz) + DAY
    if case.kind == "cron":
        return cron_walls(case.expression, low.date(), high.date())
    if case.kind == "rrule":
        rule = rrulestr(case.expression, dtstart=HEADWATER_DEFAULT_ANCHOR)
        return list(rule.between(low, high, inc=True))
    anchor = datetime.fromisoformat(case.anchor) if case.anchor else HEADWATER_DEFAULT_ANCHOR
    step = interval_seconds(case.expression)
    first = (low - anchor) // timedelta(seconds=step)
    walls: list[datetime] = []
    wall = anchor + first * timedelta(seconds=step)
    while wall <= high:
        walls.append(wall)
        wall += timedelta(seconds=step)
    return walls


def interval_seconds(text: str) -> int:
    """Headwater's interval form (``1h``, ``1d``, ``1h30m``) in seconds, as the scheduler
    reads it."""
    return int(parse_interval(text).total_seconds())


def expected_fires(case: Case) -> tuple[list[datetime], str]:
    """Fires Headwater's documented rules call for, and which rule applies."""
    tz = ZoneInfo(case.timezone)
    if case.kind == "interval" and interval_seconds(case.expression) % 86400:
        step = timedelta(seconds=interval_seconds(case.expression))
        anchor_wall = (datetime.fromisoformat(case.anchor) if case.anchor
                       else HEADWATER_DEFAULT_ANCHOR)
        anchor = first_showing(anchor_wall, tz)
        tick = anchor + ((case.start - anchor) // step + 1) * step
        fires: list[datetime] = []
        while tick <= case.end:
            fires.append(tick)
            tick += step
        return fires, "exact spacing"
    instants = sorted({first_showing(wall, tz) for wall in named_walls(case, tz)})
    return [t for t in instants if case.start < t <= case.end], "wall clock"


# --- verdicts --------------------------------------------------------------------------


def verdict(case: Case, fires: list[datetime], expected: list[datetime], rule: str) -> str:
    """``ok``, or what differs from the rules, in local time."""
    if fires == expected:
        return "ok"
    zone = case.timezone
    if rule == "exact spacing" and len(fires) > 1:
        gaps = {b - a for a, b in itertools.pairwise(fires)}
        step = timedelta(seconds=interval_seconds(case.expression))
        if gaps == {step} and len(fires) == len(expected):
            return "exact spacing, other phase"
    missing = list(expected)
    extra: list[datetime] = []
    for tick in fires:
        if tick in missing:
            missing.remove(tick)
        else:
            extra.append(tick)
    notes: list[str] = []
    for want in list(missing):
        near = [t for t in extra if abs(t - want) <= timedelta(hours=3)
                and t not in expected]
        if near:
            got = near[0]
            extra.remove(got)
            missing.remove(want)
            day, wanted = local_label(want, zone).rsplit(" ", 2)[0], local_label(want, zone,
                                                                                 False)
            notes.append(f"{day}: {local_label(got, zone, False)} instead of {wanted}")
    for want in missing:
        day, due = local_label(want, zone).rsplit(" ", 2)[0], local_label(want, zone, False)
        notes.append(f"skips {day} (due {due})")
    tz = ZoneInfo(zone)
    twice: dict[str, list[tuple[datetime, datetime]]] = {}
    for got in extra:
        if got in expected:
            notes.append(f"duplicate {local_label(got, zone)}")
            continue
        twin = [t for t in expected if wall_of(t, tz) == wall_of(got, tz)]
        if twin:
            day = local_label(twin[0], zone).rsplit(" ", 2)[0]
            twice.setdefault(day, []).append((twin[0], got))
        else:
            notes.append(f"extra {local_label(got, zone)}")
    for day, pairs in twice.items():
        first, second = pairs[0]
        if len(pairs) == 1:
            notes.append(f"fires twice {day} ({local_label(first, zone, False)} and "
                         f"{local_label(second, zone, False)})")
        else:
            last = pairs[-1][0]
            notes.append(f"fires twice {day} for {len(pairs)} wall times "
                         f"({wall_of(first, tz):%H:%M}–{wall_of(last, tz):%H:%M}, "
                         f"{first.astimezone(tz).tzname()} and "
                         f"{second.astimezone(tz).tzname()})")
    shown = notes[:4]
    if len(notes) > len(shown):
        shown.append(f"+{len(notes) - len(shown)} more")
    return "; ".join(shown)


def compact(fires: list[datetime], zone: str) -> str:
    """Fires in local time, grouped by day, evenly spaced runs of 3+ shown as a range."""
    if not fires:
        return "none"
    tz = ZoneInfo(zone)
    by_day: dict[date, list[datetime]] = {}
    for tick in fires:
        by_day.setdefault(tick.astimezone(tz).date(), []).append(tick)
    parts: list[str] = []
    for day, ticks in by_day.items():
        pieces: list[str] = []
        index = 0
        while index < len(ticks):
            end = index
            if index + 1 < len(ticks):
                step_td = ticks[index + 1] - ticks[index]
                zone_name = ticks[index].astimezone(tz).tzname()
                while (end + 1 < len(ticks) and ticks[end + 1] - ticks[end] == step_td
                       and ticks[end + 1].astimezone(tz).tzname() == zone_name):
                    end += 1
            if end - index >= 2:
                step = int((ticks[index + 1] - ticks[index]).total_seconds() // 60)
                pieces.append(f"{local_label(ticks[index], zone, False).split()[0]}–"
                              f"{local_label(ticks[end], zone, False)} /{step}m")
                index = end + 1
            else:
                pieces.append(local_label(ticks[index], zone, False))
                index += 1
        parts.append(f"{day.day} {day:%b}: " + ", ".join(pieces))
    return "; ".join(parts)


# --- engines ---------------------------------------------------------------------------


def headwater_expression(case: Case) -> ScheduleExpression:
    """The operator's parsed expression for ``case``."""
    if case.kind == "cron":
        return parse_schedule_expression(cron=case.expression, timezone=case.timezone)
    if case.kind == "rrule":
        return parse_schedule_expression(rrule=case.expression, timezone=case.timezone)
    return parse_schedule_expression(interval=case.expression, timezone=case.timezone,
                                     anchor_time=case.anchor)


def headwater_us_per_tick(expr: ScheduleExpression, start: datetime, ticks: int) -> float:
    """Best of ROUNDS: µs per consecutive ``next_fire_time`` call (the reconciler's way)."""
    best = float("inf")
    for _ in range(ROUNDS):
        tick: datetime | None = start
        began = time.perf_counter()
        for _ in range(ticks):
            assert tick is not None
            tick = next_fire_time(expr, tick)
        best = min(best, time.perf_counter() - began)
    return best / ticks * 1e6


def run_headwater(cases: Sequence[Case], timing: bool) -> dict[str, Any]:
    """Headwater's answer in the shared format, computed in-process."""
    results: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    for case in cases:
        expr = headwater_expression(case)
        fires = [utc_text(t) for t in fire_times(expr, case.start, case.end)]
        results.append({"id": case.id, "fires": fires})
        if timing:
            timings[case.id] = headwater_us_per_tick(expr, case.start, case.ticks)
    rev = subprocess.run(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False).stdout.strip()
    return {"engine": f"headwater ({rev or 'no git'})", "results": results,
            "us_per_tick": timings}


def load_module(name: str, path: Path) -> ModuleType:
    """Import a sibling file by path (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_prefect(cases: Sequence[Case], timing: bool, log: LogFn) -> dict[str, Any]:
    """Prefect's answer: prefect_dates.py in benchmarks/.venv-prefect (installed if needed)."""
    sdk = load_module("sdk_overhead", BENCH_DIR / "sdk_overhead.py")
    engine = sdk.prefect_engine(log)
    payload = {"timing": timing, "cases": [case.as_json() for case in cases]}
    with tempfile.TemporaryDirectory(prefix="prefect-home-") as home:
        env = {**sdk.clean_environ(), **sdk.prefect_env(), "PREFECT_HOME": home}
        log(f"prefect {engine.version}: {len(cases)} cases"
            + (" with timing (a few minutes)..." if timing else "..."))
        done = subprocess.run([str(engine.python), str(PREFECT_ADAPTER)],
                              input=json.dumps(payload), capture_output=True, text=True,
                              env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"prefect_dates.py failed (exit {done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def run_robfig(cases: Sequence[Case], log: LogFn) -> tuple[dict[str, Any] | None, str]:
    """robfig/cron's answer via the other adapter, or None and why not."""
    if not ROBFIG_ADAPTER.exists():
        return None, f"{ROBFIG_ADAPTER.relative_to(REPO_DIR)} missing; {ROBFIG_HINT}"
    module = load_module("robfig_peer", ROBFIG_ADAPTER)
    hint = str(getattr(module, "INSTALL_HINT", ROBFIG_HINT))
    log("robfig/cron: running its adapter...")
    try:
        answer = module.run_cases([case.as_json() for case in cases])
    except Exception as error:  # a broken peer must not fail the run
        return None, f"its adapter failed: {type(error).__name__}: {error}"
    if answer is None:
        return None, f"install with `{hint}`"
    return dict(answer), ""


# --- report ----------------------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
              for row in rows]
    return "\n".join(lines)


def judge(cases: Sequence[Case], answers: dict[str, dict[str, Any] | None]
          ) -> dict[str, dict[str, dict[str, Any]]]:
    """Per case and engine: fires, or unsupported, and the verdict."""
    judged: dict[str, dict[str, dict[str, Any]]] = {}
    for case in cases:
        expected, rule = expected_fires(case)
        row: dict[str, dict[str, Any]] = {
            "expected": {"rule": rule, "fires": [utc_text(t) for t in expected]}}
        for engine, answer in answers.items():
            if answer is None:
                continue
            found = next((r for r in answer["results"] if r["id"] == case.id), None)
            if found is None:
                row[engine] = {"unsupported": "no answer"}
            elif "unsupported" in found:
                row[engine] = {"unsupported": str(found["unsupported"]),
                               "verdict": "unsupported"}
            else:
                fires = [parse_instant(t) for t in found["fires"]]
                row[engine] = {"fires": found["fires"],
                               "verdict": verdict(case, fires, expected, rule)}
        judged[case.id] = row
    return judged


def engine_cell(case: Case, entry: dict[str, Any] | None, key: str) -> str:
    """One table cell: compact fires or the verdict, for one engine."""
    if entry is None:
        return "n/a"
    if "unsupported" in entry:
        return "unsupported" if key == "fires" else f"unsupported: {entry['unsupported']}"
    if key == "fires":
        return compact([parse_instant(t) for t in entry["fires"]], case.timezone)
    return str(entry["verdict"])


def case_label(case: Case) -> str:
    """``cron `30 2 * * *` `` plus the anchor or the short window."""
    label = f"{case.kind} `{case.expression}`"
    if case.anchor:
        label += f" anchor {case.anchor}"
    if case.end - case.start < DAY:
        label += (f" ({local_label(case.start, case.timezone, False)}–"
                  f"{local_label(case.end, case.timezone, False)})")
    if case.group.startswith("Europe"):
        label += f" {case.start.astimezone(ZoneInfo(case.timezone)) + DAY:%-d %b}"
    return label


def fmt_us(value: float | None) -> str:
    """``12.3`` or ``-``."""
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def render(cases: Sequence[Case], answers: dict[str, dict[str, Any] | None],
           judged: dict[str, dict[str, dict[str, Any]]], *, robfig_note: str,
           environment: dict[str, Any], timing: bool) -> str:
    """The markdown report."""
    out: list[str] = ["# Schedules side by side: DST correctness and cost per tick", ""]
    names = {engine: (answer["engine"] if answer else engine)
             for engine, answer in answers.items()}
    out.append("Engines: " + ", ".join(names[e] for e in ENGINES if answers.get(e))
               + (f"; robfig/cron: not available ({robfig_note})" if robfig_note else ""))
    out.append("")
    out.append("Verdicts against Headwater's documented rules (docs/scheduling.md, "
               "Daylight-saving time); fires in local time.")
    groups: list[str] = []
    for case in cases:
        if case.group not in groups:
            groups.append(case.group)
    for group in groups:
        out += ["", f"## {group}", ""]
        rows: list[list[str]] = []
        for case in (c for c in cases if c.group == group):
            row = judged[case.id]
            cells = [case_label(case)]
            cells += [engine_cell(case, row.get(e), "fires") for e in ENGINES]
            cells += [engine_cell(case, row.get(e), "verdict") for e in ENGINES]
            rows.append(cells)
        header = ["case", "Headwater fires", "Prefect fires", "robfig fires",
                  "Headwater", "Prefect", "robfig"]
        out.append(markdown_table(header, rows))
    if timing:
        out += ["", "## Cost per tick (µs per consecutive next-fire-time call, best of "
                f"{ROUNDS} rounds of {TICKS:,} ticks; leap-day cron: {LEAP_TICKS} ticks)", ""]
        rows = []
        for case in cases:
            figures = {e: (answers[e] or {}).get("us_per_tick", {}).get(case.id)
                       if answers.get(e) else None for e in ENGINES}
            hw, pf = figures["headwater"], figures["prefect"]
            ratio = "-"
            if hw and pf:
                ratio = f"{pf / hw:,.0f}x" if pf / hw >= 10 else f"{pf / hw:.1f}x"
            rows.append([case_label(case)] + [fmt_us(figures[e]) for e in ENGINES] + [ratio])
        out.append(markdown_table(["case", "Headwater µs/tick", "Prefect µs/tick",
                                   "robfig µs/tick", "Prefect/Headwater"], rows))
        rounds = (answers.get("prefect") or {}).get("rounds") or {}
        short = {k: v for k, v in rounds.items() if v < ROUNDS}
        if short:
            out += ["", "Prefect rounds cut short by its time budget: "
                    + ", ".join(f"{k} best of {v}" for k, v in short.items())]
    env = environment
    out += ["", f"Environment: Python {env['python']}, {env['prefect']}, {env['machine']}, "
            f"{env['cpus']} CPUs, load average {env['load_before']} before, "
            f"{env['load_after']} after, {env['date']}."]
    return "\n".join(out)


# --- main ------------------------------------------------------------------------------


def load_average() -> str:
    """``1.57 1.29 0.96``."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="verdicts only, no timing")
    parser.add_argument("--json", type=Path, help="where to write the JSON of everything")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every engine on every case, print the report, write the JSON."""
    args = parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    timing = not args.quick
    cases = build_cases()
    stamp = datetime.now(UTC)
    load_before = load_average()
    log("headwater: in-process...")
    answers: dict[str, dict[str, Any] | None] = {"headwater": run_headwater(cases, timing)}
    answers["prefect"] = run_prefect(cases, timing, log)
    answers["robfig"], robfig_note = run_robfig(cases, log)
    environment = {
        "python": platform.python_version(),
        "prefect": (answers["prefect"] or {}).get("engine", "prefect ?"),
        "machine": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_average(),
        "date": stamp.strftime("%Y-%m-%d %H:%M UTC"),
        "timing": timing,
    }
    judged = judge(cases, answers)
    print(render(cases, answers, judged, robfig_note=robfig_note,
                 environment=environment, timing=timing))
    path = args.json or RESULTS_DIR / f"schedule_peers-{stamp:%Y%m%dT%H%M%SZ}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"environment": environment,
               "cases": [{**case.as_json(), "group": case.group} for case in cases],
               "answers": answers, "robfig_unavailable": robfig_note or None,
               "judged": judged}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
