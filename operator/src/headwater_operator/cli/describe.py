"""``describe run <name>`` and ``describe schedule <name>``: one object in full.

The text form is a ``kubectl describe``-style report. For a run: identity, what it runs,
the outcome (phase, reason, message), timing, attempts, task-run counts, assets,
artifacts, then, from the run store, the attempt's record: every task run (state, start,
duration, attempts, cache hit; a subflow's task runs indented under the task run that
called it) and the subflow runs, then conditions and the Events the operator posted
about it; ``-o json|yaml`` prints ``{"flowRun": <object>, "events": [<Event>, …],
"record": <the record> | null}`` (plus ``recordError`` when it could not be read).
``--task PATTERN`` keeps the task runs whose name matches (:func:`task_matches`). A run
without a record (no store configured, not flushed yet, a store error) is still
described: one line says why there is no task-run list and what to do, exit 0.
For a Schedule: what it runs
and when (its expression, zone, policies), its last, last successful and next tick,
skipped ticks, active runs, the next fire times (computed by the operator's own code,
as ``schedule preview`` does), conditions and Events; ``-o json|yaml`` prints
``{"schedule": <object>, "nextFireTimes": […], "events": […]}``.
"""

from __future__ import annotations

import argparse
import fnmatch
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from headwater_operator import kube
from headwater_operator.api import TERMINAL_PHASES
from headwater_operator.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
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
    parse_time,
    render_data,
    render_table,
)
from headwater_operator.cli.preview import preview_ticks
from headwater_operator.cli.store import RecordRef, pick_record, read_record
from headwater_operator.scheduling import ScheduleError

_TERMINAL = frozenset(str(phase) for phase in TERMINAL_PHASES)
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


def _source_field(source: Any) -> str:
    """The fetched code a run runs (``status.source``), or nothing without a source."""
    if not isinstance(source, dict) or not source.get("url"):
        return ""
    if source.get("commit"):
        where = f" ({source['ref']})" if source.get("ref") else ""
        path = f", path {source['path']}" if source.get("path") else ""
        return _field("Source", f"{source['url']} @ {source['commit']}{where}{path}")
    return _field("Source", f"{source['url']} {source.get('digest') or ''}".rstrip())


def _link_field(link: str | None) -> str:
    return _field("UI", link) if link else ""


def run_link(namespace: str | None, name: str | None) -> str | None:
    """The run's page in the Headwater UI when ``HEADWATER_UI_URL`` names the UI."""
    import os

    from headwater import contract

    return contract.run_ui_url(os.environ.get(contract.ENV_UI_URL), namespace, name)


def describe_text(run: Mapping[str, Any], events: list[dict[str, Any]], now: datetime,
                  record: str = "") -> str:
    """The human report of ``run`` and its ``events``; ``record`` is the run-store part
    (:func:`record_text` or :func:`record_unavailable_text`)."""
    meta, spec = run["metadata"], run.get("spec") or {}
    status: Mapping[str, Any] = run.get("status") or {}
    annotations = meta.get("annotations") or {}
    duration = status.get("durationSeconds")
    parts = [
        _field("Name", meta["name"]),
        _field("Namespace", meta.get("namespace")),
        _link_field(run_link(meta.get("namespace"), meta["name"])),
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
        _source_field(status.get("source")),
        _field("Next attempt", status.get("nextAttemptTime")),
        _field("Task runs", counts(status.get("taskRuns"))),
        _field("Artifacts", ", ".join(status.get("artifacts") or [])),
        _field("Age", age(meta.get("creationTimestamp"), now)),
    ]
    text = "".join(parts)
    text += _section("Assets", ("KEY", "VERSION", "UPSTREAM"), [
        (a.get("key", ""), or_none(a.get("version")), ", ".join(a.get("upstream") or []) or
         "<none>") for a in status.get("assets") or []])
    return text + record + _conditions_and_events(status, events, now)


# --- the run record ----------------------------------------------------------------------

GLOB_CHARACTERS = frozenset("*?[")


def task_matches(name: str, pattern: str | None) -> bool:
    """Whether task-run ``name`` matches ``--task PATTERN``, case-insensitively.

    A pattern with ``*``, ``?`` or ``[`` is a shell glob matched against the whole name
    (``load*``, ``*-[0-2]``); any other pattern matches the names that contain it
    (``orders`` finds ``stg_orders-0`` and ``orders_mart-3``).
    """
    if not pattern:
        return True
    name, pattern = name.lower(), pattern.lower()
    if GLOB_CHARACTERS & set(pattern):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def filter_record(record: Mapping[str, Any], pattern: str | None) -> dict[str, Any]:
    """``record`` with only the task runs matching ``pattern`` (all without one)."""
    return {**record, "taskRuns": [t for t in record.get("taskRuns") or []
                                   if task_matches(str(t.get("name", "")), pattern)]}


