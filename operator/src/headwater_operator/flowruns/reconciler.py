"""Fetch the facts, call :func:`~headwater_operator.flowruns.machine.decide`, apply it.

This is the only impure part of the FlowRun lifecycle. One tracker (an asyncio task
started by the FlowRun watch handler in ``handlers/flowruns.py``) runs per *non-terminal*
FlowRun and is the only writer of that run's status, so two transitions of one run never
race. It sleeps until something can have changed: a watch event on the run, its pod or
its Deployment (delivered through :class:`Wakeups`), the next deadline the decision asked
for (scheduled time, pending timeout, retry time, cancel deadline, Late threshold), or a
slow resync as a safety net.
There is no loop over all objects anywhere.

Why not a kopf daemon or timer: kopf puts a finalizer on every object that has one, which
costs two writes per run and makes deleting a FlowRun wait for the operator. Trackers
started from ``@kopf.on.event`` cost neither; after a restart kopf's initial listing
replays every FlowRun, which restarts the trackers of the non-terminal ones.

Idempotency: the pod of attempt *n* has a deterministic name, so after a restart the
tracker re-creates the same name and the API server's 409 means "already there": the
existing pod is adopted (after checking its owner is this FlowRun) and no second pod
exists for an attempt. Status is written with merge patches that set absolute values,
so replaying a decision writes the same status again instead of drifting.

Reads. A step reads nothing it can get from memory: the FlowRun comes from its
:class:`RunView` (the latest body the watch delivered, or this tracker's own last status
write, whichever is newer), the Deployment and Flow from kopf's indexes through
:attr:`Lifecycle.lookup`. What still goes to the API server, and why:

* the pod (``GET``), whose status is what the step is about;
* sibling runs (``LIST``) when admitting a run under a concurrency limit: another
  tracker's status write a moment ago must count, and the watch may not have shown it;
* the Deployment's pods (``LIST``, by label) at the same moment: a run that has a pod
  holds its slot even if its status does not say so yet (an operator killed between
  the pod create and the status write, see :mod:`.concurrency`), and after a restart
  the pod watch may not have delivered that pod when the first admission is decided;
* a Deployment or Flow the index does not have (``GET``): the FlowRun's watch can
  deliver a run before the Deployment's watch delivers its Deployment (``kubectl
  apply -f dir/``), and failing the run for good as ``DeploymentNotFound`` must rest on
  the API server's answer, not on an index that has not caught up;
* the FlowRun itself after a ``409 Conflict`` (below), or when no body is known.

Exactly-once transitions. Every status patch carries ``metadata.resourceVersion`` of the
body the decision was made from, so the API server applies it only if the run has not
changed since (a user's ``spec.cancel``, another replica during a rollout overlap, a body
replayed from an old watch event). On ``409`` the tracker reads the run and decides
again. Hence a transition, and the metrics it records (``observe_run_finished``, crash,
queue wait), is counted by the one process whose patch moved the run, once; a terminal
run is never tracked again (an operator restart skips it, a replayed event finds the
terminal status in the :class:`RunView`). The price is the other side of exactly-once:
an operator that dies between its terminal patch and its metric update loses that one
count (a counter restarts from zero with the process anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
from headwater import contract

from headwater_operator import kube, metrics, reasons
from headwater_operator.api import (
    Deployment,
    Flow,
    FlowRun,
    FlowRunPhase,
    InvalidResourceError,
    parse_resource,
)
from headwater_operator.flowruns.concurrency import (
    WAITING_PHASES,
    SlotVerdict,
    pod_owner_uids,
    scheduled_time,
    slot_verdict,
)
from headwater_operator.flowruns.machine import (
    NOT_STARTED,
    Decision,
    Event,
    Facts,
    pod_creation_failed,
    status_refused_event,
    status_rejected,
)
from headwater_operator.flowruns.machine import decide as decide_next
from headwater_operator.flowruns.podfacts import PodFacts, gone_pod_facts, pod_facts
from headwater_operator.flowruns.render import PodOverridesError, pod_name, render_pod
from headwater_operator.flowruns.settings import (
    DEFAULT_CONFIG_ERROR_GRACE,
    RunSettings,
    parameter_errors,
    resolve_settings,
)
from headwater_operator.labels import selector

log = logging.getLogger(__name__)

RESYNC_SECONDS = 300.0
"""Longest sleep of a tracker without any event: a safety net, not the mechanism."""
ERROR_BACKOFF_SECONDS = 5.0
Key = tuple[str, str]
Clock = Callable[[], datetime]
JsonObject = dict[str, Any]
Lookup = Callable[[kube.Resource, str, str], JsonObject | None]
"""``lookup(resource, namespace, name)``: an object's body from memory, or None if unknown."""


