"""``/deployments`` and ``/deployments/<ns>/<name>``: status, last runs, next fire times,
and the write actions Run, Backfill (preview, then create), Pause and Resume.

What it must respect:

* Reads come from the watch-backed stores (:mod:`headwater_operator.ui.state`), never
  the API server. Writes go through the identity the request is given
  (:meth:`~headwater_operator.ui.auth.Access.writer`), are ``POST``s that passed the CSRF
  middleware, and are offered only when writes are allowed.
* **Run** creates the FlowRun ``headwater run`` would (:func:`~headwater_operator.cli.run.
  build_run`, trigger ``manual``), after the form passed the CLI's parameter check
  (:mod:`headwater_operator.ui.forms`): an invalid form creates nothing and shows each
  error on its field.
* **Backfill** is ``headwater backfill``'s plan: the window ``[start, end)`` of one of
  the Deployment's Schedules, ticks from the operator's code
  (:func:`~headwater_operator.cli.backfill.window_ticks`), each run the scheduler's own
  body with its deterministic name (:func:`~headwater_operator.cli.backfill.plan_backfill`),
  so a repeated backfill creates nothing. Preview is a dry run: it creates nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from headwater.contract import LABEL_SCHEDULE
from headwater.scheduling.expression import expression_from_spec

from headwater_operator import kube
from headwater_operator.api import Deployment, Flow
from headwater_operator.api.enums import FlowRunTrigger
from headwater_operator.cli.backfill import PlannedRun, plan_backfill, window_ticks
from headwater_operator.cli.common import CliError, parse_instant
from headwater_operator.cli.params import effective_parameters
from headwater_operator.cli.parsers import DEFAULT_MAX_RUNS
from headwater_operator.cli.preview import preview_ticks
from headwater_operator.cli.run import build_run
from headwater_operator.flowruns.settings import parameter_errors
from headwater_operator.kubetime import format_time
from headwater_operator.labels import label_value
from headwater_operator.scheduling import ScheduleError, ScheduleExpression
from headwater_operator.ui import objects
from headwater_operator.ui.app import access_of, now_of, render, state_of
from headwater_operator.ui.forms import (
    FIELD_PREFIX,
    FormField,
    FormResult,
    form_fields,
    prefill_values,
    read_run_form,
)

LAST_RUNS = 10
NEXT_FIRES = 5
MAX_BACKFILL_RUNS = 10_000
"""The most runs one backfill form may ask for (the CLI's ``--max-runs`` has no cap)."""


@dataclass
class Backfill:
    """The backfill form's values, its errors by field, and a plan once previewed."""

    schedule: str = ""
    start: str = ""
    end: str = ""
    max_runs: str = str(DEFAULT_MAX_RUNS)
    errors: dict[str, list[str]] = field(default_factory=dict)
    ticks: list[dict[str, Any]] = field(default_factory=list)
    previewed: bool = False
    timezone: str = "UTC"

    @property
    def to_create(self) -> int:
        """How many of the previewed ticks have no FlowRun yet."""
        return sum(1 for tick in self.ticks if not tick["exists"])


def setup(app: web.Application) -> None:
    """Add the pages and actions of this module."""
    app.router.add_get("/deployments", list_page)
    app.router.add_get("/deployments/{namespace}/{name}", detail_page)
    app.router.add_post("/deployments/{namespace}/{name}/run", run_action)
    app.router.add_post("/deployments/{namespace}/{name}/backfill", backfill_action)
    app.router.add_post("/deployments/{namespace}/{name}/pause", pause_action)
    app.router.add_post("/deployments/{namespace}/{name}/resume", resume_action)


def next_fires(schedules: list[dict[str, Any]], now: datetime,
               count: int = NEXT_FIRES) -> list[dict[str, str]]:
    """The next ``count`` fire times over ``schedules`` (suspended ones left out), each
    row :func:`~headwater_operator.cli.preview.preview_ticks`' plus ``schedule``."""
    rows: list[dict[str, str]] = []
    for schedule in schedules:
        if (schedule.get("spec") or {}).get("suspend"):
            continue
        try:
            ticks = preview_ticks(schedule, None, count, now)
        except ScheduleError:
            continue  # the Schedule page says why; its Ready condition too
        name = str((schedule.get("metadata") or {}).get("name"))
        rows.extend({**tick, "schedule": name} for tick in ticks)
    rows.sort(key=lambda row: row["utc"])
    return rows[:count]


async def list_page(request: web.Request) -> web.Response:
    state = state_of(request)
    namespace = request.query.get("namespace") or None
    now = now_of(request)
    rows = []
    for body in objects.listed(state.deployments, namespace):
        meta, spec = body["metadata"], body.get("spec") or {}
        schedules = objects.schedules_of_deployment(state.schedules, meta["namespace"],
                                                    meta["name"])
        fires = next_fires(schedules, now, 1)
        rows.append({"body": body, "namespace": meta["namespace"], "name": meta["name"],
                     "flow": (spec.get("flowRef") or {}).get("name"),
                     "paused": bool(spec.get("paused")), "status": body.get("status") or {},
                     "ready": objects.condition(body), "schedules": len(schedules),
                     "next": fires[0] if fires else None})
    return render(request, "deployments.html", **objects.views(
        rows=rows, namespace=namespace,
        namespaces=objects.namespaces(objects.listed(state.deployments))))


def _deployment_or_404(request: web.Request) -> tuple[str, str, dict[str, Any]]:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    body = state_of(request).deployments.get(namespace, name)
    if body is None:
        raise web.HTTPNotFound(text=f"Deployment {namespace}/{name} not found (or not yet "
                                    "seen by the UI's watch); see /deployments")
    return namespace, name, body


def _flow_for(request: web.Request, namespace: str, deployment: Deployment | None
              ) -> tuple[Flow | None, str | None]:
    if deployment is None:
        return None, None
    flow_name = deployment.spec.flow_ref.name
    flow_body = state_of(request).flows.get(namespace, flow_name)
    if flow_body is None:
        return None, (f"Flow {namespace}/{flow_name} (spec.flowRef) not found: create it "
                      "or fix the Deployment's spec.flowRef.name")
    return objects.parse_as(flow_body, Flow)


def _run_fields(flow: Flow | None, deployment: Deployment | None) -> list[FormField]:
    if flow is None or deployment is None:
        return []
    schema = flow.spec.parameters_schema
    return form_fields(schema, prefill_values(schema, flow.spec.parameters,
                                              deployment.spec.parameters))


def detail_page_response(request: web.Request, *, status: int = 200,
                         run_form: FormResult | None = None,
                         run_error: str | None = None,
                         backfill: Backfill | None = None) -> web.Response:
    """The Deployment page, with a rejected run form or a backfill preview when given."""
    namespace, name, body = _deployment_or_404(request)
    state = state_of(request)
    now = now_of(request)
    deployment, invalid = objects.parse_as(body, Deployment)
    flow, flow_problem = _flow_for(request, namespace, deployment)
    schedules = objects.schedules_of_deployment(state.schedules, namespace, name)
    if backfill is None:
        backfill = Backfill(schedule=str(schedules[0]["metadata"]["name"]) if schedules
                            else "")
    fields = run_form.fields if run_form is not None else _run_fields(flow, deployment)
    errors = dict(run_form.errors) if run_form is not None else {}
    if run_error:
        errors.setdefault("", []).append(run_error)
    spec = body.get("spec") or {}
    return render(
        request, "deployment.html", **objects.views( status=status, body=body, namespace=namespace,
        name=name, spec=spec, status_=body.get("status") or {}, invalid=invalid,
        flow=flow, flow_name=(spec.get("flowRef") or {}).get("name"),
        flow_problem=flow_problem, paused=bool(spec.get("paused")),
        conditions=objects.conditions(body),
        runs=objects.runs_of_deployment(state.flowruns, namespace, name, LAST_RUNS),
        schedules=schedules, fires=next_fires(schedules, now), fields=fields,
        form_errors=errors, field_prefix=FIELD_PREFIX, backfill=backfill,
        created=request.query.get("created"), existed=request.query.get("existed")))


async def detail_page(request: web.Request) -> web.Response:
    return detail_page_response(request)


async def run_action(request: web.Request) -> web.StreamResponse:
    """Validate the run form; create one FlowRun (trigger ``manual``) or show the errors."""
    namespace, name, body = _deployment_or_404(request)
    form = await request.post()
    deployment, invalid = objects.parse_as(body, Deployment)
    if deployment is None:
        return detail_page_response(request, status=422, run_error=f"{invalid}; fix the "
                                    "Deployment before running it")
    flow, problem = _flow_for(request, namespace, deployment)
    if flow is None:
        return detail_page_response(request, status=422, run_error=problem)
    submitted = {key: str(value) for key, value in form.items() if key.startswith(FIELD_PREFIX)}
    result = read_run_form(flow.spec.parameters_schema, flow.spec.parameters,
                           deployment.spec.parameters, submitted)
    if not result.ok:
        return detail_page_response(request, status=422, run_form=result)
    run = build_run(name, namespace, result.overrides, trigger=FlowRunTrigger.MANUAL.value)
    try:
        async with access_of(request).writer(request) as client:
            made = await client.create(kube.FLOWRUNS, run, namespace=namespace)
    except kube.KubeError as exc:
        return detail_page_response(
            request, status=exc.status if 400 <= exc.status < 500 else 502,
            run_form=result, run_error=f"the API server refused the FlowRun: {exc.message}")
    raise web.HTTPSeeOther(f"/runs/{namespace}/{made['metadata']['name']}")


def _field_text(form: Mapping[str, Any], key: str) -> str:
    return str(form.get(key) or "").strip()


def plan_window(backfill: Backfill, schedule: Mapping[str, Any] | None,
                deployment_body: Mapping[str, Any], *, deployment: Deployment, flow: Flow,
                existing: set[str]) -> list[PlannedRun]:
    """Fill ``backfill`` with the plan of its window, or with errors by field.

    The checks are ``headwater backfill``'s: a valid Schedule of this Deployment, an ISO
    date or time for each bound (read in the Schedule's zone), ``end`` after ``start``,
    no more ticks than ``max_runs``, and every run's parameters valid for the Flow.
    """
    errors = backfill.errors
    if schedule is None:
        errors["schedule"] = ["choose one of this Deployment's Schedules"]
        return []
    try:
        expr: ScheduleExpression = expression_from_spec(schedule.get("spec") or {})
    except ScheduleError as exc:
        errors["schedule"] = [f"the Schedule is invalid: {exc}"]
        return []
    backfill.timezone = expr.timezone.key
    bounds: dict[str, datetime] = {}
    for key in ("start", "end"):
        text = getattr(backfill, key)
        if not text:
            errors[key] = [f"enter the window's {key} (a date, read in {expr.timezone.key})"]
            continue
        try:
            bounds[key] = parse_instant(text, expr.timezone, key)
        except CliError as exc:
            errors[key] = [exc.message]
    try:
        limit = int(backfill.max_runs or DEFAULT_MAX_RUNS)
        if not 1 <= limit <= MAX_BACKFILL_RUNS:
            raise ValueError
    except ValueError:
        errors["max_runs"] = [f"a whole number from 1 to {MAX_BACKFILL_RUNS}"]
        return []
    if errors:
        return []
    start, end = bounds["start"], bounds["end"]
    if end <= start:
        errors["end"] = [f"must be after the start ({format_time(start)}); the window is "
                         "[start, end)"]
        return []
    ticks = window_ticks(expr, start, end, limit)
    if len(ticks) > limit:
        errors["max_runs"] = [f"the window has more than {limit} ticks: raise the limit or "
                              "narrow the window"]
        return []
    planned = plan_backfill(schedule, deployment_body, expr, ticks)
    schema = flow.spec.parameters_schema
    for run in planned:
        problems = parameter_errors(effective_parameters(
            flow, deployment, run.body["spec"]["parameters"]), schema)
        if problems:
            errors.setdefault("", []).extend(
                f"run {run.name} (tick {format_time(run.tick)}): {p}" for p in problems)
    if errors:
        return []
    backfill.ticks = [{"local": run.tick.astimezone(expr.timezone).isoformat(),
                       "utc": format_time(run.tick), "name": run.name,
                       "parameters": run.body["spec"]["parameters"],
                       "exists": run.name in existing} for run in planned]
    backfill.previewed = True
    return planned


async def backfill_action(request: web.Request) -> web.StreamResponse:
    """``action=preview``: show the ticks (a dry run). ``action=create``: create the runs
    the ticks lack, then go back to the page saying how many were created."""
    namespace, name, body = _deployment_or_404(request)
    form = await request.post()
    state = state_of(request)
    backfill = Backfill(schedule=_field_text(form, "schedule"),
                        start=_field_text(form, "start"), end=_field_text(form, "end"),
                        max_runs=_field_text(form, "max_runs") or str(DEFAULT_MAX_RUNS))
    deployment, invalid = objects.parse_as(body, Deployment)
    flow, problem = _flow_for(request, namespace, deployment)
    if deployment is None or flow is None:
        backfill.errors[""] = [str(invalid or problem)]
        return detail_page_response(request, status=422, backfill=backfill)
    schedule = state.schedules.get(namespace, backfill.schedule) if backfill.schedule else None
    if schedule is not None and ((schedule.get("spec") or {}).get("deploymentRef")
                                 or {}).get("name") != name:
        schedule = None
    existing = {key[1] for key, run in state.flowruns.items() if key[0] == namespace and
                ((run.get("metadata") or {}).get("labels") or {}).get(LABEL_SCHEDULE)
                == label_value(backfill.schedule)}
    planned = plan_window(backfill, schedule, body, deployment=deployment, flow=flow,
                          existing=existing)
    if backfill.errors or form.get("action") != "create":
        return detail_page_response(request, status=422 if backfill.errors else 200,
                                    backfill=backfill)
    created = existed = 0
    current = "the first run"
    try:
        async with access_of(request).writer(request) as client:
            for run in planned:
                current = run.name
                try:
                    await client.create(kube.FLOWRUNS, run.body, namespace=namespace)
                    created += 1
                except kube.AlreadyExists:
                    existed += 1
    except kube.KubeError as exc:
        backfill.errors[""] = [f"creating {current} failed after creating {created} "
                               f"run(s): {exc.message}; create again to continue (existing "
                               "runs are skipped)"]
        return detail_page_response(request, status=exc.status if 400 <= exc.status < 500
                                    else 502, backfill=backfill)
    raise web.HTTPSeeOther(f"/deployments/{namespace}/{name}?created={created}"
                           f"&existed={existed}")


async def _set_paused(request: web.Request, paused: bool) -> web.StreamResponse:
    namespace, name, _ = _deployment_or_404(request)
    try:
        async with access_of(request).writer(request) as client:
            await client.patch(kube.DEPLOYMENTS, name, {"spec": {"paused": paused}},
                               namespace=namespace)
    except kube.KubeError as exc:
        return detail_page_response(
            request, status=exc.status if 400 <= exc.status < 500 else 502,
            run_error=f"{'pausing' if paused else 'resuming'} failed: {exc.message}")
    raise web.HTTPSeeOther(f"/deployments/{namespace}/{name}")


async def pause_action(request: web.Request) -> web.StreamResponse:
    """``spec.paused: true``: Schedules create no runs, new runs wait."""
    return await _set_paused(request, True)


async def resume_action(request: web.Request) -> web.StreamResponse:
    """``spec.paused: false``."""
    return await _set_paused(request, False)