def seconds_between(start: Any, end: Any) -> float | None:
    """Seconds from timestamp ``start`` to ``end``; None unless both are readable."""
    first, last = parse_time(start), parse_time(end)
    return None if first is None or last is None else (last - first).total_seconds()


def task_duration(seconds: float | None) -> str:
    """A task's duration: ``0.25s`` under a minute (tasks are often that short), else
    :func:`human_duration`; ``<none>`` while it runs."""
    if seconds is None:
        return "<none>"
    if seconds < 60:
        return f"{max(seconds, 0.0):.2f}s"
    return human_duration(seconds)


def _flow_runs(record: Mapping[str, Any]) -> Iterable[tuple[int, Mapping[str, Any]]]:
    """The record's flow run and its subflow runs, depth first, with their depth."""
    stack: list[tuple[int, Mapping[str, Any]]] = [(0, record.get("flowRun") or {})]
    while stack:
        depth, flow_run = stack.pop()
        yield depth, flow_run
        stack.extend((depth + 1, sub) for sub in reversed(flow_run.get("subflowRuns") or [])
                     if isinstance(sub, Mapping))


def ordered_task_runs(record: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    """Every task run with its subflow depth: a flow run's task runs in creation order,
    each subflow's right after the task run that called it. Task runs of a flow run the
    record does not reach come last, at depth 0, so none is lost."""
    root = str((record.get("flowRun") or {}).get("id", ""))
    by_flow_run: dict[str, list[Mapping[str, Any]]] = {}
    for task_run in record.get("taskRuns") or []:
        # The root flow run's own task runs carry no flowRunId (the schema's rule).
        by_flow_run.setdefault(str(task_run.get("flowRunId") or root), []).append(task_run)
    ordered: list[tuple[int, Mapping[str, Any]]] = []

    def visit(flow_run_id: str, depth: int) -> None:
        for task_run in by_flow_run.pop(flow_run_id, []):
            ordered.append((depth, task_run))
            if task_run.get("subflowRunId"):
                visit(str(task_run["subflowRunId"]), depth + 1)

    visit(root, 0)
    for rest in list(by_flow_run):
        visit(rest, 0)
    return ordered


def _state_name(obj: Mapping[str, Any]) -> str:
    state = obj.get("state")
    if isinstance(state, Mapping):  # a whole state object rather than its name
        state = state.get("name") or state.get("type")
    return str(state or "<unknown>")


FINAL_STATE_TYPES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})


def task_run_times(task_run: Mapping[str, Any]) -> tuple[Any, Any]:
    """When a task run started and ended, from its state history: the first ``RUNNING``
    state (else its first state: a cached or never-run task run), and its last state
    once that is final (else None: still running or waiting)."""
    history = [s for s in task_run.get("stateHistory") or [] if isinstance(s, Mapping)]
    if not history:
        return None, None
    start = next((s.get("time") for s in history if s.get("type") == "RUNNING"),
                 history[0].get("time"))
    end = history[-1].get("time") if history[-1].get("type") in FINAL_STATE_TYPES else None
    return start, end


def task_run_rows(record: Mapping[str, Any], pattern: str | None = None) -> list[tuple[str, ...]]:
    """NAME STATE START DURATION ATTEMPTS CACHE-HIT rows; NAME is indented two spaces per
    subflow level, ``[i]`` marks a map index and ``-> <name>`` a subflow call."""
    names = {str(f.get("id")): str(f.get("name") or f.get("id"))
             for _, f in _flow_runs(record)}
    rows: list[tuple[str, ...]] = []
    for depth, task_run in ordered_task_runs(record):
        name = str(task_run.get("name", ""))
        if not task_matches(name, pattern):
            continue
        label = "  " * depth + name
        if isinstance(task_run.get("mapIndex"), int):
            label += f"[{task_run['mapIndex']}]"
        if task_run.get("subflowRunId"):
            label += f" -> {names.get(str(task_run['subflowRunId']), task_run['subflowRunId'])}"
        start, end = task_run_times(task_run)
        rows.append((label, _state_name(task_run), or_none(start),
                     task_duration(seconds_between(start, end)),
                     str(len(task_run.get("attempts") or [])),
                     or_none(bool(task_run.get("cacheHit")))))
    return rows


