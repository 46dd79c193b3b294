"""``/runs`` and ``/runs/<namespace>/<name>``: the runs table and one run in full.

The table is computed from the FlowRun store (:class:`~headwater_operator.ui.state.
UiState`), never the API server: filtering, sorting and a page of
:data:`PAGE_SIZE` rows from 10,000 runs take a few milliseconds
(``benchmarks/ui_runs.py``). A run's page reads the attempt's record from the run store
(through :mod:`headwater_operator.cli.store`, in a thread: the store may be a bucket),
its task runs are served as JSON (``/api/runs/<ns>/<name>/taskruns``) for the page's
virtualized list, its log lines likewise (``/api/runs/<ns>/<name>/logs``). A subflow run's
page (:mod:`headwater_operator.ui.subflows`) shows the same parts of the record, cut to
that flow run, through the functions here; :class:`Links` makes the hrefs between them.

What it must respect: no secret is rendered (records and summaries are redacted by the
SDK; the page shows nothing else of the pod); markdown is rendered by
:mod:`headwater_operator.ui.markdown` only; Cancel is a CSRF-checked ``POST`` made with
the identity :meth:`~headwater_operator.ui.auth.Access.writer` gives.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web
from markupsafe import Markup

from headwater_operator import kube
from headwater_operator.api import TERMINAL_PHASES
from headwater_operator.api.enums import FlowRunTrigger
from headwater_operator.cli.common import CliError
from headwater_operator.cli.describe import (
    ordered_task_runs,
    run_events,
    seconds_between,
    task_duration,
    task_matches,
    task_run_times,
)
from headwater_operator.cli.follow import LOG_CONTAINER
from headwater_operator.cli.logs import render_log_line
from headwater_operator.cli.output import human_duration, parse_time
from headwater_operator.cli.store import (
    NO_STORE,
    RecordRef,
    StoreUnreadable,
    flow_run_names,
    log_lines,
    pick_record,
    read_record,
    record_refs,
)
from headwater_operator.flowruns.render import pod_name
from headwater_operator.ui import svg
from headwater_operator.ui.app import JINJA, OPTIONS, access_of, now_of, render, state_of
from headwater_operator.ui.markdown import render_artifact
from headwater_operator.ui.state import UiState

PAGE_SIZE = 100
"""Rows of the runs table per page."""
FILTERS = ("namespace", "deployment", "flow", "phase", "trigger", "tag", "since", "until",
           "q")
"""The query parameters of ``/runs``."""
PHASES = ("Scheduled", "Late", "AwaitingConcurrencySlot", "Pending", "Running",
          "AwaitingRetry", "Retrying", "Cancelling", "Completed", "Failed", "Crashed",
          "Cancelled")
TRIGGERS = tuple(trigger.value for trigger in FlowRunTrigger)
ALARMING = frozenset({"Late", "Crashed"})
TERMINAL = frozenset(str(phase) for phase in TERMINAL_PHASES)
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

    def select(self, state: UiState, index: RunIndex | None = None) -> list[Summary]:
        """The runs that match, newest first. Raises :class:`FilterError`."""
        since = _instant("since", self.since).timestamp() if self.since else None
        until = _instant("until", self.until).timestamp() if self.until else None
        q = self.q.lower()
        needs_deployment = bool(self.flow or self.tag)
        selected: list[Summary] = []
        for summary in (index or RunIndex()).summaries(state):
            if self.namespace and summary.namespace != self.namespace:
                continue
            if q and q not in summary.lower_name:
                continue
            if self.phase and summary.phase != self.phase:
                continue
            if self.deployment and summary.deployment != self.deployment:
                continue
            if self.trigger and summary.trigger != self.trigger:
                continue
            if needs_deployment:
                if self.flow and run_flow(summary.run, state) != self.flow:
                    continue
                if self.tag and self.tag not in run_tags(summary.run, state):
                    continue
            if since is not None or until is not None:
                moment = summary.epoch
                if moment is None or (since is not None and moment < since) or (
                        until is not None and moment >= until):
                    continue
            selected.append(summary)
        selected.sort(key=_newest_first, reverse=True)
        return selected


class Summary(NamedTuple):
    """What filtering and sorting need of one FlowRun, computed once per version."""

    run: Obj
    namespace: str
    lower_name: str
    when: str
    epoch: float | None
    phase: str
    deployment: str
    trigger: str


def summarize(run: Obj) -> Summary:
    meta = run["metadata"]
    when = run_time(run)
    moment = parse_time(when)
    return Summary(run, str(meta.get("namespace") or ""), str(meta["name"]).lower(), when,
                   moment.timestamp() if moment is not None else None, run_phase(run),
                   run_deployment(run), run_trigger(run))


def _newest_first(summary: Summary) -> tuple[float, str]:
    return (summary.epoch if summary.epoch is not None else float("-inf"),
            summary.lower_name)


SELECTION_CACHE_SIZE = 32
"""Filtered, sorted selections (with their chart) kept for paging and reloads."""


class RunIndex:
    """:class:`Summary` of every FlowRun in the store, recomputed only for objects the
    watch replaced (the store keeps the delivered object, so identity tells), and the
    last :data:`SELECTION_CACHE_SIZE` selections with their chart, valid while no
    FlowRun or Deployment changed."""

    def __init__(self) -> None:
        self._summaries: dict[tuple[str, str], Summary] = {}
        self._selections: OrderedDict[tuple[Any, ...], tuple[list[Summary], str]] = (
            OrderedDict())

    def selection(self, state: UiState, query: RunFilter, now: datetime
                  ) -> tuple[list[Summary], str]:
        """The runs ``query`` selects, newest first, and their chart (SVG)."""
        key = (state.revisions.get("FlowRun"), state.revisions.get("Deployment"),
               *(getattr(query, name) for name in FILTERS))
        found = self._selections.get(key)
        if found is not None:
            self._selections.move_to_end(key)
            return found
        selected = query.select(state, self)
        chart = svg.runs_over_time([(s.epoch, s.phase) for s in selected
                                    if s.epoch is not None], now)
        self._selections[key] = (selected, chart)
        while len(self._selections) > SELECTION_CACHE_SIZE:
            self._selections.popitem(last=False)
        return selected, chart

    def summaries(self, state: UiState) -> list[Summary]:
        previous = self._summaries
        current: dict[tuple[str, str], Summary] = {}
        for key, run in state.flowruns.items():
            found = previous.get(key)
            current[key] = found if found is not None and found.run is run else summarize(run)
        self._summaries = current
        return list(current.values())


RUN_INDEX = web.AppKey("run_index", RunIndex)


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
        runs, chart = request.app[RUN_INDEX].selection(state, query, now)
    except FilterError as exc:
        error, runs, chart = str(exc), [], svg.runs_over_time([], now)
    pages = max((len(runs) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(page, pages)
    shown = runs[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    return render(
        request, "runs.html", filter=query, error=error, total=len(runs), page=page,
        pages=pages, rows=[run_row(s.run, state, now) for s in shown], chart=Markup(chart),
        choices=choices(state),
        prev_href=f"/runs?{query.query(page=page - 1)}" if page > 1 else None,
        next_href=f"/runs?{query.query(page=page + 1)}" if page < pages else None)


# --- one run --------------------------------------------------------------------------

RECORD_CACHE_SIZE = 16
"""Complete records kept in memory (a record of 10,000 task runs is a few MB): the page,
its task-run list and each task's detail read the same record."""
LOG_LINE_LIMIT = 20_000
"""Log lines one answer carries at most (the last ones)."""
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_POD_LEVEL = re.compile(r"^\S+ \| (DEBUG|INFO|WARNING|ERROR|CRITICAL)\s* \| ")


