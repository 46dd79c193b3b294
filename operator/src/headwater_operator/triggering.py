"""Deployment triggers: which ended runs start which Deployment's run, under what name.

A Deployment's ``spec.triggers`` (docs/triggers.md) says it runs after another
Deployment's run ends (``afterDeployment``) or once every upstream asset of its flow has
been materialized again since its own last run (``assets``). This module is the pure
decision the triggers controller (:mod:`headwater_operator.controllers.triggers`) applies
to what its watches show: no I/O, every input passed in.

What it must respect:

* **One triggering event, one run, whatever replays it.** The run's name derives only
  from the Deployment, the trigger and what triggered it — the upstream run's uid, or the
  set of runs whose materializations made the upstream fresh
  (:func:`triggered_run_name`) — so the operator after a restart, an informer relist or
  a second leader derive the same name, and ``409 AlreadyExists`` makes the repeat a
  no-op. A uid, not a name: a run deleted and created again under the same name is a
  new event.
* **Only runs that ended after the trigger was declared count** (:class:`Upstream`
  ``since``), so adding a trigger to a namespace with history starts no flood.
* **A failed upstream run triggers nothing** unless the trigger lists that phase.
* Parameters are mapped with :func:`headwater_operator.templating.render` over the
  triggering run, never by a second renderer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from headwater_operator.api.enums import FlowRunTrigger
from headwater_operator.api.flowrun import FLOWRUN_NAME_MAX_LENGTH
from headwater_operator.kubetime import parse_time
from headwater_operator.labels import label_value
from headwater_operator.scheduling.runs import deployment_run
from headwater_operator.templating import flowrun_context, render

LABEL_TRIGGERED_BY = "headwater.dev/triggered-by"
"""On a triggered run: the upstream run that triggered it (the newest one, for assets)."""
ANNOTATION_TRIGGERED_BY = "headwater.dev/triggered-by-runs"
"""On a triggered run: every run that triggered it, ``name/uid`` comma-separated."""
ANNOTATION_TRIGGER_ID = "headwater.dev/trigger-id"
"""On a triggered run: which of its Deployment's triggers made it (:func:`trigger_id`)."""
HANDLED_PREFIX = "trigger.headwater.dev/"
"""On an upstream run: one annotation per ``afterDeployment`` trigger that has made its
run, ``trigger.headwater.dev/<hash of the Deployment and trigger>: <run name>``
(:func:`handled_mark`). A replay skips a marked run even when history has deleted the run
it triggered (its deterministic name is free again then)."""
ASSETS_TRIGGER_ID = "assets"
_HASH_CHARS = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What a trigger decision needs of one FlowRun (kept by the controller per run)."""

    name: str
    uid: str
    deployment: str | None
    phase: str | None
    created: datetime | None
    """``metadata.creationTimestamp``."""
    end: datetime | None
    """``status.endTime``."""
    assets: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``status.assets``: (key, upstream keys) of each asset it materialized."""
    triggered_by: frozenset[str] = frozenset()
    """Uids of the runs that triggered it (its ``triggered-by-runs`` annotation)."""
    handled: frozenset[str] = frozenset()
    """Its :data:`HANDLED_PREFIX` annotation keys: the triggers that have made their run."""


def run_facts(obj: Mapping[str, Any]) -> RunFacts:
    """What the trigger decisions need of a FlowRun body."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    status = obj.get("status") or {}
    phase = status.get("phase")
    assets: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if phase == "Completed":
        assets = tuple((str(asset.get("key")), tuple(str(up) for up in asset.get("upstream")
                                                       or ()))
                       for asset in status.get("assets") or () if asset.get("key"))
    by = str((meta.get("annotations") or {}).get(ANNOTATION_TRIGGERED_BY) or "")
    return RunFacts(
        name=str(meta.get("name")), uid=str(meta.get("uid") or ""),
        deployment=(spec.get("deploymentRef") or {}).get("name"), phase=phase,
        created=parse_time(meta.get("creationTimestamp")),
        end=parse_time(status.get("endTime")), assets=assets,
        triggered_by=frozenset(entry.rpartition("/")[2] for entry in by.split(",") if entry),
        handled=handled_marks(obj))


def handled_marks(obj: Mapping[str, Any]) -> frozenset[str]:
    """A FlowRun's :data:`HANDLED_PREFIX` annotation keys."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return frozenset(key for key in annotations if key.startswith(HANDLED_PREFIX))


def handled_mark(deployment: str, trigger: str) -> str:
    """The annotation key that marks an upstream run as handled by ``trigger`` of
    ``deployment`` (a valid key: the name part is 20 hex characters)."""
    digest = hashlib.sha256(f"{deployment}\n{trigger}".encode()).hexdigest()
    return HANDLED_PREFIX + digest[:20]


