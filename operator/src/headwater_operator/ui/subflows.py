"""``/runs/<namespace>/<name>/subflows/<flow run id>``: one subflow run's own page.

A subflow (a ``@flow`` called inside a ``@flow``) runs in its root FlowRun's pod, so it
has no Kubernetes object: it lives in the attempt's run record, nested in
``flowRun.subflowRuns`` (:mod:`headwater.runrecord`). Its page reads that record as the
run's page does (:func:`~headwater_operator.ui.runs.record_of`, ``?attempt=``, default
the latest) and shows the part of it that is this flow run's (:func:`flow_run_part`):
its task runs and those of the subflows under it, nested as on the run's page, their
timeline and graph, its artifacts and assets, its own subflows, and the log lines whose
flow run is one of those (:func:`subflow_log_lines`). Breadcrumbs and links lead to the
root run, the parent flow run and the calling task run; the run's page and every task
run that calls a subflow link back (:class:`~headwater_operator.ui.runs.Links`).

What it must respect: the page is ``run.html`` with its heading, attempt and Events
blocks replaced (``subflow.html``), not a copy of it, and the JSON endpoints answer
through the run page's own functions, so both pages stay the same; a flow run id the
record does not hold is a 404 page naming the run, the attempt and the id; record text
reaches the page only through autoescaped templates and percent-encoded hrefs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from headwater_operator.cli.describe import seconds_between, task_duration
from headwater_operator.cli.store import RecordRef, flow_run_names, log_lines
from headwater_operator.ui.app import OPTIONS, now_of, render, state_of
from headwater_operator.ui.runs import (
    LEVELS,
    TERMINAL,
    Links,
    limit_lines,
    record_context,
    record_of,
    run_phase,
    run_row,
    shown_line,
    state_text,
    task_detail_answer,
    task_runs_answer,
    the_run,
)

Obj = Mapping[str, Any]


# --- the record's part that is one flow run's ------------------------------------------

def flow_run_path(record: Obj, flow_run_id: str) -> list[Obj] | None:
    """The flow runs from the record's root down to ``flow_run_id``, both included;
    ``None`` when no flow run of the record has that id."""
    root = record.get("flowRun")
    if not isinstance(root, Mapping):
        return None
    stack: list[list[Obj]] = [[root]]
    while stack:
        path = stack.pop()
        if str(path[-1].get("id") or "") == flow_run_id:
            return path
        stack.extend([*path, sub] for sub in path[-1].get("subflowRuns") or ()
                     if isinstance(sub, Mapping))
    return None


def subtree_ids(flow_run: Obj) -> set[str]:
    """The ids of ``flow_run`` and of every subflow run under it."""
    ids: set[str] = set()
    stack = [flow_run]
    while stack:
        here = stack.pop()
        ids.add(str(here.get("id") or ""))
        stack.extend(sub for sub in here.get("subflowRuns") or () if isinstance(sub, Mapping))
    return ids


def flow_run_part(record: Obj, flow_run: Obj) -> dict[str, Any]:
    """``record`` as if ``flow_run`` were its root: that flow run, the task runs of it
    and of the subflow runs under it, and their artifacts and asset materializations.

    The task run that called ``flow_run`` belongs to its parent, so it is not part of
    it. A task run without ``flowRunId`` is the root's (the schema's rule); an
    artifact or materialization without one was made outside any flow run, so it is
    only the root's.
    """
    ids = subtree_ids(flow_run)
    root = str((record.get("flowRun") or {}).get("id") or "")

    def mine(obj: Any, default: str = "") -> bool:
        return isinstance(obj, Mapping) and str(obj.get("flowRunId") or default) in ids

    return {**record, "flowRun": flow_run,
            "taskRuns": [t for t in record.get("taskRuns") or () if mine(t, root)],
            "artifacts": [a for a in record.get("artifacts") or () if mine(a)],
            "assets": [m for m in record.get("assets") or () if mine(m)]}


@dataclass(frozen=True)
class SubflowView:
    """One subflow run of one attempt's record."""

    ref: RecordRef
    record: Obj
    """The whole record."""
    path: list[Obj]
    """The flow runs from the root down to this one."""
    part: dict[str, Any]
    """:func:`flow_run_part` of this one."""
    links: Links

    @property
    def flow_run(self) -> Obj:
        return self.path[-1]


