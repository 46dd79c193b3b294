"""One wake-up of a Schedule: plan the due ticks, create their FlowRuns, write status.

:func:`reconcile_schedule` is what each Schedule's task in the Schedule controller
(:mod:`headwater_operator.scheduling.controller`) calls each time it wakes — at a tick, at
start-up, or early because the spec changed. It is plain async code over the
:class:`~headwater_operator.kube.Kube` client and a :class:`~.clock.Clock`, so tests drive
it with a hand-moved clock. The decisions are the pure functions of this package
(:func:`~.plan.plan_ticks`, :func:`~.runs.scheduled_run_name`, …); this module only
applies them, in this order:

1. parse the spec — an invalid Schedule gets ``Invalid=True`` naming the field, and
   nothing else changes (never half-applied);
2. suspended, or its Deployment missing or paused — no runs, a condition says why, and
   the ticks meanwhile count as missed when it resumes (``watching_since`` restarts);
   ``status.active`` and ``lastSuccessfulTime`` still follow its runs (as for an
   invalid Schedule): runs go on ending while it is held;
3. plan the ticks; for each tick to run, apply ``concurrencyPolicy`` against this
   Schedule's own active runs and create the FlowRun (``409 AlreadyExists`` is success:
   an earlier operator or replica made it; a refusal the same body would get again —
   400, 422, a policy's 403 — skips the tick with a Warning Event and ``RunRejected``
   instead of retrying it forever);
4. write ``status`` once: last/next tick, fingerprint, active runs, missed-tick count and
   conditions. The fingerprint and last tick are written together, so an edit observed
   before any tick under the new expression never fires the old expression's ticks.
   A wake-up that would write the status it finds writes nothing (:mod:`.status`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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

from headwater_operator import kube, metrics, reasons
from headwater_operator.conditions import (
    format_time,
    get_condition,
    make_condition,
    set_conditions,
)
from headwater_operator.flowruns.timeutil import parse_time
from headwater_operator.labels import label_value, selector
from headwater_operator.scheduling.clock import get_clock
from headwater_operator.scheduling.expression import (
    ScheduleError,
    ScheduleExpression,
    parse_schedule_expression,
)
from headwater_operator.scheduling.plan import TickPlan, plan_ticks
from headwater_operator.scheduling.runs import (
    schedule_fingerprint,
    scheduled_run_name,
    window_parameters,
)
from headwater_operator.scheduling.status import active_entries, status_changes

TERMINAL_PHASES = frozenset({"Completed", "Failed", "Crashed", "Cancelled"})


@dataclass
class WatchState:
    """What one Schedule's task remembers between wake-ups (lost on restart, by design)."""

    watching_since: datetime
    """Ticks after this came due while we were watching: they are on time."""
    edit_seen_at: dict[str, datetime] = field(default_factory=dict)
    """First time this process saw each not-yet-ticked fingerprint (edit time)."""
    holding: bool = False
    """True while suspended, paused or invalid: resuming restarts ``watching_since``."""
    parsed: tuple[tuple[Any, ...], ScheduleExpression, str] | None = None
    """The last expression parsed, with its fingerprint, by the spec fields it came from:
    the same spec wakes this task at every tick."""
    unseen: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    """Runs this task created that the watch-fed :class:`Cache` has not shown yet, with
    the ``time.monotonic()`` of their creation (watch lag is real time, not the
    scheduler's clock). A run enters before its create is sent, so the watch, which
    removes it when it shows the run (the Schedule controller), always comes after."""


@dataclass(frozen=True)
class Cache:
    """What the operator already knows from its watches, so a wake-up need not ask.

    ``deployments`` maps ``(namespace, name)`` to the Deployment (at least
    ``metadata.name``, ``metadata.uid`` and ``spec.paused``); ``runs`` maps ``(namespace,
    schedule name)`` to that Schedule's FlowRuns (``metadata.name``,
    ``spec.scheduledTime``, ``status.phase``, ``status.endTime``; the active ones and the
    latest completed one suffice). The Schedule controller feeds both from its watches:
    a tick then costs one create and one status patch, not five requests, and no LIST
    whose cost grows with every FlowRun in the namespace. Without a cache the reconciler
    reads the API server (unit tests, one-off tools).
    """

    deployments: Mapping[tuple[str, str], Iterable[Mapping[str, Any]]]
    runs: Mapping[tuple[str, str], Iterable[Mapping[str, Any]]]