def no_lookup(resource: kube.Resource, namespace: str, name: str) -> JsonObject | None:
    """The lookup of a :class:`Lifecycle` not bound to kopf's indexes: every read is a GET."""
    del resource, namespace, name
    return None


def utcnow() -> datetime:
    """The real clock; tests of pure code pass their own instants instead."""
    return datetime.now(UTC)


@dataclass
class Wakeups:
    """Per-process doorbells: watch handlers ring, the run's tracker wakes up."""

    _events: dict[Key, asyncio.Event] = field(default_factory=dict)
    _by_deployment: dict[Key, set[Key]] = field(default_factory=lambda: defaultdict(set))
    _waiting: set[Key] = field(default_factory=set)
    """Runs that hold no concurrency slot yet (:data:`WAITING_PHASES`): only they care
    that another run of their Deployment ended."""

    def register(self, key: Key) -> asyncio.Event:
        """The doorbell of the tracker for FlowRun ``key`` (namespace, name)."""
        return self._events.setdefault(key, asyncio.Event())

    def join_deployment(self, key: Key, deployment: str) -> None:
        """Let events of ``deployment`` (and the end of its runs) wake this tracker."""
        if deployment:
            self._by_deployment[(key[0], deployment)].add(key)

    def waiting(self, key: Key, waiting: bool) -> None:
        """Record whether run ``key`` still waits for a slot (see :meth:`slot_freed`)."""
        if waiting:
            self._waiting.add(key)
        else:
            self._waiting.discard(key)

    def unregister(self, key: Key) -> None:
        """Forget a tracker that has finished (its run ended, was deleted, or we stop).

        If the run held a slot (it was not waiting), the runs of its Deployment still
        waiting for one are woken: the slot is free now, and a deleted run says so only
        here.
        """
        self._events.pop(key, None)
        held_a_slot = key not in self._waiting
        self._waiting.discard(key)
        for (namespace, deployment), members in list(self._by_deployment.items()):
            if key in members:
                members.discard(key)
                if held_a_slot:
                    self.slot_freed(namespace, deployment)

    def wake(self, key: Key) -> None:
        """Wake the tracker of FlowRun ``key``, if one runs in this process."""
        event = self._events.get(key)
        if event is not None:
            event.set()

    def wake_deployment(self, namespace: str, deployment: str) -> None:
        """Wake every tracker of a run of ``deployment`` (its spec changed: paused, …)."""
        for key in list(self._by_deployment.get((namespace, deployment), ())):
            self.wake(key)

    def slot_freed(self, namespace: str, deployment: str) -> None:
        """A run of ``deployment`` ended: wake the trackers of its runs still waiting.

        Called when a slot-holding run's tracker finishes (:meth:`unregister`), right
        after it wrote the terminal phase (or found the run deleted).

        Not the ones holding a slot: a run's end changes nothing for them, and waking
        every active run of a busy Deployment at every run's end cost a pod read each
        (quadratic in its active runs; 10 pod reads a run at 40 runs a second).
        """
        members = self._by_deployment.get((namespace, deployment), ())
        for key in [key for key in members if key in self._waiting]:
            self.wake(key)


def _generation(body: Mapping[str, Any]) -> int:
    return int((body.get("metadata") or {}).get("generation") or 0)


def _resource_version(body: Mapping[str, Any]) -> str | None:
    value = (body.get("metadata") or {}).get("resourceVersion")
    return str(value) if value else None


def freshest(watched: JsonObject | None, written: JsonObject | None) -> JsonObject | None:
    """The newer of the watch's latest body and the body our own last write returned.

    The tracker is the only writer of a run's status, so its own write response is the
    freshest status until the watch catches up. Users change only the spec (and
    metadata), which bumps ``metadata.generation`` — the one version number that may be
    compared — so a watched body with a higher generation is newer in every field (our
    write came before the user's, or it would have failed its precondition). A newer
    body of equal generation (a label edit) is not recognised: the next status patch
    then fails its precondition and the tracker reads the run, so that costs one
    request, never a wrong transition.
    """
    if written is None:
        return watched
    if watched is not None and _generation(watched) > _generation(written):
        return watched
    return written