def task_error_rows(record: Mapping[str, Any], pattern: str | None = None
                    ) -> list[tuple[str, ...]]:
    """NAME ATTEMPT ERROR rows: the last error of each task run that has one (a task run
    that succeeded on a retry shows why it was retried), its message's first line."""
    rows: list[tuple[str, ...]] = []
    for _, task_run in ordered_task_runs(record):
        name = str(task_run.get("name", ""))
        failed = [a for a in task_run.get("attempts") or [] if a.get("error")]
        if failed and task_matches(name, pattern):
            last = failed[-1]["error"]
            first_line = "".join(str(last.get("message", "")).splitlines()[:1])
            rows.append((name, str(failed[-1].get("number", "?")),
                         f"{last.get('type', 'Error')}: {first_line}"))
    return rows


def subflow_rows(record: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """NAME FLOW STATE START DURATION rows of the subflow runs, nested by indentation."""
    return [("  " * (depth - 1) + str(flow_run.get("name", "")), or_none(flow_run.get("flow")),
             _state_name(flow_run), or_none(flow_run.get("startTime")),
             task_duration(seconds_between(flow_run.get("startTime"), flow_run.get("endTime"))))
            for depth, flow_run in _flow_runs(record) if depth > 0]


def record_text(ref: RecordRef, record: Mapping[str, Any], pattern: str | None,
                now: datetime, ended: bool = False) -> str:
    """The run-store part of ``describe run``: where the record is, whether it is whole,
    the task runs (matching ``pattern``), their errors and the subflow runs. ``ended``:
    the attempt is over, so an incomplete record will stay so."""
    text = _field("Run record", f"{ref.url} (attempt {ref.attempt})")
    if not record.get("complete"):
        flushed = age(record.get("updatedAt"), now)
        if ref.written is False:
            state = ("incomplete: the pod could not write its final record (a "
                     f"RunRecordNotWritten Event says why); this is its last flush, {flushed} "
                     "before now")
        elif ended:
            state = (f"incomplete: the attempt ended without its final record (killed, e.g. "
                     f"OOMKilled); this is its last flush, {flushed} before now")
        else:
            state = f"still being written (the run is running; last flushed {flushed} ago)"
        text += _field("Record", state)
    rows = task_run_rows(record, pattern)
    title = "Task run list"
    if not rows and pattern:
        text += _field(title, f"<none matching {pattern!r}: "
                              f"{len(record.get('taskRuns') or [])} task runs in all>")
    else:
        text += _section(title, ("NAME", "STATE", "START", "DURATION", "ATTEMPTS",
                                 "CACHE HIT"), rows)
    errors = task_error_rows(record, pattern)
    if errors:
        text += _section("Task run errors", ("NAME", "ATTEMPT", "ERROR"), errors)
    subflows = subflow_rows(record)
    if subflows:
        text += _section("Subflow runs", ("NAME", "FLOW", "STATE", "START", "DURATION"),
                         subflows)
    return text


def record_unavailable_text(reason: str) -> str:
    """The one line ``describe run`` prints when the record cannot be shown."""
    return _field("Run record", f"<none>: {reason}")


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
        if args.task or args.attempt is not None:
            raise CliError("--task and --attempt apply to 'describe run' only", EXIT_USAGE)
        schedule, events = _read(args, kube.SCHEDULES, "Schedule", "schedules")
        ticks = next_fire_times(schedule, io.now())
        io.out.write(schedule_text(schedule, ticks, events, io.now())
                     if args.output == "table" else
                     render_data({"schedule": schedule, "nextFireTimes": ticks,
                                  "events": events}, args.output))
        return EXIT_OK
    run, events = _read(args, kube.FLOWRUNS, "FlowRun", "runs")
    ref, record, reason = load_record(run, args.attempt)
    if args.output != "table":
        data: dict[str, Any] = {"flowRun": run, "events": events,
                                "record": None if record is None else
                                filter_record(record, args.task)}
        if reason:
            data["recordError"] = reason
        io.out.write(render_data(data, args.output))
        return EXIT_OK
    status = run.get("status") or {}
    ended = (str(status.get("phase")) in _TERMINAL
             or (ref is not None and ref.attempt < int(status.get("attempts") or 0)))
    part = (record_text(ref, record, args.task, io.now(), ended)
            if ref is not None and record is not None else record_unavailable_text(reason))
    io.out.write(describe_text(run, events, io.now(), part))
    return EXIT_OK


def load_record(run: Mapping[str, Any], attempt: int | None,
                ) -> tuple[RecordRef | None, dict[str, Any] | None, str]:
    """The record of ``attempt`` (default the latest), or why there is none.

    Only an ``--attempt`` that does not exist is an error (exit 2): a missing record,
    store or driver leaves the rest of the report worth printing.
    """
    try:
        ref = pick_record(run, attempt)
    except CliError as exc:
        if exc.code == EXIT_USAGE:
            raise
        return None, None, exc.message
    try:
        return ref, read_record(ref), ""
    except CliError as exc:
        return ref, None, exc.message


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
