"""Recording work that ran outside the engine: a dbt node, a warehouse job, a dbt Cloud step.

An integration that runs something the engine did not call as a Python task (dbt
executes its models itself) reports each piece here, after the fact, into the current
flow run: :func:`record_task_run` adds a finished task run with the start, end, state and
error the integration observed, and :func:`record_asset_materialization` adds an asset
materialization with its upstream assets, as a ``@materialize`` task would. Both land in
the run record, the run summary's counts and the asset records ``headwater lineage``
reads, exactly like the engine's own.

What it must respect:

* Only finished work is recorded: a task run is created in its final state (the record
  treats it as finished and never rewrites it), with ``Pending → Running → final`` at the
  given times, or ``NotReady`` for work that never ran (dbt's ``skipped``).
* It is called inside a flow run; outside one there is no record to add to, and that is
  an error naming the fix.
* Messages and metadata pass through the same redaction as everything the record holds
  (the record writer applies it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from headwater import states as st
from headwater.assets import Asset, asset_slug, read_latest
from headwater.context import FLOW_RUN_CONTEXT, TAGS, FlowRunContext, TaskRun
from headwater.states import State

ExternalOutcome = Literal["completed", "failed", "crashed", "cancelled", "not_ready"]
"""How an external task run ended: its final state (``not_ready``: it never ran because
something upstream of it did not complete)."""

_OUTCOMES: dict[str, Any] = {
    "completed": st.Completed,
    "failed": st.Failed,
    "crashed": st.Crashed,
    "cancelled": st.Cancelled,
    "not_ready": st.NotReady,
}


def _flow_context(what: str) -> FlowRunContext:
    flow_ctx = FLOW_RUN_CONTEXT.get()
    if flow_ctx is None:
        raise RuntimeError(
            f"{what} must be called inside a flow run (from a @flow function or a task "
            "it calls): there is no run record to add to outside one")
    return flow_ctx


def record_task_run(
    name: str,
    *,
    outcome: ExternalOutcome,
    start_time: float | None,
    end_time: float,
    message: str | None = None,
    error_type: str | None = None,
    task_key: str | None = None,
    tags: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> TaskRun:
    """Add a finished task run, executed outside the engine, to the current flow run.

    ``name`` is numbered like the engine's own task runs (``<name>-0``, ``<name>-1``);
    ``task_key`` (default ``name``) says what ran, e.g. ``dbt.model.shop.orders``.
    ``start_time``/``end_time`` are Unix seconds; ``start_time`` is ``None`` for work
    that never started (``not_ready``). A ``failed`` or ``crashed`` run's attempt carries
    ``error_type`` (default: the state's name) and ``message``. ``metadata`` (JSON
    values) goes to the task run's ``metadata`` in the record. Returns the task run.
    """
    from headwater.engine import _new_id, _next_run_name

    flow_ctx = _flow_context("record_task_run")
    make = _OUTCOMES.get(outcome)
    if make is None:
        raise ValueError(f"record_task_run: outcome {outcome!r} is not one of "
                         f"{', '.join(sorted(_OUTCOMES))}")
    if start_time is None and outcome != "not_ready":
        raise ValueError(f"record_task_run: outcome {outcome!r} needs start_time (the Unix "
                         "time the work started); only 'not_ready' work never started")
    if start_time is not None and end_time < start_time:
        raise ValueError(f"record_task_run: end_time {end_time} is before start_time "
                         f"{start_time}: pass the times the work started and ended")
    created = start_time if start_time is not None else end_time
    task_run = TaskRun(_new_id(), _next_run_name(flow_ctx, name), name,
                       flow_ctx.flow_run.id, State(st.StateType.PENDING, timestamp=created),
                       frozenset(tags) | TAGS.get(), task_key or name)
    final: State[Any] = make(message)
    final.timestamp = end_time
    if start_time is not None:
        task_run.run_count = 1
        task_run.start_time = start_time
        task_run.set_state(State(st.StateType.RUNNING, timestamp=start_time))
        if final.type in (st.StateType.FAILED, st.StateType.CRASHED):
            from headwater.secrets import redact

            task_run.errors = {1: {"type": error_type or final.name,
                                   "message": redact(message or final.name),
                                   "state": final.name}}
    task_run.set_state(final)
    if metadata:
        task_run.metadata = json.loads(json.dumps(dict(metadata), default=str))
    task_run.end_time = end_time
    with flow_ctx.tree.lock:
        flow_ctx.tree.task_runs.append(task_run)
    return task_run


def record_asset_materialization(
    asset: str | Asset,
    *,
    task_run: TaskRun,
    version: str,
    upstream: Iterable[str | Asset] = (),
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record that ``task_run`` (from :func:`record_task_run`) materialized ``asset``.

    ``upstream`` are the assets it was computed from; each one's version is the one this
    run materialized, else the latest in the asset records, else ``external`` (as for a
    ``@materialize`` task's ``asset_deps``). The asset records ``headwater lineage``
    reads are written to the flow's result storage, and the materialization joins the
    run record's ``assets``. Returns the materialization's record.
    """
    from headwater.assets import _run_names
    from headwater.runrecord import iso_ms

    flow_ctx = _flow_context("record_asset_materialization")
    key = asset.key if isinstance(asset, Asset) else Asset(asset).key
    storage = flow_ctx.result_store().storage
    tree = flow_ctx.tree
    dep_keys = [dep.key if isinstance(dep, Asset) else Asset(dep).key for dep in upstream]
    with tree.lock:
        this_run = tree.asset_versions()
        known_here = {dep_key: this_run.get(dep_key) for dep_key in dep_keys}
    versions: dict[str, str] = {}
    for dep_key in dep_keys:
        known = known_here[dep_key]
        if known is None:
            latest = read_latest(storage, dep_key)
            known = latest["version"] if latest else "external"
        versions[dep_key] = known
    now = time.time()
    record: dict[str, Any] = {
        "key": key,
        "version": version,
        "upstream": sorted(versions),
        "upstreamVersions": versions,
        "skipped": False,
        "taskRunId": task_run.id,
        "time": iso_ms(now),
        "metadata": json.loads(json.dumps(dict(metadata or {}), default=str)),
        "flowRunId": flow_ctx.flow_run.id,
    }
    stored = {**record, "materializedAt": now, "taskRunName": task_run.name,
              **_run_names(flow_ctx)}
    if isinstance(asset, Asset) and asset.properties is not None:
        stored["properties"] = {k: v for k, v in vars(asset.properties).items() if v}
    body = json.dumps(stored, default=str, indent=1).encode()
    slug = asset_slug(key)
    storage.write(f"assets/{slug}/history/{now:.6f}-{version}.json", body)
    storage.write(f"assets/{slug}/latest.json", body)
    with tree.lock:
        task_run.assets = [*(task_run.assets or ()), record]
        tree.assets.append(record)
    return record
