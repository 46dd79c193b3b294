"""Pure decisions behind ``Flow.status`` and ``Deployment.status``.

A Flow is **Ready** when its spec parses, its entrypoint has the right shape, its
``parametersSchema`` is a valid JSON Schema (checked against the schema's own
meta-schema, the way ``jsonschema`` does it) and its default ``parameters`` satisfy that
schema.

A Deployment is **Ready** when its spec parses, its Flow exists and is itself Ready
(judged from the Flow's *spec*, so the answer never depends on which of the two objects
the operator happened to reconcile first) and its ``parameters`` satisfy the Flow's
schema. A paused Deployment stays Ready: pausing is a deliberate, healthy state, and
GitOps health checks (Argo CD, Flux) key off ``Ready``, so a pause must not show as
degraded. Pausing is reported by a separate ``Paused`` condition instead (True with
reason ``DeploymentPaused``, False with reason ``Active``), and the FlowRun lifecycle
holds new runs while it is true.

Partial parameters are normal here: a Deployment may leave a required parameter for
each FlowRun or Schedule to supply, so ``required`` is not enforced on defaults — only
the values that are given are checked. The complete, merged set is validated by FlowRun
admission.

The Deployment's run counts come from the FlowRuns whose ``spec.deploymentRef.name``
names it (see :class:`RunFacts`): ``activeRuns`` counts runs that hold or are about to
hold a pod (Pending, Running, AwaitingRetry, Retrying, Cancelling); ``queuedRuns``
counts AwaitingConcurrencySlot; ``lastRun`` is the most recently created run.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError

from headwater_operator import reasons
from headwater_operator.api import DeploymentSpec, FlowSpec, format_validation_error
from headwater_operator.api.flow import check_entrypoint
from headwater_operator.conditions import Condition, make_condition, set_conditions

READY = "Ready"
PAUSED = "Paused"

ACTIVE_PHASES: frozenset[str] = frozenset(
    {"Pending", "Running", "AwaitingRetry", "Retrying", "Cancelling"}
)
QUEUED_PHASES: frozenset[str] = frozenset({"AwaitingConcurrencySlot"})


@dataclass(frozen=True)
class Verdict:
    """Outcome of a validity check: Ready or not, with the reason and a message."""

    ready: bool
    reason: str
    message: str

    def condition(self, generation: int | None) -> Condition:
        """The ``Ready`` condition that reports this verdict."""
        return make_condition(
            READY, self.ready, self.reason, self.message, observed_generation=generation
        )


def check_flow(name: str, spec: Mapping[str, Any]) -> Verdict:
    """Judge a Flow's ``spec`` (wire form); the message says what is wrong and the fix."""
    entrypoint = spec.get("entrypoint")
    if isinstance(entrypoint, str):
        # Checked first and on its own: the model's regex error does not show the
        # accepted forms, this check's message does.
        try:
            check_entrypoint(entrypoint)
        except ValueError as exc:
            return Verdict(
                False, reasons.INVALID_ENTRYPOINT, f"Flow {name!r}: spec.entrypoint: {exc}"
            )
    try:
        parsed = FlowSpec.model_validate(dict(spec))
    except ValidationError as exc:
        problems = format_validation_error(exc)
        entrypoint_only = all(p.startswith("entrypoint") for p in problems)
        return Verdict(
            False,
            reasons.INVALID_ENTRYPOINT if entrypoint_only else reasons.INVALID_SPEC,
            f"Flow {name!r}: " + "; ".join(f"spec.{p}" for p in problems),
        )
    schema = parsed.parameters_schema
    if schema is not None:
        problem = schema_problem(schema)
        if problem is not None:
            return Verdict(
                False,
                reasons.INVALID_PARAMETERS_SCHEMA,
                f"Flow {name!r}: spec.parametersSchema is not a valid JSON Schema: {problem}. "
                "Regenerate it from the flow function with `headwater schema`.",
            )
        problem = parameters_problem(schema, parsed.parameters, "spec.parameters")
        if problem is not None:
            return Verdict(
                False,
                reasons.INVALID_PARAMETERS,
                f"Flow {name!r}: {problem}. Fix the default or the schema.",
            )
    return Verdict(True, reasons.VALID, f"Flow {name!r} is valid; Deployments can run it.")


