"""``describe run <name>`` and ``describe schedule <name>``: one object in full.

The text form is a ``kubectl describe``-style report. For a run: identity, what it runs,
the outcome (phase, reason, message), timing, attempts, task-run counts, assets,
artifacts, conditions and the Events the operator posted about it; ``-o json|yaml``
prints ``{"flowRun": <object>, "events": [<Event>, …]}``. For a Schedule: what it runs
and when (its expression, zone, policies), its last, last successful and next tick,
skipped ticks, active runs, the next fire times (computed by the operator's own code,
as ``schedule preview`` does), conditions and Events; ``-o json|yaml`` prints
``{"schedule": <object>, "nextFireTimes": […], "events": […]}``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from headwater_operator import kube
from headwater_operator.cli.common import (
    EXIT_OK,
    CliError,
    Io,
    connect,
)
from headwater_operator.cli.get import schedule_expression
from headwater_operator.cli.output import (
    age,
    counts,
    human_duration,
    or_none,
    render_data,
    render_table,
)
from headwater_operator.cli.preview import preview_ticks
from headwater_operator.scheduling import ScheduleError

RECENT_EVENTS = 20
NEXT_FIRE_TIMES = 3



def run_events(events: list[dict[str, Any]], name: str,
               kind: str = "FlowRun") -> list[dict[str, Any]]:
    """The Events about ``kind`` ``name``, oldest first, the last :data:`RECENT_EVENTS`."""
    mine = [e for e in events if (e.get("involvedObject") or {}).get("name") == name
            and (e.get("involvedObject") or {}).get("kind") in (None, kind)]
    mine.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime")
                                or (e.get("metadata") or {}).get("creationTimestamp") or ""))
    return mine[-RECENT_EVENTS:]


def _field(label: str, value: Any) -> str:
    return f"{label + ':':<16}{or_none(value)}\n"


def describe_text(run: Mapping[str, Any], events: list[dict[str, Any]], now: datetime) -> str:
    """The human report of ``run`` and its ``events``."""
    meta, spec = run["metadata"], run.get("spec") or {}
    status: Mapping[str, Any] = run.get("status") or {}
    annotations = meta.get("annotations") or {}
    duration = status.get("durationSeconds")
    parts = [
        _field("Name", meta["name"]),
        _field("Namespace", meta.get("namespace")),
        _field("Deployment", (spec.get("deploymentRef") or {}).get("name")),
        _field("Flow", (spec.get("flowRef") or {}).get("name")) if spec.get("flowRef") else "",
        _field("Trigger", spec.get("trigger") or annotations.get("headwater.dev/trigger")),
        _field("Parameters", " ".join(f"{k}={v}" for k, v in
                                      (spec.get("parameters") or {}).items())),
        _field("Cancel", "requested" if spec.get("cancel") else None),
        _field("Phase", status.get("phase") or "Scheduled"),
        _field("Reason", status.get("reason")),
        _field("Message", status.get("message")),
        _field("Scheduled", status.get("scheduledTime") or spec.get("scheduledTime")),
        _field("Started", status.get("startTime")),
        _field("Ended", status.get("endTime")),
        _field("Duration", human_duration(duration) if isinstance(duration, int | float)
               else None),
        _field("Attempts", status.get("attempts") or 0),
        _field("Pod", status.get("podName")),
        _field("Next attempt", status.get("nextAttemptTime")),
        _field("Task runs", counts(status.get("taskRuns"))),
        _field("Artifacts", ", ".join(status.get("artifacts") or [])),
        _field("Age", age(meta.get("creationTimestamp"), now)),
    ]
    text = "".join(parts)
    text += _section("Assets", ("KEY", "VERSION", "UPSTREAM"), [
        (a.get("key", ""), or_none(a.get("version")), ", ".join(a.get("upstream") or []) or
         "<none>") for a in status.get("assets") or []])
    return text + _conditions_and_events(status, events, now)


def schedule_text(schedule: Mapping[str, Any], next_ticks: list[dict[str, str]] | str,
                  events: list[dict[str, Any]], now: datetime) -> str:
    """The human report of ``schedule``: ``next_ticks`` from :func:`preview_ticks`, or
    why there are none (an invalid or ended schedule)."""
    meta, spec = schedule["metadata"], schedule.get("spec") or {}
    status: Mapping[str, Any] = schedule.get("status") or {}
    catchup = spec.get("catchup") or {}
    deadline = spec.get("startingDeadlineSeconds")
    text = "".join([
        _field("Name", meta["name"]),
        _field("Namespace", meta.get("namespace")),
        _field("Deployment", (spec.get("deploymentRef") or {}).get("name")),
        _field("Expression", schedule_expression(schedule)),
        _field("Timezone", spec.get("timezone") or "UTC"),
        _field("Anchor", spec.get("anchorTime")),
        _field("Suspend", bool(spec.get("suspend"))),
        _field("Concurrency", spec.get("concurrencyPolicy") or "Allow"),
        _field("Deadline", f"{deadline}s" if deadline is not None else None),
        _field("Catch-up", f"{catchup.get('policy') or 'Latest'}, at most "
                           f"{catchup.get('maxRuns') or 100} runs"),
        _field("Parameters", " ".join(f"{k}={v}" for k, v in
                                      (spec.get("parameters") or {}).items())),
        _field("Last tick", status.get("lastScheduleTime")),
        _field("Last success", status.get("lastSuccessfulTime")),
        _field("Next tick", status.get("nextScheduleTime")),
        _field("Missed ticks", status.get("missedTicks") or 0),
        _field("Age", age(meta.get("creationTimestamp"), now)),
    ])
    text += _section("Active runs", ("NAME", "SCHEDULED"), [
        (str(a.get("name", "")), or_none(a.get("scheduledTime")))
        for a in status.get("active") or []])
    if isinstance(next_ticks, str):
        text += _field("Next fires", next_ticks)
    else:
        text += _section("Next fires", ("LOCAL", "UTC", "RUN NAME"), [
            (t["local"], t["utc"], t["runName"]) for t in next_ticks])
    return text + _conditions_and_events(status, events, now)


def _conditions_and_events(status: Mapping[str, Any], events: list[dict[str, Any]],
                           now: datetime) -> str:
    text = _section("Conditions", ("TYPE", "STATUS", "REASON", "MESSAGE"), [
        (c.get("type", ""), c.get("status", ""), or_none(c.get("reason")),
         or_none(c.get("message"))) for c in status.get("conditions") or []])
    return text + _section("Events", ("TYPE", "REASON", "AGE", "MESSAGE"), [
        (e.get("type", ""), e.get("reason", ""),
         age(e.get("lastTimestamp") or e.get("eventTime")
             or (e.get("metadata") or {}).get("creationTimestamp"), now),
         str(e.get("message", ""))) for e in events])


def next_fire_times(schedule: Mapping[str, Any], now: datetime) -> list[dict[str, str]] | str:
    """The next :data:`NEXT_FIRE_TIMES` ticks, or why there are none."""
    try:
        ticks = preview_ticks(schedule, None, NEXT_FIRE_TIMES, now)
    except ScheduleError as exc:
        return f"<invalid: {exc}>"
    return ticks or "<none: the schedule has ended>"


def _section(title: str, headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    if not rows:
        return f"{title}:{' ' * (15 - len(title))}<none>\n"
    table = render_table(headers, rows)
    return f"{title}:\n" + "".join(f"  {line}\n" for line in table.splitlines())


def cmd_describe(args: argparse.Namespace, io: Io) -> int:
    """Read the object and its Events and print them."""
    if args.kind in SCHEDULE_KINDS:
        schedule, events = _read(args, kube.SCHEDULES, "Schedule", "schedules")
        ticks = next_fire_times(schedule, io.now())
        io.out.write(schedule_text(schedule, ticks, events, io.now())
                     if args.output == "table" else
                     render_data({"schedule": schedule, "nextFireTimes": ticks,
                                  "events": events}, args.output))
        return EXIT_OK
    run, events = _read(args, kube.FLOWRUNS, "FlowRun", "runs")
    io.out.write(describe_text(run, events, io.now()) if args.output == "table" else
                 render_data({"flowRun": run, "events": events}, args.output))
    return EXIT_OK


SCHEDULE_KINDS = ("schedule", "schedules", "hws")


def _read(args: argparse.Namespace, resource: kube.Resource, kind: str,
          listing: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Object ``args.name`` of ``resource`` and the recent Events about it."""
    client, namespace = connect(args)
    try:
        obj = client.get(resource, args.name, namespace=namespace)
    except kube.NotFound:
        raise CliError(f"{kind} {namespace}/{args.name} not found; list them with: "
                       f"headwater get {listing} -n {namespace}") from None
    events = run_events(client.list(
        kube.EVENTS, namespace=namespace,
        field_selector=f"involvedObject.name={args.name}"), args.name, kind=kind)
    return obj, events