@dataclass
class WakeResult:
    """What a wake-up did, for the task (when to sleep to) and for Events."""

    next_tick: datetime | None
    created: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    """Names of the Schedule's runs that were active after this wake-up."""
    rejected: list[str] = field(default_factory=list)
    """What the API server said about each run it refused for good (one per tick)."""
    events: list[tuple[str, str, str]] = field(default_factory=list)
    """``(type, reason, message)`` Events to post on the Schedule."""
    body: dict[str, Any] | None = None
    """The Schedule as the status write returned it (fresh status, for the next wake)."""


async def reconcile_schedule(
    client: kube.Kube, body: Mapping[str, Any], state: WatchState, now: datetime,
    *, cache: Cache | None = None,
) -> WakeResult:
    """Handle one wake-up of the Schedule ``body`` at ``now``; see the module docstring."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    status: Mapping[str, Any] = body.get("status") or {}
    namespace, name = str(meta.get("namespace") or "default"), str(meta["name"])
    try:
        expr, fingerprint = _parsed(spec, state)
    except ScheduleError as exc:
        return await _hold(client, body, state, now, cache=cache, conditions=[
            make_condition("Invalid", True, invalid_reason(exc.field_path), str(exc)),
            make_condition("Ready", False, "Invalid", str(exc)),
        ], events=[("Warning", "Invalid", str(exc))])

    hold, deployment = await _hold_reason(client, namespace, spec, cache)
    if hold is not None or deployment is None:
        reason, message = hold or ("DeploymentNotFound", "the Deployment is missing")
        return await _hold(client, body, state, now, cache=cache, conditions=[
            make_condition("Invalid", False, "Valid", "the schedule expression is valid"),
            make_condition("Ready", False, reason, message),
        ])
    if state.holding:
        state.holding, state.watching_since = False, now

    same_expression = status.get("scheduleFingerprint") == fingerprint
    last_tick = parse_time(status.get("lastScheduleTime")) if same_expression else None
    created_at = _effective_since(meta, status, fingerprint, state, now)
    catchup = spec.get("catchup") or {}
    plan = plan_ticks(
        expr, last_tick=last_tick, now=now,
        starting_deadline_seconds=spec.get("startingDeadlineSeconds"),
        catchup_policy=str(catchup.get("policy", "Latest")),
        max_catchup_runs=catchup.get("maxRuns"),
        created_at=created_at, watching_since=state.watching_since,
    )
    active, last_success = await _runs_of(client, namespace, name, cache, state)
    result = WakeResult(plan.next_tick)
    forbidden = await _fire(client, body, expr=expr, plan=plan, deployment=deployment,
                            active=active, result=result, unseen=state.unseen)
    extra = {"lastSuccessfulTime": last_success} if last_success else {}
    return await _finish(client, body, plan=plan, fingerprint=fingerprint, active=active,
                         result=result, forbidden=forbidden, now=now, extra=extra)


async def _hold(
    client: kube.Kube, body: Mapping[str, Any], state: WatchState, now: datetime, *,
    cache: Cache | None, conditions: list[dict[str, Any]],
    events: list[tuple[str, str, str]] | None = None,
) -> WakeResult:
    """A wake-up of a Schedule that may not create runs (invalid, suspended, its
    Deployment missing or paused): no runs, conditions that say why, and ``active`` and
    ``lastSuccessfulTime`` that still follow its runs (see :mod:`.status`)."""
    meta, spec = body["metadata"], body.get("spec") or {}
    state.holding = True
    active, last_success = await _runs_of(client, str(meta.get("namespace") or "default"),
                                          str(meta["name"]), cache, state)
    fields: dict[str, Any] = {"nextScheduleTime": None, "expression": _summary(spec),
                              "active": active_entries(active)}
    if last_success:
        fields["lastSuccessfulTime"] = last_success
    written = await _write_status(client, body, conditions=conditions, now=now, fields=fields)
    return WakeResult(None, active=[entry["name"] for entry in fields["active"]],
                      events=events or [], body=written)


EXPRESSION_FIELDS = ("cron", "interval", "rrule", "timezone", "anchorTime")
"""The spec fields :func:`expression_from_spec` reads."""


def expression_from_spec(spec: Mapping[str, Any]) -> ScheduleExpression:
    """The :class:`ScheduleExpression` of a Schedule spec in wire form (camelCase)."""
    return parse_schedule_expression(
        cron=spec.get("cron"), interval=spec.get("interval"), rrule=spec.get("rrule"),
        timezone=spec.get("timezone") or "UTC", anchor_time=spec.get("anchorTime"),
    )


def _parsed(spec: Mapping[str, Any], state: WatchState) -> tuple[ScheduleExpression, str]:
    """The spec's expression and fingerprint, parsed once per distinct spec."""
    key = tuple(spec.get(name) for name in EXPRESSION_FIELDS)
    if state.parsed is None or state.parsed[0] != key:
        expr = expression_from_spec(spec)
        state.parsed = (key, expr, schedule_fingerprint(expr))
    return state.parsed[1], state.parsed[2]


