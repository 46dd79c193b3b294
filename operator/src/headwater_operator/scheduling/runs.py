"""What a tick turns into: the FlowRun's name, the window parameters, the fingerprint.

These are the idempotency keys of scheduling. The run name depends only on the
Schedule's name and the tick's instant, so the operator after a restart, a second
replica and a repeated ``headwater backfill`` all derive the same name and the API
server's ``409 AlreadyExists`` turns a duplicate into a no-op.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from headwater.contract import (
    ANNOTATION_SCHEDULED_TIME,
    ANNOTATION_TRIGGER,
    API_VERSION,
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    LABEL_SCHEDULE,
    MANAGED_BY_VALUE,
)
from headwater.scheduling.expression import ScheduleExpression
from headwater.scheduling.fire_times import previous_fire_time

from headwater_operator.kubetime import format_time
from headwater_operator.labels import label_value

MAX_SCHEDULE_NAME_LENGTH = 52
"""Schedule names are capped so ``<name>-<10-digit epoch>`` fits a 63-character name."""

WINDOW_FORMAT_DATE = "Date"
WINDOW_FORMAT_DATE_TIME = "DateTime"


def scheduled_run_name(schedule_name: str, tick: datetime) -> str:
    """The deterministic FlowRun name for ``tick`` of Schedule ``schedule_name``."""
    return f"{schedule_name}-{int(tick.timestamp())}"


def schedule_fingerprint(expr: ScheduleExpression) -> str:
    """A short, stable hash of what decides the ticks: kind, expression, zone, anchor.

    Stored in ``status.scheduleFingerprint`` with each tick, so the reconciler can tell
    an edited expression (whose old ticks must not fire) from the same one.
    """
    anchor = expr.anchor_time.isoformat() if expr.anchor_time else ""
    material = "\n".join((expr.kind.value, expr.expression, expr.timezone.key, anchor))
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def tick_window(expr: ScheduleExpression, tick: datetime) -> tuple[datetime, datetime]:
    """The window ``[previous tick, tick)`` a run covers; empty for an rrule's first tick."""
    previous = previous_fire_time(expr, tick)
    return (previous if previous is not None else tick), tick


def window_parameters(
    expr: ScheduleExpression,
    tick: datetime,
    start_name: str | None,
    end_name: str | None,
    fmt: str = WINDOW_FORMAT_DATE_TIME,
) -> dict[str, str]:
    """Bind the tick's window to flow parameters (``windowParameters`` of a Schedule).

    ``Date`` renders ISO dates in the schedule's zone (a daily 00:00 tick on 2 March
    gives start ``2026-03-01``, end ``2026-03-02``); ``DateTime`` renders RFC 3339 with
    the zone's offset. A name that is ``None`` is not bound.
    """
    if fmt not in (WINDOW_FORMAT_DATE, WINDOW_FORMAT_DATE_TIME):
        raise ValueError(
            f"spec.windowParameters.format: {fmt!r} is not supported; use "
            f"{WINDOW_FORMAT_DATE!r} or {WINDOW_FORMAT_DATE_TIME!r}"
        )
    start, end = tick_window(expr, tick)
    values: dict[str, str] = {}
    for name, instant in ((start_name, start), (end_name, end)):
        if name:
            local = instant.astimezone(expr.timezone)
            values[name] = (
                local.date().isoformat() if fmt == WINDOW_FORMAT_DATE else local.isoformat()
            )
    return values


def build_flow_run(
    schedule: Mapping[str, Any], deployment: Mapping[str, Any], expr: ScheduleExpression,
    tick: datetime, *, trigger: str = "schedule",
) -> dict[str, Any]:
    """The FlowRun a Schedule creates for ``tick`` (owned by the Deployment).

    ``headwater backfill`` builds its runs here too (``trigger="backfill"``), so a
    backfilled tick has exactly the name, labels and parameters the scheduler would give it.
    """
    meta, spec = schedule["metadata"], schedule["spec"]
    parameters = dict(spec.get("parameters") or {})
    window = spec.get("windowParameters")
    if window:
        parameters.update(window_parameters(
            expr, tick, window.get("start"), window.get("end"), window.get("format", "DateTime")
        ))
    when = format_time(tick)
    return deployment_run(
        deployment, name=scheduled_run_name(meta["name"], tick), namespace=meta.get("namespace"),
        parameters=parameters, trigger=trigger,
        labels={LABEL_SCHEDULE: label_value(meta["name"])},
        annotations={ANNOTATION_SCHEDULED_TIME: when}, scheduled_time=when)


def deployment_run(
    deployment: Mapping[str, Any], *, name: str, parameters: Mapping[str, Any], trigger: str,
    spec_trigger: bool = True, namespace: str | None = None,
    labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None,
    scheduled_time: str | None = None,
) -> dict[str, Any]:
    """A FlowRun of ``deployment`` the operator creates — a Schedule's tick, a Deployment
    trigger's run, an Automation's ``runDeployment`` — in its namespace, owned by it (not
    as controller: deleting the Deployment deletes its runs, and a run outlives nothing
    else), labelled with it and as Headwater's, with ``trigger`` as the
    ``headwater.dev/trigger`` annotation and (``spec_trigger``: unless it is no
    :class:`~headwater_operator.api.enums.FlowRunTrigger` value) as ``spec.trigger``;
    ``labels`` and ``annotations`` add the caller's provenance. ``namespace`` defaults to
    the Deployment's."""
    dep_meta = deployment["metadata"]
    spec: dict[str, Any] = {"deploymentRef": {"name": dep_meta["name"]},
                            "parameters": dict(parameters)}
    if scheduled_time is not None:
        spec["scheduledTime"] = scheduled_time
    if spec_trigger:
        spec["trigger"] = trigger
    return {
        "apiVersion": API_VERSION,
        "kind": "FlowRun",
        "metadata": {
            "name": name,
            "namespace": namespace if namespace is not None else dep_meta.get("namespace"),
            "labels": {**(labels or {}), LABEL_DEPLOYMENT: label_value(dep_meta["name"]),
                       LABEL_MANAGED_BY: MANAGED_BY_VALUE},
            "annotations": {**(annotations or {}), ANNOTATION_TRIGGER: trigger},
            "ownerReferences": [{
                "apiVersion": API_VERSION, "kind": "Deployment", "name": dep_meta["name"],
                "uid": dep_meta["uid"], "controller": False, "blockOwnerDeletion": False,
            }],
        },
        "spec": spec,
    }
