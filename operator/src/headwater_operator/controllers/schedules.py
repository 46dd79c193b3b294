"""The Schedule controller: each Schedule wakes at its ticks, creates their FlowRuns, and
writes its status.

One Schedule, from its watch event to its runs:

1. **Watch → wake** (:meth:`ScheduleController.on_schedule`). The shared Schedule
   informer delivers it; the controller keeps its latest metadata and spec (an
   :class:`_Entry`) and wakes its key on the work queue. A new ``metadata.generation``
   (a spec edit), a change of its Deployment's existence, uid or ``spec.paused``
   (:meth:`~ScheduleController.on_deployment`), and the end of one of its active runs
   (:meth:`~ScheduleController.on_run`) wake it too. Nothing loops over all Schedules.
2. **Wake-up** (:func:`reconcile_schedule`), one worker per Schedule at a time:

   1. parse the spec — an invalid Schedule gets ``Invalid=True`` naming the field, and
      nothing else changes (never half-applied);
   2. suspended, or its Deployment missing or paused — no runs, a condition says why,
      and the ticks meanwhile count as missed when it resumes (``watching_since``
      restarts); ``status.active`` and ``lastSuccessfulTime`` still follow its runs:
      runs go on ending while it is held;
   3. plan the ticks (:func:`~headwater_operator.scheduling.plan.plan_ticks`); for each
      tick to run, apply ``concurrencyPolicy`` against this Schedule's own active runs
      and create the FlowRun (``409 AlreadyExists`` is success: an earlier leader made
      it; a refusal the same body would get again — 400, 422, a policy's 403 — skips the
      tick with a Warning Event and ``RunRejected`` instead of retrying it forever);
   4. write ``status`` once: last/next tick, fingerprint, active runs, missed-tick count
      and conditions. The fingerprint and last tick are written together, so an edit
      observed before any tick under the new expression never fires the old
      expression's ticks. A wake-up that would write the status it finds writes nothing.
3. **Requeue** at the next tick (``requeue_at`` on the operator's clock); a Schedule
   whose recurrence has ended waits for a wake-up.

What it must respect:

* **No duplicate, no lost tick.** Run names derive from the Schedule and the tick
  (:func:`~headwater_operator.scheduling.runs.scheduled_run_name`), so a tick created
  twice — by a leader that died before its status write, by two leaders during a
  hand-over — is one run. ``status.lastScheduleTime`` is written only after the tick's
  run exists, so a tick is never marked done before it ran.
* **Memory** follows the Schedules and their *active* runs, not run history: of the
  runs, the controller keeps the active ones and the latest completed one per Schedule
  (for ``lastSuccessfulTime``), as tuples; of Deployments, uid and ``spec.paused``.
* **Reads.** A tick costs one create and one status patch: the Deployment and the runs
  come from the watch-fed :class:`Cache`, and the status write's response is the body
  the next wake-up starts from (this controller is the only writer of a Schedule's
  status, and the watch may not have delivered that write yet).
* **Order.** The status write and the Events are deferred requests
  (:func:`~headwater_operator.kube.deferred_requests`): when requests queue for the
  client's slots (a fleet firing together), every due tick's create goes before them.
  They only report runs already made, and a Schedule's status write still follows its
  own creates.
* **Events**: ``RunCreated`` and other routine Events spend a per-Schedule budget
  (:mod:`headwater_operator.scheduling.events`); Warnings are always posted.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from headwater.contract import LABEL_SCHEDULE
from headwater.scheduling.expression import (
    EXPRESSION_FIELDS,
    ScheduleError,
    ScheduleExpression,
    expression_from_spec,
)

from headwater_operator import kube, reasons
from headwater_operator.api import TERMINAL_PHASES
from headwater_operator.clock import Clock, get_clock
from headwater_operator.conditions import make_condition, set_conditions
from headwater_operator.controllers.signals import NULL_OBSERVER, EventRecorder, Observer
from headwater_operator.informer import InformerFactory
from headwater_operator.kubetime import format_time, parse_time
from headwater_operator.labels import selector
from headwater_operator.runtime import DONE, Controller, Result
from headwater_operator.scheduling.events import EventBudget, should_post
from headwater_operator.scheduling.plan import TickPlan, plan_ticks
from headwater_operator.scheduling.runs import build_flow_run, schedule_fingerprint
from headwater_operator.scheduling.status import (
    active_entries,
    effective_since,
    expression_summary,
    invalid_reason,
    rejected_run_message,
    run_conditions,
    status_changes,
)

logger = logging.getLogger(__name__)

KIND = "Schedule"
Key = tuple[str, str]
"""(namespace, name)."""

DEFAULT_WORKERS = 10_000
"""Schedules reconciled at once: in effect, every Schedule due. Cron fleets fire
together, and a tick is two requests (create the run, write the status). With fewer
workers than Schedules due, each doing both, the runs of the last Schedules would be
created only after the status writes of the first; with one worker per due Schedule,
every create is sent at once, and the client's bound on requests in flight
(:class:`~headwater_operator.kube.RequestGate`, where the status writes and Events are
deferred requests) sends them all before the status writes. Measurements:
``docs/decisions.md``. A worker is a task only while it reconciles."""
ACTIVE_REFRESH_SLACK_SECONDS = 10.0
"""A run's end refreshes the status at once unless the next tick is at most this near."""
UNSEEN_GRACE_SECONDS = 60.0
"""How long (real seconds) a created run missing from the watch cache counts as active."""