def check_deployment(
    name: str, spec: Mapping[str, Any], flow_spec: Mapping[str, Any] | None
) -> Verdict:
    """Judge a Deployment's ``spec`` against its Flow's spec (None: the Flow is absent)."""
    try:
        parsed = DeploymentSpec.model_validate(dict(spec))
    except ValidationError as exc:
        problems = format_validation_error(exc)
        return Verdict(
            False,
            reasons.INVALID_SPEC,
            f"Deployment {name!r}: " + "; ".join(f"spec.{p}" for p in problems),
        )
    flow_name = parsed.flow_ref.name
    if flow_spec is None:
        return Verdict(
            False,
            reasons.FLOW_NOT_FOUND,
            f"Flow {flow_name!r} (spec.flowRef.name) does not exist in this namespace: "
            "apply the Flow or fix the name. Runs of this Deployment wait until it exists.",
        )
    flow = check_flow(flow_name, flow_spec)
    if not flow.ready:
        return Verdict(
            False,
            reasons.FLOW_NOT_READY,
            f"Flow {flow_name!r} is not ready ({flow.reason}): {flow.message}",
        )
    schema = flow_spec.get("parametersSchema")
    if isinstance(schema, Mapping):
        problem = parameters_problem(schema, parsed.parameters, "spec.parameters")
        if problem is not None:
            return Verdict(
                False,
                reasons.INVALID_PARAMETERS,
                f"Deployment {name!r}: {problem} (schema from Flow {flow_name!r}).",
            )
    return Verdict(True, reasons.VALID, f"Flow {flow_name!r} is ready; runs can start.")


def paused_condition(paused: bool, generation: int | None) -> Condition:
    """The ``Paused`` condition of a Deployment."""
    if paused:
        return make_condition(
            PAUSED,
            True,
            reasons.DEPLOYMENT_PAUSED,
            "spec.paused is true: new runs are held until it is set to false; "
            "runs already started continue.",
            observed_generation=generation,
        )
    return make_condition(
        PAUSED, False, reasons.DEPLOYMENT_ACTIVE, "New runs start.", observed_generation=generation
    )


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why ``schema`` is not a usable parameters schema, or None when it is.

    Uses the meta-schema of the draft the schema declares (``$schema``; the latest
    draft otherwise). Parameters are always a JSON object, so a schema whose top-level
    ``type`` says otherwise is rejected too.
    """
    validator = jsonschema.validators.validator_for(schema)
    try:
        validator.check_schema(dict(schema))
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        return f"{exc.message} (at {where or 'the top level'})"
    declared = schema.get("type")
    if declared is not None and declared != "object":
        return f"top-level 'type' must be 'object' (parameters are named), got {declared!r}"
    return None


def parameters_problem(
    schema: Mapping[str, Any], parameters: Mapping[str, Any], field: str
) -> str | None:
    """The first way ``parameters`` (a partial set) break ``schema``, or None.

    ``required`` is ignored at the top level: a partial set may leave a parameter to a
    later layer. The message names the parameter, e.g. ``spec.parameters.limit: 'x' is
    not of type 'integer'``.
    """
    partial = copy.deepcopy(dict(schema))
    partial.pop("required", None)
    validator_cls = jsonschema.validators.validator_for(partial)
    error = jsonschema.exceptions.best_match(validator_cls(partial).iter_errors(dict(parameters)))
    if error is None:
        return None
    path = ".".join([field, *(str(part) for part in error.absolute_path)])
    return f"{path}: {error.message}"


@dataclass(frozen=True)
class RunFacts:
    """What a Deployment's status and history need from one of its FlowRuns (kept by
    the Deployment controller from the FlowRun watch)."""

    name: str
    phase: str | None
    created: str
    """``metadata.creationTimestamp`` as written by the API server (RFC 3339)."""
    scheduled_time: str | None = None
    end_time: str | None = None
    record_urls: tuple[str, ...] = ()
    """``status.runRecords[*].url``: where its attempts' run records are (pruning deletes
    them with the run)."""
    schedule: str | None = None
    """The Schedule that made it (its ``headwater.dev/schedule`` label), if any."""
    tick: str | None = None
    """Its ``spec.scheduledTime``: for a Schedule's run, the tick it is the run of
    (pruning keeps it until the Schedule has recorded that tick)."""


def run_counts(runs: Iterable[RunFacts]) -> tuple[int, int]:
    """``(activeRuns, queuedRuns)`` of a Deployment."""
    phases = [run.phase for run in runs]
    active = sum(1 for phase in phases if phase in ACTIVE_PHASES)
    queued = sum(1 for phase in phases if phase in QUEUED_PHASES)
    return active, queued


def last_run(runs: Iterable[RunFacts]) -> dict[str, Any] | None:
    """``status.lastRun``: the most recently created run (ties broken by name)."""
    latest = max(runs, key=lambda run: (run.created, run.name), default=None)
    if latest is None:
        return None
    summary: dict[str, Any] = {"name": latest.name}
    for key, value in (
        ("phase", latest.phase),
        ("scheduledTime", latest.scheduled_time),
        ("endTime", latest.end_time),
    ):
        if value is not None:
            summary[key] = value
    return summary


def flow_status(
    name: str,
    spec: Mapping[str, Any],
    *,
    generation: int | None,
    current: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The complete desired ``Flow.status``; equal to ``current`` when nothing changed."""
    current = current or {}
    verdict = check_flow(name, spec)
    return {
        "observedGeneration": generation,
        "conditions": set_conditions(
            current.get("conditions"), [verdict.condition(generation)], now
        ),
    }