def invalid_reason(field_path: str) -> str:
    """``spec.catchup.maxRuns`` → ``InvalidCatchupMaxRuns``: the reason names the field."""
    parts = [part for part in field_path.removeprefix("spec").split(".") if part]
    return "Invalid" + "".join(part[:1].upper() + part[1:] for part in parts) if parts \
        else "InvalidSpec"


def build_flow_run(
    schedule: Mapping[str, Any], deployment: Mapping[str, Any], expr: ScheduleExpression,
    tick: datetime, *, trigger: str = "schedule",
) -> dict[str, Any]:
    """The FlowRun a Schedule creates for ``tick`` (owned by the Deployment).

    ``headwater backfill`` builds its runs here too (``trigger="backfill"``), so a
    backfilled tick has exactly the name, labels and parameters the scheduler would give it.
    """
    meta, spec = schedule["metadata"], schedule["spec"]
    dep_meta = deployment["metadata"]
    parameters = dict(spec.get("parameters") or {})
    window = spec.get("windowParameters")
    if window:
        parameters.update(window_parameters(
            expr, tick, window.get("start"), window.get("end"), window.get("format", "DateTime")
        ))
    when = format_time(tick)
    return {
        "apiVersion": API_VERSION,
        "kind": "FlowRun",
        "metadata": {
            "name": scheduled_run_name(meta["name"], tick),
            "namespace": meta.get("namespace"),
            "labels": {
                LABEL_SCHEDULE: label_value(meta["name"]),
                LABEL_DEPLOYMENT: label_value(dep_meta["name"]),
                LABEL_MANAGED_BY: MANAGED_BY_VALUE,
            },
            "annotations": {ANNOTATION_SCHEDULED_TIME: when, ANNOTATION_TRIGGER: trigger},
            "ownerReferences": [{
                "apiVersion": API_VERSION, "kind": "Deployment", "name": dep_meta["name"],
                "uid": dep_meta["uid"], "controller": False, "blockOwnerDeletion": False,
            }],
        },
        "spec": {
            "deploymentRef": {"name": dep_meta["name"]},
            "parameters": parameters,
            "scheduledTime": when,
            "trigger": trigger,
        },
    }


async def _deployment(
    client: kube.Kube, namespace: str, name: str, cache: Cache | None
) -> dict[str, Any] | None:
    if cache is not None:
        found = next(iter(cache.deployments.get((namespace, name), ())), None)
        if found is not None:
            return dict(found)
        # A miss is rare and may only mean the watch has not delivered a Deployment
        # created a moment ago: confirm with the API server before saying it is gone.
    try:
        return await client.get(kube.DEPLOYMENTS, name, namespace=namespace)
    except kube.NotFound:
        return None


async def _hold_reason(
    client: kube.Kube, namespace: str, spec: Mapping[str, Any], cache: Cache | None,
) -> tuple[tuple[str, str] | None, dict[str, Any] | None]:
    """Why the Schedule may not create runs right now (or None), and its Deployment."""
    if spec.get("suspend"):
        return ("Suspended", "spec.suspend is true; set it to false to resume"), None
    deployment_name = str((spec.get("deploymentRef") or {}).get("name"))
    deployment = await _deployment(client, namespace, deployment_name, cache)
    if deployment is None:
        return ("DeploymentNotFound", (
            f"Deployment {deployment_name!r} does not exist in namespace {namespace!r}; "
            "create it or fix spec.deploymentRef.name"
        )), None
    if (deployment.get("spec") or {}).get("paused"):
        return ("DeploymentPaused", (
            f"Deployment {deployment_name!r} is paused (spec.paused); no runs are created "
            "until it is unpaused"
        )), deployment
    return None, deployment


UNSEEN_GRACE_SECONDS = 60.0
"""How long (real seconds) a created run missing from the watch cache counts as active."""


