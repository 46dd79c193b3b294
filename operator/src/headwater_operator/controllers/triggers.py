"""The triggers controller: a Deployment's ``spec.triggers`` start its runs when upstream
runs end (``afterDeployment``) or when its upstream assets are fresh (``assets``).

One Deployment with triggers, from a watch event to its runs:

1. **Watch → wake.** The manager's shared FlowRun and Deployment informers deliver every
   event (no kind is watched twice). Of each FlowRun the controller keeps a few facts
   (:class:`~headwater_operator.triggering.RunFacts`); a run seen in a final phase wakes
   the Deployments whose ``afterDeployment`` names its Deployment and, if it materialized
   assets, the Deployments of the namespace with an ``assets`` trigger. A Deployment wakes
   itself when its spec changes (a new generation).
2. **Wake-up** (:meth:`TriggerController.reconcile`), one worker per Deployment at a time:
   the spec's triggers are validated (an invalid one gets a Warning Event naming the field
   and the fix, and nothing fires); each trigger's ``since`` is read from the Deployment's
   ``status.triggers`` (or set: when the trigger was declared); a paused Deployment moves
   every ``since`` to now, so what ended while it was paused is dropped; then each
   triggering event (:mod:`headwater_operator.triggering` decides) becomes one FlowRun.

What it must respect:

* **Exactly one run per triggering event.** Names are deterministic
  (:func:`~headwater_operator.triggering.triggered_run_name`); a name the watch already
  shows is not created again, and ``409 AlreadyExists`` (an earlier leader made it) is
  success. Once an ``afterDeployment`` run exists, its upstream run gets the trigger's
  mark (a ``trigger.headwater.dev/<hash>`` annotation): history may delete the triggered
  run and free its name, and a replay still skips the marked upstream run.
* **Never in a run's way.** It only creates runs, annotates ended upstream runs with
  their marks (a merge patch of that one annotation) and writes ``status.triggers`` of
  Deployments (a merge patch of that field alone; the Deployment controller writes the
  rest of the status). A refused create (a template that fails, a 422) is a Warning Event
  on the Deployment, not a retry loop.
* **Memory and time** follow the runs: a few fields per FlowRun (asset keys only of
  Completed runs), indexed by Deployment, so a wake-up reads only the runs of its own and
  its upstream Deployments; a watch event that changes no phase costs two lookups.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from headwater_operator import kube, reasons
from headwater_operator.api import TERMINAL_PHASES
from headwater_operator.api.deployment import Deployment
from headwater_operator.api.enums import FlowRunTrigger
from headwater_operator.api.errors import format_validation_error
from headwater_operator.clock import Clock
from headwater_operator.controllers.signals import NULL_OBSERVER, EventRecorder, Observer
from headwater_operator.informer import InformerFactory, Store
from headwater_operator.kubetime import format_time
from headwater_operator.runtime import DONE, Controller, Result
from headwater_operator.templating import TemplateError
from headwater_operator.triggering import (
    DueRun,
    RunFacts,
    build_triggered_run,
    covered_of,
    due_runs,
    handled_mark,
    handled_marks,
    map_parameters,
    run_facts,
    since_of,
)

logger = logging.getLogger(__name__)

KIND = "Deployment"
Key = tuple[str, str]
"""(namespace, Deployment name)."""
DEFAULT_WORKERS = 64


class TriggerController:
    """Watches Deployments and FlowRuns; creates the runs of Deployments' triggers."""

    def __init__(self, client: kube.Kube, *, deployments: Store, events: EventRecorder,
                 observer: Observer = NULL_OBSERVER, clock: Clock | None = None,
                 workers: int = DEFAULT_WORKERS) -> None:
        self.client = client
        self.deployments = deployments
        self.events = events
        self.observer = observer
        self.queue: Controller[Key] = Controller(
            "triggers", self.reconcile, workers=workers, clock=clock,
            expected=(kube.KubeError, OSError, TimeoutError))
        self.runs: dict[str, dict[str, RunFacts]] = {}
        """namespace → run name → facts, of every FlowRun the watch shows."""
        self.by_deployment: dict[Key, dict[str, RunFacts]] = {}
        """(namespace, Deployment) → its runs' facts (the same objects)."""
        self.with_assets: dict[str, dict[str, RunFacts]] = {}
        """namespace → the Completed runs that materialized assets."""
        self.downstream: dict[Key, set[str]] = {}
        """(namespace, upstream Deployment) → Deployments with an afterDeployment on it."""
        self.asset_triggered: dict[str, set[str]] = {}
        """namespace → Deployments with an assets trigger."""
        self.triggers_of: dict[Key, tuple[Any, list[str]]] = {}
        """(namespace, Deployment) → (generation seen, its upstream Deployments)."""
        self.written: dict[Key, list[dict[str, Any]]] = {}
        """(namespace, Deployment) → ``status.triggers`` as this controller last wrote it
        (the watch may not show that write yet)."""
        self.invalid_generation: dict[Key, Any] = {}

    def register(self, informers: InformerFactory) -> None:
        """Receive the events of Deployments and FlowRuns (the manager's informers)."""
        informers.informer(kube.DEPLOYMENTS).add_handler(self.on_deployment)
        informers.informer(kube.FLOWRUNS).add_handler(self.on_run)

    # --- watch callbacks (cheap: called for every event) ---------------------------------
    def on_deployment(self, type_: str, obj: dict[str, Any]) -> None:
        """Index a Deployment's triggers; a new generation (a spec edit) wakes it."""
        meta = obj.get("metadata") or {}
        key: Key = (meta.get("namespace") or "default", meta["name"])
        before = self.triggers_of.pop(key, None)
        for upstream in before[1] if before else ():
            self.downstream.get((key[0], upstream), set()).discard(key[1])
        self.asset_triggered.get(key[0], set()).discard(key[1])
        if type_ == "DELETED":
            self.queue.forget(key)
            self.written.pop(key, None)
            self.invalid_generation.pop(key, None)
            return
        triggers = [t for t in (obj.get("spec") or {}).get("triggers") or ()
                    if isinstance(t, Mapping)]
        upstreams = [str(t["afterDeployment"].get("name")) for t in triggers
                     if isinstance(t.get("afterDeployment"), Mapping)]
        for upstream in upstreams:
            self.downstream.setdefault((key[0], upstream), set()).add(key[1])
        if any("assets" in t for t in triggers):
            self.asset_triggered.setdefault(key[0], set()).add(key[1])
        generation = meta.get("generation")
        if triggers or before is not None:
            self.triggers_of[key] = (generation, upstreams)
        if triggers and (before is None or before[0] != generation):
            self.queue.wake(key)

    def on_run(self, type_: str, obj: dict[str, Any]) -> None:
        """Keep the run's facts; a run seen ended wakes the Deployments it may trigger."""
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace") or "default", str(meta.get("name"))
        runs = self.runs.setdefault(namespace, {})
        before = runs.get(name)
        if type_ == "DELETED":
            if before is not None:
                self._forget(namespace, before)
            return
        phase = (obj.get("status") or {}).get("phase")
        if (before is not None and before.phase == phase and before.uid == meta.get("uid")
                and before.handled == handled_marks(obj)):
            return  # most events: nothing a trigger reads has changed
        if before is not None:
            self._forget(namespace, before)
        facts = runs[name] = run_facts(obj)
        self.by_deployment.setdefault((namespace, facts.deployment or ""), {})[name] = facts
        if facts.assets:
            self.with_assets.setdefault(namespace, {})[name] = facts
        if before is not None and before.phase == facts.phase and before.uid == facts.uid:
            return  # only a handled mark changed (this controller wrote it): wake nobody
        if facts.phase not in TERMINAL_PHASES:
            return
        for downstream in self.downstream.get((namespace, facts.deployment or ""), ()):
            self.queue.wake((namespace, downstream))
        if facts.assets:
            for downstream in self.asset_triggered.get(namespace, ()):
                self.queue.wake((namespace, downstream))

    def _forget(self, namespace: str, facts: RunFacts) -> None:
        self.runs.get(namespace, {}).pop(facts.name, None)
        key = (namespace, facts.deployment or "")
        of_deployment = self.by_deployment.get(key)
        if of_deployment is not None:
            of_deployment.pop(facts.name, None)
            if not of_deployment:
                del self.by_deployment[key]
        self.with_assets.get(namespace, {}).pop(facts.name, None)

    def _candidates(self, key: Key, triggers: list[Mapping[str, Any]]) -> list[RunFacts]:
        """The runs ``key``'s triggers may read: its own, its upstream Deployments', and
        for an ``assets`` trigger those that materialized assets."""
        namespace = key[0]
        found = dict(self.by_deployment.get(key, {}))
        for trigger in triggers:
            after = trigger.get("afterDeployment")
            if after is not None:
                found.update(self.by_deployment.get((namespace, after["name"]), {}))
            else:
                found.update(self.with_assets.get(namespace, {}))
        return list(found.values())

    # --- one wake-up of one Deployment ------------------------------------------------------
    async def reconcile(self, key: Key) -> Result:
        """Create the runs ``key``'s triggers call for (see the module docstring)."""
        body = self.deployments.get(*key)
        triggers = ((body or {}).get("spec") or {}).get("triggers")
        if body is None or not triggers:
            return DONE
        if not self._valid(key, body):
            return DONE
        now = self.queue.clock.now()
        status = {"triggers": self.written[key]} if key in self.written else (
            body.get("status") or {})
        since, covered = since_of(body, now, status), covered_of(status)
        if body["spec"].get("paused"):
            # Prefect's way: what ends while a Deployment is paused triggers nothing, ever.
            since = dict.fromkeys(since, now)
        await self._write_status(key, since, covered)
        fired = False
        for due in due_runs(body, self._candidates(key, triggers), since, covered):
            await self._create(body, due)
            if due.kind is FlowRunTrigger.ASSET:
                # The bar for the next fire, kept when history deletes this run: what
                # ends from now on, less the runs this fire used.
                since[due.trigger] = now
                covered[due.trigger] = frozenset(run.uid for run in due.upstream)
                fired = True
        if fired:
            await self._write_status(key, since, covered)
        return DONE

    def _valid(self, key: Key, body: Mapping[str, Any]) -> bool:
        """Whether the Deployment's spec is valid; if not, one Warning per generation."""
        try:
            Deployment.model_validate({"metadata": {"name": key[1]}, "spec": body["spec"]})
        except ValidationError as error:
            generation = body["metadata"].get("generation")
            if self.invalid_generation.get(key) != generation:
                self.invalid_generation[key] = generation
                self.events.post(body, "Warning", reasons.INVALID_TRIGGER, (
                    "spec.triggers are not evaluated until the Deployment is valid: "
                    + "; ".join(format_validation_error(error))))
            return False
        self.invalid_generation.pop(key, None)
        return True

    async def _write_status(self, key: Key, since: Mapping[str, datetime],
                            covered: Mapping[str, frozenset[str]]) -> None:
        """Write ``status.triggers`` when it differs from what it says (a merge patch of
        that field alone)."""
        entries: list[dict[str, Any]] = []
        for trigger, when in since.items():
            entry: dict[str, Any] = {"trigger": trigger, "since": format_time(when)}
            if covered.get(trigger):
                entry["covered"] = sorted(covered[trigger])
            entries.append(entry)
        current = self.written.get(key)
        if current is None:
            body = self.deployments.get(*key) or {}
            current = list((body.get("status") or {}).get("triggers") or [])
        if current == entries:
            self.written[key] = entries
            return
        await self.client.patch_status(kube.DEPLOYMENTS, key[1],
                                       {"status": {"triggers": entries}}, namespace=key[0])
        self.written[key] = entries

    async def _create(self, body: Mapping[str, Any], due: DueRun) -> None:
        """Create one triggered run, unless the watch already shows it."""
        namespace = body["metadata"].get("namespace") or "default"
        runs = self.runs.setdefault(namespace, {})
        upstream = list(due.upstream)
        if due.name in runs:
            # Made before (this process, an earlier leader): the same event. Mark the
            # upstream run if the leader that made it died before doing so.
            await self._mark_handled(body, due)
            return
        try:
            parameters = {}
            if due.templates:
                source = await self.client.get(kube.FLOWRUNS, upstream[-1].name,
                                               namespace=namespace)
                parameters = map_parameters(due.templates, source, field=due.field)
        except kube.NotFound:
            return  # the upstream run was deleted meanwhile: nothing left to map from
        except TemplateError as error:
            self._refused(body, due.name, upstream, str(error))
            return
        run = build_triggered_run(body, name=due.name, trigger=due.trigger, kind=due.kind,
                                  upstream=upstream, parameters=parameters)
        try:
            await self.client.create(kube.FLOWRUNS, run, namespace=namespace)
        except kube.AlreadyExists:
            pass  # an earlier leader made it: the same run
        except kube.KubeError as error:
            if not kube.is_final_rejection(error.status, error.message):
                raise  # transient: the wake-up is retried after a backoff
            self._refused(body, due.name, upstream, error.message)
            return
        else:
            self.events.post(body, "Normal", reasons.RUN_TRIGGERED, (
                f"created run {due.name} ({due.trigger}, after "
                f"{', '.join(run.name for run in upstream)})"))
        await self._mark_handled(body, due)
        if due.name not in runs:
            # Until the watch shows it: the asset rule's "own last run" counts it.
            facts = RunFacts(name=due.name, uid="", deployment=body["metadata"]["name"],
                             phase=None, created=self.queue.clock.now(), end=None,
                             triggered_by=frozenset(run.uid for run in upstream))
            runs[due.name] = facts
            self.by_deployment.setdefault((namespace, body["metadata"]["name"]),
                                          {})[due.name] = facts

    async def _mark_handled(self, body: Mapping[str, Any], due: DueRun) -> None:
        """Annotate an ``afterDeployment`` event's upstream run with the trigger's mark
        (after its run exists), so no replay fires it again even once history has deleted
        the run it made (whose name is then free)."""
        if due.kind is not FlowRunTrigger.DEPLOYMENT:
            return  # `assets` triggers keep their bar in status.triggers
        mark = handled_mark(body["metadata"]["name"], due.trigger)
        namespace = body["metadata"].get("namespace") or "default"
        for run in due.upstream:
            if mark in run.handled:
                continue
            with contextlib.suppress(kube.NotFound):  # gone: nothing can replay it
                await self.client.patch(kube.FLOWRUNS, run.name, {"metadata": {
                    "annotations": {mark: due.name}}}, namespace=namespace)

    def _refused(self, body: Mapping[str, Any], run_name: str, upstream: list[RunFacts],
                 why: str) -> None:
        self.observer.observe_reconcile_error(KIND)
        self.events.post(body, "Warning", reasons.TRIGGER_FAILED, (
            f"run {run_name} (after {', '.join(run.name for run in upstream)}) was not "
            f"created: {why}. It is not retried; fix the trigger, then start the run by hand "
            "if it is still wanted"))
