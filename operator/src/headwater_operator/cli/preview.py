"""``schedule preview -f schedule.yaml [--count N] [--after T]``: next fire times, offline.

The manifest is validated with :func:`~headwater_operator.api.validation.validate_manifest`
(the CRD schema, its CEL rules and the models — what the API server and the operator
would reject), and the ticks are computed by the operator's own
:func:`~headwater.scheduling.expression_from_spec` and
:func:`~headwater_operator.scheduling.next_fire_time`, so the preview is exactly what
will run, DST included. No cluster is contacted.

Each tick is shown in the schedule's zone (with its UTC offset, which is how a
spring-forward or fall-back tick is recognised) and in UTC, with the FlowRun name the
scheduler will give it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from headwater.scheduling.expression import expression_from_spec

from headwater_operator.api.validation import validate_manifest
from headwater_operator.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Io,
    parse_instant,
)
from headwater_operator.cli.output import render_data, render_table
from headwater_operator.kubetime import format_time
from headwater_operator.scheduling import ScheduleError, next_fire_time, scheduled_run_name

MAX_COUNT = 10_000



def load_schedules(text: str, source: str) -> list[dict[str, Any]]:
    """The Schedule documents of a (multi-document) manifest; other kinds are skipped."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise CliError(f"{source}: not valid YAML/JSON ({exc})", EXIT_USAGE) from None
    schedules = [doc for doc in documents
                 if not isinstance(doc, Mapping) or doc.get("kind") in ("Schedule", None)]
    if not schedules:
        raise CliError(f"{source}: holds no Schedule (kinds found: "
                       f"{', '.join(str(d.get('kind')) for d in documents) or 'none'})",
                       EXIT_USAGE)
    return schedules


def preview_ticks(schedule: Mapping[str, Any], after: datetime | None, count: int,
                  now: datetime) -> list[dict[str, str]]:
    """The next ``count`` ticks strictly after ``after`` (default ``now``).

    ``after`` given as a naive datetime is read in the schedule's zone.
    """
    expr = expression_from_spec(schedule.get("spec") or {})
    cursor = (after if after is not None else now)
    if cursor.tzinfo is None:
        cursor = cursor.replace(tzinfo=expr.timezone)
    name = str((schedule.get("metadata") or {}).get("name") or "schedule")
    rows = []
    for _ in range(count):
        tick = next_fire_time(expr, cursor)
        if tick is None:
            break
        rows.append({"local": tick.astimezone(expr.timezone).isoformat(),
                     "utc": format_time(tick), "runName": scheduled_run_name(name, tick)})
        cursor = tick
    return rows


def render_preview(schedule: Mapping[str, Any], rows: list[dict[str, str]],
                   output: str) -> str:
    """One schedule's ticks as a table (with a title line) or as data."""
    meta = schedule.get("metadata") or {}
    spec = schedule.get("spec") or {}
    zone = spec.get("timezone") or "UTC"
    if output != "table":
        return render_data(preview_data(schedule, rows), output)
    kind = next((key for key in ("cron", "interval", "rrule") if spec.get(key)), "schedule")
    title = f"Schedule {meta.get('name')}: {kind} {spec.get(kind)!s} in {zone}\n"
    if not rows:
        return title + "no further fire times (the recurrence has ended)\n"
    table = render_table(("#", f"LOCAL ({zone})", "UTC", "RUN NAME"),
                         [(str(i), r["local"], r["utc"], r["runName"])
                          for i, r in enumerate(rows, 1)])
    return title + table


def preview_data(schedule: Mapping[str, Any], rows: list[dict[str, str]]) -> dict[str, Any]:
    """The ``-o json|yaml`` form of one schedule's preview."""
    return {"name": (schedule.get("metadata") or {}).get("name"),
            "timezone": (schedule.get("spec") or {}).get("timezone") or "UTC", "ticks": rows}


def _read(filename: str) -> str:
    if filename == "-":
        return sys.stdin.read()
    try:
        return Path(filename).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"-f {filename}: cannot read it ({exc.strerror})", EXIT_USAGE) from None


def cmd_preview(args: argparse.Namespace, io: Io) -> int:
    """Validate every Schedule in the file, then print each one's next ticks."""
    if not 1 <= args.count <= MAX_COUNT:
        raise CliError(f"--count must be between 1 and {MAX_COUNT}", EXIT_USAGE)
    schedules = load_schedules(_read(args.filename), args.filename)
    problems = [f"{_label(doc)}: {line}" for doc in schedules for line in validate_manifest(doc)]
    if problems:
        raise CliError(f"{args.filename} is not a valid Schedule:\n  " + "\n  ".join(problems),
                       EXIT_USAGE)
    previews = []
    for doc in schedules:
        zone = (doc.get("spec") or {}).get("timezone") or "UTC"
        after = _after(args.after, zone)
        try:
            previews.append((doc, preview_ticks(doc, after, args.count, io.now())))
        except ScheduleError as exc:
            raise CliError(f"{_label(doc)}: {exc}", EXIT_USAGE) from None
    if args.output == "table":
        io.out.write("\n".join(render_preview(doc, rows, "table") for doc, rows in previews))
    else:
        data = [preview_data(doc, rows) for doc, rows in previews]
        io.out.write(render_data(data[0] if len(data) == 1 else data, args.output))
    return EXIT_OK


def _after(text: str | None, zone: str) -> datetime | None:
    if text is None:
        return None
    return parse_instant(text, ZoneInfo(zone), "--after")


def _label(doc: Any) -> str:
    if not isinstance(doc, Mapping):
        return "document"
    return f"Schedule {(doc.get('metadata') or {}).get('name') or '<unnamed>'}"
