"""``FlowRun``: one run of a Deployment (or directly of a Flow), and its observed outcome."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)

from headwater_operator.api.common import (
    Condition,
    FreeForm,
    LocalObjectReference,
    ObjectMeta,
    SpecModel,
    StatusModel,
)
from headwater_operator.api.enums import FlowRunPhase, FlowRunTrigger
from headwater_operator.api.resource import AGE_COLUMN, PrinterColumn, Resource

# What a run executes cannot change under it; the API server enforces this on update.
_IMMUTABLE: dict[str, JsonValue] = {
    "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "is immutable"}]
}


class FlowRunSpec(SpecModel):
    """Desired state of a FlowRun: what to run, with which parameters, and when."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.deploymentRef) != has(self.flowRef)",
                    "message": "set exactly one of spec.deploymentRef or spec.flowRef",
                },
                # Each reference's own `self == oldSelf` holds only while it exists on both
                # sides: a transition rule is not evaluated where the old object has no
                # value (apiextensions-apiserver pkg/apiserver/schema/cel/validation.go),
                # so removing one reference and adding the other passed. Here, on spec,
                # which always exists on both sides, the swap is caught.
                {
                    "rule": "has(self.deploymentRef) == has(oldSelf.deploymentRef) && "
                    "has(self.flowRef) == has(oldSelf.flowRef)",
                    "message": "spec.deploymentRef and spec.flowRef cannot be swapped, "
                    "added or removed: what a run executes is fixed at creation; create "
                    "a new FlowRun instead",
                },
            ]
        }
    )

    deployment_ref: LocalObjectReference | None = Field(
        default=None,
        json_schema_extra=_IMMUTABLE,
        description="The Deployment to run, in the same namespace, e.g. `{name: hello}`. "
        "Exactly one of `deploymentRef` and `flowRef` is set.",
    )
    flow_ref: LocalObjectReference | None = Field(
        default=None,
        json_schema_extra=_IMMUTABLE,
        description="Run a Flow directly with its own defaults, without a Deployment. "
        "Exactly one of `deploymentRef` and `flowRef` is set.",
    )
    parameters: FreeForm = Field(
        default_factory=dict,
        description="Parameter values for this run, merged over the Deployment's (or "
        "Flow's), e.g. `{name: Ada}`.",
    )
    scheduled_time: AwareDatetime | None = Field(
        default=None,
        description="When the run should start (RFC 3339). Unset means now. A time in the "
        "future keeps the run `Scheduled` until then.",
    )
    cancel: StrictBool = Field(
        default=False,
        description="Set to true to cancel the run: the pod gets SIGTERM and the run ends "
        "`Cancelled`. Default false.",
    )
    retries: StrictInt | None = Field(
        default=None, ge=0, description="Overrides the Deployment's `retries` for this run."
    )
    timeout_seconds: StrictInt | None = Field(
        default=None,
        ge=1,
        description="Overrides the Deployment's `timeoutSeconds` for this run.",
    )
    trigger: FlowRunTrigger | None = Field(
        default=None,
        description="How the run came to be: `schedule`, `backfill`, `cli` or `manual` "
        "(informational).",
    )

    @model_validator(mode="after")
    def _one_reference(self) -> FlowRunSpec:
        if (self.deployment_ref is None) == (self.flow_ref is None):
            found = "both" if self.deployment_ref is not None else "neither"
            raise ValueError(
                f"set exactly one of spec.deploymentRef or spec.flowRef (found {found})"
            )
        return self


class AssetStatus(StatusModel):
    """An asset the run materialized, with its lineage."""

    key: str = Field(description="Asset key, e.g. `s3://lake/orders/2024-05-01.parquet`.")
    version: str | None = Field(default=None, description="Version written by this run.")
    upstream: list[str] = Field(
        default_factory=list, description="Keys of the assets it was computed from."
    )


class FlowRunStatus(StatusModel):
    """Observed state of a FlowRun, written by the operator from the pod and run summary."""

    phase: FlowRunPhase | None = Field(
        default=None,
        description="Where the run is: Scheduled, Late, AwaitingConcurrencySlot, Pending, "
        "Running, AwaitingRetry, Retrying, Cancelling, or finally Completed, Failed "
        "(code failed), Crashed (infrastructure failed) or Cancelled.",
    )
    reason: str | None = Field(
        default=None, description="CamelCase reason for the phase, e.g. `OOMKilled`."
    )
    message: str | None = Field(
        default=None, description="What happened and what to do about it."
    )
    attempts: StrictInt = Field(default=0, ge=0, description="Pods started so far (1 + retries).")
    pod_name: str | None = Field(default=None, description="Pod of the current attempt.")
    scheduled_time: datetime | None = Field(
        default=None, description="When the run was due (the tick, for scheduled runs)."
    )
    start_time: datetime | None = Field(
        default=None, description="When the first attempt started running."
    )
    end_time: datetime | None = Field(default=None, description="When the run finished.")
    duration_seconds: StrictFloat | None = Field(
        default=None, ge=0, description="Seconds from startTime to endTime."
    )
    next_attempt_time: datetime | None = Field(
        default=None, description="When the next retry starts, while AwaitingRetry."
    )
    task_runs: dict[str, int] = Field(
        default_factory=dict,
        description="Task runs by final state, e.g. `{Completed: 9, Failed: 1}`.",
    )
    assets: list[AssetStatus] = Field(
        default_factory=list, description="Assets the run materialized."
    )
    artifacts: list[str] = Field(
        default_factory=list, description="Keys of artifacts the run created."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Current conditions."
    )
    observed_generation: StrictInt | None = Field(
        default=None, description="The `metadata.generation` the operator last acted on."
    )


class FlowRun(Resource):
    """One run of a flow: created by a Schedule, a backfill, the CLI or `kubectl create`."""

    KIND: ClassVar[str] = "FlowRun"
    PLURAL: ClassVar[str] = "flowruns"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("hwrun", "hwr")
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = (
        PrinterColumn("Phase", ".status.phase", "string", "Where the run is."),
        PrinterColumn("Deployment", ".spec.deploymentRef.name", "string", "What runs."),
        PrinterColumn("Scheduled", ".status.scheduledTime", "date", "When it was due."),
        PrinterColumn("Started", ".status.startTime", "date", "When it started."),
        PrinterColumn("Duration", ".status.durationSeconds", "number", "Seconds it ran."),
        PrinterColumn("Reason", ".status.reason", "string", "Why it is in this phase.", 1),
        AGE_COLUMN,
    )

    kind: Literal["FlowRun"] = Field(
        default="FlowRun", description="Kind of this object: `FlowRun`."
    )
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard metadata.")
    spec: FlowRunSpec = Field(description="Desired state: what to run, how and when.")
    status: FlowRunStatus = Field(
        default_factory=FlowRunStatus, description="Observed state, written by the operator."
    )
