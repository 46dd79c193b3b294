"""``/schedules`` and ``/schedules/<ns>/<name>``: the expression in words and its zone,
the next fire times and a calendar of them, missed ticks, Suspend and Resume.

What it must respect: fire times come from the operator's own code
(:func:`~headwater_operator.cli.preview.preview_ticks`, as ``schedule preview`` and
``describe schedule`` show them), so the page shows exactly what will run, DST
included; missed ticks are the operator's ``status.missedTicks`` and ``MissedTicks``
condition, never recomputed here. Reads come from the watch-backed stores; Suspend and
Resume (``spec.suspend``) are CSRF-checked ``POST``s made with the request's identity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from headwater.scheduling.expression import expression_from_spec

from headwater_operator import kube
from headwater_operator.cli.get import schedule_expression
from headwater_operator.cli.preview import preview_ticks
from headwater_operator.scheduling import ScheduleError
from headwater_operator.ui import objects
from headwater_operator.ui.app import access_of, now_of, render, state_of
from headwater_operator.ui.schedtext import WEEKDAY_HEADERS, describe_expression, month_grid

NEXT_FIRE_TIMES = 10
CALENDAR_TICKS = 200
"""Fire times the calendar shows at most (a minutely schedule fills it with one day)."""
CALENDAR_MONTHS = 3
LAST_RUNS = 10


def setup(app: web.Application) -> None:
    """Add the pages and actions of this module."""
    app.router.add_get("/schedules", list_page)
    app.router.add_get("/schedules/{namespace}/{name}", detail_page)
    app.router.add_post("/schedules/{namespace}/{name}/suspend", suspend_action)
    app.router.add_post("/schedules/{namespace}/{name}/resume", resume_action)


def summary(schedule: dict[str, Any], now: datetime, count: int) -> dict[str, Any]:
    """What the pages show of one Schedule: words, zone, the next ``count`` ticks, or the
    reason it has none (``invalid``)."""
    spec = schedule.get("spec") or {}
    try:
        expr = expression_from_spec(spec)
    except ScheduleError as exc:
        return {"words": None, "invalid": str(exc), "ticks": [], "expr": None,
                "expression": schedule_expression(schedule),
                "timezone": spec.get("timezone") or "UTC"}
    return {"words": describe_expression(expr), "invalid": None, "expr": expr,
            "ticks": preview_ticks(schedule, None, count, now),
            "expression": schedule_expression(schedule), "timezone": expr.timezone.key}


async def list_page(request: web.Request) -> web.Response:
    state = state_of(request)
    namespace = request.query.get("namespace") or None
    now = now_of(request)
    rows = []
    for body in objects.listed(state.schedules, namespace):
        info = summary(body, now, 1)
        rows.append({"body": body, "namespace": body["metadata"]["namespace"],
                     "name": body["metadata"]["name"], "spec": body.get("spec") or {},
                     "status": body.get("status") or {}, "info": info,
                     "ready": objects.condition(body)})
    return render(request, "schedules.html", **objects.views(
        rows=rows, namespace=namespace,
        namespaces=objects.namespaces(objects.listed(state.schedules))))


def _schedule_or_404(request: web.Request) -> tuple[str, str, dict[str, Any]]:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    body = state_of(request).schedules.get(namespace, name)
    if body is None:
        raise web.HTTPNotFound(text=f"Schedule {namespace}/{name} not found (or not yet "
                                    "seen by the UI's watch); see /schedules")
    return namespace, name, body


def detail_response(request: web.Request, *, status: int = 200,
                    error: str | None = None) -> web.Response:
    namespace, name, body = _schedule_or_404(request)
    now = now_of(request)
    info = summary(body, now, NEXT_FIRE_TIMES)
    months = []
    if info["expr"] is not None:
        calendar_rows = preview_ticks(body, None, CALENDAR_TICKS, now)
        instants = [datetime.fromisoformat(r["local"]) for r in calendar_rows]
        zone = info["expr"].timezone
        months = month_grid(instants, zone, now.astimezone(zone).date(), CALENDAR_MONTHS)
    spec = body.get("spec") or {}
    deployment = (spec.get("deploymentRef") or {}).get("name")
    state = state_of(request)
    runs = objects.runs_of_schedule(state.flowruns, namespace, name, LAST_RUNS)
    return render(request, "schedule.html", status=status, **objects.views(
                  body=body, namespace=namespace, name=name, spec=spec,
                  status_=body.get("status") or {}, info=info,
                  months=months, weekdays=WEEKDAY_HEADERS,
                  conditions=objects.conditions(body),
                  missed=objects.condition(body, "MissedTicks"), deployment=deployment,
                  deployment_exists=state.deployments.get(namespace, str(deployment))
                  is not None, runs=runs, error=error))


async def detail_page(request: web.Request) -> web.Response:
    return detail_response(request)


async def _set_suspend(request: web.Request, suspend: bool) -> web.StreamResponse:
    namespace, name, _ = _schedule_or_404(request)
    try:
        async with access_of(request).writer(request) as client:
            await client.patch(kube.SCHEDULES, name, {"spec": {"suspend": suspend}},
                               namespace=namespace)
    except kube.KubeError as exc:
        return detail_response(request, status=exc.status if 400 <= exc.status < 500
                               else 502, error=f"{'suspending' if suspend else 'resuming'} "
                               f"failed: {exc.message}")
    raise web.HTTPSeeOther(f"/schedules/{namespace}/{name}")


async def suspend_action(request: web.Request) -> web.StreamResponse:
    """``spec.suspend: true``: no new runs; missed ticks follow ``catchup`` on resume."""
    return await _set_suspend(request, True)


async def resume_action(request: web.Request) -> web.StreamResponse:
    """``spec.suspend: false``."""
    return await _set_suspend(request, False)
