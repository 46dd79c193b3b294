"""``headwater backfill <schedule> --start T --end T``: replay a Schedule over a past window.

**The window is [start, end)**: a tick exactly at ``--start`` runs, one exactly at
``--end`` does not — what Prefect users expect, and it makes adjacent backfills
(``--start 2026-03-01 --end 2026-03-08``, then ``--start 2026-03-08 …``) tile without
overlap or gap. Times without an offset are read in the Schedule's ``timezone``.

Each tick becomes the FlowRun the scheduler itself would create for it — built by the
Schedule controller's own :func:`~headwater_operator.scheduling.runs.build_flow_run`,
so the name (``<schedule>-<unix seconds>``), labels, owner and window parameters are
identical — with trigger ``backfill``. The name is the idempotency key: a tick the
scheduler already ran, or an earlier backfill created, answers ``409 AlreadyExists``
and is counted as "already existed". Repeating a backfill therefore creates nothing.

Ticks come from :func:`~headwater.scheduling.fire_times`, the operator's code,
so the DST rules of ``docs/scheduling.md`` hold here too.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from headwater.contract import LABEL_SCHEDULE
from headwater.scheduling.expression import expression_from_spec

from headwater_operator import kube
from headwater_operator.api import Deployment, Flow, InvalidResourceError, parse_resource
from headwater_operator.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Io,
    connect,
    parse_instant,
)
from headwater_operator.cli.output import render_data, render_table
from headwater_operator.cli.params import check_parameters, effective_parameters
from headwater_operator.cli.parsers import DEFAULT_MAX_RUNS
from headwater_operator.kubetime import format_time
from headwater_operator.labels import selector
from headwater_operator.scheduling import ScheduleError, ScheduleExpression, fire_times
from headwater_operator.scheduling.runs import build_flow_run

TRIGGER = "backfill"
_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True)
class PlannedRun:
    """One tick of the window and the FlowRun it becomes."""

    tick: datetime
    body: dict[str, Any]

    @property
    def name(self) -> str:
        """The deterministic FlowRun name."""
        return str(self.body["metadata"]["name"])



def window_ticks(expr: ScheduleExpression, start: datetime, end: datetime,
                 limit: int) -> list[datetime]:
    """The ticks ``t`` with ``start <= t < end``, at most ``limit + 1`` of them.

    One more than ``limit`` is returned so the caller can tell "exactly at the limit"
    from "over it" without enumerating a huge window.
    """
    ticks = fire_times(expr, start - _JUST_BEFORE, end)
    return list(itertools.islice((tick for tick in ticks if tick < end), limit + 1))


def plan_backfill(schedule: Mapping[str, Any], deployment: Mapping[str, Any],
                  expr: ScheduleExpression, ticks: list[datetime]) -> list[PlannedRun]:
    """The FlowRuns of ``ticks``: the scheduler's bodies, marked as a backfill."""
    return [PlannedRun(tick, build_flow_run(schedule, deployment, expr, tick, trigger=TRIGGER))
            for tick in ticks]


def check_window(start: datetime, end: datetime, count: int, max_runs: int | None) -> None:
    """Refuse an empty/inverted window, and more ticks than allowed, saying how to fix it."""
    if end <= start:
        raise CliError(f"--end {format_time(end)} is not after --start {format_time(start)}; "
                       "the window is [start, end)", EXIT_USAGE)
    limit = max_runs if max_runs is not None else DEFAULT_MAX_RUNS
    if count > limit:
        hint = ("pass a larger --max-runs" if max_runs is not None
                else f"pass --max-runs N (N > {DEFAULT_MAX_RUNS}) to allow it")
        raise CliError(f"the window [{format_time(start)}, {format_time(end)}) has more than "
                       f"{limit} ticks; {hint}, or narrow --start/--end", EXIT_USAGE)


def _schedule_expression(schedule: Mapping[str, Any], where: str) -> ScheduleExpression:
    try:
        return expression_from_spec(schedule.get("spec") or {})
    except ScheduleError as exc:
        raise CliError(f"{where} is invalid: {exc}", EXIT_USAGE) from None


def _get(client: kube.BlockingKube, resource: kube.Resource, name: str, namespace: str, *,
         what: str, fix: str) -> dict[str, Any]:
    try:
        return client.get(resource, name, namespace=namespace)
    except kube.NotFound:
        raise CliError(f"{what} {namespace}/{name} not found; {fix}") from None