class SubflowMissing(Exception):
    """Why there is no such subflow run to show: ``status`` and a message naming it."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


async def subflow_view(request: web.Request, namespace: str, name: str,
                       run: Obj) -> SubflowView:
    """The subflow run ``<flowrun>`` of the request's attempt (:class:`SubflowMissing`
    when the record cannot be read or does not hold it)."""
    wanted = request.match_info["flowrun"]
    ref, record, error = await record_of(request, run)
    if record is None or ref is None:
        raise SubflowMissing(404 if ref is None else 503, "Run record unavailable",
                             f"Cannot show subflow run {wanted!r} of FlowRun "
                             f"{namespace}/{name}: {error}")
    links = Links.of(namespace, name, ref, record)
    path = flow_run_path(record, wanted)
    if path is not None and len(path) == 1:  # the root flow run: the run's own page
        raise web.HTTPSeeOther(links.flow_run(wanted))
    if path is None:
        count = len(flow_run_names(record)) - 1
        held = (f"it has {count} subflow run(s), listed on the run's page" if count > 0
                else "it has no subflow runs")
        raise SubflowMissing(
            404, "Subflow run not found",
            f"The run record of attempt {ref.attempt} of FlowRun {namespace}/{name} "
            f"({ref.url}) has no subflow run with id {wanted!r}; {held}. A subflow run's "
            "id belongs to one attempt: a link from another attempt's page carries "
            "?attempt=N.")
    return SubflowView(ref, record, path, flow_run_part(record, path[-1]), links)


# --- the page ----------------------------------------------------------------------------

def heading(view: SubflowView, run_name: str) -> dict[str, Any]:
    """The breadcrumbs, the parent flow run and calling task run (with their hrefs), and
    the facts of the subflow run."""
    links = view.links
    crumbs = [{"name": run_name, "href": links.flow_run(links.root_id)}]
    crumbs += [{"name": str(f.get("name") or f.get("id")),
                "href": links.flow_run(str(f.get("id") or ""))} for f in view.path[1:-1]]
    flow_run = view.flow_run
    parent = view.path[-2]
    parent_id = str(parent.get("id") or "")
    caller_id = str(flow_run.get("parentTaskRunId") or "")
    caller = next((t for t in view.record.get("taskRuns") or ()
                   if isinstance(t, Mapping) and str(t.get("id")) == caller_id), None)
    return {
        "crumbs": crumbs, "flow_run": flow_run, "state": state_text(flow_run),
        "parent": {"name": crumbs[-1]["name"], "href": links.flow_run(parent_id),
                   "root": len(view.path) == 2},
        "caller": {"name": str(caller.get("name") or caller_id) if caller else caller_id,
                   "href": links.task_run(parent_id, caller_id)} if caller_id else None,
        "state_history": [s for s in flow_run.get("stateHistory") or ()
                          if isinstance(s, Mapping)],
        "duration": task_duration(seconds_between(flow_run.get("startTime"),
                                                  flow_run.get("endTime"))),
        "depth": len(view.path) - 1}


def _missing_page(request: web.Request, missing: SubflowMissing, run_href: str
                  ) -> web.Response:
    return render(request, "error.html", status=missing.status, title=missing.title,
                  message=missing.message,
                  link={"href": run_href, "text": "The run's page"})


async def subflow_page(request: web.Request) -> web.Response:
    """``/runs/<ns>/<name>/subflows/<id>?attempt=``: one subflow run in full."""
    namespace, name, run = the_run(request)
    try:
        view = await subflow_view(request, namespace, name, run)
    except SubflowMissing as missing:
        return _missing_page(request, missing, f"/runs/{namespace}/{name}")
    state = state_of(request)
    now = now_of(request)
    flow_run = view.flow_run
    phase = run_phase(run)
    context: dict[str, Any] = {
        "run": run, "row": run_row(run, state, now), "run_status": run.get("status") or {},
        "phase": phase, "terminal": phase in TERMINAL,
        "parameters": json.dumps(flow_run.get("parameters") or {}, indent=2,
                                 sort_keys=True, default=str),
        "refs": [], "ref": view.ref, "record": view.part, "record_error": None,
        "events": [], "assets": [], "levels": LEVELS,
        "api": view.links.api(str(flow_run.get("id") or "")),
        **heading(view, name),
        **record_context(view.part, view.links, now,
                         request.app[OPTIONS].image_origins)}
    return render(request, "subflow.html", **context)


# --- what the page's scripts read ----------------------------------------------------------

async def _view(request: web.Request) -> tuple[Obj, SubflowView]:
    namespace, name, run = the_run(request)
    return run, await subflow_view(request, namespace, name, run)


def _missing_json(missing: SubflowMissing) -> web.Response:
    return web.json_response({"error": missing.message, "taskRuns": [], "total": 0,
                              "matched": 0, "lines": [], "note": missing.message},
                             status=missing.status)


async def task_runs_json(request: web.Request) -> web.Response:
    """``/api/runs/<ns>/<name>/subflows/<id>/taskruns?q=&attempt=``: the rows of the
    subflow run's task-run list, as the run's page answers them."""
    try:
        _, view = await _view(request)
    except SubflowMissing as missing:
        return _missing_json(missing)
    return task_runs_answer(request, view.part)


async def task_run_detail(request: web.Request) -> web.Response:
    """``/api/runs/<ns>/<name>/subflows/<id>/taskruns/<task>``: one of its task runs."""
    try:
        _, view = await _view(request)
    except SubflowMissing as missing:
        return web.Response(status=missing.status, text=missing.message)
    return task_detail_answer(request, view.part, view.record, view.links)


def subflow_log_lines(url: str, record: Obj, ids: set[str]
                      ) -> tuple[list[dict[str, str]], int, int]:
    """The attempt's store lines whose ``flowRunId`` is in ``ids``, as the log viewer
    shows them; with how many lines carry no flow-run id and how many there are."""
    names = flow_run_names(record)
    kept: list[dict[str, str]] = []
    unattributed = total = 0
    for line in log_lines(url):
        total += 1
        owner = line.get("flowRunId")
        if not isinstance(owner, str):
            unattributed += 1
        elif owner in ids:
            kept.append(shown_line(line, names))
    return kept, unattributed, total


async def logs_json(request: web.Request) -> web.Response:
    """``/api/runs/<ns>/<name>/subflows/<id>/logs?attempt=&level=``: the log lines of
    the subflow run and of the flow runs under it.

    Always from the run store: its lines carry the flow run's id, the pod's text does
    not say reliably whose a line is. A running attempt flushes them every 2 s, so the
    page follows them by polling as the run's page does.
    """
    try:
        run, view = await _view(request)
    except SubflowMissing as missing:
        return _missing_json(missing)
    ids = subtree_ids(view.flow_run)
    lines, unattributed, total = await asyncio.to_thread(
        subflow_log_lines, view.ref.url, view.record, ids)
    note = (f"From the run store at {view.ref.url}: the {len(lines)} of the attempt's "
            f"{total} lines logged by this flow run, its task runs and the subflow runs "
            "under it (the lines carry their flow run's id).")
    if unattributed:
        note += (f" {unattributed} line(s) carry no flow-run id (logged outside a flow or "
                 "task run's logger): they are on the run's page.")
    shown, note = limit_lines(lines, str(request.query.get("level") or "").upper(), note)
    return web.json_response({"lines": shown, "running": run_phase(run) not in TERMINAL,
                              "source": "store", "note": note,
                              "attempt": view.ref.attempt})


def setup(app: web.Application) -> None:
    """Add the subflow pages' routes."""
    app.router.add_get("/runs/{namespace}/{name}/subflows/{flowrun}", subflow_page)
    prefix = "/api/runs/{namespace}/{name}/subflows/{flowrun}"
    app.router.add_get(f"{prefix}/taskruns", task_runs_json)
    app.router.add_get(f"{prefix}/taskruns/{{task}}", task_run_detail)
    app.router.add_get(f"{prefix}/logs", logs_json)