class RecordCache:
    """Complete records by URL, least recently used dropped; incomplete ones (a running
    attempt flushes every 2 s) are always read again."""

    def __init__(self, size: int = RECORD_CACHE_SIZE) -> None:
        self.size = size
        self._records: OrderedDict[str, dict[str, Any]] = OrderedDict()

    async def read(self, ref: RecordRef) -> dict[str, Any]:
        """The record at ``ref`` (:class:`StoreUnreadable` naming the URL and fix)."""
        found = self._records.get(ref.url)
        if found is not None:
            self._records.move_to_end(ref.url)
            return found
        record = await asyncio.to_thread(read_record, ref)
        if record.get("complete"):
            self._records[ref.url] = record
            while len(self._records) > self.size:
                self._records.popitem(last=False)
        return record


RECORDS = web.AppKey("records", RecordCache)


def the_run(request: web.Request) -> tuple[str, str, Obj]:
    """(namespace, name, FlowRun) of the request's ``<namespace>/<name>``, or 404."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    run = state_of(request).flowruns.get(namespace, name)
    if run is None:
        raise web.HTTPNotFound(text=f"FlowRun {namespace}/{name} is not among the runs this "
                                    "UI watches: it was deleted, or its namespace is not "
                                    "served (headwater ui -n NAMESPACE)")
    return namespace, name, run


def _attempt(request: web.Request) -> int | None:
    text = request.query.get("attempt")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"attempt={text!r} is not a number; use "
                                      "?attempt=1 for the first attempt") from None


async def record_of(request: web.Request, run: Obj
                    ) -> tuple[RecordRef | None, dict[str, Any] | None, str | None]:
    """(which record, the record, why there is none) for ``?attempt=`` (default latest)."""
    try:
        ref = pick_record(run, _attempt(request))
    except CliError as exc:
        return None, None, exc.message
    try:
        return ref, await request.app[RECORDS].read(ref), None
    except StoreUnreadable as exc:
        return ref, None, exc.message


@dataclass(frozen=True)
class Links:
    """The hrefs of one attempt's pages: the run's (its root flow run) and its subflow
    runs' (``/runs/<ns>/<name>/subflows/<flow run id>``), each with ``?attempt=``: a
    subflow run's id is one attempt's, so a link without it would break once a retry
    starts. Every segment is percent-encoded, so a record's ids cannot change a path."""

    namespace: str
    name: str
    attempt: int
    root_id: str

    @classmethod
    def of(cls, namespace: str, name: str, ref: RecordRef,
           record: Mapping[str, Any]) -> Links:
        return cls(namespace, name, ref.attempt,
                   str((record.get("flowRun") or {}).get("id") or ""))

    def _path(self, flow_run_id: str) -> str:
        path = f"{quote(self.namespace, safe='')}/{quote(self.name, safe='')}"
        if flow_run_id and flow_run_id != self.root_id:
            path += f"/subflows/{quote(flow_run_id, safe='')}"
        return path

    def flow_run(self, flow_run_id: str) -> str:
        """The page of flow run ``flow_run_id``: the run's page for the root."""
        return f"/runs/{self._path(flow_run_id)}?attempt={self.attempt}"

    def task_run(self, flow_run_id: str, task_run_id: str) -> str:
        """The page of ``flow_run_id`` with task run ``task_run_id``'s detail open."""
        return f"{self.flow_run(flow_run_id)}&{urlencode({'task': task_run_id})}"

    def api(self, flow_run_id: str) -> str:
        """Where the page of ``flow_run_id`` reads its task runs and logs."""
        return f"/api/runs/{self._path(flow_run_id)}"