async def _runs_of(
    client: kube.Kube, namespace: str, name: str, cache: Cache | None, state: WatchState,
) -> tuple[list[dict[str, Any]], str | None]:
    """This Schedule's active runs, and when one of its runs last completed.

    The cache lags the API server by one watch event: a run created a moment ago (say
    by the previous tick of a catch-up, or just before a fast edit) may be missing from
    it, so the task's own recent creations count as active until the cache shows them.
    """
    if cache is not None:
        runs = [dict(run) for run in cache.runs.get((namespace, name), ())]
        known = {run["metadata"]["name"] for run in runs}
        for run_name, (created, run) in list(state.unseen.items()):
            if run_name in known or time.monotonic() - created > UNSEEN_GRACE_SECONDS:
                del state.unseen[run_name]
            else:
                runs.append(run)
    else:
        runs = await client.list(kube.FLOWRUNS, namespace=namespace,
                                 label_selector=selector(LABEL_SCHEDULE, name))
    active = [run for run in runs
              if (run.get("status") or {}).get("phase") not in TERMINAL_PHASES]
    completed = [str((run.get("status") or {}).get("endTime")) for run in runs
                 if (run.get("status") or {}).get("phase") == "Completed"
                 and (run.get("status") or {}).get("endTime")]
    return active, max(completed, default=None)


async def _fire(
    client: kube.Kube, schedule: Mapping[str, Any], *, expr: ScheduleExpression,
    plan: TickPlan, deployment: Mapping[str, Any], active: list[dict[str, Any]],
    result: WakeResult, unseen: dict[str, tuple[float, dict[str, Any]]],
) -> int:
    """Create the planned runs under ``concurrencyPolicy``; returns ticks Forbid skipped.

    Each run is among the ``unseen`` (:attr:`WatchState.unseen`) from just before its
    create until the watch shows it, unless the API server refused it.
    """
    policy = schedule["spec"].get("concurrencyPolicy", "Allow")
    namespace = schedule["metadata"].get("namespace")
    forbidden = 0
    for tick in plan.to_run:
        if policy == "Forbid" and active:
            forbidden += 1
            result.events.append(("Warning", "ForbidConcurrent", (
                f"skipped tick {format_time(tick)}: run {active[0]['metadata']['name']} is "
                "still active and spec.concurrencyPolicy is Forbid"
            )))
            continue
        if policy == "Replace":
            for run in active:
                await client.patch(kube.FLOWRUNS, run["metadata"]["name"],
                                   {"spec": {"cancel": True}}, namespace=namespace)
                result.events.append(("Normal", "Replaced", (
                    f"cancelled run {run['metadata']['name']} for tick {format_time(tick)} "
                    "(spec.concurrencyPolicy is Replace)"
                )))
            active.clear()
        run = build_flow_run(schedule, deployment, expr, tick)
        name = run["metadata"]["name"]
        unseen[name] = (time.monotonic(), run)
        try:
            await client.create(kube.FLOWRUNS, run, namespace=namespace)
            # Lag counts only runs this wake-up created: a 409 means another process made
            # it (and measured it), and catch-up runs after downtime show up as the tail.
            lag = (get_clock().now() - tick).total_seconds()
            metrics.observe_schedule_lag(namespace or "", lag)
            result.events.append(("Normal", "RunCreated", (
                f"created run {run['metadata']['name']} for tick {format_time(tick)}"
            )))
        except kube.AlreadyExists:
            pass  # made by an earlier operator or another replica: the same run
        except kube.KubeError as exc:
            unseen.pop(name, None)  # not created
            if not kube.is_final_rejection(exc.status, exc.message):
                raise  # transient (5xx, quota): the wake-up is retried after a back-off
            # The same body would be refused again at every retry: skip the tick, say why.
            message = rejected_run_message(name, tick, exc.message)
            result.rejected.append(message)
            result.events.append(("Warning", reasons.RUN_REJECTED, message))
            continue
        except BaseException:
            unseen.pop(name, None)  # not known to exist; the retried wake-up creates it
            raise
        result.created.append(name)
        active.append(run)
    return forbidden


def rejected_run_message(run_name: str, tick: datetime, server_message: str) -> str:
    """The condition and Event message of a tick whose FlowRun the API server refused."""
    return (f"the API server refused run {run_name} for tick {format_time(tick)}: "
            f"{server_message}; the tick is skipped. Fix the Schedule or its Deployment "
            "(or the policy that refused it); later ticks are tried again")


