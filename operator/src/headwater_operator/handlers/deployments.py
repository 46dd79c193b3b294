"""Deployment status (Ready, Paused, run counts, lastRun) and FlowRun history pruning.

How it stays cheap. Nothing here lists objects from the API server or loops over all
objects: three kopf indexes keep, in memory, exactly the facts the decisions need —

* ``deployments_by_name``: each Deployment's uid, generation, spec and status,
* ``deployments_by_flow``: which Deployments reference a Flow (for Flow changes),
* ``flowruns_by_deployment``: a few fields of each FlowRun (:class:`RunFacts`), keyed
  by its ``spec.deploymentRef.name``,

(plus ``flows_by_name`` in :mod:`.flows`). A Deployment is re-evaluated when it changes,
when its Flow changes, or when one of its FlowRuns changes, and only that Deployment.
The desired status is computed by :func:`readiness.deployment_status` and written through
the ``status`` subresource only if it differs from what is there, so replayed events and
the operator's own status echoes cost no writes.

Why ``@kopf.on.event`` and not ``on.create``/``on.update``: event handlers make kopf keep
no progress annotations and add no finalizer on the user's objects, so the operator's
only writes to a Deployment are its status (GitOps tools see no drift, and deleting a
Deployment never waits for the operator).

History pruning (:mod:`headwater_operator.history`) runs when a FlowRun of the
Deployment finishes or the Deployment's spec changes. The TTL is honoured with one
in-memory wake-up per Deployment, at the next expiry, rather than a periodic timer
(kopf timers would put a finalizer on every Deployment). After an operator restart the
initial listing replays every FlowRun, which re-arms the wake-ups.

Per Deployment, evaluations are serialised with a lock and read the indexes *inside* it,
so the last write always reflects the newest facts even when several FlowRuns change at
once. FlowRun events do not wait for them: they ask for one (:meth:`DeploymentState.request`)
and return, and the requests that arrive during an evaluation fold into the next one.

Coalesced run bookkeeping. ``activeRuns``, ``queuedRuns`` and ``lastRun`` change with
every phase of every run: written eagerly they cost one ``Deployment.status`` patch per
FlowRun transition (4 for a simple run, more than the run's own 3 status patches), and
a Deployment with many runs would be the operator's busiest write. So a patch that only
touches those fields is written at most once per :data:`STATUS_WRITE_INTERVAL_SECONDS`
per Deployment: within the window, one flush is scheduled for its end, and the flush
recomputes the status from the indexes *then*, so it always writes the latest counts
and the final state is never lost (at most one window late). Anything else — ``Ready``
and ``Paused`` conditions, ``observedGeneration``, i.e. what follows a user's edit and
what GitOps health checks read — is written at once, carrying the counts along.
The trade-off: ``kubectl get hwd`` and ``lastRun.phase`` may lag the runs by up to one
window; a short-lived phase (Pending for 50 ms) may never appear in ``lastRun``. Nothing
in the operator decides from these fields (admission counts the FlowRuns themselves),
they are for people and dashboards. After a restart nothing is pending: the initial
listing replays every object and re-evaluates every Deployment.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from headwater.contract import GROUP, VERSION

from headwater_operator import kube, metrics, reasons
from headwater_operator.flowruns.timeutil import parse_time
from headwater_operator.history import (
    FINISHED_PHASES,
    HistoryPolicy,
    RunRecord,
    next_expiry,
    runs_to_delete,
)
from headwater_operator.readiness import (
    READY,
    RunFacts,
    deployment_status,
    status_patch,
)

Key = tuple[str, str]
"""``(namespace, name)``."""

STATE_MEMO_KEY = "headwater_deployments"
RETRY_AFTER_ERROR_SECONDS = 10.0
"""event handlers are not retried by kopf; a failed evaluation is re-run after this."""
STATUS_WRITE_INTERVAL_SECONDS = 1.0
"""Run-count-only status patches of one Deployment are at least this far apart."""
RUN_BOOKKEEPING: frozenset[str] = frozenset({"activeRuns", "queuedRuns", "lastRun"})
"""The fast-changing status fields whose writes are coalesced (see the module docstring)."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeploymentFacts:
    """What the indexes keep about one Deployment."""

    uid: str
    generation: int | None
    spec: dict[str, Any]
    status: dict[str, Any]

    def reference(self, namespace: str, name: str) -> kopf.Body:
        """A minimal body that ``kopf.event`` can attach an Event to."""
        return object_reference(kube.DEPLOYMENTS, "Deployment", namespace, name, self.uid)


