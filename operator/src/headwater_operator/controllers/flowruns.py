"""The FlowRun controller: from a FlowRun's watch event to its pod, and on to a final phase.

Follow one run through this module, top to bottom:

1. **Watch → wake** (:meth:`FlowRunController.on_flowrun`). The shared FlowRun informer
   delivers the new run. Its body is kept in the run's :class:`RunView`, the run becomes
   *tracked*, and its key ``(namespace, name)`` is woken on the controller's work queue
   (:class:`~headwater_operator.runtime.Controller`). Pod events of a tracked run that
   change the pod's facts (:meth:`~FlowRunController.on_pod`) and spec changes of its
   Deployment
   (:meth:`~FlowRunController.on_deployment`) wake it too; a run's own status echoes
   do not (this controller wrote them). A run held for a missing Block or Secret is
   woken by that Block's or Secret's events (:meth:`~FlowRunController.on_block`,
   :meth:`~FlowRunController.on_secret`; Secrets are watched as metadata only).
2. **Reconcile** (:meth:`~FlowRunController.reconcile`, one worker per run at a time):
   read the freshest body (memory first: :class:`RunView`, which also keeps the body
   parsed and the settings resolved, by ``resourceVersion``), then **gather the facts**
   (:meth:`~FlowRunController.gather_facts`): the run's Deployment and Flow from the
   shared stores, the current attempt's pod from the pod watch
   (:meth:`~FlowRunController.attempt_pod`), and under a concurrency limit the sibling
   runs and their pods (two ``LIST``s). A run about to get a pod whose
   Deployment declares blocks or variables also gets them resolved
   (:meth:`~FlowRunController.resolve_inputs`): Blocks and Variables from the shared
   stores, and one ``GET`` per Secret a secret field names, of which only the key names
   are kept (:mod:`headwater_operator.flowruns.inputs`).
3. **Decide** with the pure state machine,
   :func:`~headwater_operator.flowruns.machine.decide` — every transition of
   ``docs/flowrun-lifecycle.md`` is there, and nowhere else.
4. **Apply** (:meth:`~FlowRunController.apply`): create the attempt's pod *first*, then
   patch the status that names it, then post Events and report metrics.
5. **Requeue**: at once if something changed (the next step may follow), else at the
   decision's next deadline (scheduled time, pending timeout, retry time, cancel
   deadline, Late threshold) or after :data:`RESYNC_SECONDS` as a safety net. A run that
   is terminal or gone is *untracked*; if it held a concurrency slot, the runs of its
   Deployment still waiting for one are woken.

What it must respect:

* **Exactly-once transitions.** Every status patch carries the ``metadata.resourceVersion``
  of the body the decision was made from, so the API server applies it only if the run
  has not changed since (a user's ``spec.cancel``, another leader during a hand-over, a
  body replayed from an old watch event). On ``409`` the run is read again and decided
  again. A transition, and the metrics it reports, is therefore counted by the one
  process whose patch moved the run, once (an operator killed between its terminal
  patch and its metric update loses that one count).
* **Idempotent pods.** The pod of attempt *n* has a deterministic name, so after a
  restart the same name is created again and the API server's ``409`` means "already
  there": the pod is adopted (once its owner is checked to be this FlowRun), and no
  attempt ever has two pods. Because the pod comes before the status, a run may have a
  pod its status does not name yet; it holds its concurrency slot all the same
  (:mod:`headwater_operator.flowruns.concurrency`).
* **Reads.** Nothing is read that memory has: the run from its :class:`RunView` (the
  latest watched body, or this controller's own last write, whichever is newer), its
  Deployment and Flow from the shared stores (a miss is confirmed with a ``GET``: the
  FlowRun's watch can deliver a run before the Deployment's watch delivers its
  Deployment, and "not found" fails a run for good), the attempt's pod from the pod
  watch (or our create's answer until the watch shows it; a pod the watch does not show,
  or says is gone, is read: "gone" too ends a run for good). Admission under a
  concurrency limit lists the siblings and their pods from the API server, because
  another worker's admission a moment ago must count although the watch may not have
  shown it.
* **Memory** grows with active runs only: views, pods seen and memberships are dropped
  when a run is untracked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from headwater import contract

from headwater_operator import kube, reasons
from headwater_operator.api import (
    TERMINAL_PHASES,
    Block,
    Deployment,
    Flow,
    FlowRun,
    FlowRunPhase,
    InvalidResourceError,
    Resource,
    parse_resource,
    variable_object_name,
)
from headwater_operator.clock import Clock
from headwater_operator.controllers.signals import NULL_OBSERVER, EventRecorder, Observer
from headwater_operator.flowruns import inputs as run_inputs
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
    decide,
    pod_creation_failed,
    status_refused_event,
    status_rejected,
)
from headwater_operator.flowruns.podfacts import (
    PodFacts,
    gone_pod_facts,
    pod_facts,
    summary_validator,
)
from headwater_operator.flowruns.render import PodOverridesError, pod_name, render_pod
from headwater_operator.flowruns.settings import (
    DEFAULT_CONFIG_ERROR_GRACE,
    RunSettings,
    parameter_errors,
    resolve_settings,
)
from headwater_operator.informer import InformerFactory, Store
from headwater_operator.labels import selector
from headwater_operator.runtime import AGAIN, DONE, Controller, Result

log = logging.getLogger(__name__)

KIND = "FlowRun"
RESYNC_SECONDS = 300.0
"""Longest wait of a tracked run without any event: a safety net, not the mechanism."""
DEFAULT_WORKERS = 32
"""Runs reconciled at once: each step mostly waits on one or two API requests."""
POD_SELECTOR = f"{contract.LABEL_MANAGED_BY}={contract.MANAGED_BY_VALUE}"
"""Only Headwater's pods are watched (server-side): memory and traffic do not grow with
the cluster's other pods."""

