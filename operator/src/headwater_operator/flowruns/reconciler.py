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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from headwater_operator import kube, metrics, reasons
from headwater_operator.api import (
    Deployment,
    Flow,
    FlowRun,
    FlowRunPhase,
    InvalidResourceError,
    parse_resource,
)
from headwater_operator.flowruns.concurrency import SlotVerdict, scheduled_time, slot_verdict
from headwater_operator.flowruns.machine import (
    NOT_STARTED,
    Decision,
    Event,
    Facts,
    pod_creation_failed,
)
from headwater_operator.flowruns.machine import decide as decide_next
from headwater_operator.flowruns.podfacts import PodFacts, pod_facts
from headwater_operator.flowruns.render import pod_name, render_pod
from headwater_operator.flowruns.retry import pod_rejection_is_final
from headwater_operator.flowruns.settings import RunSettings, parameter_errors, resolve_settings

log = logging.getLogger(__name__)

RESYNC_SECONDS = 300.0
"""Longest sleep of a tracker without any event: a safety net, not the mechanism."""
ERROR_BACKOFF_SECONDS = 5.0
Key = tuple[str, str]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The real clock; tests of pure code pass their own instants instead."""
    return datetime.now(UTC)


@dataclass
class Wakeups:
    """Per-process doorbells: watch handlers ring, the run's tracker wakes up."""

    _events: dict[Key, asyncio.Event] = field(default_factory=dict)
    _by_deployment: dict[Key, set[Key]] = field(default_factory=lambda: defaultdict(set))

    def register(self, key: Key) -> asyncio.Event:
        """The doorbell of the tracker for FlowRun ``key`` (namespace, name)."""
        return self._events.setdefault(key, asyncio.Event())

    def join_deployment(self, key: Key, deployment: str) -> None:
        """Let events of ``deployment`` (and the end of its runs) wake this tracker."""
        if deployment:
            self._by_deployment[(key[0], deployment)].add(key)

    def unregister(self, key: Key) -> None:
        """Forget a tracker that has finished."""
        self._events.pop(key, None)
        for members in self._by_deployment.values():
            members.discard(key)

    def wake(self, key: Key) -> None:
        """Wake the tracker of FlowRun ``key``, if one runs in this process."""
        event = self._events.get(key)
        if event is not None:
            event.set()

    def wake_deployment(self, namespace: str, deployment: str) -> None:
        """Wake every tracker of a run of ``deployment`` (a slot freed, paused changed)."""
        for key in list(self._by_deployment.get((namespace, deployment), ())):
            self.wake(key)


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
    """Admission of runs of one Deployment is serialised so a concurrency limit holds."""
    trackers: dict[Key, asyncio.Task[None]] = field(default_factory=dict)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

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


async def resolve(client: kube.Kube, run: FlowRun) -> Resolved:
    """Read the run's Deployment (if any) and Flow and combine them into settings."""
    namespace = run.metadata.namespace or ""
    deployment: Deployment | None = None
    try:
        if run.spec.deployment_ref is not None:
            ref = run.spec.deployment_ref.name
            body = await _get_or_none(client, kube.DEPLOYMENTS, ref, namespace)
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
        flow_body = await _get_or_none(client, kube.FLOWS, flow_name, namespace)
        if flow_body is None:
            return Resolved(error=(reasons.FLOW_NOT_FOUND,
                                   f"Flow {namespace}/{flow_name} ({where}) does not exist; "
                                   "create it or fix the reference"))
        flow = parse_resource(flow_body)
        assert isinstance(flow, Flow)
    except InvalidResourceError as exc:
        return Resolved(error=(reasons.INVALID_SPEC, f"{exc}"))
    return Resolved(settings=resolve_settings(flow, deployment, run))


async def _siblings(client: kube.Kube, run: FlowRun, deployment: str) -> list[FlowRun]:
    bodies = await client.list(kube.FLOWRUNS, namespace=run.metadata.namespace)
    runs = []
    for body in bodies:
        ref = (body.get("spec") or {}).get("deploymentRef") or {}
        if ref.get("name") == deployment:
            runs.append(FlowRun.model_validate(body))
    return runs