def task_rows(record: Mapping[str, Any], pattern: str | None) -> list[dict[str, Any]]:
    """The virtualized list's rows: every task run (a subflow's after the task run that
    called it, ``depth`` deeper) whose name matches ``pattern`` (as ``describe run
    --task`` matches)."""
    names = flow_run_names(record)
    rows: list[dict[str, Any]] = []
    for depth, task_run in ordered_task_runs(record):
        name = str(task_run.get("name", ""))
        if not task_matches(name, pattern):
            continue
        label = name
        if isinstance(task_run.get("mapIndex"), int):
            label += f"[{task_run['mapIndex']}]"
        if task_run.get("subflowRunId"):
            label += f" → {names.get(str(task_run['subflowRunId']), task_run['subflowRunId'])}"
        start, end = task_run_times(task_run)
        rows.append({"id": str(task_run.get("id")), "label": label, "depth": depth,
                     "state": state_text(task_run), "start": start or "",
                     "duration": task_duration(seconds_between(start, end)),
                     "attempts": len(task_run.get("attempts") or []),
                     "cacheHit": bool(task_run.get("cacheHit"))})
    return rows


def state_text(obj: Mapping[str, Any]) -> str:
    """A record's task or flow run's state name (the record writes a name; older
    records an object with ``name`` and ``type``)."""
    state = obj.get("state")
    if isinstance(state, Mapping):
        state = state.get("name") or state.get("type")
    return str(state or "")