def pending_runs(deployments: Iterable[Mapping[str, Any]],
                 runs: Iterable[Mapping[str, Any]], now: datetime) -> list[str]:
    """Names of the runs the Deployments' triggers call for that do not exist (yet).

    What ``headwater dev --until-complete`` waits for besides unfinished runs: the
    moment between an upstream run's end and its triggered run's creation.
    """
    by_namespace: dict[str, list[RunFacts]] = {}
    names: set[tuple[str, str]] = set()
    for run in runs:
        namespace = (run.get("metadata") or {}).get("namespace") or "default"
        facts = run_facts(run)
        by_namespace.setdefault(namespace, []).append(facts)
        names.add((namespace, facts.name))
    missing = []
    for deployment in deployments:
        namespace = deployment["metadata"].get("namespace") or "default"
        for due in due_runs(deployment, by_namespace.get(namespace, []),
                            since_of(deployment, now),
                            covered_of(deployment.get("status") or {})):
            if (namespace, due.name) not in names:
                missing.append(due.name)
    return missing


def trigger_id(trigger: Mapping[str, Any]) -> str:
    """A trigger's identity within its Deployment: ``afterDeployment/<name>`` or ``assets``.

    Editing a trigger's parameters or phases keeps its identity (and its ``since``).
    """
    after = trigger.get("afterDeployment")
    if after is not None:
        return f"afterDeployment/{after['name']}"
    return ASSETS_TRIGGER_ID


def triggered_run_name(deployment: str, trigger: str, material: Iterable[str]) -> str:
    """The run name for one triggering event: ``<deployment>-<hash>``.

    ``material`` is what identifies the event (the upstream run's uid; the uids of the
    materializing runs), hashed with the trigger's identity. The Deployment's name is
    cut so the whole stays within :data:`FLOWRUN_NAME_MAX_LENGTH` and a DNS subdomain.
    """
    digest = hashlib.sha256("\n".join((trigger, *sorted(material))).encode()).hexdigest()
    prefix = deployment[: FLOWRUN_NAME_MAX_LENGTH - _HASH_CHARS - 1].rstrip("-.")
    return f"{prefix}-{digest[:_HASH_CHARS]}"


def after_deployment_events(
    trigger: Mapping[str, Any], runs: Iterable[RunFacts], since: datetime,
    mark: str | None = None,
) -> list[RunFacts]:
    """The upstream runs that fire an ``afterDeployment`` trigger: runs of its upstream
    Deployment that ended in one of its ``phases`` at or after ``since``, and (with
    ``mark``, :func:`handled_mark`) do not carry the mark of having fired it, oldest first."""
    after = trigger["afterDeployment"]
    phases = set(after.get("phases") or ["Completed"])
    fired = [run for run in runs
             if run.deployment == after["name"] and run.phase in phases
             and run.end is not None and run.end >= since
             and (mark is None or mark not in run.handled)]
    return sorted(fired, key=_end_order)


def upstream_keys(trigger: Mapping[str, Any], own_runs: Sequence[RunFacts]) -> list[str]:
    """The asset keys an ``assets`` trigger waits for: ``upstream`` when given, else the
    upstream keys of what this Deployment's latest run (with assets) materialized."""
    declared = (trigger.get("assets") or {}).get("upstream")
    if declared is not None:
        return sorted(set(declared))
    with_assets = [run for run in own_runs if run.assets and run.end is not None]
    if not with_assets:
        return []
    latest = max(with_assets, key=_end_order)
    own = {key for key, _ in latest.assets}
    return sorted({up for _, ups in latest.assets for up in ups} - own)


def fresh_materializations(
    keys: Sequence[str], runs: Iterable[RunFacts], *, deployment: str, since: datetime,
    own: Sequence[RunFacts], covered: frozenset[str] = frozenset(),
) -> dict[str, RunFacts] | None:
    """For each of ``keys``, the newest Completed run of another Deployment that
    materialized it since this Deployment's last run (of its ``own`` runs, the newest);
    None unless every key has one (the "dashboard only after all upstream succeeded" rule).

    "Since" the last run: ended at or after its creation, and not among the runs that
    triggered any of its own runs. Kubernetes times have a second's precision, so a
    materialization and a run created within the same second cannot be ordered by time;
    the provenance annotations tell those that were already covered, and ``covered``
    (``status.triggers[].covered``: the last fire's runs, kept when history has deleted
    the run they triggered).
    """
    if not keys:
        return None
    newest: dict[str, RunFacts] = {}
    wanted = set(keys)
    last = last_run(own)
    bar = since if last is None or last.created is None else max(since, last.created)
    covered = covered.union(*(run.triggered_by for run in own))
    for run in runs:
        if (run.phase != "Completed" or run.deployment == deployment or run.end is None
                or run.end < bar or run.uid in covered):
            continue
        for key, _ in run.assets:
            if key in wanted:
                found = newest.get(key)
                if found is None or _end_order(run) > _end_order(found):
                    newest[key] = run
    return newest if len(newest) == len(wanted) else None


def last_run(own_runs: Iterable[RunFacts]) -> RunFacts | None:
    """This Deployment's newest run, by creation (None when it has none)."""
    return max((run for run in own_runs if run.created is not None),
               key=lambda run: (run.created or _EPOCH, run.name), default=None)


def _end_order(run: RunFacts) -> tuple[datetime, str]:
    return (run.end or _EPOCH, run.name)