Key = tuple[str, str]
JsonObject = dict[str, Any]


# --- the freshest body of a run ---------------------------------------------------------
def _generation(body: Mapping[str, Any]) -> int:
    return int((body.get("metadata") or {}).get("generation") or 0)


def _resource_version(body: Mapping[str, Any]) -> str | None:
    value = (body.get("metadata") or {}).get("resourceVersion")
    return str(value) if value else None


def freshest(watched: JsonObject | None, written: JsonObject | None) -> JsonObject | None:
    """The newer of the watch's latest body and the body our own last write returned.

    This controller is the only writer of a run's status, so its own write response is
    the freshest status until the watch catches up. Users change only the spec (and
    metadata), which bumps ``metadata.generation`` — the one version number that may be
    compared — so a watched body with a higher generation is newer in every field (our
    write came before the user's, or it would have failed its precondition). A newer
    body of equal generation (a label edit) is not recognised: the next status patch
    then fails its precondition and the run is read, so that costs one request, never a
    wrong transition.
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
    """The latest body the watch delivered."""
    written: JsonObject | None = None
    """The body our last status patch (or our last read) returned, until the watch shows it."""
    parsed: tuple[str, FlowRun] | None = None
    """The last body a step parsed, by its ``resourceVersion`` (one version is one body,
    so the parse is valid for it; a step woken by a pod event decides from the same body
    again)."""
    resolved: tuple[tuple[str, str, str], RunSettings] | None = None
    """The settings resolved for the run, by the versions they were resolved from: the
    run's spec (uid and ``generation``: settings read only the spec, so a status write
    keeps them), its Deployment's and its Flow's ``resourceVersion``."""

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

    def parse(self, body: Mapping[str, Any]) -> FlowRun:
        """``body`` as a :class:`FlowRun`, parsed again only for another version."""
        version = _resource_version(body)
        if version is not None and self.parsed is not None and self.parsed[0] == version:
            return self.parsed[1]
        run = FlowRun.model_validate(body)
        if version is not None:
            self.parsed = (version, run)
        return run


@dataclass(frozen=True)
class SeenPod:
    """The latest body known of one pod of a tracked run, and its facts."""

    body: JsonObject
    watched: bool
    """Delivered by the pod watch (else: the answer of our create or read)."""
    gone: bool
    """The watch delivered its ``DELETED`` event."""
    facts: PodFacts = field(init=False, compare=False)
    """:func:`pod_facts` of ``body``: all a step decides from (so a pod event that leaves
    them equal changes no decision)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "facts", pod_facts(self.body))


def is_active(status: Mapping[str, Any]) -> bool:
    """Whether a run with this ``status`` is not terminal (it needs reconciling)."""
    return status.get("phase") not in TERMINAL_PHASES


def owning_flowrun(meta: Mapping[str, Any]) -> str | None:
    """Name of the FlowRun that controls a pod, from its owner references."""
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == KIND and owner.get("apiVersion") == contract.API_VERSION:
            name = owner.get("name")
            return str(name) if name else None
    return None