def deployment_status(
    name: str,
    spec: Mapping[str, Any],
    *,
    generation: int | None,
    current: Mapping[str, Any] | None,
    flow_spec: Mapping[str, Any] | None,
    runs: Iterable[RunFacts],
    now: datetime,
    verdict: Verdict | None = None,
) -> dict[str, Any]:
    """The complete desired ``Deployment.status``; equal to ``current`` when nothing changed.

    ``lastRun`` is omitted (not nulled) when there are no runs, so a fresh Deployment's
    status does not flap between ``null`` and absent. ``verdict`` is
    :func:`check_deployment`'s for this very ``name``, ``spec`` and ``flow_spec``, if the
    caller kept it (it is computed otherwise).
    """
    current = current or {}
    runs = list(runs)
    if verdict is None:
        verdict = check_deployment(name, spec, flow_spec)
    active, queued = run_counts(runs)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": set_conditions(
            current.get("conditions"),
            [verdict.condition(generation), paused_condition(bool(spec.get("paused")), generation)],
            now,
        ),
        "activeRuns": active,
        "queuedRuns": queued,
    }
    latest = last_run(runs)
    if latest is not None:
        status["lastRun"] = latest
    return status


def status_patch(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that turns ``current`` into ``desired`` (empty: nothing to do).

    Only the keys this module owns are compared; a key in ``current`` that ``desired``
    lacks among them (``lastRun`` after every run was deleted) is nulled.
    """
    current = current or {}
    patch: dict[str, Any] = {key: value for key, value in desired.items()
                             if current.get(key) != value}
    if "lastRun" in current and "lastRun" not in desired and "activeRuns" in desired:
        patch["lastRun"] = None
    return patch


__all__ = [
    "ACTIVE_PHASES",
    "PAUSED",
    "QUEUED_PHASES",
    "READY",
    "RunFacts",
    "Verdict",
    "check_deployment",
    "check_flow",
    "deployment_status",
    "flow_status",
    "last_run",
    "parameters_problem",
    "paused_condition",
    "run_counts",
    "schema_problem",
    "status_patch",
]
