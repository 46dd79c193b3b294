"""The Deployment and Flow controllers: their status (Ready, Paused, run counts, lastRun),
and the pruning of each Deployment's FlowRun history.

One Deployment, from its watch event to its status:

1. **Watch → wake.** A Deployment is woken when it changes
   (:meth:`DeploymentController.on_deployment`), when one of its FlowRuns changes
   (:meth:`~DeploymentController.on_flowrun`), and when its Flow changes (the
   :class:`FlowController` wakes the Deployments that reference the Flow). Nothing loops
   over all Deployments.
2. **Reconcile** (:meth:`DeploymentController.reconcile`, one worker per Deployment at a
   time): compute the desired status with the pure
   :func:`~headwater_operator.readiness.deployment_status` from what the watches keep in
   memory — the Deployment and its Flow from the shared stores, a few fields of each of
   its FlowRuns (:class:`~headwater_operator.readiness.RunFacts`) — and patch it through
   the ``status`` subresource only if it differs (so replayed events and our own status
   echoes cost no write). A busy Deployment is reconciled at every transition of every
   run, so what does not change with them is kept: the spec's verdict until the spec or
   the Flow's spec changes, each finished run's parsed pruning record until the run's
   facts change or it goes. Then delete the finished runs beyond the history limits or
   TTL (:mod:`headwater_operator.history`), and their run records in the run store
   (``status.runRecords``; docs/run-store.md).
3. **Requeue** at the next history expiry (a TTL), or after the coalescing window below.

What it must respect:

* **Only status is written.** No finalizer, no annotations on the user's Deployments and
  Flows: GitOps tools see no drift, and deleting a Deployment never waits for the
  operator.
* **Coalesced run bookkeeping.** ``activeRuns``, ``queuedRuns`` and ``lastRun`` change with
  every phase of every run: written eagerly they cost one ``Deployment.status`` patch per
  FlowRun transition, and a Deployment with many runs would be the operator's busiest
  write. So a patch that only touches those fields is written at most once per
  :data:`STATUS_WRITE_INTERVAL_SECONDS` per Deployment; within the window the reconcile
  asks to run again at its end (``requeue_after``), and that run recomputes the status
  from memory *then*, so the latest counts are always written, at most one window late.
  Anything else — ``Ready`` and ``Paused``, ``observedGeneration``, what follows a user's
  edit and what GitOps health checks read — is written at once, carrying the counts
  along. Nothing in the operator decides from these fields (admission counts the
  FlowRuns themselves): they are for people and dashboards.
* **History** is pruned by age (TTL) with one timer per Deployment at its next expiry;
  after a restart the informers' first LIST replays every FlowRun and re-arms them.
* **A Schedule's unrecorded ticks are kept.** A finished run a Schedule made is pruned
  only once that Schedule's durable status covers its tick
  (:func:`~headwater_operator.history.tick_is_recorded`: ``lastScheduleTime``, or its
  creation), or once the Schedule is gone. The Schedule controller creates a tick's run
  *before* it writes ``lastScheduleTime``; a run pruned in between — the leader killed
  before its status write, or the write failing while the run finished and aged out —
  would be created again by the next wake-up, which plans from the older
  ``lastScheduleTime``: the run's name stops a second create only while the run exists.
  So the Schedules' statuses come from their watch (only ever committed states, never
  ahead of the API server), a Schedule the watch does not know is asked for once before
  its run is deleted, and a Deployment holding such a run back is woken when that
  Schedule records more. Kubernetes' CronJob controller gets this from doing both in one
  place: ``sync`` (``pkg/controller/cronjob/cronjob_controllerv2.go``) deletes the
  finished Jobs beyond the limits (``cleanupFinishedJobs``) and creates the next Job
  (``syncCronJob``: create, then ``LastScheduleTime`` on the same copy) in one pass, and
  writes the status once at its end; it fires only the newest missed time, so a Job lost
  before that write costs at most one re-run. Here pruning and scheduling are separate
  controllers and catch-up ``All`` re-plans every tick after ``lastScheduleTime``, so the
  order is enforced by the pruner instead (``docs/decisions.md``).
* **The run store is never in the way.** Its I/O blocks, so it runs in threads, a few at
  a time, each bounded by a timeout; a failed or hung deletion of a pruned run's records
  is logged and posted as a ``RunRecordsNotDeleted`` Warning on the Deployment, and the
  FlowRun is deleted all the same (before its records: an operator that dies in between
  leaves records behind, never a FlowRun whose records are gone).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from headwater import runstore
from headwater.contract import LABEL_SCHEDULE

from headwater_operator import kube, reasons
from headwater_operator.api import TERMINAL_PHASES
from headwater_operator.clock import Clock
from headwater_operator.controllers.signals import NULL_OBSERVER, EventRecorder, Observer
from headwater_operator.history import (
    SUCCESSFUL_PHASES,
    UNSUCCESSFUL_PHASES,
    HistoryPolicy,
    RunRecord,
    next_expiry,
    recorded_through,
    runs_to_delete,
    tick_is_recorded,
)
from headwater_operator.informer import InformerFactory, Store
from headwater_operator.kubetime import parse_time
from headwater_operator.readiness import (
    READY,
    RunFacts,
    Verdict,
    check_deployment,
    deployment_status,
    flow_status,
    status_patch,
)
from headwater_operator.runtime import DONE, Controller, Result

Key = tuple[str, str]
"""``(namespace, name)``."""

RECORD_DELETES_AT_ONCE = 4
"""Run-store deletions in flight at once, for all Deployments together: each takes a
thread of the loop's default executor (the store's clients block)."""
RECORD_ERROR_MAX_CHARS = 400
"""A store error quoted in an Event is cut to this many characters."""
RECORD_DELETE_TIMEOUT_SECONDS = 60.0
"""How long pruning waits for one run's records to be deleted before it reports the
deletion as failed and moves on (the thread may still finish it)."""
STATUS_WRITE_INTERVAL_SECONDS = 1.0
"""Run-count-only status patches of one Deployment are at least this far apart."""
RUN_BOOKKEEPING: frozenset[str] = frozenset({"activeRuns", "queuedRuns", "lastRun"})
"""The fast-changing status fields whose writes are coalesced (see the module docstring)."""
DEFAULT_WORKERS = 8

_log = logging.getLogger(__name__)


def coalesce_delay(last_write: float | None, now: float, interval: float) -> float:
    """Seconds to hold a run-count-only status write back (0: write now).

    One write per ``interval``: the first change after a quiet spell goes out at once,
    the following ones wait for the end of the window that write opened.
    """
    if last_write is None:
        return 0.0
    return max(0.0, last_write + interval - now)


def within_limits(runs: Iterable[RunFacts], policy: HistoryPolicy) -> bool:
    """Whether pruning by ``policy`` can have nothing to do: no TTL, and no more runs in
    a successful or an unsuccessful final phase than its limit.

    Runs are counted by phase alone (those being deleted and those without an end time
    too), so never fewer than :func:`~headwater_operator.history.runs_to_delete` counts:
    True means it would delete nothing. A busy Deployment is reconciled at every phase
    change of every run, and this spares most of those reconciles the pruning records
    and their sort.
    """
    if policy.ttl_seconds_after_finished is not None:
        return False
    successful = unsuccessful = 0
    for run in runs:
        if run.phase in SUCCESSFUL_PHASES:
            successful += 1
        elif run.phase in UNSUCCESSFUL_PHASES:
            unsuccessful += 1
    return (successful <= policy.successful_runs_limit
            and unsuccessful <= policy.failed_runs_limit)


def to_record(run: RunFacts) -> RunRecord:
    """The pruning view of a run's facts."""
    created = parse_time(run.created) or datetime.min.replace(tzinfo=UTC)
    return RunRecord(name=run.name, phase=run.phase, created=created,
                     end_time=parse_time(run.end_time))