def subflows(record: Mapping[str, Any], links: Links | None = None) -> list[dict[str, Any]]:
    """The record's subflow runs, each with its parent flow run and calling task run
    (and, with ``links``, the hrefs of all three)."""
    names = flow_run_names(record)
    task_names = {str(t.get("id")): str(t.get("name") or "")
                  for t in record.get("taskRuns") or []}
    found: list[dict[str, Any]] = []
    stack = [(1, sub) for sub in (record.get("flowRun") or {}).get("subflowRuns") or []]
    while stack:
        depth, flow_run = stack.pop(0)
        if not isinstance(flow_run, Mapping):
            continue
        ident = str(flow_run.get("id") or "")
        parent = str(flow_run.get("parentFlowRunId") or "")
        caller = str(flow_run.get("parentTaskRunId") or "")
        found.append({
            "depth": depth, "id": ident,
            "name": str(flow_run.get("name") or ""), "flow": str(flow_run.get("flow") or ""),
            "state": state_text(flow_run), "start": flow_run.get("startTime") or "",
            "duration": task_duration(seconds_between(flow_run.get("startTime"),
                                                      flow_run.get("endTime"))),
            "parent": names.get(parent, ""), "calledBy": task_names.get(caller, ""),
            "href": links.flow_run(ident) if links and ident else "",
            "parentHref": links.flow_run(parent) if links and parent else "",
            "calledByHref": links.task_run(parent, caller) if links and caller else ""})
        stack[0:0] = [(depth + 1, sub) for sub in flow_run.get("subflowRuns") or []]
    return found


def timeline(record: Mapping[str, Any], now: datetime) -> Markup:
    """The Gantt chart of the record's subflows and task runs."""
    ordered = ordered_task_runs(record)
    times = {str(t.get("id")): task_run_times(t) for _, t in ordered}
    lanes = svg.task_lanes(ordered, times)
    aggregated = len(ordered) > svg.GANTT_LANE_LIMIT
    count = f"{len(ordered)} task run" + ("" if len(ordered) == 1 else "s")
    label = (f"Timeline of {count}, one lane per task key" if aggregated
             else f"Timeline of {count}")
    return Markup(svg.gantt(lanes, now, label))  # safe: svg escapes every text


def graph(record: Mapping[str, Any]) -> Markup:
    task_runs = [t for _, t in ordered_task_runs(record)]
    aggregated = len(task_runs) > svg.GRAPH_NODE_LIMIT
    label = ("Task dependency graph, one node per task key" if aggregated
             else "Task dependency graph")
    return Markup(svg.dependency_graph(task_runs, label))  # safe: escaped