# --- one wake-up ----------------------------------------------------------------------------
@dataclass
class WatchState:
    """What the controller remembers of one Schedule between wake-ups (lost on restart,
    by design: a new leader starts from the API server's state)."""

    watching_since: datetime
    """Ticks after this came due while we were watching: they are on time."""
    edit_seen_at: dict[str, datetime] = field(default_factory=dict)
    """First time this process saw each not-yet-ticked fingerprint (edit time)."""
    holding: bool = False
    """True while suspended, paused or invalid: resuming restarts ``watching_since``."""
    parsed: tuple[tuple[Any, ...], ScheduleExpression, str] | None = None
    """The last expression parsed, with its fingerprint, by the spec fields it came from:
    the same spec wakes the Schedule at every tick."""
    unseen: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    """Runs this Schedule created that the watch-fed :class:`Cache` has not shown yet,
    with the ``time.monotonic()`` of their creation (watch lag is real time, not the
    scheduler's clock). A run enters before its create is sent, so the watch, which
    removes it when it shows the run (:meth:`ScheduleController.on_run`), comes after."""


@dataclass(frozen=True)
class Cache:
    """What the operator already knows from its watches, so a wake-up need not ask.

    ``deployments`` maps ``(namespace, name)`` to the Deployment (at least
    ``metadata.name``, ``metadata.uid`` and ``spec.paused``); ``runs`` maps ``(namespace,
    schedule name)`` to that Schedule's FlowRuns (``metadata.name``,
    ``spec.scheduledTime``, ``status.phase``, ``status.endTime``; the active ones and the
    latest completed one suffice). Without a cache a wake-up reads the API server (unit
    tests, one-off tools).
    """

    deployments: Mapping[tuple[str, str], Iterable[Mapping[str, Any]]]
    runs: Mapping[tuple[str, str], Iterable[Mapping[str, Any]]]