def _flow_of(client: kube.BlockingKube, namespace: str,
             deployment_body: dict[str, Any]) -> tuple[Deployment, Flow]:
    try:
        deployment = parse_resource(deployment_body)
        assert isinstance(deployment, Deployment)
        flow_name = deployment.spec.flow_ref.name
        flow = parse_resource(_get(client, kube.FLOWS, flow_name, namespace, what="Flow",
                                   fix="create it or fix the Deployment's spec.flowRef"))
    except InvalidResourceError as exc:
        raise CliError(f"{exc}; fix the object and retry", EXIT_USAGE) from None
    assert isinstance(flow, Flow)
    return deployment, flow


def cmd_backfill(args: argparse.Namespace, io: Io) -> int:
    """Plan the window, validate every run's parameters, then create (or print) them."""
    if args.max_runs is not None and args.max_runs < 1:
        raise CliError("--max-runs must be at least 1", EXIT_USAGE)
    client, namespace = connect(args)
    schedule = _get(client, kube.SCHEDULES, args.schedule, namespace, what="Schedule",
                    fix=f"list them with: headwater get schedules -n {namespace}")
    expr = _schedule_expression(schedule, f"Schedule {namespace}/{args.schedule}")
    start = parse_instant(args.start, expr.timezone, "--start")
    end = parse_instant(args.end, expr.timezone, "--end")
    ticks = window_ticks(expr, start, end, args.max_runs or DEFAULT_MAX_RUNS)
    check_window(start, end, len(ticks), args.max_runs)
    deployment_name = str(((schedule.get("spec") or {}).get("deploymentRef") or {}).get("name"))
    deployment_body = _get(client, kube.DEPLOYMENTS, deployment_name, namespace,
                           what="Deployment",
                           fix="create it or fix the Schedule's spec.deploymentRef")
    deployment, flow = _flow_of(client, namespace, deployment_body)
    planned = plan_backfill(schedule, deployment_body, expr, ticks)
    for run in planned:
        check_parameters(flow, effective_parameters(flow, deployment,
                                                    run.body["spec"]["parameters"]),
                         f"backfill run {run.name} (tick {format_time(run.tick)})")
    existing = {item["metadata"]["name"] for item in client.list(
        kube.FLOWRUNS, namespace=namespace, label_selector=selector(LABEL_SCHEDULE, args.schedule))}
    if args.dry_run:
        io.out.write(render_plan(planned, existing, expr, args.output))
        if args.output == "table":
            io.err.write(f"dry run: {len(planned)} ticks, "
                         f"{len([r for r in planned if r.name not in existing])} would be "
                         "created; nothing was created\n")
        return EXIT_OK
    if deployment.spec.paused:
        io.err.write(f"warning: Deployment {deployment_name} is paused (spec.paused); the "
                     "runs wait until it is resumed\n")
    return _create_all(client, namespace, planned, io, args.output)


def _create_all(client: kube.BlockingKube, namespace: str, planned: list[PlannedRun], io: Io,
                output: str) -> int:
    created: list[str] = []
    existed: list[str] = []
    for run in planned:
        try:
            client.create(kube.FLOWRUNS, run.body, namespace=namespace)
            created.append(run.name)
        except kube.AlreadyExists:
            existed.append(run.name)
        except kube.KubeError as exc:
            io.err.write(f"headwater backfill: creating {run.name} failed after creating "
                         f"{len(created)} run(s): {exc.message}; re-run the same command "
                         "to continue (existing runs are skipped)\n")
            return EXIT_FAILED
    if output == "table":
        for name in created:
            io.out.write(f"flowrun/{name} created\n")
        io.out.write(f"created {len(created)}, already existed {len(existed)}\n")
    else:
        io.out.write(render_data({"created": created, "alreadyExisted": existed}, output))
    return EXIT_OK


def render_plan(planned: list[PlannedRun], existing: set[str], expr: ScheduleExpression,
                output: str) -> str:
    """The dry-run report: each tick (local and UTC), run name, parameters, and state."""
    rows = [{
        "tick": run.tick.astimezone(expr.timezone).isoformat(),
        "tickUTC": format_time(run.tick),
        "name": run.name,
        "parameters": run.body["spec"]["parameters"],
        "exists": run.name in existing,
    } for run in planned]
    if output != "table":
        return render_data(rows, output)
    if not rows:
        return "no ticks in the window\n"
    table = [(row["tick"], row["tickUTC"], row["name"],
              " ".join(f"{k}={v}" for k, v in row["parameters"].items()) or "<none>",
              "exists" if row["exists"] else "would create") for row in rows]
    return render_table((f"TICK ({expr.timezone.key})", "UTC", "NAME", "PARAMETERS",
                         "STATE"), table)