def run_facts(obj: Mapping[str, Any]) -> RunFacts:
    """What a Deployment's status and history need of one of its FlowRuns."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    status = obj.get("status") or {}
    schedule = (meta.get("labels") or {}).get(LABEL_SCHEDULE)
    return RunFacts(
        name=meta["name"], phase=status.get("phase"),
        created=str(meta.get("creationTimestamp") or ""),
        scheduled_time=status.get("scheduledTime") or spec.get("scheduledTime"),
        end_time=status.get("endTime"),
        record_urls=tuple(str(entry["url"]) for entry in status.get("runRecords") or ()
                          if isinstance(entry, Mapping) and entry.get("url")),
        schedule=str(schedule) if schedule else None,
        tick=spec.get("scheduledTime") if schedule else None)


def record_roots(urls: Iterable[str]) -> list[str]:
    """The distinct run-store roots of a run's ``status.runRecords`` locations, in order;
    a location that is not in the store's layout is skipped (and logged)."""
    roots: list[str] = []
    for url in urls:
        try:
            root, _path = runstore.split_url(url)
        except ValueError as exc:
            _log.warning("ignoring a run-record location: %s", exc)
            continue
        if root not in roots:
            roots.append(root)
    return roots


def _flow_name(spec: Mapping[str, Any]) -> str | None:
    ref = spec.get("flowRef")
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) else None