def artifacts(record: Mapping[str, Any], image_origins: Collection[str] = ()
              ) -> list[dict[str, Any]]:
    task_names = {str(t.get("id")): str(t.get("name") or "")
                  for t in record.get("taskRuns") or []}
    return [{"key": a.get("key") or "", "type": a.get("type") or "",
             "description": a.get("description") or "", "created": a.get("created") or "",
             "task": task_names.get(str(a.get("taskRunId") or ""), ""),
             "html": render_artifact(a, image_origins)}
            for a in record.get("artifacts") or [] if isinstance(a, Mapping)]


def events_about(state: UiState, namespace: str, name: str) -> list[dict[str, Any]]:
    """The Events about FlowRun ``namespace/name``, oldest first (as ``describe run``)."""
    mine = [e for (ns, _), e in state.events.items() if ns == namespace]
    return [{"type": e.get("type") or "", "reason": e.get("reason") or "",
             "message": e.get("message") or "", "count": e.get("count") or 1,
             "time": e.get("lastTimestamp") or e.get("eventTime")
             or (e.get("metadata") or {}).get("creationTimestamp") or ""}
            for e in run_events(mine, name)]


def record_context(record: Mapping[str, Any], links: Links, now: datetime,
                   image_origins: Collection[str] = ()) -> dict[str, Any]:
    """What the record's part of a run's (or subflow run's) page shows: ``record`` is
    the whole record, or a subflow run's part of it; image artifacts load only from
    ``image_origins`` (the server's ``--image-origin``)."""
    return {
        "timeline": timeline(record, now), "graph": graph(record),
        "task_count": len(record.get("taskRuns") or []),
        "subflows": subflows(record, links), "artifacts": artifacts(record, image_origins),
        "materializations": [m for m in record.get("assets") or []
                             if isinstance(m, Mapping)],
        "record_complete": bool(record.get("complete"))}


async def run_page(request: web.Request) -> web.Response:
    """``/runs/<ns>/<name>``: one run in full."""
    namespace, name, run = the_run(request)
    state = state_of(request)
    now = now_of(request)
    ref, record, record_error = await record_of(request, run)
    status = run.get("status") or {}
    phase = run_phase(run)
    context: dict[str, Any] = {
        "run": run, "row": run_row(run, state, now), "run_status": status,
        "spec": run.get("spec") or {}, "phase": phase,
        "terminal": phase in TERMINAL, "ended": status.get("endTime") or "",
        "parameters": json.dumps((run.get("spec") or {}).get("parameters") or {},
                                 indent=2, sort_keys=True, default=str),
        "refs": record_refs(run), "ref": ref, "record": record,
        "record_error": record_error, "events": events_about(state, namespace, name),
        "assets": status.get("assets") or [], "levels": LEVELS,
        "api": f"/api/runs/{namespace}/{name}",
        "started_attempts": int(status.get("attempts") or 0)}
    if record is not None and ref is not None:
        context.update(record_context(record, Links.of(namespace, name, ref, record), now,
                                      request.app[OPTIONS].image_origins))
    return render(request, "run.html", **context)


def task_runs_answer(request: web.Request, record: Mapping[str, Any]) -> web.Response:
    """The task-run list's rows matching ``?q=``, as JSON."""
    rows = task_rows(record, request.query.get("q") or None)
    return web.json_response({"taskRuns": rows, "total": len(record.get("taskRuns") or []),
                              "matched": len(rows)})


async def task_runs_json(request: web.Request) -> web.Response:
    """``/api/runs/<ns>/<name>/taskruns?q=&attempt=``: the list's rows, as JSON."""
    _, _, run = the_run(request)
    _, record, error = await record_of(request, run)
    if record is None:
        return web.json_response({"error": error, "taskRuns": [], "total": 0, "matched": 0},
                                 status=404)
    return task_runs_answer(request, record)


