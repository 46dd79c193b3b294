"""``/runs`` and ``/runs/<namespace>/<name>``: the runs table and one run in full.

The table is computed from the FlowRun store (:class:`~headwater_operator.ui.state.
UiState`), never the API server: filtering, sorting and a page of
:data:`PAGE_SIZE` rows from 10,000 runs take a few milliseconds
(``benchmarks/ui_runs.py``). A run's page reads the attempt's record from the run store
(through :mod:`headwater_operator.cli.store`, in a thread: the store may be a bucket),
its task runs are served as JSON (``/api/runs/<ns>/<name>/taskruns``) for the page's
virtualized list, its log lines likewise (``/api/runs/<ns>/<name>/logs``).

What it must respect: no secret is rendered (records and summaries are redacted by the
SDK; the page shows nothing else of the pod); markdown is rendered by
:mod:`headwater_operator.ui.markdown` only; Cancel is a CSRF-checked ``POST`` made with
the identity :meth:`~headwater_operator.ui.auth.Access.writer` gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup

from headwater_operator.cli.output import human_duration, parse_time
from headwater_operator.ui import svg
from headwater_operator.ui.app import now_of, render, state_of
from headwater_operator.ui.state import UiState

PAGE_SIZE = 100
"""Rows of the runs table per page."""
FILTERS = ("namespace", "deployment", "flow", "phase", "trigger", "tag", "since", "until",
           "q")
"""The query parameters of ``/runs``."""
PHASES = ("Scheduled", "Late", "AwaitingConcurrencySlot", "Pending", "Running",
          "AwaitingRetry", "Retrying", "Cancelling", "Completed", "Failed", "Crashed",
          "Cancelled")
TRIGGERS = ("schedule", "backfill", "cli", "manual")
ALARMING = frozenset({"Late", "Crashed"})
"""Phases whose rows stand out."""

Obj = Mapping[str, Any]


def run_time(run: Obj) -> str:
    """When a run was due (scheduled time), else created: its place in time."""
    status = run.get("status") or {}
    spec = run.get("spec") or {}
    return str(status.get("scheduledTime") or spec.get("scheduledTime")
               or run["metadata"].get("creationTimestamp") or "")


def run_phase(run: Obj) -> str:
    return str((run.get("status") or {}).get("phase") or "Scheduled")


def run_trigger(run: Obj) -> str:
    spec = run.get("spec") or {}
    annotations = run["metadata"].get("annotations") or {}
    return str(spec.get("trigger") or annotations.get("headwater.dev/trigger") or "")


def run_deployment(run: Obj) -> str:
    return str(((run.get("spec") or {}).get("deploymentRef") or {}).get("name") or "")


def run_flow(run: Obj, state: UiState) -> str:
    """The Flow a run runs: its own ``flowRef``, else its Deployment's."""
    spec = run.get("spec") or {}
    if spec.get("flowRef"):
        return str(spec["flowRef"].get("name") or "")
    deployment = state.deployments.get(run["metadata"].get("namespace") or "",
                                       run_deployment(run))
    if deployment is None:
        return ""
    return str(((deployment.get("spec") or {}).get("flowRef") or {}).get("name") or "")


def run_tags(run: Obj, state: UiState) -> list[str]:
    """A run's tags: its Deployment's ``spec.tags``."""
    deployment = state.deployments.get(run["metadata"].get("namespace") or "",
                                       run_deployment(run))
    if deployment is None:
        return []
    return [str(t) for t in (deployment.get("spec") or {}).get("tags") or []]


class FilterError(ValueError):
    """A query parameter that cannot be used; the message names it and the fix."""