async def gather_facts(client: kube.Kube, run: FlowRun, now: datetime) -> Facts:
    """Everything :func:`decide` needs about ``run`` at ``now``."""
    resolved = await resolve(client, run)
    phase = run.status.phase
    pod: PodFacts | None = None
    if run.status.pod_name and phase not in NOT_STARTED:
        body = await _get_or_none(client, kube.PODS, run.status.pod_name,
                                  run.metadata.namespace or "")
        pod = pod_facts(body)
    errors: tuple[str, ...] = ()
    slot = SlotVerdict.ADMIT
    settings = resolved.settings
    if settings is not None and phase in NOT_STARTED:
        errors = tuple(parameter_errors(settings.parameters,
                                        settings.flow.spec.parameters_schema))
        if settings.concurrency is not None:
            siblings = await _siblings(client, run, settings.deployment_name)
            slot = slot_verdict(run, settings.concurrency, siblings, now)
    return Facts(now=now, settings=settings, setup_error=resolved.error,
                 parameter_errors=errors, pod=pod, slot=slot)


async def _ensure_pod(client: kube.Kube, run: FlowRun, settings: RunSettings,
                      attempt: int) -> tuple[str, str | None]:
    """Create the attempt's pod; returns (event reason, error message or None)."""
    due = run.status.scheduled_time or scheduled_time(run) or utcnow()
    manifest = render_pod(run, settings, attempt, due)
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
        if not pod_rejection_is_final(exc.status, exc.message):
            raise  # transient (quota, 5xx): the tracker retries after a back-off
        return reasons.POD_CREATION_FAILED, str(exc)
    return reasons.POD_CREATED, None


def _emit(body: Mapping[str, Any], events: list[Event]) -> None:
    for event in events:
        kopf.event(cast("kopf.Body", body), type=event.type, reason=event.reason,
                   message=event.message[:1024])


def _observe_metrics(run: FlowRun, settings: RunSettings | None, decision: Decision,
                     now: datetime) -> None:
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
        await client.patch_status(kube.FLOWRUNS, name, {"status": decision.status},
                                  namespace=namespace)
    _emit(body, decision.events)
    _observe_metrics(run, facts.settings, decision, facts.now)
    phase = decision.phase
    if phase is not None and phase.terminal and facts.settings is not None:
        lifecycle.wakeups.wake_deployment(namespace, facts.settings.deployment_name)
    return decision


async def reconcile_once(lifecycle: Lifecycle, namespace: str,
                         name: str) -> tuple[FlowRun | None, Decision]:
    """One full step for FlowRun ``namespace/name``; returns the run as read and the decision.

    Returns ``(None, Decision())`` when the FlowRun no longer exists.
    """
    client, clock = lifecycle.client, lifecycle.clock
    body = await _get_or_none(client, kube.FLOWRUNS, name, namespace)
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
    if run.status.phase in NOT_STARTED and deployment:
        async with lifecycle.admission_locks[(namespace, deployment)]:
            facts = await gather_facts(client, run, clock())
            decision = await apply(lifecycle, body, run, facts, decide_next(run, facts))
    else:
        facts = await gather_facts(client, run, clock())
        decision = await apply(lifecycle, body, run, facts, decide_next(run, facts))
    return run, decision


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
            except (kube.KubeError, kopf.TemporaryError) as exc:
                log.warning("FlowRun %s/%s: reconcile failed, retrying: %s", namespace, name, exc)
                metrics.observe_reconcile_error("FlowRun")
                await _sleep(doorbell, stopped.wait(), ERROR_BACKOFF_SECONDS)
                continue
            if run is None or (run.status.phase is not None and run.status.phase.terminal):
                return
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


def is_active(status: Mapping[str, Any]) -> bool:
    """kopf ``when=`` filter: a tracker runs only while the FlowRun is not terminal."""
    phase = status.get("phase")
    return phase is None or not FlowRunPhase(phase).terminal