def announce_ready_change(events: EventRecorder, body: Mapping[str, Any],
                          current: Mapping[str, Any], desired: Mapping[str, Any]) -> None:
    """Post an Event when ``Ready`` changes status or reason (not on message-only edits)."""
    before = _ready(current)
    after = _ready(desired)
    if after is None or (before and (before["status"], before.get("reason")) ==
                         (after["status"], after.get("reason"))):
        return
    events.post(body, "Normal" if after["status"] == "True" else "Warning",
                str(after.get("reason")), str(after.get("message") or ""))


def _ready(status: Mapping[str, Any]) -> dict[str, Any] | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") == READY:
            return dict(condition)
    return None


class DeploymentController:
    """Keeps every Deployment's status and history (see the module docstring)."""

    def __init__(self, client: kube.Kube, *, deployments: Store, flows: Store,
                 events: EventRecorder, observer: Observer = NULL_OBSERVER,
                 clock: Clock | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 status_interval: float = STATUS_WRITE_INTERVAL_SECONDS,
                 workers: int = DEFAULT_WORKERS,
                 record_delete_timeout: float = RECORD_DELETE_TIMEOUT_SECONDS) -> None:
        self.client = client
        self.deployments = deployments
        self.flows = flows
        self.events = events
        self.observer = observer
        self.monotonic = monotonic
        self.status_interval = status_interval
        self.queue: Controller[Key] = Controller(
            "deployments", self.reconcile, workers=workers, clock=clock,
            expected=(kube.KubeError, OSError, TimeoutError))
        self.runs: dict[Key, dict[str, RunFacts]] = {}
        """(namespace, Deployment) → run name → its facts (runs being deleted left out)."""
        self.records: dict[Key, dict[str, tuple[RunFacts, RunRecord]]] = {}
        """(namespace, Deployment) → run name → the facts a finished run's pruning record
        was made from, and the record (its timestamps parsed once, not at every
        reconcile): valid while those facts are the run's (each watch event of the run
        replaces them), dropped with the run."""
        self.verdicts: dict[Key, tuple[Mapping[str, Any], Mapping[str, Any] | None,
                                       Verdict]] = {}
        """(namespace, Deployment) → the spec and Flow spec last judged, and the verdict
        (:func:`~headwater_operator.readiness.check_deployment` validates the whole spec:
        not redone at every run's transition when neither changed)."""
        self.by_flow: dict[Key, set[str]] = {}
        """(namespace, Flow) → the Deployments that reference it."""
        self._flow_of: dict[Key, str] = {}
        self.written: dict[Key, tuple[str, dict[str, Any]]] = {}
        """``(uid, status)`` last written per Deployment: fresher than the watched copy,
        which only catches up when the watch event for our own write arrives. The uid
        guards against a Deployment deleted and created again under the same name."""
        self.deleting: set[Key] = set()
        """FlowRuns we asked to delete whose deletion has not been observed yet."""
        self.last_status_write: dict[Key, float] = {}
        """When (``monotonic``) each Deployment's status was last patched."""
        self.record_delete_timeout = record_delete_timeout
        """Seconds pruning waits for one run's records to be deleted (see
        :data:`RECORD_DELETE_TIMEOUT_SECONDS`)."""
        self._record_slots = asyncio.Semaphore(RECORD_DELETES_AT_ONCE)
        self.schedules: dict[Key, datetime | None] = {}
        """(namespace, Schedule) → its :func:`~headwater_operator.history.recorded_through`
        as its watch last showed it."""
        self.held: dict[Key, set[str]] = {}
        """(namespace, Schedule) → the Deployments keeping a finished run of it back
        because its status had not recorded the run's tick: woken when it records more."""


    @property
    def clock(self) -> Clock:
        """The clock the work queue times ``requeue_at`` on (the operator's, unless given)."""
        return self.queue.clock

    def register(self, informers: InformerFactory) -> None:
        """Receive the events of Deployments and FlowRuns."""
        informers.informer(kube.DEPLOYMENTS).add_handler(self.on_deployment)
        informers.informer(kube.FLOWRUNS).add_handler(self.on_flowrun)
        informers.informer(kube.SCHEDULES).add_handler(self.on_schedule)

    # --- watch → wake -----------------------------------------------------------------------
    def on_deployment(self, type_: str, obj: dict[str, Any]) -> None:
        """A Deployment was created, changed or deleted: reconcile it (or forget it)."""
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        old_flow = self._flow_of.pop(key, None)
        if old_flow is not None:
            self.by_flow.get((key[0], old_flow), set()).discard(key[1])
        if type_ == "DELETED":
            self.forget(key)
            return
        flow = _flow_name(obj.get("spec") or {})
        if flow is not None:
            self._flow_of[key] = flow
            self.by_flow.setdefault((key[0], flow), set()).add(key[1])
        self.queue.wake(key)

    def on_flowrun(self, type_: str, obj: dict[str, Any]) -> None:
        """A FlowRun changed: its Deployment's counts (and maybe its history) follow."""
        meta, spec = obj["metadata"], obj.get("spec") or {}
        ref = spec.get("deploymentRef")
        deployment = ref.get("name") if isinstance(ref, Mapping) else None
        namespace = meta.get("namespace") or ""
        if not isinstance(deployment, str):
            if type_ != "DELETED" or spec:
                return
            # A relist's tombstone (metadata only): find the run among those kept.
            deployment = next((dep for (ns, dep), runs in self.runs.items()
                               if ns == namespace and meta["name"] in runs), None)
            if deployment is None:
                return
        key = (namespace, deployment)
        name = meta["name"]
        if type_ == "DELETED" or meta.get("deletionTimestamp"):
            # Runs being deleted no longer count, and pruning must not delete them again.
            if type_ == "DELETED":
                self.deleting.discard((namespace, name))
            records = self.records.get(key)
            if records is not None and records.pop(name, None) is not None and not records:
                del self.records[key]
            runs = self.runs.get(key)
            if runs is None or runs.pop(name, None) is None:
                return
            if not runs:
                del self.runs[key]
        else:
            self.runs.setdefault(key, {})[name] = run_facts(obj)
        self.queue.wake(key)

    def on_schedule(self, type_: str, obj: dict[str, Any]) -> None:
        """Keep how far each Schedule has recorded its ticks; when that moves (or the
        Schedule goes), wake the Deployments that kept one of its runs back for it."""
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        before = self.schedules.get(key)
        if type_ == "DELETED":
            self.schedules.pop(key, None)
        else:
            self.schedules[key] = recorded_through(obj)
            if key in self.held and self.schedules[key] == before:
                return
        for deployment in self.held.pop(key, ()):
            self.queue.wake((key[0], deployment))

    def wake_flow(self, namespace: str, flow: str) -> None:
        """The Flow ``namespace/flow`` changed: its Deployments are judged again."""
        for deployment in list(self.by_flow.get((namespace, flow), ())):
            self.queue.wake((namespace, deployment))

    def forget(self, key: Key) -> None:
        """Drop everything kept for a deleted Deployment (its runs' facts stay until their
        own deletion events: the garbage collector deletes them next)."""
        self.written.pop(key, None)
        self.last_status_write.pop(key, None)
        self.verdicts.pop(key, None)
        self.queue.forget(key)

    # --- reconcile --------------------------------------------------------------------------
    async def reconcile(self, key: Key) -> Result:
        """Bring one Deployment's status and history up to date (see the module docstring)."""
        body = self.deployments.get(*key)
        if body is None:
            return DONE  # deleted: its DELETED event forgot it
        try:
            flush_in = await self.write_status(key, body)
        except kube.Invalid as exc:
            # 422: the status itself is refused, so a retry would be refused the same way.
            # Say so on the Deployment; the next change to it (or its Flow, or a run)
            # tries again, as reconciles always do.
            self.observer.observe_reconcile_error("Deployment")
            _log.error("Deployment %s/%s: the API server refused its status: %s; not "
                       "retried until something changes", *key, exc.message)
            self.events.post(body, "Warning", reasons.STATUS_REJECTED, (
                f"the API server refused this Deployment's status ({exc.message}); it is "
                "not retried until the Deployment, its Flow or one of its runs changes. "
                "Report this to the Headwater maintainers"))
            flush_in = None
        except Exception:
            self.observer.observe_reconcile_error("Deployment")
            raise
        try:
            expiry = await self.prune_history(key, body)
        except Exception:
            self.observer.observe_reconcile_error("Deployment")
            raise
        return Result(requeue_at=expiry, requeue_after=flush_in)

    async def write_status(self, key: Key, body: Mapping[str, Any]) -> float | None:
        """Patch ``status`` if the desired status differs; returns, when a run-count-only
        write was held back, in how many seconds to write it (see the module docstring)."""
        namespace, name = key
        meta, spec = body["metadata"], body.get("spec") or {}
        uid = str(meta.get("uid") or "")
        flow_name = _flow_name(spec)
        flow = self.flows.get(namespace, flow_name) if flow_name else None
        written_uid, written = self.written.get(key, ("", {}))
        current = written if written_uid == uid else (body.get("status") or {})
        flow_spec = (flow or {}).get("spec") if flow is not None else None
        desired = deployment_status(
            name, spec, generation=meta.get("generation"), current=current,
            flow_spec=flow_spec, runs=list(self.runs.get(key, {}).values()),
            now=self.clock.now(), verdict=self.verdict(key, spec, flow_spec))
        patch = status_patch(current, desired)
        if not patch:
            return None
        now = self.monotonic()
        delay = coalesce_delay(self.last_status_write.get(key), now, self.status_interval)
        if delay > 0 and set(patch) <= RUN_BOOKKEEPING:
            return delay
        self.last_status_write[key] = now
        try:
            await self.client.patch_status(kube.DEPLOYMENTS, name, {"status": patch},
                                           namespace=namespace)
        except kube.NotFound:
            return None  # deleted meanwhile; its DELETED event cleans up
        self.written[key] = (
            uid, {k: v for k, v in {**current, **patch}.items() if v is not None})
        announce_ready_change(self.events, body, current, desired)
        return None

    async def prune_history(self, key: Key, body: Mapping[str, Any]) -> datetime | None:
        """Delete the finished FlowRuns beyond the history limits or TTL, then their run
        records; returns the next expiry (when to prune again), if any.

        The FlowRuns go first, one by one, as the API allows; their records then, several
        at a time and off the event loop (:meth:`delete_records`), also when a FlowRun
        deletion failed halfway (for those already deleted). A store that fails or hangs
        is reported, never in the way of the prune.
        """
        namespace, _name = key
        policy = HistoryPolicy.from_spec((body.get("spec") or {}).get("history"))
        facts = self.runs.get(key, {})
        if within_limits(facts.values(), policy):
            return None  # next_expiry is None without a TTL
        # Only finished runs are candidates (and have expiries): the active ones, most of
        # a busy Deployment's runs, are not even converted (two timestamps parsed each).
        records = [self.record(key, run) for run in facts.values()
                   if run.phase in TERMINAL_PHASES and (namespace, run.name) not in self.deleting]
        now = self.clock.now()
        pruned: list[RunFacts] = []
        failure: Exception | None = None
        try:
            for deletion in runs_to_delete(records, policy, now):
                run = facts.get(deletion.name)
                if run is not None and await self._tick_unrecorded(key, run):
                    continue  # pruned once its Schedule records it (or is gone)
                await self._delete_run(namespace, deletion.name)
                if run is not None:
                    pruned.append(run)
                self.events.post(body, "Normal", reasons.HISTORY_PRUNED,
                                 f"Deleted FlowRun {deletion.name!r}: {deletion.reason}.")
        except Exception as exc:
            failure = exc
        await asyncio.gather(*(self.delete_records(body, namespace, run.name, root)
                               for run in pruned for root in record_roots(run.record_urls)))
        if failure is not None:
            raise failure
        return next_expiry(records, policy, now)

    def verdict(self, key: Key, spec: Mapping[str, Any],
                flow_spec: Mapping[str, Any] | None) -> Verdict:
        """:func:`~headwater_operator.readiness.check_deployment` of Deployment ``key``,
        judged again only when its spec or its Flow's spec differs from the last judged
        (the stores' bodies are read-only, so the ones kept cannot change under us)."""
        kept = self.verdicts.get(key)
        if kept is not None and (kept[0] is spec or kept[0] == spec) and (
                kept[1] is flow_spec or kept[1] == flow_spec):
            return kept[2]
        verdict = check_deployment(key[1], spec, flow_spec)
        self.verdicts[key] = (spec, flow_spec, verdict)
        return verdict

    def record(self, key: Key, run: RunFacts) -> RunRecord:
        """The pruning record of ``run`` (a run of Deployment ``key``), made again only
        when the run's facts changed since (see :attr:`records`)."""
        records = self.records.setdefault(key, {})
        kept = records.get(run.name)
        if kept is not None and kept[0] is run:
            return kept[1]
        record = to_record(run)
        records[run.name] = (run, record)
        return record

    async def delete_records(self, involved: Mapping[str, Any], namespace: str, name: str,
                             root: str) -> bool:
        """Delete FlowRun ``namespace/name``'s run records under store ``root``, in a
        thread; whether it worked. A failure (or :attr:`record_delete_timeout`) is logged
        and posted as a ``RunRecordsNotDeleted`` Warning on ``involved`` (the Deployment),
        never raised."""
        where = runstore.join(root, runstore.flowrun_path(namespace, name)) + "/"
        async with self._record_slots:
            try:
                async with asyncio.timeout(self.record_delete_timeout):
                    await asyncio.to_thread(runstore.delete_flowrun, root, namespace, name)
            except Exception as exc:  # the store's errors are of every kind: none may escape
                why = (f"it did not finish within {self.record_delete_timeout:g}s"
                       if isinstance(exc, TimeoutError)
                       else f"{type(exc).__name__}: {exc}"[:RECORD_ERROR_MAX_CHARS])
                _log.warning("FlowRun %s/%s was pruned but its run records at %s could not "
                             "be deleted: %s", namespace, name, where, why)
                self.events.post(involved, "Warning", reasons.RUN_RECORDS_NOT_DELETED, (
                    f"Pruned FlowRun {name!r}, but could not delete its run records at "
                    f"{where}: {why}. Give the operator delete access to the run store, "
                    "or remove them with the store's own tools."))
                return False
        return True

    async def _tick_unrecorded(self, key: Key, run: RunFacts) -> bool:
        """Whether ``run`` is a Schedule's run whose tick that Schedule's status has not
        recorded yet (then Deployment ``key`` is woken when it does: :attr:`held`).

        A Schedule the watch does not show is read from the API server: after the first
        LIST that means it is gone (then the run may go), but a run is only deleted on
        what the API server says, never on a watch that has not caught up.
        """
        if run.schedule is None:
            return False
        tick = parse_time(run.tick)
        if tick is None:
            return False  # not a tick's run (made by hand with the label): no Schedule re-makes it
        namespace = key[0]
        schedule = (namespace, run.schedule)
        if schedule in self.schedules:
            recorded = self.schedules[schedule]
        else:
            try:
                body = await self.client.get(kube.SCHEDULES, run.schedule, namespace=namespace)
            except kube.NotFound:
                return False  # gone: nothing fires its ticks again
            recorded = recorded_through(body)
        if tick_is_recorded(tick, recorded):
            return False
        self.held.setdefault(schedule, set()).add(key[1])
        return True

    async def _delete_run(self, namespace: str, name: str) -> None:
        """Delete one FlowRun (its pods follow through owner references)."""
        self.deleting.add((namespace, name))
        try:
            await self.client.delete(kube.FLOWRUNS, name, namespace=namespace)
        except kube.NotFound:
            pass  # already gone: the goal is reached
        except Exception:
            self.deleting.discard((namespace, name))  # so that the retry tries it again
            raise