@dataclass
class WakeResult:
    """What a wake-up did: when to wake next, and the Events to post."""

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
    *, cache: Cache | None = None, clock: Clock | None = None,
    observer: Observer = NULL_OBSERVER,
) -> WakeResult:
    """Handle one wake-up of the Schedule ``body`` at ``now`` (see the module docstring)."""
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
    created_at = effective_since(meta, status, fingerprint, state.edit_seen_at, now)
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
                            active=active, result=result, unseen=state.unseen,
                            clock=clock or get_clock(), observer=observer)
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
    ``lastSuccessfulTime`` that still follow its runs."""
    meta, spec = body["metadata"], body.get("spec") or {}
    state.holding = True
    active, last_success = await _runs_of(client, str(meta.get("namespace") or "default"),
                                          str(meta["name"]), cache, state)
    fields: dict[str, Any] = {"nextScheduleTime": None, "expression": expression_summary(spec),
                              "active": active_entries(active)}
    if last_success:
        fields["lastSuccessfulTime"] = last_success
    written = await _write_status(client, body, conditions=conditions, now=now, fields=fields)
    return WakeResult(None, active=[entry["name"] for entry in fields["active"]],
                      events=events or [], body=written)


def _parsed(spec: Mapping[str, Any], state: WatchState) -> tuple[ScheduleExpression, str]:
    """The spec's expression and fingerprint, parsed once per distinct spec."""
    key = tuple(spec.get(name) for name in EXPRESSION_FIELDS)
    if state.parsed is None or state.parsed[0] != key:
        expr = expression_from_spec(spec)
        state.parsed = (key, expr, schedule_fingerprint(expr))
    return state.parsed[1], state.parsed[2]


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


