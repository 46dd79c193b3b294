"""The effective settings of one FlowRun, resolved from its FlowRun, Deployment and Flow.

Precedence is always "most specific wins": FlowRun > Deployment > Flow > built-in
default. Parameters merge key by key in the order Flow defaults < Deployment < FlowRun;
a Schedule's parameters reach us already merged into ``FlowRun.spec.parameters`` because
the scheduler writes them there when it creates the run (the FlowRun carries no
reference to its Schedule besides a label, and must be reproducible from its own spec).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from headwater import runstore
from jsonschema import exceptions as jsonschema_exceptions
from jsonschema import validators

from headwater_operator.api import Deployment, Flow, FlowRun, RetryCause
from headwater_operator.api.deployment import ConcurrencySpec
from headwater_operator.flowruns.inputs import NO_INPUTS, RunInputs
from headwater_operator.flowruns.retry import RetryPolicy

DEFAULT_PENDING_TIMEOUT_SECONDS = 600
DEFAULT_LATE_AFTER_SECONDS = 60
DEFAULT_CANCEL_GRACE_SECONDS = 30
DEFAULT_CONFIG_ERROR_GRACE = timedelta(seconds=60)
"""How long a run waits for a missing Secret or ConfigMap (or key) its pod needs, from the
pod's creation, before it crashes; an operator-wide setting (``--config-error-grace-
seconds``), never longer than the Deployment's ``pendingTimeoutSeconds``."""
CANCEL_DEADLINE_MARGIN = timedelta(seconds=30)
"""Extra time past the grace period before a Cancelling run is forced to Cancelled."""


@dataclass(frozen=True)
class RunSettings:
    """Everything the lifecycle decisions need to know about one run's configuration."""

    flow: Flow
    deployment: Deployment | None
    parameters: dict[str, Any]
    retry: RetryPolicy
    timeout_seconds: int | None
    pending_timeout: timedelta = timedelta(seconds=DEFAULT_PENDING_TIMEOUT_SECONDS)
    late_after: timedelta = timedelta(seconds=DEFAULT_LATE_AFTER_SECONDS)
    cancel_grace_seconds: int = DEFAULT_CANCEL_GRACE_SECONDS
    concurrency: ConcurrencySpec | None = None
    paused: bool = False
    config_error_grace: timedelta = DEFAULT_CONFIG_ERROR_GRACE
    """See :data:`DEFAULT_CONFIG_ERROR_GRACE` (the operator's setting, not a spec field)."""
    run_store: str | None = None
    """Root of the run store the run's pods write their records to (:func:`run_store_root`),
    passed to them as ``HEADWATER_RUN_STORE``; None: no store, the record stays in the pod;
    ``off``: the pods write none."""
    ui_url: str | None = None
    """The Headwater UI's public address (the operator's ``--ui-url``), passed to the
    pods as ``HEADWATER_UI_URL``."""
    inputs: RunInputs = NO_INPUTS
    """The declared blocks and variables, resolved by the controller when the run is
    about to get a pod (:mod:`headwater_operator.flowruns.inputs`)."""

    @property
    def record_root(self) -> str | None:
        """The store root ``status.runRecords`` locations are under (None: no record is
        kept outside the pod)."""
        root = self.run_store
        return None if root is None or root.strip().lower() == runstore.OFF else root

    @property
    def declared_blocks(self) -> list[str]:
        """The blocks the Deployment declares (``spec.blocks``)."""
        return list(self.deployment.spec.blocks) if self.deployment else []

    @property
    def declared_variables(self) -> list[str]:
        """The variables the Deployment declares (``spec.variables``)."""
        return list(self.deployment.spec.variables) if self.deployment else []

    @property
    def deployment_name(self) -> str:
        """Name of the Deployment, or ``""`` for a FlowRun that references a Flow directly."""
        return self.deployment.metadata.name or "" if self.deployment else ""