def run_conditions(existing: Iterable[Mapping[str, Any]] | None, created: list[str],
                   rejected: list[str], ready_message: str) -> list[dict[str, Any]]:
    """``Ready`` and ``RunRejected`` after a wake-up of a valid, unheld Schedule.

    A refused run makes both say so (a human has to act), and they keep saying it on
    wake-ups that try no run, until a run is accepted again. Refused runs win over
    created ones in the same wake-up.
    """
    previous = get_condition(existing, "RunRejected")
    if not rejected and not created and previous and previous.get("status") == "True":
        rejected = [str(previous.get("message") or "")]
    if rejected:
        return [make_condition("Ready", False, reasons.RUN_REJECTED, rejected[-1]),
                make_condition("RunRejected", True, reasons.RUN_REJECTED, rejected[-1])]
    ready = make_condition("Ready", True, "Scheduled", ready_message)
    if created and previous is not None:
        return [ready, make_condition("RunRejected", False, reasons.RUNS_ACCEPTED,
                                      "the last run created was accepted")]
    return [ready]


async def _finish(
    client: kube.Kube, body: Mapping[str, Any], *, plan: TickPlan, fingerprint: str,
    active: list[dict[str, Any]], result: WakeResult, forbidden: int, now: datetime,
    extra: Mapping[str, Any],
) -> WakeResult:
    spec = body["spec"]
    status: Mapping[str, Any] = body.get("status") or {}
    skipped = plan.skipped_count + forbidden + len(result.rejected)
    fields: dict[str, Any] = {
        **extra,
        "nextScheduleTime": format_time(plan.next_tick) if plan.next_tick else None,
        "expression": _summary(spec),
        "missedTicks": int(status.get("missedTicks") or 0) + skipped,
        "active": active_entries(active),
    }
    if plan.handled_through is not None:
        fields["lastScheduleTime"] = format_time(plan.handled_through)
        fields["scheduleFingerprint"] = fingerprint
    conditions = [
        make_condition("Invalid", False, "Valid", "the schedule expression is valid"),
        *run_conditions(status.get("conditions"), result.created, result.rejected, (
            f"next tick {fields['nextScheduleTime']}" if plan.next_tick
            else "the recurrence has ended; no further ticks"
        )),
    ]
    if plan.skipped_count:
        message = plan.describe_skipped()
        conditions.append(make_condition("MissedTicks", True, "TicksSkipped", message))
        result.events.append(("Warning", "MissedTicks", message))
    elif result.created:
        conditions.append(make_condition("MissedTicks", False, "NoneMissed",
                                         "the last ticks all ran"))
    result.body = await _write_status(client, body, conditions=conditions, now=now,
                                      fields=fields)
    result.active = [entry["name"] for entry in fields["active"]]
    return result


async def _write_status(
    client: kube.Kube, body: Mapping[str, Any], *, conditions: list[dict[str, Any]],
    now: datetime, fields: Mapping[str, Any],
) -> dict[str, Any]:
    """Patch the Schedule's status with ``fields`` and ``conditions``; returns the body.

    Nothing is sent when the status already says all of it (a held Schedule woken by a
    change that alters nothing it shows): ``body`` itself is returned then, its status
    being what the write would have left (this controller is its only writer).
    """
    meta = body["metadata"]
    status: Mapping[str, Any] = body.get("status") or {}
    patch = {
        **fields,
        "conditions": set_conditions(status.get("conditions"), conditions, now),
        "observedGeneration": meta.get("generation"),
    }
    if not status_changes(status, patch):
        return dict(body)
    return await client.patch_status(kube.SCHEDULES, meta["name"], {"status": patch},
                                     namespace=meta.get("namespace") or "default")


def _effective_since(
    meta: Mapping[str, Any], status: Mapping[str, Any], fingerprint: str, state: WatchState,
    now: datetime,
) -> datetime:
    """When the current expression took effect: creation, or when its edit was seen.

    A schedule that never ticked has its creation time. An edited one has the time this
    process first saw the new fingerprint — after an operator restart that is later than
    the real edit, which can only skip ticks, never fire one from before the edit.
    """
    created = parse_time(meta.get("creationTimestamp")) or now
    if status.get("scheduleFingerprint") in (None, fingerprint):
        return created
    return max(created, state.edit_seen_at.setdefault(fingerprint, now))


def _summary(spec: Mapping[str, Any]) -> str:
    if spec.get("cron"):
        return str(spec["cron"])
    if spec.get("interval"):
        return f"every {spec['interval']}"
    return f"rrule {spec.get('rrule')}"