def task_detail_answer(request: web.Request, record: Mapping[str, Any],
                       whole: Mapping[str, Any], links: Links) -> web.Response:
    """Task run ``<task>`` of ``record`` (the page's part of the ``whole`` record) as an
    HTML fragment: the subflow run it calls and, when it is not the page's own flow
    run's, the flow run it belongs to, both linked."""
    wanted = request.match_info["task"]
    task_runs = record.get("taskRuns") or []
    task_run = next((t for t in task_runs if str(t.get("id")) == wanted), None)
    if task_run is None:
        raise web.HTTPNotFound(text=f"no task run {wanted} in this attempt's record")
    names = {str(t.get("id")): str(t.get("name") or "") for t in task_runs}
    flow_names = flow_run_names(whole)
    page_flow_run = str((record.get("flowRun") or {}).get("id") or "")
    owner = str(task_run.get("flowRunId") or links.root_id)
    called = str(task_run.get("subflowRunId") or "")
    start, end = task_run_times(task_run)
    page = request.app[JINJA].get_template("task.html").render(
        task=task_run, start=start or "", end=end or "",
        duration=task_duration(seconds_between(start, end)), state=state_text(task_run),
        upstream=[names.get(str(i), str(i)) for i in task_run.get("upstream") or []],
        wait_for=[names.get(str(i), str(i)) for i in task_run.get("waitFor") or []],
        subflow=flow_names.get(called, ""),
        subflow_href=links.flow_run(called) if called in flow_names else "",
        flow_run=flow_names.get(owner, owner) if owner != page_flow_run else "",
        flow_run_href=links.flow_run(owner) if owner != page_flow_run else "")
    return web.Response(text=page, content_type="text/html",
                        headers={"Cache-Control": "no-store"})


async def task_run_detail(request: web.Request) -> web.Response:
    """``/api/runs/<ns>/<name>/taskruns/<id>``: one task run's detail (an HTML fragment)."""
    namespace, name, run = the_run(request)
    ref, record, error = await record_of(request, run)
    if record is None or ref is None:
        raise web.HTTPNotFound(text=error or "no record")
    return task_detail_answer(request, record, record,
                              Links.of(namespace, name, ref, record))


def _level_at_least(level: str, minimum: str) -> bool:
    if not minimum or minimum not in LEVELS:
        return True
    rank = LEVELS.index(level) if level in LEVELS else LEVELS.index("INFO")
    return rank >= LEVELS.index(minimum)


def pod_log_lines(text: str) -> list[dict[str, str]]:
    """A pod's output as lines with their level (a traceback's lines take the level of
    the line they follow)."""
    lines: list[dict[str, str]] = []
    level = "INFO"
    for line in text.splitlines():
        match = _POD_LEVEL.match(line)
        if match:
            level = match.group(1)
        lines.append({"level": level, "text": line})
    return lines