def merge_parameters(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge parameter objects, later layers winning key by key (no deep merge).

    Parameters are flow-function arguments: a nested dict is one argument's value, so
    replacing it whole is what a user who overrides it means.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    return merged


def _error_location(error: jsonschema_exceptions.ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    return f"parameter {path!r}" if path else "parameters"


def parameter_errors(parameters: Mapping[str, Any], schema: Mapping[str, Any] | None) -> list[str]:
    """Check ``parameters`` against the Flow's JSON schema; one message per problem.

    Messages name the parameter and say where to fix it; an empty list means valid.
    A schema that is itself invalid is reported too (the Flow's Ready condition says so
    as well), because running with unchecked parameters would hide the problem.
    """
    if not schema:
        return []
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(dict(schema))
    except jsonschema_exceptions.SchemaError as exc:
        return [f"Flow.spec.parametersSchema is not a valid JSON schema: {exc.message}"]
    validator = cls(schema)
    errors = sorted(validator.iter_errors(dict(parameters)), key=lambda e: list(e.absolute_path))
    return [
        f"{_error_location(err)}: {err.message} (set it in FlowRun.spec.parameters, "
        "Deployment.spec.parameters or Flow.spec.parameters)"
        for err in errors
    ]


def _retry_policy(flow: Flow, deployment: Deployment | None, run: FlowRun) -> RetryPolicy:
    dspec = deployment.spec if deployment else None
    retries = run.spec.retries
    if retries is None:
        retries = dspec.retries if dspec and dspec.retries is not None else flow.spec.retries
    delay = flow.spec.retry_delay_seconds
    if dspec and dspec.retry_delay_seconds is not None:
        delay = dspec.retry_delay_seconds
    return RetryPolicy(
        retries=retries,
        delay_seconds=float(delay),
        backoff_factor=dspec.retry_backoff_factor if dspec else 1.0,
        max_delay_seconds=float(
            dspec.retry_max_delay_seconds
            if dspec and dspec.retry_max_delay_seconds is not None
            else 24 * 3600
        ),
        retry_on=frozenset(dspec.retry_on) if dspec else frozenset(RetryCause),
    )


def run_store_root(deployment: Deployment | None, default: str | None) -> str | None:
    """The run store of a run: ``Deployment.spec.runStore.url`` (``off``: none at all),
    else its ``resultStorage.url`` (records beside results), else the operator's
    ``--run-store`` (``default``), else None (docs/run-store.md, "Where it is")."""
    dspec = deployment.spec if deployment else None
    if dspec is not None and dspec.run_store is not None:
        return dspec.run_store.url
    if dspec is not None and dspec.result_storage is not None:
        return dspec.result_storage.url
    return default or None


def resolve_settings(flow: Flow, deployment: Deployment | None, run: FlowRun, *,
                     config_error_grace: timedelta = DEFAULT_CONFIG_ERROR_GRACE,
                     default_run_store: str | None = None,
                     ui_url: str | None = None,
                     ) -> RunSettings:
    """Combine FlowRun, Deployment and Flow (and the operator's own settings: the grace for
    a missing Secret, the default run store) into the run's effective settings."""
    dspec = deployment.spec if deployment else None
    timeout = run.spec.timeout_seconds
    if timeout is None:
        timeout = dspec.timeout_seconds if dspec and dspec.timeout_seconds else None
    if timeout is None:
        timeout = flow.spec.timeout_seconds
    return RunSettings(
        flow=flow,
        deployment=deployment,
        parameters=merge_parameters(
            flow.spec.parameters, dspec.parameters if dspec else {}, run.spec.parameters
        ),
        retry=_retry_policy(flow, deployment, run),
        timeout_seconds=timeout,
        pending_timeout=timedelta(
            seconds=dspec.pending_timeout_seconds if dspec else DEFAULT_PENDING_TIMEOUT_SECONDS
        ),
        late_after=timedelta(
            seconds=dspec.late_after_seconds if dspec else DEFAULT_LATE_AFTER_SECONDS
        ),
        cancel_grace_seconds=(
            dspec.cancel_grace_period_seconds if dspec else DEFAULT_CANCEL_GRACE_SECONDS
        ),
        concurrency=dspec.concurrency if dspec else None,
        paused=dspec.paused if dspec else False,
        config_error_grace=config_error_grace,
        run_store=run_store_root(deployment, default_run_store),
        ui_url=ui_url,
    )