def map_parameters(templates: Mapping[str, str], upstream: Mapping[str, Any], *,
                   field: str) -> dict[str, Any]:
    """The triggered run's parameters: each template rendered over the upstream run
    (:func:`~headwater_operator.templating.flowrun_context`); raises
    :class:`~headwater_operator.templating.TemplateError` naming ``field.<name>``."""
    context = flowrun_context(upstream)
    return {name: render(template, context, field=f"{field}.{name}")
            for name, template in templates.items()}


def build_triggered_run(
    deployment: Mapping[str, Any], *, name: str, trigger: str, kind: FlowRunTrigger,
    upstream: Sequence[RunFacts], parameters: Mapping[str, Any],
) -> dict[str, Any]:
    """The FlowRun a trigger creates (owned by its Deployment, naming its provenance).

    ``upstream`` is what triggered it, newest last: the label names the newest, the
    annotation every one of them.
    """
    return deployment_run(
        deployment, name=name, parameters=parameters, trigger=kind.value,
        labels={LABEL_TRIGGERED_BY: label_value(upstream[-1].name)},
        annotations={ANNOTATION_TRIGGER_ID: trigger, ANNOTATION_TRIGGERED_BY: ",".join(
            f"{run.name}/{run.uid}" for run in upstream)})


@dataclass(frozen=True)
class DueRun:
    """A run one of a Deployment's triggers calls for (it may exist already)."""

    name: str
    trigger: str
    """:func:`trigger_id` of the trigger."""
    kind: FlowRunTrigger
    upstream: tuple[RunFacts, ...]
    """What triggered it, newest last."""
    templates: Mapping[str, str]
    """The trigger's ``parameters`` templates."""
    field: str
    """Where those templates are, for errors: ``spec.triggers[0].afterDeployment.parameters``."""


def due_runs(deployment: Mapping[str, Any], runs: Iterable[RunFacts],
             since: Mapping[str, datetime],
             covered: Mapping[str, frozenset[str]] | None = None) -> list[DueRun]:
    """Every run the triggers of ``deployment`` call for, given the namespace's ``runs``
    and each trigger's ``since`` and ``covered`` (by :func:`trigger_id`, from
    ``status.triggers``); a paused Deployment's none.

    Runs that exist already are included: the caller skips the names it finds.
    """
    spec, name = deployment.get("spec") or {}, deployment["metadata"]["name"]
    if spec.get("paused"):
        return []
    runs = list(runs)
    due: list[DueRun] = []
    for index, trigger in enumerate(spec.get("triggers") or ()):
        identity = trigger_id(trigger)
        if "afterDeployment" in trigger:
            field = f"spec.triggers[{index}].afterDeployment.parameters"
            templates = trigger["afterDeployment"].get("parameters") or {}
            due.extend(DueRun(triggered_run_name(name, identity, [upstream.uid]), identity,
                              FlowRunTrigger.DEPLOYMENT, (upstream,), templates, field)
                       for upstream in after_deployment_events(
                           trigger, runs, since[identity], handled_mark(name, identity)))
            continue
        own = [run for run in runs if run.deployment == name]
        fresh = fresh_materializations(upstream_keys(trigger, own), runs, deployment=name,
                                       since=since[identity], own=own,
                                       covered=(covered or {}).get(identity, frozenset()))
        if fresh is not None:
            upstream = tuple(sorted({run.name: run for run in fresh.values()}.values(),
                                    key=_end_order))
            due.append(DueRun(
                triggered_run_name(name, identity, [run.uid for run in upstream]), identity,
                FlowRunTrigger.ASSET, upstream, trigger["assets"].get("parameters") or {},
                f"spec.triggers[{index}].assets.parameters"))
    return due


def since_of(deployment: Mapping[str, Any], now: datetime,
             status: Mapping[str, Any] | None = None) -> dict[str, datetime]:
    """Each trigger's ``since`` (by :func:`trigger_id`), from ``status`` (default: the
    Deployment's own; see :func:`since_for`)."""
    meta = deployment["metadata"]
    found = deployment.get("status") or {} if status is None else status
    return {trigger_id(t): since_for(trigger_id(t), found, meta, now)
            for t in (deployment.get("spec") or {}).get("triggers") or ()}


def covered_of(status: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Each trigger's ``covered`` runs (uids) from ``status.triggers``."""
    return {str(entry.get("trigger")): frozenset(entry.get("covered") or ())
            for entry in status.get("triggers") or ()}


def since_for(trigger: str, status: Mapping[str, Any], metadata: Mapping[str, Any],
              now: datetime) -> datetime:
    """Since when ``trigger`` counts upstream runs: its ``status.triggers`` entry, else
    the Deployment's creation when the trigger was there from the start (generation 1),
    else ``now`` (the trigger was added by an edit just seen)."""
    for entry in status.get("triggers") or ():
        since = parse_time(entry.get("since")) if entry.get("trigger") == trigger else None
        if since is not None:
            return since
    created = parse_time(metadata.get("creationTimestamp"))
    if metadata.get("generation") == 1 and created is not None:
        return created
    return now