def store_log_lines(ref: RecordRef, record: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """An attempt's lines from the run store, printed as the pod printed them."""
    names = flow_run_names(record) if record is not None else {}
    return [shown_line(line, names) for line in log_lines(ref.url)]


def shown_line(line: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, str]:
    """A store line as the log viewer shows it: its level and the pod's text of it."""
    return {"level": str(line.get("level") or "INFO"),
            "text": render_log_line(line, names).rstrip("\n")}


def limit_lines(lines: list[dict[str, str]], minimum: str, note: str
                ) -> tuple[list[dict[str, str]], str]:
    """The lines at level ``minimum`` or above, at most the last :data:`LOG_LINE_LIMIT`
    (``note`` says so when some are cut)."""
    shown = [line for line in lines if _level_at_least(line["level"], minimum)]
    if len(shown) > LOG_LINE_LIMIT:
        note += f" Showing the last {LOG_LINE_LIMIT} of {len(shown)} lines."
        shown = shown[-LOG_LINE_LIMIT:]
    return shown, note


async def logs_json(request: web.Request) -> web.Response:
    """``/api/runs/<ns>/<name>/logs?attempt=&level=``: one attempt's lines, from its pod
    while it exists, else from the run store (as ``headwater logs``). The page polls it
    every 2 s while the run runs: logs come from the pod or the store, not a watch."""
    namespace, name, run = the_run(request)
    status = run.get("status") or {}
    started = int(status.get("attempts") or 0)
    attempt = _attempt(request) or started
    minimum = str(request.query.get("level") or "").upper()
    running = run_phase(run) not in TERMINAL
    if started == 0:
        return web.json_response({"lines": [], "running": running, "source": "",
                                  "note": "No attempt has started yet."})
    if not 1 <= attempt <= started:
        raise web.HTTPBadRequest(text=f"attempt must be between 1 and {started}")
    lines: list[dict[str, str]] | None = None
    source, note = "", ""
    reader = access_of(request).reader
    pod = pod_name(name, attempt)
    if reader is not None:
        try:
            text = await reader.read_pod_log(pod, namespace=namespace, container=LOG_CONTAINER)
            lines, source, note = pod_log_lines(text), "pod", f"From pod {pod}."
        except kube.NotFound:
            note = f"Pod {pod} no longer exists; "
        except kube.KubeError as exc:
            if exc.status != 400:
                note = f"Could not read pod {pod} ({exc.status} {exc.reason}); "
            else:
                return web.json_response({"lines": [], "running": running, "source": "",
                                          "note": f"Pod {pod} has not started its "
                                                  "container yet."})
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The transport failed after the client's own retries (kube.py: refused, reset,
            # timed out): the store may still hold the lines, so say so and read it.
            note = (f"Could not reach the API server for pod {pod}'s log "
                    f"({type(exc).__name__}); ")
    if lines is None:
        refs = {ref.attempt: ref for ref in record_refs(run)}
        ref = refs.get(attempt)
        if ref is None:
            return web.json_response({"lines": [], "running": running, "source": "",
                                      "note": note + f"attempt {attempt} has no run "
                                                     f"record: {NO_STORE}"})
        try:
            record = await request.app[RECORDS].read(ref)
        except StoreUnreadable:
            record = None
        try:
            lines = await asyncio.to_thread(store_log_lines, ref, record)
        except StoreUnreadable as exc:
            return web.json_response({"lines": [], "running": running, "source": "",
                                      "note": note + exc.message})
        source, note = "store", note + f"from the run store at {ref.url}."
        note = note[0].upper() + note[1:]
    shown, note = limit_lines(lines, minimum, note)
    return web.json_response({"lines": shown, "running": running, "source": source,
                              "note": note, "attempt": attempt})


async def cancel(request: web.Request) -> web.StreamResponse:
    """``POST /runs/<ns>/<name>/cancel``: ``spec.cancel: true`` (as ``headwater cancel``),
    made with the identity the access mode gives; back to the run's page."""
    namespace, name, run = the_run(request)
    if run_phase(run) not in TERMINAL:
        async with access_of(request).writer(request) as client:
            try:
                await client.patch(kube.FLOWRUNS, name, {"spec": {"cancel": True}},
                                   namespace=namespace)
            except kube.KubeError as exc:
                return render(request, "error.html", status=exc.status or 502,
                              title="Cancel refused",
                              message=f"The API server refused to cancel FlowRun "
                                      f"{namespace}/{name} ({exc.status} {exc.reason}): "
                                      f"{exc.message}")
    raise web.HTTPSeeOther(f"/runs/{namespace}/{name}")


def setup(app: web.Application) -> None:
    """Add the runs pages' routes."""
    app[RECORDS] = RecordCache()
    app[RUN_INDEX] = RunIndex()
    app.router.add_get("/runs", runs_index)
    app.router.add_get("/runs/{namespace}/{name}", run_page)
    app.router.add_post("/runs/{namespace}/{name}/cancel", cancel)
    app.router.add_get("/api/runs/{namespace}/{name}/taskruns", task_runs_json)
    app.router.add_get("/api/runs/{namespace}/{name}/taskruns/{task}", task_run_detail)
    app.router.add_get("/api/runs/{namespace}/{name}/logs", logs_json)