async def _runs_of(
    client: kube.Kube, namespace: str, name: str, cache: Cache | None, state: WatchState,
) -> tuple[list[dict[str, Any]], str | None]:
    """This Schedule's active runs, and when one of its runs last completed.

    The cache lags the API server by one watch event: a run created a moment ago (say
    by the previous tick of a catch-up, or just before a fast edit) may be missing from
    it, so the Schedule's own recent creations count as active until the cache shows them.
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
    clock: Clock, observer: Observer,
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
            observer.observe_schedule_lag(namespace or "",
                                          (clock.now() - tick).total_seconds())
            result.events.append(("Normal", "RunCreated", (
                f"created run {run['metadata']['name']} for tick {format_time(tick)}"
            )))
        except kube.AlreadyExists:
            pass  # made by an earlier leader: the same run
        except kube.KubeError as exc:
            unseen.pop(name, None)  # not created
            if not kube.is_final_rejection(exc.status, exc.message):
                raise  # transient (5xx, quota): the wake-up is retried after a backoff
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
        "expression": expression_summary(spec),
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
    # A report of runs already made: behind the creates of ticks due (kube.RequestGate).
    with kube.deferred_requests():
        return await client.patch_status(kube.SCHEDULES, meta["name"], {"status": patch},
                                         namespace=meta.get("namespace") or "default")


# --- the controller -------------------------------------------------------------------------
@dataclass
class _Entry:
    """What the controller keeps per Schedule."""

    live: dict[str, Any]
    """The latest Schedule the watch delivered: metadata and spec (its status only until
    the first wake-up; after that the controller's own last status write is newer)."""
    watch: WatchState
    budget: EventBudget = field(default_factory=EventBudget)
    written: dict[str, Any] | None = None
    """The Schedule as the last wake-up's status write returned it."""
    failed: bool = False
    """The last wake-up failed: its status write may or may not have landed, so the
    next one reads the Schedule."""
    generation: Any = None
    """The ``metadata.generation`` the last wake-up reconciled."""
    deployment: str | None = None
    """The Deployment its spec names, for Deployment events."""
    active: frozenset[str] = frozenset()
    """Runs the last wake-up listed as active: their end wakes the Schedule."""
    next_tick: datetime | None = None
    reread: bool = False
    """The spec changed since the last wake-up: take metadata and spec from ``live``."""


RunFacts = tuple[str | None, str | None, str | None]
"""What the controller keeps of a run: ``(spec.scheduledTime, status.phase,
status.endTime)`` — a tuple, not a dict: a benchmark keeps tens of thousands of runs."""


class _RunsView(Mapping[Key, Iterable[Mapping[str, Any]]]):
    """The wake-up's view of the runs: (namespace, schedule) → its remembered runs."""

    def __init__(self, by_schedule: dict[Key, dict[str, RunFacts]]) -> None:
        self._by_schedule = by_schedule

    def __getitem__(self, key: Key) -> Iterable[Mapping[str, Any]]:
        return [
            {"metadata": {"name": name}, "spec": {"scheduledTime": scheduled},
             "status": {"phase": phase, "endTime": end}}
            for name, (scheduled, phase, end) in self._by_schedule[key].items()
        ]

    def __iter__(self) -> Iterator[Key]:
        return iter(self._by_schedule)

    def __len__(self) -> int:
        return len(self._by_schedule)


class ScheduleController:
    """Watches Schedules, Deployments and scheduled FlowRuns; wakes each Schedule at its
    ticks (see the module docstring)."""

    def __init__(self, client: kube.Kube, *, events: EventRecorder,
                 observer: Observer = NULL_OBSERVER, clock: Clock | None = None,
                 workers: int = DEFAULT_WORKERS) -> None:
        self.client = client
        self.events = events
        self.observer = observer
        self.queue: Controller[Key] = Controller(
            "schedules", self.reconcile, workers=workers, clock=clock,
            expected=(kube.KubeError, OSError, TimeoutError))
        self.schedules: dict[Key, _Entry] = {}
        self.deployments: dict[Key, tuple[dict[str, Any]]] = {}
        self.runs: dict[Key, dict[str, RunFacts]] = {}
        """(namespace, schedule) → run name → what a wake-up needs of the run."""
        self._latest_completed: dict[Key, tuple[str, str]] = {}
        """(namespace, schedule) → (run name, endTime) of its latest completed run."""
        self.cache = Cache(deployments=self.deployments, runs=_RunsView(self.runs))

    @property
    def clock(self) -> Clock:
        """The clock the work queue times ``requeue_at`` on (the operator's, unless given)."""
        return self.queue.clock

    def register(self, informers: InformerFactory) -> None:
        """Receive the events of Schedules, Deployments and FlowRuns."""
        informers.informer(kube.SCHEDULES).add_handler(self.on_schedule)
        informers.informer(kube.DEPLOYMENTS).add_handler(self.on_deployment)
        informers.informer(kube.FLOWRUNS).add_handler(self.on_run)

    # --- watch callbacks (cheap: called for every event) ---------------------------------
    def on_schedule(self, type_: str, obj: dict[str, Any]) -> None:
        """A Schedule appeared, changed or went: keep it and wake it, or forget it."""
        meta = obj.get("metadata") or {}
        key = _key(meta)
        entry = self.schedules.get(key)
        if type_ == "DELETED":
            if entry is not None:
                del self.schedules[key]
                self.queue.forget(key)
            return
        if entry is not None and entry.live["metadata"].get("uid") != meta.get("uid"):
            # Deleted and created again while the watch was away: a new Schedule.
            entry = None
        if entry is None:
            self.schedules[key] = _Entry(live=obj,
                                         watch=WatchState(watching_since=self.clock.now()))
            self.queue.wake(key)
            return
        if entry.generation is not None:
            # The controller has its own, newer status (its last write): keep metadata and
            # spec only, or every Schedule would hold two copies of a growing status.active.
            obj = {k: v for k, v in obj.items() if k != "status"}
        entry.live = obj
        if meta.get("generation") != entry.generation:
            entry.reread = True
            self.queue.wake(key)

    def on_deployment(self, type_: str, obj: dict[str, Any]) -> None:
        """Remember uid and ``paused``; a change of either wakes the Schedules using it.

        A Deployment's status changes with every run it starts; that must not wake its
        Schedules, so only existence, uid and ``spec.paused`` count.
        """
        meta = obj.get("metadata") or {}
        key = _key(meta)
        before = self.deployments.get(key)
        if type_ == "DELETED":
            self.deployments.pop(key, None)
            changed = before is not None
        else:
            slim = {"metadata": {"name": key[1], "uid": meta.get("uid")},
                    "spec": {"paused": bool((obj.get("spec") or {}).get("paused"))}}
            self.deployments[key] = (slim,)
            changed = before is None or before[0] != slim
        if changed:
            for schedule, entry in self.schedules.items():
                if schedule[0] == key[0] and entry.deployment == key[1]:
                    self.queue.wake(schedule)

    def on_run(self, type_: str, obj: dict[str, Any]) -> None:
        """Keep a Schedule's active runs and its latest completed one; wake it on an end."""
        meta = obj.get("metadata") or {}
        namespace, name = _key(meta)
        labels = meta.get("labels")
        schedule = (labels or {}).get(LABEL_SCHEDULE)
        if schedule:
            key: Key | None = (namespace, schedule)
        elif type_ == "DELETED" and labels is None:
            # A relist's tombstone carries no labels: find the run among those kept.
            key = self._owner(namespace, name)
        else:
            return  # not a scheduled run (ad-hoc, backfill without a Schedule, …)
        if key is None:
            return
        entry = self.schedules.get(key)
        if entry is not None:
            # The watch has shown this run: from now on the remembered runs say whether
            # it is active. Left among the unseen runs, a run created and then deleted or
            # ended before the next wake-up (its Deployment deleted, the garbage collector
            # taking its runs) would count as active for a minute.
            entry.watch.unseen.pop(name, None)
        status = obj.get("status") or {}
        phase = status.get("phase")
        runs = self.runs.setdefault(key, {})
        if type_ != "DELETED" and phase not in TERMINAL_PHASES:
            runs[name] = _run_facts(obj)
            return
        was_active = name in runs and runs[name][1] not in TERMINAL_PHASES
        self._forget_run(key, name)
        end = status.get("endTime")
        if type_ != "DELETED" and phase == "Completed" and end:
            latest = self._latest_completed.get(key)
            if latest is None or str(end) > latest[1]:
                if latest is not None:
                    self._forget_run(key, latest[0])
                self._latest_completed[key] = (name, str(end))
                runs[name] = _run_facts(obj)
        if not runs:
            del self.runs[key]
        if entry is not None and (was_active or name in entry.active) \
                and not self._tick_is_near(entry):
            self.queue.wake(key)

    def _tick_is_near(self, entry: _Entry) -> bool:
        """Whether the Schedule's next tick comes soon enough to refresh its status.

        A run's end only changes what ``status`` shows (``active``,
        ``lastSuccessfulTime``); the decisions (``Forbid``, ``Replace``) read the runs
        remembered here, which are already current. Waking to rewrite the status when
        the next tick is due within :data:`ACTIVE_REFRESH_SLACK_SECONDS` anyway would
        double the status writes of every frequent Schedule.
        """
        if entry.next_tick is None:
            return False
        left = (entry.next_tick - self.clock.now()).total_seconds()
        return left <= ACTIVE_REFRESH_SLACK_SECONDS

    def _owner(self, namespace: str, name: str) -> Key | None:
        """The Schedule of a run reported without labels (deleted while unwatched; rare)."""
        return next((key for key, runs in self.runs.items()
                     if key[0] == namespace and name in runs), None)

    def _forget_run(self, key: Key, name: str) -> None:
        runs = self.runs.get(key)
        if runs is not None:
            runs.pop(name, None)
        latest = self._latest_completed.get(key)
        if latest is not None and latest[0] == name:
            del self._latest_completed[key]

    # --- one wake-up of one Schedule ---------------------------------------------------------
    async def reconcile(self, key: Key) -> Result:
        """Reconcile Schedule ``key``, post its Events, and say when its next tick is."""
        entry = self.schedules.get(key)
        if entry is None:
            return DONE  # deleted
        clock = self.clock
        try:
            if entry.failed:
                # After a failure the last status write may or may not have landed.
                schedule = await self.client.get(kube.SCHEDULES, key[1], namespace=key[0])
            elif entry.written is None or entry.reread:
                schedule = fresh_schedule(entry.live, written=entry.written)
                entry.live = {k: v for k, v in entry.live.items() if k != "status"}
            else:
                schedule = entry.written
            entry.reread = False
            entry.generation = schedule["metadata"].get("generation")
            entry.deployment = (schedule.get("spec") or {}).get(
                "deploymentRef", {}).get("name")
            result = await reconcile_schedule(self.client, schedule, entry.watch, clock.now(),
                                              cache=self.cache, clock=clock,
                                              observer=self.observer)
        except kube.NotFound:
            return DONE  # deleted meanwhile; the watch's DELETED forgets the entry
        except kube.Invalid as exc:
            # 422: refused for what was sent (a status the schema refuses, say), so a
            # retry gets the same answer. Say so on the Schedule and wait for a change
            # (its spec, its Deployment, a run's end) instead of retrying.
            logger.error("Schedule %s/%s: the API server refused a write: %s; not retried "
                         "until something changes", key[0], key[1], exc.message)
            self.observer.observe_reconcile_error(KIND)
            self._post_events(entry.written or entry.live, [status_rejected_event(exc)],
                              entry.budget, clock.now())
            entry.written, entry.failed = None, True
            return DONE
        except Exception:
            self.observer.observe_reconcile_error(KIND)
            entry.written, entry.failed = None, True
            raise  # the queue retries with backoff
        entry.failed = False
        entry.active, entry.next_tick = frozenset(result.active), result.next_tick
        self._post_events(schedule, result.events, entry.budget, clock.now())
        entry.written = result.body
        return DONE if result.next_tick is None else Result(requeue_at=result.next_tick)

    def _post_events(self, schedule: Mapping[str, Any], events: list[tuple[str, str, str]],
                     budget: EventBudget, now: datetime) -> None:
        """Post the wake-up's Events; routine ones within ``budget``, and all behind the
        creates of ticks due (the recorder's task inherits the deferral)."""
        with kube.deferred_requests():
            for type_, reason, message in events:
                if should_post(type_, budget, now):
                    self.events.post(schedule, type_, reason, message)


def status_rejected_event(error: kube.KubeError) -> tuple[str, str, str]:
    """The Warning Event for a wake-up whose write the API server refused (422)."""
    return ("Warning", reasons.STATUS_REJECTED, (
        f"the API server refused a write of this Schedule's wake-up ({error.message}); "
        "it is not retried until the Schedule, its Deployment or one of its runs changes. "
        "Report this to the Headwater maintainers with the Schedule's status"))


def fresh_schedule(live: Mapping[str, Any], *, written: Mapping[str, Any] | None
                   ) -> dict[str, Any]:
    """The Schedule to reconcile after a spec change (or at its first wake-up).

    Metadata and spec come from the watch's latest object, which already holds the
    change that woke it, so no GET is needed. The status comes from this controller's
    own last status write when there is one: only the controller writes it, and the
    watch may not have delivered that write yet, so the watched status can be older.
    """
    fresh: dict[str, Any] = copy.deepcopy(dict(live))
    if written is not None:
        fresh["status"] = copy.deepcopy(dict(written.get("status") or {}))
    return fresh


def _key(meta: Mapping[str, Any]) -> Key:
    """(namespace, name) of a watched object (``default`` when unset)."""
    return meta.get("namespace") or "default", meta["name"]


def _run_facts(run: Mapping[str, Any]) -> RunFacts:
    """What ``status.active``, Forbid and ``lastSuccessfulTime`` need of a run."""
    status = run.get("status") or {}
    return ((run.get("spec") or {}).get("scheduledTime"), status.get("phase"),
            status.get("endTime"))