@dataclass
class RunView:
    """The freshest body of one FlowRun this process knows (see :func:`freshest`)."""

    watched: JsonObject | None = None
    """The latest body kopf's watch delivered."""
    written: JsonObject | None = None
    """The body our last status patch (or our last read) returned, until the watch shows it."""

    def saw(self, body: Mapping[str, Any]) -> None:
        """The watch delivered ``body`` (events arrive in the order the server wrote them)."""
        self.watched = dict(body)
        if self.written is not None and (
                _resource_version(body) == _resource_version(self.written)
                or _generation(body) > _generation(self.written)):
            self.written = None  # the watch has caught up with our write

    def wrote(self, body: Mapping[str, Any]) -> None:
        """Our patch (or GET) returned ``body``: nothing the watch delivered so far is newer."""
        self.written = dict(body)

    def current(self) -> JsonObject | None:
        """The body to decide from (None when nothing is known yet)."""
        return freshest(self.watched, self.written)


@dataclass
class Lifecycle:
    """Per-operator state of the FlowRun lifecycle (kept in kopf's ``memo``).

    Per operator instance rather than module-global, so an operator restarted inside
    one process (the api tests do that) starts with no stale doorbells or tasks.
    """

    client: kube.Kube
    clock: Clock = utcnow
    wakeups: Wakeups = field(default_factory=Wakeups)
    admission_locks: dict[Key, asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock))
    """Admission of runs of one Deployment with a concurrency limit is serialised so the
    limit holds (see :func:`_may_limit`)."""
    trackers: dict[Key, asyncio.Task[None]] = field(default_factory=dict)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    lookup: Lookup = no_lookup
    """Deployments and Flows from memory (kopf's indexes, bound by the handlers)."""
    views: dict[Key, RunView] = field(default_factory=dict)
    """Bodies of the runs that are not known to be terminal (memory grows with active runs)."""
    deployment_generations: dict[Key, int | None] = field(default_factory=dict)
    """Last seen ``metadata.generation`` per Deployment: only spec changes wake its runs."""
    pods_seen: dict[Key, dict[str, JsonObject]] = field(default_factory=dict)
    """The last body the pod watch delivered of each pod of a tracked run (by run, then
    pod name), including a ``DELETED`` event's: why a pod is gone when its tracker finds
    it missing (pod GC's ``DisruptionTarget`` of a lost node, see podfacts). Dropped when
    the run's tracker ends, so memory grows with active runs only."""
    config_error_grace: timedelta = DEFAULT_CONFIG_ERROR_GRACE
    """How long a run waits for a missing Secret/ConfigMap (the operator's setting)."""

    def view(self, key: Key) -> RunView:
        """The :class:`RunView` of FlowRun ``key``, created empty if absent."""
        return self.views.setdefault(key, RunView())

    def saw(self, key: Key, body: Mapping[str, Any]) -> None:
        """Record a watch event's body of a non-terminal FlowRun ``key``."""
        self.view(key).saw(body)

    def forget(self, key: Key) -> None:
        """The watch showed ``key`` terminal or deleted: no stale event of it can follow."""
        self.views.pop(key, None)

    def saw_pod(self, key: Key, body: Mapping[str, Any]) -> None:
        """Record a watch event's body of a pod of FlowRun ``key``."""
        name = str((body.get("metadata") or {}).get("name") or "")
        self.pods_seen.setdefault(key, {})[name] = dict(body)

    def last_pod(self, key: Key, name: str) -> JsonObject | None:
        """The last body the watch delivered of pod ``name`` of FlowRun ``key``."""
        return self.pods_seen.get(key, {}).get(name)

    def ensure_tracker(self, namespace: str, name: str) -> None:
        """Start the tracker of FlowRun ``namespace/name`` unless one is running."""
        key = (namespace, name)
        task = self.trackers.get(key)
        if task is not None and not task.done():
            self.wakeups.wake(key)
            return
        self.trackers[key] = asyncio.create_task(
            track(self, namespace, name), name=f"flowrun-tracker:{namespace}/{name}")

    async def stop(self) -> None:
        """Stop every tracker (operator shutdown); the runs resume on the next start."""
        self.stopped.set()
        tasks = [task for task in self.trackers.values() if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.trackers.clear()


@dataclass
class Resolved:
    """The run's configuration, or why it could not be resolved."""

    settings: RunSettings | None = None
    error: tuple[str, str] | None = None


async def _get_or_none(client: kube.Kube, resource: kube.Resource, name: str,
                       namespace: str) -> dict[str, Any] | None:
    try:
        return await client.get(resource, name, namespace=namespace)
    except kube.NotFound:
        return None


async def _lookup_or_get(client: kube.Kube, lookup: Lookup, resource: kube.Resource,
                         name: str, namespace: str) -> JsonObject | None:
    # An index miss is confirmed with a GET: the index may not have caught up with an
    # object created a moment ago, and "not found" ends a run for good.
    body = lookup(resource, namespace, name)
    if body is not None:
        return body
    return await _get_or_none(client, resource, name, namespace)


async def resolve(client: kube.Kube, run: FlowRun, lookup: Lookup = no_lookup, *,
                  config_error_grace: timedelta = DEFAULT_CONFIG_ERROR_GRACE) -> Resolved:
    """Find the run's Deployment (if any) and Flow and combine them into settings."""
    namespace = run.metadata.namespace or ""
    deployment: Deployment | None = None
    try:
        if run.spec.deployment_ref is not None:
            ref = run.spec.deployment_ref.name
            body = await _lookup_or_get(client, lookup, kube.DEPLOYMENTS, ref, namespace)
            if body is None:
                return Resolved(error=(reasons.DEPLOYMENT_NOT_FOUND,
                                       f"Deployment {namespace}/{ref} (spec.deploymentRef) does "
                                       "not exist; create it or fix the name, then create a new "
                                       "FlowRun"))
            parsed = parse_resource(body)
            assert isinstance(parsed, Deployment)
            deployment = parsed
            flow_name = deployment.spec.flow_ref.name
            where = f"Deployment {ref} spec.flowRef"
        else:
            assert run.spec.flow_ref is not None
            flow_name = run.spec.flow_ref.name
            where = "spec.flowRef"
        flow_body = await _lookup_or_get(client, lookup, kube.FLOWS, flow_name, namespace)
        if flow_body is None:
            return Resolved(error=(reasons.FLOW_NOT_FOUND,
                                   f"Flow {namespace}/{flow_name} ({where}) does not exist; "
                                   "create it or fix the reference"))
        flow = parse_resource(flow_body)
        assert isinstance(flow, Flow)
    except InvalidResourceError as exc:
        return Resolved(error=(reasons.INVALID_SPEC, f"{exc}"))
    return Resolved(settings=resolve_settings(flow, deployment, run,
                                              config_error_grace=config_error_grace))


async def _siblings(client: kube.Kube, run: FlowRun, deployment: str) -> list[FlowRun]:
    # A LIST, not the index: a run another tracker admitted a moment ago must hold its
    # slot although the watch may not have delivered its new status yet.
    bodies = await client.list(kube.FLOWRUNS, namespace=run.metadata.namespace)
    runs = []
    for body in bodies:
        ref = (body.get("spec") or {}).get("deploymentRef") or {}
        if ref.get("name") == deployment:
            runs.append(FlowRun.model_validate(body))
    return runs


async def _runs_with_pods(client: kube.Kube, namespace: str, deployment: str) -> frozenset[str]:
    """The uids of the runs of ``deployment`` that have a pod (see :mod:`.concurrency`).

    A LIST, not the pod watch's memory: right after a restart the watch may not have
    delivered the pod a killed operator created, and that pod is the one that counts.
    Every pod of a run with a Deployment carries the Deployment's label (``render``).
    """
    pods = await client.list(kube.PODS, namespace=namespace, label_selector={
        contract.LABEL_MANAGED_BY: contract.MANAGED_BY_VALUE,
        **selector(contract.LABEL_DEPLOYMENT, deployment)})
    return pod_owner_uids(pods)


async def gather_facts(client: kube.Kube, run: FlowRun, now: datetime,
                       lookup: Lookup = no_lookup, *,
                       config_error_grace: timedelta = DEFAULT_CONFIG_ERROR_GRACE,
                       last_pod: Callable[[str], JsonObject | None] = lambda name: None,
                       ) -> Facts:
    """Everything :func:`decide` needs about ``run`` at ``now``.

    ``last_pod(name)`` is the last body the watch delivered of a pod: when the pod is
    gone (404) it still tells why (see :func:`~.podfacts.gone_pod_facts`).
    """
    resolved = await resolve(client, run, lookup, config_error_grace=config_error_grace)
    phase = run.status.phase
    pod: PodFacts | None = None
    if run.status.pod_name and phase not in NOT_STARTED:
        body = await _get_or_none(client, kube.PODS, run.status.pod_name,
                                  run.metadata.namespace or "")
        pod = pod_facts(body) if body is not None else gone_pod_facts(
            last_pod(run.status.pod_name))
    errors: tuple[str, ...] = ()
    slot = SlotVerdict.ADMIT
    settings = resolved.settings
    if settings is not None and phase in NOT_STARTED:
        errors = tuple(parameter_errors(settings.parameters,
                                        settings.flow.spec.parameters_schema))
        if settings.concurrency is not None:
            siblings = await _siblings(client, run, settings.deployment_name)
            with_pods = await _runs_with_pods(client, run.metadata.namespace or "",
                                              settings.deployment_name)
            slot = slot_verdict(run, settings.concurrency, siblings, now,
                                with_pods=with_pods)
    return Facts(now=now, settings=settings, setup_error=resolved.error,
                 parameter_errors=errors, pod=pod, slot=slot)


async def _ensure_pod(client: kube.Kube, run: FlowRun, settings: RunSettings,
                      attempt: int) -> tuple[str, str | None]:
    """Create the attempt's pod; returns (event reason, error message or None)."""
    due = run.status.scheduled_time or scheduled_time(run) or utcnow()
    try:
        manifest = render_pod(run, settings, attempt, due)
    except PodOverridesError as exc:
        # The Deployment's own configuration is wrong: retrying cannot help.
        return reasons.POD_CREATION_FAILED, str(exc)
    namespace = run.metadata.namespace or ""
    try:
        await client.create(kube.PODS, manifest, namespace=namespace)
    except kube.AlreadyExists:
        existing = await client.get(kube.PODS, manifest["metadata"]["name"], namespace=namespace)
        owners = existing.get("metadata", {}).get("ownerReferences") or []
        if not any(owner.get("uid") == run.metadata.uid for owner in owners):
            # A leftover of a deleted FlowRun with the same name: garbage collection will
            # remove it; until then this attempt cannot start under that name.
            raise kopf.TemporaryError(
                f"pod {manifest['metadata']['name']} exists but belongs to another FlowRun; "
                "waiting for it to be garbage-collected", delay=ERROR_BACKOFF_SECONDS) from None
        return reasons.POD_ADOPTED, None
    except kube.KubeError as exc:
        if not kube.is_final_rejection(exc.status, exc.message):
            raise  # transient (quota, 5xx): the tracker retries after a back-off
        return reasons.POD_CREATION_FAILED, str(exc)
    return reasons.POD_CREATED, None


def _emit(body: Mapping[str, Any], events: list[Event]) -> None:
    for event in events:
        kopf.event(cast("kopf.Body", body), type=event.type, reason=event.reason,
                   message=reasons.event_message(event.message))


def _observe_metrics(run: FlowRun, settings: RunSettings | None, decision: Decision,
                     now: datetime) -> None:
    # Called only after this process's status patch, made with the resourceVersion the
    # decision saw, succeeded: this process moved the run, so it counts, once.
    namespace = run.metadata.namespace or ""
    deployment = settings.deployment_name if settings else (
        run.spec.deployment_ref.name if run.spec.deployment_ref else "")
    if decision.crash_reason:
        metrics.observe_crash(namespace, deployment, decision.crash_reason)
    if decision.became_late:
        metrics.observe_late(namespace, deployment)
    if decision.create_pod == 1:
        due = run.status.scheduled_time or scheduled_time(run) or now
        metrics.observe_queue_wait(namespace, deployment, (now - due).total_seconds())
    phase = decision.phase
    if phase is None:
        return
    metrics.set_run_phase(run.metadata.uid or "", namespace, deployment,
                          None if phase.terminal else phase.value)
    if phase.terminal:
        metrics.observe_run_finished(namespace, deployment, phase.value,
                                     decision.status.get("durationSeconds"))


async def apply(lifecycle: Lifecycle, body: Mapping[str, Any], run: FlowRun, facts: Facts,
                decision: Decision) -> Decision:
    """Carry out ``decision``: pod first, then status, then Events and metrics.

    The pod is created *before* the status names it: if the operator dies in between,
    the next tracker recreates the same name, gets 409 and adopts it.
    """
    client = lifecycle.client
    namespace = run.metadata.namespace or ""
    name = run.metadata.name or ""
    attempt = decision.create_pod
    if attempt is not None and facts.settings is not None:
        reason, error = await _ensure_pod(client, run, facts.settings, attempt)
        if error is not None:
            decision = pod_creation_failed(run, attempt, error, facts.now)
        elif reason == reasons.POD_ADOPTED:
            decision.events = [Event("Normal", reasons.POD_ADOPTED,
                                     f"attempt {attempt}: pod {pod_name(name, attempt)} "
                                     "already existed and was adopted")]
    if decision.delete_pod:
        with contextlib.suppress(kube.NotFound):
            await client.delete(kube.PODS, decision.delete_pod, namespace=namespace,
                                grace_period_seconds=decision.delete_grace_seconds)
    if decision.status:
        try:
            written = await _patch_status(client, run, decision.status)
        except kube.Invalid as exc:
            # Refused for what it says, not for when: the same patch would be refused on
            # every retry. End the run with the server's message instead of looping.
            log.warning("FlowRun %s/%s: the API server refused its status update: %s",
                        namespace, name, exc.message)
            decision = status_rejected(run, decision, exc.message, facts.now)
            if decision.delete_pod:
                with contextlib.suppress(kube.NotFound):
                    await client.delete(kube.PODS, decision.delete_pod, namespace=namespace)
            try:
                written = await _patch_status(client, run, decision.status)
            except kube.Invalid as again:
                raise StatusRefused(again.message) from again
        lifecycle.view((namespace, name)).wrote(written)
        _observe_metrics(run, facts.settings, decision, facts.now)
    _emit(body, decision.events)
    return decision


class StatusRefused(Exception):
    """Even the terminal ``StatusRejected`` status was refused (422): the run's stored
    status itself is invalid, and nothing this operator writes can move it."""


async def _patch_status(client: kube.Kube, run: FlowRun, status: JsonObject) -> JsonObject:
    """Merge-patch the run's status; the resourceVersion makes it 409 if the run changed
    since the body the decision was made from."""
    patch: JsonObject = {"status": status}
    if run.metadata.resource_version:
        patch["metadata"] = {"resourceVersion": run.metadata.resource_version}
    return await client.patch_status(kube.FLOWRUNS, run.metadata.name or "", patch,
                                     namespace=run.metadata.namespace or "")


async def reconcile_once(lifecycle: Lifecycle, namespace: str,
                         name: str) -> tuple[FlowRun | None, Decision]:
    """One full step for FlowRun ``namespace/name``; returns the run as read and the decision.

    Returns ``(None, Decision())`` when the FlowRun no longer exists.
    """
    body = await current_body(lifecycle, namespace, name)
    if body is None:
        return None, Decision()
    try:
        run = FlowRun.model_validate(body)
    except ValueError as exc:
        log.warning("FlowRun %s/%s cannot be parsed: %s", namespace, name, exc)
        return None, Decision()
    if run.status.phase is not None and run.status.phase.terminal:
        return run, Decision()
    deployment = run.spec.deployment_ref.name if run.spec.deployment_ref else ""
    lifecycle.wakeups.join_deployment((namespace, name), deployment)
    if run.status.phase in NOT_STARTED and deployment and _may_limit(lifecycle, run):
        async with lifecycle.admission_locks[(namespace, deployment)]:
            facts = await _gather(lifecycle, run)
            decision = await apply(lifecycle, body, run, facts, decide_next(run, facts))
    else:
        facts = await _gather(lifecycle, run)
        decision = await apply(lifecycle, body, run, facts, decide_next(run, facts))
    lifecycle.wakeups.waiting((namespace, name), (decision.phase or run.status.phase)
                              in WAITING_PHASES)
    return run, decision


async def _gather(lifecycle: Lifecycle, run: FlowRun) -> Facts:
    key = (run.metadata.namespace or "", run.metadata.name or "")
    return await gather_facts(
        lifecycle.client, run, lifecycle.clock(), lifecycle.lookup,
        config_error_grace=lifecycle.config_error_grace,
        last_pod=lambda name: lifecycle.last_pod(key, name))


def _may_limit(lifecycle: Lifecycle, run: FlowRun) -> bool:
    """Whether admitting ``run`` must hold its Deployment's admission lock.

    Only a concurrency limit needs it (the slot count must not race another admission).
    Without one, the admissions of a busy Deployment would each wait for the others' pod
    create and status patch for nothing. A Deployment not in memory takes the lock, to
    be safe.
    """
    ref = run.spec.deployment_ref
    if ref is None:
        return False
    body = lifecycle.lookup(kube.DEPLOYMENTS, run.metadata.namespace or "", ref.name)
    return body is None or (body.get("spec") or {}).get("concurrency") is not None


async def current_body(lifecycle: Lifecycle, namespace: str, name: str) -> JsonObject | None:
    """The freshest known body of FlowRun ``namespace/name``; read only when none is known."""
    view = lifecycle.views.get((namespace, name))
    body = view.current() if view is not None else None
    if body is None:
        body = await refresh(lifecycle, namespace, name)
    return body


async def refresh(lifecycle: Lifecycle, namespace: str, name: str) -> JsonObject | None:
    """Read FlowRun ``namespace/name`` from the API server (None: it no longer exists)."""
    body = await _get_or_none(lifecycle.client, kube.FLOWRUNS, name, namespace)
    if body is not None and is_active(body.get("status") or {}):
        # Not kept when terminal: the watch already showed that (or will not again),
        # so nothing would ever drop it; the tracker stops anyway.
        lifecycle.view((namespace, name)).wrote(body)
    return body


async def _sleep(doorbell: asyncio.Event, stopped: Awaitable[Any], seconds: float) -> None:
    waiter = asyncio.ensure_future(doorbell.wait())
    stopper = asyncio.ensure_future(stopped)
    try:
        await asyncio.wait({waiter, stopper}, timeout=max(seconds, 0.0),
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        stopper.cancel()


async def track(lifecycle: Lifecycle, namespace: str, name: str) -> None:
    """Drive FlowRun ``namespace/name`` until it is terminal, deleted, or we are stopped."""
    key = (namespace, name)
    stopped, clock = lifecycle.stopped, lifecycle.clock
    doorbell = lifecycle.wakeups.register(key)
    try:
        while not stopped.is_set():
            doorbell.clear()
            try:
                run, decision = await reconcile_once(lifecycle, namespace, name)
            except kube.Conflict:
                # The run changed after the body we decided from (a cancel request, a
                # replayed event's old body): forget that body so the next step reads
                # the run, and decide again at once.
                lifecycle.forget(key)
                continue
            except StatusRefused as exc:
                # Retrying cannot help; say so where users look, and stop following it
                # (an operator restart tries once more).
                log.error("FlowRun %s/%s: the API server refuses every status update, even "
                          "the one that ends the run: %s", namespace, name, exc)
                metrics.observe_reconcile_error("FlowRun")
                body = lifecycle.view(key).current()
                if body is not None:
                    _emit(body, [status_refused_event(str(exc))])
                return
            except (kube.KubeError, kopf.TemporaryError) as exc:
                if isinstance(exc, kube.KubeError):
                    # Read the run afresh after a failed request: it may be gone (404 on
                    # the status patch) or changed in a way the watch has not shown yet.
                    lifecycle.forget(key)
                log.warning("FlowRun %s/%s: reconcile failed, retrying: %s", namespace, name, exc)
                metrics.observe_reconcile_error("FlowRun")
                await _sleep(doorbell, stopped.wait(), ERROR_BACKOFF_SECONDS)
                continue
            if run is None:
                lifecycle.forget(key)
                return
            if run.status.phase is not None and run.status.phase.terminal:
                return  # the view keeps the terminal body until the watch shows it
            phase = decision.phase
            if phase is not None and phase.terminal:
                return
            if decision.status or decision.create_pod is not None:
                continue  # something changed: look again at once, the next step may follow
            delay = RESYNC_SECONDS
            if decision.wake_at is not None:
                delay = min(delay, (decision.wake_at - clock()).total_seconds())
            await _sleep(doorbell, stopped.wait(), delay)
    finally:
        lifecycle.wakeups.unregister(key)
        if lifecycle.trackers.get(key) is asyncio.current_task():
            del lifecycle.trackers[key]
            lifecycle.pods_seen.pop(key, None)


def is_active(status: Mapping[str, Any]) -> bool:
    """kopf ``when=`` filter: a tracker runs only while the FlowRun is not terminal."""
    phase = status.get("phase")
    return phase is None or not FlowRunPhase(phase).terminal