def object_reference(
    resource: kube.Resource, kind: str, namespace: str, name: str, uid: str
) -> kopf.Body:
    """A minimal body of an object that ``kopf.event`` can attach an Event to."""
    raw = {
        "apiVersion": resource.api_version,
        "kind": kind,
        "metadata": {"namespace": namespace, "name": name, "uid": uid},
    }
    return kopf.Body(cast("kopf.RawBody", raw))


@dataclass
class Indexes:
    """The kopf indexes, captured from the latest handler call (for wake-ups)."""

    deployments_by_name: Mapping[Key, Iterable[DeploymentFacts]]
    flows_by_name: Mapping[Key, Iterable[dict[str, Any]]]
    flowruns_by_deployment: Mapping[Key, Iterable[RunFacts]]


@dataclass
class DeploymentState:
    """Operator-lifetime state kept in kopf's memo (one per operator run)."""

    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    client: kube.Kube = field(default_factory=kube.get_client)
    locks: dict[Key, asyncio.Lock] = field(default_factory=dict)
    written: dict[Key, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    """``(uid, status)`` last written per Deployment: fresher than the index's copy, which
    only catches up when the watch event for our own write arrives. The uid guards
    against a Deployment deleted and re-created under the same name."""
    deleting: set[Key] = field(default_factory=set)
    """FlowRuns we asked to delete whose deletion has not been observed yet."""
    wakeups: dict[Key, tuple[datetime, asyncio.TimerHandle]] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    indexes: Indexes | None = None
    monotonic: Callable[[], float] = time.monotonic
    status_interval: float = STATUS_WRITE_INTERVAL_SECONDS
    last_status_write: dict[Key, float] = field(default_factory=dict)
    """When (``monotonic``) each Deployment's status was last patched."""
    flushes: dict[Key, asyncio.TimerHandle] = field(default_factory=dict)
    """The pending coalesced status write of each Deployment (at most one)."""
    requested: dict[Key, bool] = field(default_factory=dict)
    """Evaluations asked for by FlowRun events and not started yet: key → prune too."""
    evaluating: dict[Key, asyncio.Task[None]] = field(default_factory=dict)
    """The task working off each Deployment's requests (at most one)."""

    def lock(self, key: Key) -> asyncio.Lock:
        """The lock that serialises evaluations of one Deployment."""
        return self.locks.setdefault(key, asyncio.Lock())

    def wake_at(self, key: Key, when: datetime, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` at ``when`` (keeping an earlier wake-up already set for ``key``)."""
        existing = self.wakeups.get(key)
        if existing is not None and existing[0] <= when:
            return
        if existing is not None:
            existing[1].cancel()
        delay = max(0.0, (when - self.clock()).total_seconds())
        loop = asyncio.get_running_loop()
        handle = loop.call_later(delay, self._spawn, key, job)
        self.wakeups[key] = (when, handle)

    def _spawn(self, key: Key, job: Callable[[], Awaitable[None]]) -> None:
        self.wakeups.pop(key, None)
        self._start(job())

    def _start(self, job: Awaitable[None]) -> asyncio.Task[None]:
        """Run ``job`` as a task that :meth:`close` cancels."""
        task = asyncio.ensure_future(job)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def request(self, key: Key, prune: bool,
                job: Callable[[bool], Awaitable[None]]) -> None:
        """Have ``job(prune)`` evaluate Deployment ``key`` soon, off the caller's path.

        Requests made while an evaluation runs fold into one more evaluation (pruning if
        any of them asked to), which reads the indexes then, so it covers them all. The
        FlowRun event handler returns at once: awaiting the Deployment's lock there held
        up kopf's processing of every run of a busy Deployment behind its history
        pruning (each finished run's deletes), so new runs waited seconds for a pod.
        """
        self.requested[key] = self.requested.get(key, False) or prune
        if key not in self.evaluating:
            self.evaluating[key] = self._start(self._work_off(key, job))

    async def _work_off(self, key: Key, job: Callable[[bool], Awaitable[None]]) -> None:
        try:
            while key in self.requested:
                await job(self.requested.pop(key))
        finally:
            self.evaluating.pop(key, None)

    def defer_status(self, key: Key, delay: float,
                     job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` (the coalesced status write) in ``delay`` s, unless one is pending."""
        if key in self.flushes:
            return
        loop = asyncio.get_running_loop()
        self.flushes[key] = loop.call_later(delay, self._spawn_flush, key, job)

    def _spawn_flush(self, key: Key, job: Callable[[], Awaitable[None]]) -> None:
        self.flushes.pop(key, None)
        self._start(job())

    def forget(self, key: Key) -> None:
        """Drop everything kept for a deleted Deployment."""
        self.requested.pop(key, None)
        self.locks.pop(key, None)
        self.written.pop(key, None)
        self.last_status_write.pop(key, None)
        wakeup = self.wakeups.pop(key, None)
        if wakeup is not None:
            wakeup[1].cancel()
        flush = self.flushes.pop(key, None)
        if flush is not None:
            flush.cancel()

    def close(self) -> None:
        """Cancel pending wake-ups and jobs (operator shutdown)."""
        for _, handle in self.wakeups.values():
            handle.cancel()
        self.wakeups.clear()
        for handle in self.flushes.values():
            handle.cancel()
        self.flushes.clear()
        for task in self.tasks:
            task.cancel()


def get_state(memo: Any) -> DeploymentState:
    """The :class:`DeploymentState` in kopf's memo (created at operator startup)."""
    state = memo.get(STATE_MEMO_KEY)
    if not isinstance(state, DeploymentState):
        state = DeploymentState()
        memo[STATE_MEMO_KEY] = state
    return state


def first(store: Iterable[Any] | None) -> Any:
    """The single value a by-name index holds for a key (None when absent)."""
    return next(iter(store or ()), None)


# --- indexes ---------------------------------------------------------------------------
@kopf.index(GROUP, VERSION, "deployments")
def deployments_by_name(
    *, namespace: str | None, name: str, uid: str, meta: Mapping[str, Any],
    spec: Mapping[str, Any], status: Mapping[str, Any], **_: Any,
) -> dict[Key, DeploymentFacts]:
    """Deployment facts by ``(namespace, name)``."""
    return {
        (namespace or "", name): DeploymentFacts(
            uid=uid,
            generation=meta.get("generation"),
            spec=copy.deepcopy(dict(spec)),
            status=copy.deepcopy(dict(status)),
        )
    }


@kopf.index(GROUP, VERSION, "deployments")
def deployments_by_flow(
    *, namespace: str | None, name: str, spec: Mapping[str, Any], **_: Any
) -> dict[Key, str] | None:
    """Deployment names by ``(namespace, flowRef.name)``."""
    flow_ref = spec.get("flowRef")
    flow = flow_ref.get("name") if isinstance(flow_ref, Mapping) else None
    return {(namespace or "", flow): name} if isinstance(flow, str) else None


@kopf.index(GROUP, VERSION, "flowruns")
def flowruns_by_deployment(
    *, namespace: str | None, name: str, meta: Mapping[str, Any],
    spec: Mapping[str, Any], status: Mapping[str, Any], **_: Any,
) -> dict[Key, RunFacts] | None:
    """:class:`RunFacts` of each FlowRun by ``(namespace, deploymentRef.name)``.

    Runs being deleted are left out: they no longer count, and pruning must not try to
    delete them again.
    """
    ref = spec.get("deploymentRef")
    deployment = ref.get("name") if isinstance(ref, Mapping) else None
    if not isinstance(deployment, str) or meta.get("deletionTimestamp"):
        return None
    return {
        (namespace or "", deployment): RunFacts(
            name=name,
            phase=status.get("phase"),
            created=str(meta.get("creationTimestamp") or ""),
            scheduled_time=status.get("scheduledTime") or spec.get("scheduledTime"),
            end_time=status.get("endTime"),
        )
    }


# --- handlers --------------------------------------------------------------------------
@kopf.on.startup()
def _create_state(*, memo: Any, **_: Any) -> None:
    memo[STATE_MEMO_KEY] = DeploymentState()


@kopf.on.cleanup()
def _close_state(*, memo: Any, **_: Any) -> None:
    get_state(memo).close()


@kopf.on.event(GROUP, VERSION, "deployments")
async def deployment_changed(
    *, type: str, namespace: str | None, name: str, memo: Any, **kwargs: Any
) -> None:
    """A Deployment was created, changed or deleted: re-evaluate it and its history."""
    state = bind(memo, kwargs)
    key = (namespace or "", name)
    if type == "DELETED":
        state.forget(key)
        return
    await evaluate(state, key, prune=True)


@kopf.on.event(GROUP, VERSION, "flowruns")
async def flowrun_changed(
    *, type: str, namespace: str | None, name: str, spec: Mapping[str, Any],
    status: Mapping[str, Any], memo: Any, **kwargs: Any,
) -> None:
    """A FlowRun changed: update its Deployment's counts; prune when it just finished."""
    ref = spec.get("deploymentRef")
    deployment = ref.get("name") if isinstance(ref, Mapping) else None
    if not isinstance(deployment, str):
        return
    state = bind(memo, kwargs)
    if type == "DELETED":
        state.deleting.discard((namespace or "", name))
    finished = status.get("phase") in FINISHED_PHASES
    key = (namespace or "", deployment)
    state.request(key, finished, lambda prune: evaluate(state, key, prune=prune))


def bind(memo: Any, kwargs: Mapping[str, Any]) -> DeploymentState:
    """The state, with the current kopf index objects (handler kwargs) remembered.

    Wake-ups run outside any handler call, so they use the indexes captured here.
    """
    state = get_state(memo)
    state.indexes = Indexes(
        deployments_by_name=kwargs["deployments_by_name"],
        flows_by_name=kwargs["flows_by_name"],
        flowruns_by_deployment=kwargs["flowruns_by_deployment"],
    )
    return state


async def evaluate(state: DeploymentState, key: Key, *, prune: bool) -> None:
    """Bring one Deployment's status (and, with ``prune``, its history) up to date.

    Failures are counted, logged and retried later: event handlers get no retries from
    kopf, and one bad Deployment must not stop the others.
    """
    try:
        async with state.lock(key):
            await write_status(state, key)
            if prune:
                await prune_history(state, key)
    except kube.Invalid as exc:
        # 422: the status itself is refused, so a retry would be refused the same way.
        # Say so on the Deployment; the next change to it (or its Flow, or a run) tries
        # again, as evaluations always do.
        metrics.observe_reconcile_error("Deployment")
        _log.error("Deployment %s/%s: the API server refused its status: %s; not retried "
                   "until something changes", *key, exc.message)
        announce_status_rejected(state, key, exc.message)
    except Exception:
        metrics.observe_reconcile_error("Deployment")
        _log.exception("evaluating Deployment %s/%s failed; retrying", *key)
        retry_at = state.clock().timestamp() + RETRY_AFTER_ERROR_SECONDS
        state.wake_at(key, datetime.fromtimestamp(retry_at, UTC),
                      lambda: evaluate(state, key, prune=True))


def announce_status_rejected(state: DeploymentState, key: Key, error: str) -> None:
    """A Warning Event on the Deployment whose status write was refused (422)."""
    facts = first(state.indexes.deployments_by_name.get(key)) if state.indexes else None
    if facts is None:
        return
    kopf.event(facts.reference(*key), type="Warning", reason=reasons.STATUS_REJECTED,
               message=reasons.event_message(
                   f"the API server refused this Deployment's status ({error}); it is not "
                   "retried until the Deployment, its Flow or one of its runs changes. "
                   "Report this to the Headwater maintainers"))


def coalesce_delay(last_write: float | None, now: float, interval: float) -> float:
    """Seconds to hold a run-count-only status write back (0: write now).

    One write per ``interval``: the first change after a quiet spell goes out at once,
    the following ones wait for the end of the window that write opened.
    """
    if last_write is None:
        return 0.0
    return max(0.0, last_write + interval - now)


async def write_status(state: DeploymentState, key: Key) -> None:
    """Patch ``Deployment.status`` if the desired status differs from the current one.

    Run-count-only changes are coalesced (see the module docstring).
    """
    assert state.indexes is not None
    facts: DeploymentFacts | None = first(state.indexes.deployments_by_name.get(key))
    if facts is None:
        return
    namespace, name = key
    flow_ref = facts.spec.get("flowRef")
    flow_name = flow_ref.get("name") if isinstance(flow_ref, Mapping) else None
    flow_spec = first(state.indexes.flows_by_name.get((namespace, str(flow_name))))
    uid, written = state.written.get(key, ("", {}))
    current = written if uid == facts.uid else facts.status
    desired = deployment_status(
        name, facts.spec, generation=facts.generation, current=current,
        flow_spec=flow_spec, runs=list(state.indexes.flowruns_by_deployment.get(key, ())),
        now=state.clock(),
    )
    patch = status_patch(current, desired)
    if not patch:
        return
    now = state.monotonic()
    delay = coalesce_delay(state.last_status_write.get(key), now, state.status_interval)
    if delay > 0 and set(patch) <= RUN_BOOKKEEPING:
        state.defer_status(key, delay, lambda: evaluate(state, key, prune=False))
        return
    state.last_status_write[key] = now
    try:
        await state.client.patch_status(
            kube.DEPLOYMENTS, name, {"status": patch}, namespace=namespace
        )
    except kube.NotFound:
        return  # deleted meanwhile; its DELETED event cleans up
    state.written[key] = (
        facts.uid, {k: v for k, v in {**current, **patch}.items() if v is not None}
    )
    announce_ready_change(facts.reference(namespace, name), current, desired)


def announce_ready_change(
    body: kopf.Body, current: Mapping[str, Any], desired: Mapping[str, Any]
) -> None:
    """Post an Event when ``Ready`` changes status or reason (not on message-only edits)."""
    before = _ready(current)
    after = _ready(desired)
    if after is None or (before and (before["status"], before.get("reason")) ==
                         (after["status"], after.get("reason"))):
        return
    kopf.event(
        body,
        type="Normal" if after["status"] == "True" else "Warning",
        reason=str(after.get("reason")),
        message=str(after.get("message") or ""),
    )


def _ready(status: Mapping[str, Any]) -> dict[str, Any] | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") == READY:
            return dict(condition)
    return None


async def prune_history(state: DeploymentState, key: Key) -> None:
    """Delete the Deployment's finished FlowRuns beyond its history limits or TTL."""
    assert state.indexes is not None
    facts: DeploymentFacts | None = first(state.indexes.deployments_by_name.get(key))
    if facts is None:
        return
    namespace, _name = key
    policy = HistoryPolicy.from_spec(facts.spec.get("history"))
    records = [
        to_record(run) for run in state.indexes.flowruns_by_deployment.get(key, ())
        if (namespace, run.name) not in state.deleting
    ]
    now = state.clock()
    for deletion in runs_to_delete(records, policy, now):
        await delete_run(state, namespace, deletion.name)
        kopf.event(
            facts.reference(*key), type="Normal", reason=reasons.HISTORY_PRUNED,
            message=f"Deleted FlowRun {deletion.name!r}: {deletion.reason}.",
        )
    expiry = next_expiry(records, policy, now)
    if expiry is not None:
        state.wake_at(key, expiry, lambda: evaluate(state, key, prune=True))


async def delete_run(state: DeploymentState, namespace: str, name: str) -> None:
    """Delete one FlowRun (its pods follow through owner references)."""
    state.deleting.add((namespace, name))
    try:
        await state.client.delete(kube.FLOWRUNS, name, namespace=namespace)
    except kube.NotFound:
        pass  # already gone: the goal is reached
    except Exception:
        state.deleting.discard((namespace, name))  # so that the retry tries it again
        raise


def to_record(run: RunFacts) -> RunRecord:
    """The pruning view of a run's indexed facts."""
    created = parse_time(run.created) or datetime.min.replace(tzinfo=UTC)
    return RunRecord(name=run.name, phase=run.phase, created=created,
                     end_time=parse_time(run.end_time))