class FlowController:
    """Keeps every Flow's status (``Ready`` + ``observedGeneration``) and wakes the
    Deployments that reference a Flow when it changes.

    A Flow's verdict (:func:`~headwater_operator.readiness.check_flow`) depends on its
    spec alone, so each change is judged on the spot and written only when the status
    would change.
    """

    def __init__(self, client: kube.Kube, *, flows: Store, deployments: DeploymentController,
                 events: EventRecorder, observer: Observer = NULL_OBSERVER,
                 clock: Clock | None = None, workers: int = 4) -> None:
        self.client = client
        self.flows = flows
        self.deployment_controller = deployments
        self.events = events
        self.observer = observer
        self.queue: Controller[Key] = Controller(
            "flows", self.reconcile, workers=workers, clock=clock,
            expected=(kube.KubeError, OSError, TimeoutError))

    @property
    def clock(self) -> Clock:
        """The clock the work queue times ``requeue_at`` on (the operator's, unless given)."""
        return self.queue.clock

    def register(self, informers: InformerFactory) -> None:
        """Receive the events of Flows."""
        informers.informer(kube.FLOWS).add_handler(self.on_flow)

    def on_flow(self, type_: str, obj: dict[str, Any]) -> None:
        """A Flow changed or went: judge it, and its Deployments after it."""
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        if type_ == "DELETED":
            self.queue.forget(key)
            self.deployment_controller.wake_flow(*key)
            return
        self.queue.wake(key)

    async def reconcile(self, key: Key) -> Result:
        """Write the Flow's status if it changed; then its Deployments look again."""
        namespace, name = key
        body = self.flows.get(namespace, name)
        if body is None:
            return DONE
        try:
            await self.write_status(namespace, name, body)
        except Exception:
            self.observer.observe_reconcile_error("Flow")
            raise
        finally:
            self.deployment_controller.wake_flow(namespace, name)
        return DONE

    async def write_status(self, namespace: str, name: str, body: Mapping[str, Any]) -> None:
        """Patch ``Flow.status`` when the desired status differs; post an Event on changes."""
        meta, spec = body["metadata"], body.get("spec") or {}
        status = body.get("status") or {}
        desired = flow_status(name, spec, generation=meta.get("generation"), current=status,
                              now=self.clock.now())
        patch = status_patch(status, desired)
        if not patch:
            return
        try:
            await self.client.patch_status(kube.FLOWS, name, {"status": patch},
                                           namespace=namespace)
        except kube.NotFound:
            return  # deleted meanwhile
        announce_ready_change(self.events, body, status, desired)