def _cancel_pending(spec: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    return bool(spec.get("cancel")) and status.get("phase") != FlowRunPhase.CANCELLING


# --- errors a step can end with -------------------------------------------------------------
class StatusRefused(Exception):
    """Even the terminal ``StatusRejected`` status was refused (422): the run's stored
    status itself is invalid, and nothing this operator writes can move it."""


class PodNameTaken(Exception):
    """The attempt's pod name belongs to a pod of another FlowRun (a deleted run's pod
    that garbage collection has not removed yet): retried with backoff."""


@dataclass
class Resolved:
    """The run's configuration, or why it could not be resolved."""

    settings: RunSettings | None = None
    error: tuple[str, str] | None = None


M = TypeVar("M", bound=Resource)


class ParsedCache:
    """Parsed Deployments and Flows by ``(kind, namespace, name)``, valid for one
    ``resourceVersion``: a run's every step reads them, and parsing is not free."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[str, str, str], tuple[str, Resource]] = {}

    def parse(self, body: Mapping[str, Any], model: type[M]) -> M:
        meta = body.get("metadata") or {}
        key = (model.__name__, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        version = str(meta.get("resourceVersion") or "")
        found = self._parsed.get(key)
        if found is not None and version and found[0] == version:
            parsed = found[1]
        else:
            parsed = parse_resource(dict(body))
            if version:
                self._parsed[key] = (version, parsed)
        if not isinstance(parsed, model):
            raise InvalidResourceError(f"{model.__name__} {key[1]}/{key[2]}", [
                f"kind: expected {model.__name__}, got {type(parsed).__name__}"])
        return parsed

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self._parsed.pop((kind, namespace, name), None)


class FlowRunController:
    """Drives every non-terminal FlowRun of the watched namespaces (see the module)."""

    def __init__(self, client: kube.Kube, *, deployments: Store, flows: Store,
                 events: EventRecorder, blocks: Store | None = None,
                 variables: Store | None = None, observer: Observer = NULL_OBSERVER,
                 clock: Clock | None = None,
                 config_error_grace: timedelta = DEFAULT_CONFIG_ERROR_GRACE,
                 run_store: str | None = None,
                 ui_url: str | None = None,
                 workers: int = DEFAULT_WORKERS) -> None:
        self.client = client
        self.deployments = deployments
        self.flows = flows
        self.blocks = blocks if blocks is not None else Store()
        """The watched Blocks (whole objects: they hold no secret values)."""
        self.variables = variables if variables is not None else Store()
        self.events = events
        self.observer = observer
        self.config_error_grace = config_error_grace
        self.run_store = run_store
        """The operator's default run store (``--run-store``), for runs whose Deployment
        names none (:func:`~headwater_operator.flowruns.settings.run_store_root`)."""
        self.ui_url = ui_url
        """The UI's public address (``--ui-url``): pods get it as ``HEADWATER_UI_URL``."""
        self.queue: Controller[Key] = Controller(
            "flowruns", self.reconcile, workers=workers, clock=clock,
            expected=(kube.KubeError, PodNameTaken, OSError, TimeoutError))
        self.tracked: set[Key] = set()
        """Runs not known to be terminal or gone: the ones this controller drives."""
        self.views: dict[Key, RunView] = {}
        """Bodies of the runs not known to be terminal (memory grows with active runs)."""
        self.pods_seen: dict[Key, dict[str, SeenPod]] = {}
        """The latest body known of each pod of a tracked run (by run, then pod name):
        what the step decides from (:meth:`attempt_pod`). The pod watch's last event,
        including a ``DELETED`` one (why a pod is gone: pod GC's ``DisruptionTarget`` of
        a lost node, see podfacts), or, until the watch shows the pod, the answer of our
        create or read."""
        self.members: dict[Key, set[Key]] = defaultdict(set)
        """(namespace, Deployment) → its tracked runs: spec changes and freed slots wake them."""
        self.waiting: set[Key] = set()
        """Tracked runs that hold no concurrency slot yet (:data:`WAITING_PHASES`)."""
        self.deployment_generations: dict[Key, int | None] = {}
        self.admission_locks: dict[Key, asyncio.Lock] = defaultdict(asyncio.Lock)
        """Admissions of one Deployment's runs are serialised so its limit holds."""
        self.parsed = ParsedCache()
        self.input_waiters: dict[tuple[str, str, str], set[Key]] = defaultdict(set)
        """(namespace, ``Block``/``Secret``, name) → runs held until it appears or
        changes (:class:`~headwater_operator.flowruns.inputs.Wait`)."""
        self.waits_of: dict[Key, set[tuple[str, str, str]]] = {}
        """Run → what it is registered as waiting for in :attr:`input_waiters`."""
        # Every run's end checks its summary against the status schema; importing and
        # building that check (~60 ms of CPU) at the first run's end held the event loop,
        # and with it every run's next step (FlowRun → Pod p99 in the soak). Now, once.
        summary_validator()("FlowRun", {})

    @property
    def clock(self) -> Clock:
        """The clock the work queue times ``requeue_at`` on (the operator's, unless given)."""
        return self.queue.clock

    def register(self, informers: InformerFactory) -> None:
        """Receive the events of FlowRuns, Headwater's pods and Deployments."""
        informers.informer(kube.FLOWRUNS).add_handler(self.on_flowrun)
        informers.informer(kube.PODS, POD_SELECTOR).add_handler(self.on_pod)
        informers.informer(kube.DEPLOYMENTS).add_handler(self.on_deployment)
        informers.informer(kube.BLOCKS).add_handler(self.on_block)
        informers.informer(kube.SECRETS_METADATA).add_handler(self.on_secret)

    # --- 1. watch → wake (synchronous and cheap: called for every event) ---------------------
    def on_flowrun(self, type_: str, obj: JsonObject) -> None:
        """Track a non-terminal run and wake it; wake it when the user asks to cancel."""
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        status = obj.get("status") or {}
        if type_ == "DELETED" or not is_active(status):
            # Watch events arrive in order: after this one no older body of it can come.
            self.views.pop(key, None)
            if key in self.tracked:
                self.queue.wake(key)  # its step finds it over and untracks it
            return
        self.views.setdefault(key, RunView()).saw(obj)
        if key not in self.tracked or _cancel_pending(obj.get("spec") or {}, status):
            self.tracked.add(key)
            self.queue.wake(key)

    def on_pod(self, type_: str, obj: JsonObject) -> None:
        """A pod of a tracked run changed: keep its body; wake the run if its facts
        changed."""
        meta = obj["metadata"]
        flowrun = owning_flowrun(meta)
        if flowrun is None:
            return
        key = (meta.get("namespace") or "", flowrun)
        if key not in self.tracked:  # only runs still tracked: memory stays bounded
            return
        pods = self.pods_seen.setdefault(key, {})
        name = str(meta.get("name") or "")
        before = pods.get(name)
        seen = pods[name] = SeenPod(obj, watched=True, gone=type_ == "DELETED")
        # A step decides from the pod's facts alone: an update that leaves them as they
        # were (the scheduler's binding, a label) would change no decision.
        if before is None or before.gone != seen.gone or before.facts != seen.facts:
            self.queue.wake(key)

    def on_deployment(self, type_: str, obj: JsonObject) -> None:
        """A Deployment's spec changed (paused, concurrency…) or it went: its runs look
        again. Its status churn (run counts, written for every run's phase) wakes nobody."""
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        generation = meta.get("generation")
        if type_ == "DELETED":
            self.deployment_generations.pop(key, None)
            self.parsed.forget("Deployment", *key)
        elif self.deployment_generations.get(key) == generation:
            return
        else:
            self.deployment_generations[key] = generation
        for run in list(self.members.get(key, ())):
            self.queue.wake(run)

    def on_block(self, type_: str, obj: JsonObject) -> None:
        """A Block appeared, changed or went: the runs held for it look again."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace") or "", meta["name"]
        if type_ == "DELETED":
            self.parsed.forget("Block", namespace, name)
        self._wake_waiters((namespace, "Block", name))

    def on_secret(self, type_: str, obj: JsonObject) -> None:
        """A Secret appeared or changed (metadata only: its data never reaches this
        process): the runs held for it look again."""
        meta = obj["metadata"]
        self._wake_waiters((meta.get("namespace") or "", "Secret", meta["name"]))

    def _wake_waiters(self, what: tuple[str, str, str]) -> None:
        for run in list(self.input_waiters.get(what, ())):
            self.queue.wake(run)

    def _wait_for(self, key: Key, wait: run_inputs.Wait | None) -> None:
        """Register run ``key`` as waiting for what ``wait`` names (nothing if None)."""
        namespace = key[0]
        wanted = set() if wait is None else (
            {(namespace, "Block", name) for name in wait.blocks}
            | {(namespace, "Secret", name) for name in wait.secrets})
        for what in self.waits_of.pop(key, set()) - wanted:
            waiters = self.input_waiters.get(what)
            if waiters is not None:
                waiters.discard(key)
                if not waiters:
                    del self.input_waiters[what]
        for what in wanted:
            self.input_waiters[what].add(key)
        if wanted:
            self.waits_of[key] = wanted

    # --- 2.–5. one step ---------------------------------------------------------------------
    async def reconcile(self, key: Key) -> Result:
        """One step of run ``key``; what the work queue calls (see the module docstring)."""
        namespace, name = key
        try:
            run, decision = await self.step(namespace, name)
        except kube.Conflict:
            # The run changed after the body we decided from (a cancel request, a
            # replayed event's old body): read it afresh and decide again at once.
            self.views.pop(key, None)
            return AGAIN
        except StatusRefused as exc:
            # Retrying cannot help; say so where users look, and stop following it (an
            # operator restart tries once more).
            log.error("FlowRun %s/%s: the API server refuses every status update, even the "
                      "one that ends the run: %s", namespace, name, exc)
            self.observer.observe_reconcile_error(KIND)
            body = self.views.get(key, RunView()).current()
            if body is not None:
                self._emit(body, [status_refused_event(str(exc))])
            self.untrack(key)
            return DONE
        except Exception as exc:
            if isinstance(exc, kube.KubeError):
                # Read the run afresh after a failed request: it may be gone (404 on the
                # status patch) or changed in a way the watch has not shown yet.
                self.views.pop(key, None)
            self.observer.observe_reconcile_error(KIND)
            raise  # the queue retries with backoff
        if run is None:
            self.views.pop(key, None)
            self.untrack(key)
            return DONE
        phase = decision.phase or run.status.phase
        if phase is not None and phase.terminal:
            # The view keeps the terminal body until the watch shows it (an older event
            # delivered late must not start the run over); apply kept none if it has.
            self.untrack(key)
            return DONE
        if decision.status or decision.create_pod is not None:
            return AGAIN  # something changed: look again at once, the next step may follow
        now = self.clock.now()
        wake_at = now + timedelta(seconds=RESYNC_SECONDS)
        if decision.wake_at is not None:
            wake_at = min(wake_at, decision.wake_at)
        return Result(requeue_at=wake_at)

    def untrack(self, key: Key) -> None:
        """Stop driving run ``key`` (terminal, gone, or refused); free its slot.

        If it held a slot (it was not waiting), the runs of its Deployment still waiting
        for one are woken: the slot is free now, and a deleted run says so only here.
        Not the ones holding a slot: a run's end changes nothing for them, and waking
        every active run of a busy Deployment at every run's end cost a pod read each.
        """
        self.tracked.discard(key)
        self.pods_seen.pop(key, None)
        self._wait_for(key, None)
        self.queue.forget(key)
        held_a_slot = key not in self.waiting
        self.waiting.discard(key)
        for deployment, members in list(self.members.items()):
            if key in members:
                members.discard(key)
                if not members:
                    del self.members[deployment]
                elif held_a_slot:
                    for other in [run for run in members if run in self.waiting]:
                        self.queue.wake(other)

    async def step(self, namespace: str, name: str) -> tuple[FlowRun | None, Decision]:
        """Read, gather, decide, apply; returns the run as read and the decision.

        Returns ``(None, Decision())`` when the FlowRun no longer exists.
        """
        key = (namespace, name)
        body = await self.current_body(namespace, name)
        if body is None:
            return None, Decision()
        view = self.views.get(key)
        try:
            run = view.parse(body) if view is not None else FlowRun.model_validate(body)
        except ValueError as exc:
            log.warning("FlowRun %s/%s cannot be parsed: %s", namespace, name, exc)
            return None, Decision()
        if run.status.phase is not None and run.status.phase.terminal:
            return run, Decision()
        deployment = run.spec.deployment_ref.name if run.spec.deployment_ref else ""
        if deployment:
            self.members[(namespace, deployment)].add(key)
        if run.status.phase in NOT_STARTED and deployment and self._may_limit(run):
            async with self.admission_locks[(namespace, deployment)]:
                facts = await self.gather_facts(run)
                decision = await self.apply(body, run, facts, decide(run, facts))
        else:
            facts = await self.gather_facts(run)
            decision = await self.apply(body, run, facts, decide(run, facts))
        if (decision.phase or run.status.phase) in WAITING_PHASES:
            self.waiting.add(key)
        else:
            self.waiting.discard(key)
        return run, decision

    def _may_limit(self, run: FlowRun) -> bool:
        """Whether admitting ``run`` must hold its Deployment's admission lock.

        Only a concurrency limit needs it (the slot count must not race another
        admission); without one, the admissions of a busy Deployment would each wait for
        the others' pod create and status patch for nothing. A Deployment not in memory
        takes the lock, to be safe.
        """
        ref = run.spec.deployment_ref
        if ref is None:
            return False
        body = self.deployments.get(run.metadata.namespace or "", ref.name)
        return body is None or (body.get("spec") or {}).get("concurrency") is not None

    async def current_body(self, namespace: str, name: str) -> JsonObject | None:
        """The freshest known body of FlowRun ``namespace/name``; read only if none is known."""
        view = self.views.get((namespace, name))
        body = view.current() if view is not None else None
        if body is None:
            body = await _get_or_none(self.client, kube.FLOWRUNS, name, namespace)
            if body is not None and is_active(body.get("status") or {}):
                # Not kept when terminal: the step ends it anyway.
                self.views.setdefault((namespace, name), RunView()).wrote(body)
        return body

    # --- 2. the facts ---------------------------------------------------------------------
    async def gather_facts(self, run: FlowRun) -> Facts:
        """Everything :func:`decide` needs about ``run`` now."""
        now = self.clock.now()
        namespace = run.metadata.namespace or ""
        resolved = await self.resolve(run)
        phase = run.status.phase
        pod: PodFacts | None = None
        if run.status.pod_name and phase not in NOT_STARTED:
            pod = await self.attempt_pod((namespace, run.metadata.name or ""),
                                         run.status.pod_name)
        elif run.spec.cancel and (phase in NOT_STARTED
                                  or phase == FlowRunPhase.AWAITING_RETRY):
            # The next attempt's pod may exist before the status names it (created, then
            # the operator died before its status write): a cancel must stop it too.
            found = await _get_or_none(self.client, kube.PODS, pod_name(
                run.metadata.name or "", run.status.attempts + 1), namespace)
            pod = pod_facts(found) if found is not None else None
        errors: tuple[str, ...] = ()
        slot = SlotVerdict.ADMIT
        settings = resolved.settings
        inputs_wait: run_inputs.Wait | None = None
        if settings is not None and _starts_soon(run, settings, now):
            settings, inputs_wait = await self.resolve_inputs(run, settings)
        self._wait_for((namespace, run.metadata.name or ""), inputs_wait)
        if settings is not None and phase in NOT_STARTED:
            errors = tuple(parameter_errors(settings.parameters,
                                            settings.flow.spec.parameters_schema))
            if settings.concurrency is not None:
                siblings = await self._siblings(run, settings.deployment_name)
                with_pods = await self._runs_with_pods(namespace, settings.deployment_name)
                slot = slot_verdict(run, settings.concurrency, siblings, now,
                                    with_pods=with_pods)
        return Facts(now=now, settings=settings, setup_error=resolved.error,
                     parameter_errors=errors, pod=pod, slot=slot,
                     inputs_wait=None if inputs_wait is None else (
                         inputs_wait.reason, inputs_wait.message))

    async def resolve_inputs(self, run: FlowRun, settings: RunSettings
                             ) -> tuple[RunSettings, run_inputs.Wait | None]:
        """``settings`` with the run's declared blocks and variables resolved, or why the
        run must wait for them (:mod:`headwater_operator.flowruns.inputs`)."""
        blocks, variables = settings.declared_blocks, settings.declared_variables
        if not blocks and not variables:
            return settings, None
        namespace = run.metadata.namespace or ""

        async def lookup(name: str) -> JsonObject | None:
            return await self._known_or_get(self.blocks, kube.BLOCKS, namespace, name)

        found, wait = await run_inputs.resolve_blocks(
            blocks, lookup, lambda body: self.parsed.parse(body, Block),
            namespace=namespace, deployment=settings.deployment_name)
        if wait is not None:
            return settings, wait
        files = run_inputs.secret_files(found)
        keys = {name: await self._secret_keys(namespace, name)
                for name in dict.fromkeys(file.secret for file in files)}
        wait = run_inputs.check_secrets(files, keys, namespace=namespace)
        if wait is not None:
            return settings, wait
        objects = [variable_object_name(name) for name in variables]
        values = run_inputs.resolve_variables(variables, {
            name: await self._known_or_get(self.variables, kube.VARIABLES, namespace, name)
            for name in objects})
        return dataclasses.replace(settings, inputs=run_inputs.RunInputs(
            documents={block.metadata.name or "": run_inputs.block_document(block)
                       for block in found},
            secret_files=files, variables=values, declares_blocks=bool(blocks),
            declares_variables=bool(variables))), None

    async def _secret_keys(self, namespace: str, name: str) -> frozenset[str] | None:
        """The key names of Secret ``namespace/name`` (None if it does not exist).

        A GET, not a watch's memory: values are never kept, and the body, values and
        all, is dropped here, before this returns.
        """
        body = await _get_or_none(self.client, kube.SECRETS, name, namespace)
        if body is None:
            return None
        return frozenset((body.get("data") or {}).keys())

    async def attempt_pod(self, key: Key, name: str) -> PodFacts:
        """The facts of run ``key``'s pod ``name``, read from the API server only when
        memory cannot tell.

        A pod the watch shows is not read again: every change of it is a watch event that
        wakes the run, so a step never decides from a stale body for long, and a pod's
        phases only move forward. Our create's answer stands in until the watch shows the
        pod. Read: a pod the watch has not shown (after a restart the pod watch may list
        it before its run is tracked), and a pod the watch says is gone, because that ends
        the attempt for good and only the API server's 404 may say so (the watch is
        filtered by label: a pod whose label was removed looks deleted there, and still
        runs). Gone, the last body known still tells why.
        """
        seen = self.pods_seen.get(key, {}).get(name)
        if seen is not None and not seen.gone:
            return seen.facts
        found = await _get_or_none(self.client, kube.PODS, name, key[0])
        if found is None:
            return gone_pod_facts(seen.body if seen is not None else None)
        if seen is None:
            self._remember_pod(key, found)
        return pod_facts(found)

    def _remember_pod(self, key: Key, body: JsonObject) -> None:
        """Keep the answer of our create or read of a pod until the watch shows it.

        Only a pod the watch selects (its label), since only then will the watch deliver
        its every change; and never over what the watch delivered (as new, or newer).
        """
        meta = body.get("metadata") or {}
        if (meta.get("labels") or {}).get(contract.LABEL_MANAGED_BY) != \
                contract.MANAGED_BY_VALUE:
            return
        pods = self.pods_seen.setdefault(key, {})
        name = str(meta.get("name") or "")
        if name not in pods or not pods[name].watched:
            pods[name] = SeenPod(body, watched=False, gone=False)

    async def resolve(self, run: FlowRun) -> Resolved:
        """Find the run's Deployment (if any) and Flow and combine them into settings."""
        namespace = run.metadata.namespace or ""
        deployment: Deployment | None = None
        try:
            if run.spec.deployment_ref is not None:
                ref = run.spec.deployment_ref.name
                body = await self._known_or_get(self.deployments, kube.DEPLOYMENTS, namespace,
                                                ref)
                if body is None:
                    return Resolved(error=(
                        reasons.DEPLOYMENT_NOT_FOUND,
                        f"Deployment {namespace}/{ref} (spec.deploymentRef) does not exist; "
                        "create it or fix the name, then create a new FlowRun"))
                deployment = self.parsed.parse(body, Deployment)
                flow_name = deployment.spec.flow_ref.name
                where = f"Deployment {ref} spec.flowRef"
            else:
                assert run.spec.flow_ref is not None
                flow_name = run.spec.flow_ref.name
                where = "spec.flowRef"
            flow_body = await self._known_or_get(self.flows, kube.FLOWS, namespace, flow_name)
            if flow_body is None:
                return Resolved(error=(reasons.FLOW_NOT_FOUND,
                                       f"Flow {namespace}/{flow_name} ({where}) does not exist; "
                                       "create it or fix the reference"))
            flow = self.parsed.parse(flow_body, Flow)
        except InvalidResourceError as exc:
            return Resolved(error=(reasons.INVALID_SPEC, f"{exc}"))
        view = self.views.get((namespace, run.metadata.name or ""))
        # Settings read only the run's spec: its generation (which every spec change bumps,
        # and a status write does not) stands for the run; its resourceVersion if none.
        versions = (f"{run.metadata.uid}/{run.metadata.generation}"
                    if run.metadata.generation and run.metadata.uid
                    else run.metadata.resource_version or "",
                    "-" if deployment is None else deployment.metadata.resource_version or "",
                    flow.metadata.resource_version or "")
        if view is not None and view.resolved is not None and view.resolved[0] == versions \
                and all(versions):
            return Resolved(settings=view.resolved[1])
        settings = resolve_settings(flow, deployment, run,
                                    config_error_grace=self.config_error_grace,
                                    default_run_store=self.run_store, ui_url=self.ui_url)
        if view is not None:
            view.resolved = (versions, settings)
        return Resolved(settings=settings)

    async def _known_or_get(self, store: Store, resource: kube.Resource, namespace: str,
                            name: str) -> JsonObject | None:
        # A miss is confirmed with a GET: the store may not have caught up with an object
        # created a moment ago, and "not found" ends a run for good.
        body = store.get(namespace, name)
        if body is not None:
            return body
        return await _get_or_none(self.client, resource, name, namespace)

    async def _siblings(self, run: FlowRun, deployment: str) -> list[FlowRun]:
        # A LIST, not the watch: a run another worker admitted a moment ago must hold its
        # slot although the watch may not have delivered its new status yet.
        bodies = await self.client.list(kube.FLOWRUNS, namespace=run.metadata.namespace)
        return [FlowRun.model_validate(body) for body in bodies
                if ((body.get("spec") or {}).get("deploymentRef") or {}).get("name")
                == deployment]

    async def _runs_with_pods(self, namespace: str, deployment: str) -> frozenset[str]:
        """The uids of the runs of ``deployment`` that have a pod (see :mod:`.concurrency`).

        A LIST, not the pod watch's memory: a pod created by a worker a moment ago (or by
        a killed leader just before its status write) must count although the watch may
        not have delivered it. Every pod of a run with a Deployment carries the
        Deployment's label (``render``).
        """
        pods = await self.client.list(kube.PODS, namespace=namespace, label_selector={
            contract.LABEL_MANAGED_BY: contract.MANAGED_BY_VALUE,
            **selector(contract.LABEL_DEPLOYMENT, deployment)})
        return pod_owner_uids(pods)

    # --- 4. apply -------------------------------------------------------------------------
    async def apply(self, body: Mapping[str, Any], run: FlowRun, facts: Facts,
                    decision: Decision) -> Decision:
        """Carry out ``decision``: pod first, then status, then Events and metrics.

        The pod is created *before* the status names it: if the operator dies in between,
        the next step recreates the same name, gets 409 and adopts it.
        """
        client = self.client
        namespace = run.metadata.namespace or ""
        name = run.metadata.name or ""
        attempt = decision.create_pod
        if attempt is not None and facts.settings is not None:
            reason, error = await self._ensure_pod(run, facts.settings, attempt, facts.now)
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
                written = await self._patch_status(run, decision.status)
            except kube.Invalid as exc:
                # Refused for what it says, not for when: the same patch would be refused
                # on every retry. End the run with the server's message instead of looping.
                log.warning("FlowRun %s/%s: the API server refused its status update: %s",
                            namespace, name, exc.message)
                decision = status_rejected(run, decision, exc.message, facts.now)
                if decision.delete_pod:
                    with contextlib.suppress(kube.NotFound):
                        await client.delete(kube.PODS, decision.delete_pod,
                                            namespace=namespace)
                try:
                    written = await self._patch_status(run, decision.status)
                except kube.Invalid as again:
                    raise StatusRefused(again.message) from again
            view = self.views.get((namespace, name))
            if view is not None:
                view.wrote(written)
            # else the watch showed the run's end (this very write, or its deletion)
            # before the patch answered: a view made now would never be dropped.
            self._observe(run, facts.settings, decision, facts.now)
        self._emit(body, decision.events)
        return decision

    async def _ensure_pod(self, run: FlowRun, settings: RunSettings, attempt: int,
                          now: datetime) -> tuple[str, str | None]:
        """Create the attempt's pod; returns (event reason, error message or None)."""
        due = run.status.scheduled_time or scheduled_time(run) or now
        try:
            manifest = render_pod(run, settings, attempt, due)
        except PodOverridesError as exc:
            # The Deployment's own configuration is wrong: retrying cannot help.
            return reasons.POD_CREATION_FAILED, str(exc)
        namespace = run.metadata.namespace or ""
        key = (namespace, run.metadata.name or "")
        try:
            created = await self.client.create(kube.PODS, manifest, namespace=namespace)
        except kube.AlreadyExists:
            existing = await self.client.get(kube.PODS, manifest["metadata"]["name"],
                                             namespace=namespace)
            owners = existing.get("metadata", {}).get("ownerReferences") or []
            if not any(owner.get("uid") == run.metadata.uid for owner in owners):
                raise PodNameTaken(
                    f"pod {manifest['metadata']['name']} exists but belongs to another "
                    "FlowRun; waiting for it to be garbage-collected") from None
            self._remember_pod(key, existing)
            return reasons.POD_ADOPTED, None
        except kube.KubeError as exc:
            if not kube.is_final_rejection(exc.status, exc.message):
                raise  # transient (quota, 5xx): retried after a backoff
            return reasons.POD_CREATION_FAILED, str(exc)
        self._remember_pod(key, created)
        return reasons.POD_CREATED, None

    async def _patch_status(self, run: FlowRun, status: JsonObject) -> JsonObject:
        """Merge-patch the run's status; the resourceVersion makes it 409 if the run
        changed since the body the decision was made from."""
        patch: JsonObject = {"status": status}
        if run.metadata.resource_version:
            patch["metadata"] = {"resourceVersion": run.metadata.resource_version}
        return await self.client.patch_status(kube.FLOWRUNS, run.metadata.name or "", patch,
                                              namespace=run.metadata.namespace or "")

    def _emit(self, body: Mapping[str, Any], events: list[Event]) -> None:
        for event in events:
            self.events.post(body, event.type, event.reason, event.message)

    def _observe(self, run: FlowRun, settings: RunSettings | None, decision: Decision,
                 now: datetime) -> None:
        # Called only after this process's status patch, made with the resourceVersion
        # the decision saw, succeeded: this process moved the run, so it counts, once.
        observer = self.observer
        namespace = run.metadata.namespace or ""
        deployment = settings.deployment_name if settings else (
            run.spec.deployment_ref.name if run.spec.deployment_ref else "")
        if decision.crash_reason:
            observer.observe_crash(namespace, deployment, decision.crash_reason)
        if decision.became_late:
            observer.observe_late(namespace, deployment)
        if decision.create_pod == 1:
            due = run.status.scheduled_time or scheduled_time(run) or now
            observer.observe_queue_wait(namespace, deployment, (now - due).total_seconds())
        phase = decision.phase
        if phase is None:
            return
        observer.set_run_phase(run.metadata.uid or "", namespace, deployment,
                               None if phase.terminal else phase.value)
        if phase.terminal:
            observer.observe_run_finished(namespace, deployment, phase.value,
                                          decision.status.get("durationSeconds"))


def _starts_soon(run: FlowRun, settings: RunSettings, now: datetime) -> bool:
    """Whether the run's next pod may be created now, so its inputs are needed: not
    started (or between attempts), due, not cancelled, its Deployment not paused."""
    if run.spec.cancel or settings.paused:
        return False
    phase = run.status.phase
    if phase == FlowRunPhase.AWAITING_RETRY:
        due = run.status.next_attempt_time
    elif phase in NOT_STARTED:
        due = scheduled_time(run)
    else:
        return False
    return due is None or due <= now


async def _get_or_none(client: kube.Kube, resource: kube.Resource, name: str,
                       namespace: str) -> JsonObject | None:
    try:
        return await client.get(resource, name, namespace=namespace)
    except kube.NotFound:
        return None