def _instant(name: str, text: str) -> datetime:
    moment = parse_time(text.strip().replace(" ", "T"))
    if moment is None:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise FilterError(f"{name}: {text!r} is not a date or time; use e.g. 2026-03-01 "
                              "or 2026-03-01T06:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


@dataclass
class RunFilter:
    """The ``/runs`` query: every field optional."""

    namespace: str = ""
    deployment: str = ""
    flow: str = ""
    phase: str = ""
    trigger: str = ""
    tag: str = ""
    since: str = ""
    until: str = ""
    q: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> RunFilter:
        return cls(**{name: str(query.get(name) or "").strip() for name in FILTERS})

    def query(self, **extra: Any) -> str:
        """This filter (and ``extra``) as a query string, empty fields left out."""
        values = {name: getattr(self, name) for name in FILTERS}
        values.update({k: str(v) for k, v in extra.items()})
        return urlencode({k: v for k, v in values.items() if v})

    def select(self, state: UiState) -> list[Obj]:
        """The runs that match, newest first. Raises :class:`FilterError`."""
        since = _instant("since", self.since) if self.since else None
        until = _instant("until", self.until) if self.until else None
        q = self.q.lower()
        needs_deployment = bool(self.flow or self.tag)
        selected: list[tuple[str, Obj]] = []
        for (namespace, name), run in state.flowruns.items():
            if self.namespace and namespace != self.namespace:
                continue
            if q and q not in name.lower():
                continue
            if self.phase and run_phase(run) != self.phase:
                continue
            if self.deployment and run_deployment(run) != self.deployment:
                continue
            if self.trigger and run_trigger(run) != self.trigger:
                continue
            if needs_deployment:
                if self.flow and run_flow(run, state) != self.flow:
                    continue
                if self.tag and self.tag not in run_tags(run, state):
                    continue
            when = run_time(run)
            if since is not None or until is not None:
                moment = parse_time(when)
                if moment is None or (since is not None and moment < since) or (
                        until is not None and moment >= until):
                    continue
            selected.append((when, run))
        selected.sort(key=lambda pair: (pair[0], pair[1]["metadata"]["name"]), reverse=True)
        return [run for _, run in selected]


def duration_text(run: Obj, now: datetime) -> str:
    status = run.get("status") or {}
    seconds = status.get("durationSeconds")
    if isinstance(seconds, int | float):
        return human_duration(seconds)
    started = parse_time(status.get("startTime"))
    if started is not None and not status.get("endTime"):
        return human_duration(max((now - started).total_seconds(), 0)) + " so far"
    return ""


def run_row(run: Obj, state: UiState, now: datetime) -> dict[str, Any]:
    """What one table row shows."""
    meta = run["metadata"]
    status = run.get("status") or {}
    phase = run_phase(run)
    return {
        "name": meta["name"], "namespace": meta.get("namespace") or "",
        "deployment": run_deployment(run), "flow": run_flow(run, state),
        "phase": phase, "reason": status.get("reason") or "",
        "trigger": run_trigger(run), "scheduled": run_time(run),
        "started": status.get("startTime") or "", "duration": duration_text(run, now),
        "tags": run_tags(run, state), "alarming": phase in ALARMING,
        "href": f"/runs/{meta.get('namespace') or ''}/{meta['name']}",
    }


def choices(state: UiState) -> dict[str, list[str]]:
    """The filter form's dropdown values, from what the stores hold."""
    namespaces = {key[0] for key, _ in state.flowruns.items()}
    deployments = sorted({key[1] for key, _ in state.deployments.items()})
    flows = sorted({key[1] for key, _ in state.flows.items()})
    tags = sorted({str(tag) for _, d in state.deployments.items()
                   for tag in (d.get("spec") or {}).get("tags") or []})
    return {"namespace": sorted(namespaces), "deployment": deployments, "flow": flows,
            "phase": list(PHASES), "trigger": list(TRIGGERS), "tag": tags}


async def runs_index(request: web.Request) -> web.Response:
    """``/runs``: the filter form, the chart, one page of the table."""
    state = state_of(request)
    now = now_of(request)
    query = RunFilter.from_query(request.query)
    try:
        page = max(int(request.query.get("page") or 1), 1)
    except ValueError:
        page = 1
    error = None
    try:
        runs = query.select(state)
    except FilterError as exc:
        error, runs = str(exc), []
    pages = max((len(runs) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(page, pages)
    shown = runs[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    chart = svg.runs_over_time([(run_time(r), run_phase(r)) for r in runs], now)
    return render(
        request, "runs.html", filter=query, error=error, total=len(runs), page=page,
        pages=pages, rows=[run_row(r, state, now) for r in shown], chart=Markup(chart),
        choices=choices(state),
        prev_href=f"/runs?{query.query(page=page - 1)}" if page > 1 else None,
        next_href=f"/runs?{query.query(page=page + 1)}" if page < pages else None)


def setup(app: web.Application) -> None:
    """Add the runs pages' routes."""
    app.router.add_get("/runs", runs_index)
