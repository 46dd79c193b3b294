"""``Schedule``: when a Deployment runs (cron, fixed interval or RFC 5545 recurrence)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    field_validator,
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
from headwater_operator.api.enums import CatchupPolicy, ConcurrencyPolicy, WindowFormat
from headwater_operator.api.errors import FieldValueError
from headwater_operator.api.expressions import (
    CRON_PATTERN,
    INTERVAL_PATTERN,
    check_cron,
    check_interval,
    check_rrule,
    check_timezone,
)
from headwater_operator.api.resource import (
    AGE_COLUMN,
    PrinterColumn,
    Resource,
    name_length_rule,
    name_limit_message,
)

SCHEDULE_NAME_MAX_LENGTH = 52
"""Run names are ``<schedule>-<10-digit tick>``; 52 + 11 = 63 keeps them valid labels."""

_NAME_LIMIT_WHY = "so run names derived from them fit"

SCHEDULE_KINDS = ("cron", "interval", "rrule")

_PARAMETER_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class CatchupSpec(SpecModel):
    """What to do about ticks missed while the operator was down or the Schedule suspended."""

    policy: CatchupPolicy = Field(
        default=CatchupPolicy.LATEST,
        description="`None` skips missed ticks, `Latest` runs only the most recent one, "
        "`All` runs each (up to `maxRuns`). Only ticks inside `startingDeadlineSeconds` "
        "count. Default `Latest`.",
    )
    max_runs: StrictInt = Field(
        default=100,
        ge=1,
        description="Most missed ticks run at once under `All`; the oldest beyond it are "
        "skipped and counted in `status.missedTicks`. Default 100.",
    )


class WindowParameters(SpecModel):
    """Bind each tick's window [previous tick, this tick) to flow parameters."""

    start: str | None = Field(
        default=None,
        pattern=_PARAMETER_NAME,
        description="Parameter that receives the window start (the previous tick), e.g. "
        "`start_date`.",
    )
    end: str | None = Field(
        default=None,
        pattern=_PARAMETER_NAME,
        description="Parameter that receives the window end (this tick), e.g. `end_date`.",
    )
    format: WindowFormat = Field(
        default=WindowFormat.DATE_TIME,
        description="`Date` passes `YYYY-MM-DD`, `DateTime` an RFC 3339 timestamp, both in "
        "the Schedule's timezone. Default `DateTime`.",
    )

    @model_validator(mode="after")
    def _some_binding(self) -> WindowParameters:
        if self.start is None and self.end is None:
            raise ValueError("set `start`, `end` or both to name the parameters to bind")
        return self


WINDOW_PARAMETERS_RULES: list[JsonValue] = [
    {"rule": "has(self.start) || has(self.end)", "message": "set start, end or both"}
]


class ScheduleSpec(SpecModel):
    """Desired state of a Schedule. Exactly one of `cron`, `interval` or `rrule` is set."""

    # pydantic merges this with SpecModel's config; the rules become CRD CEL validations.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.cron), has(self.interval), has(self.rrule)]"
                    ".filter(x, x).size() == 1",
                    "message": "set exactly one of spec.cron, spec.interval or spec.rrule",
                },
                {
                    "rule": "!has(self.anchorTime) || has(self.interval)",
                    "message": "only allowed with spec.interval",
                    "fieldPath": ".anchorTime",
                },
            ]
        }
    )

    deployment_ref: LocalObjectReference = Field(
        description="The Deployment to run, in the same namespace, e.g. `{name: hello}`."
    )
    cron: str | None = Field(
        default=None,
        pattern=CRON_PATTERN,
        max_length=128,
        description="Five-field cron expression (minute hour day-of-month month "
        "day-of-week) or a macro (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`), "
        "evaluated in `timezone`, e.g. `0 6 * * 1-5`.",
    )
    interval: str | None = Field(
        default=None,
        pattern=INTERVAL_PATTERN,
        min_length=2,
        max_length=32,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self.matches('[1-9]')", "message": "must be greater than zero"}
            ]
        },
        description="Fixed interval between runs: a duration such as `90s`, `15m`, `1h30m` "
        "or `1d` (a day is 24 hours), counted from `anchorTime`.",
    )
    rrule: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="RFC 5545 recurrence rule, e.g. `FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=6;"
        "BYMINUTE=0`, evaluated in `timezone`.",
    )
    anchor_time: AwareDatetime | None = Field(
        default=None,
        description="Instant the `interval` ticks are aligned to (RFC 3339), e.g. "
        "`2024-01-01T00:30:00Z` for half past each hour. Only with `interval`; unset "
        "aligns to 2000-01-01T00:00 in `timezone` (`1h` ticks on the hour, `15m` on the "
        "quarter hour, `1d` at local midnight).",
    )
    timezone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_+\-/]+$",
        description="IANA time zone the expression is evaluated in, e.g. `Europe/Berlin`. "
        "Daylight-saving changes follow the zone. Default `UTC`.",
    )
    parameters: FreeForm = Field(
        default_factory=dict,
        description="Parameter values merged over the Deployment's for runs of this Schedule.",
    )
    suspend: StrictBool = Field(
        default=False,
        description="When true, no new runs are created; ticks missed meanwhile follow "
        "`catchup` on resume. Default false.",
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        default=ConcurrencyPolicy.ALLOW,
        description="When a tick fires while this Schedule's previous run is active: "
        "`Allow` starts another, `Forbid` skips the tick, `Replace` cancels the active run "
        "and starts the new one. Default `Allow`.",
    )
    starting_deadline_seconds: StrictInt | None = Field(
        default=None,
        ge=0,
        description="A tick more than this many seconds in the past is never run (it is "
        "counted as missed). Unset means no deadline.",
    )
    catchup: CatchupSpec = Field(
        default_factory=CatchupSpec,
        description="Which missed ticks to run after downtime or suspension.",
    )
    window_parameters: WindowParameters | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-validations": WINDOW_PARAMETERS_RULES},
        description="Pass each tick's window [previous tick, this tick) to the flow as "
        "parameters, e.g. `{start: start_date, end: end_date, format: Date}`.",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        return None if value is None else check_interval(value)

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, value: str | None) -> str | None:
        return None if value is None else check_rrule(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _one_expression(self) -> ScheduleSpec:
        chosen = [name for name in SCHEDULE_KINDS if getattr(self, name) is not None]
        if len(chosen) != 1:
            found = " and ".join(f"spec.{name}" for name in chosen) or "none"
            raise ValueError(
                f"set exactly one of spec.cron, spec.interval or spec.rrule (found {found})"
            )
        if self.anchor_time is not None and self.interval is None:
            raise ValueError("spec.anchorTime is only allowed with spec.interval")
        return self

    @property
    def expression(self) -> str:
        """The schedule in one human-readable string, as shown in ``kubectl get``."""
        if self.cron is not None:
            return self.cron
        if self.interval is not None:
            return f"every {self.interval}"
        return f"rrule {self.rrule}"


class ActiveRun(StatusModel):
    """A run of this Schedule that has not finished yet."""

    name: str = Field(description="Name of the FlowRun.")
    scheduled_time: datetime | None = Field(default=None, description="The tick it runs for.")


class ScheduleStatus(StatusModel):
    """Observed state of a Schedule, written by the operator."""

    conditions: list[Condition] = Field(
        default_factory=list, description="Current conditions, e.g. `Ready`, `MissedTicks`."
    )
    observed_generation: StrictInt | None = Field(
        default=None, description="The `metadata.generation` the operator last acted on."
    )
    expression: str | None = Field(
        default=None,
        description="The schedule in one readable string (shown by `kubectl get`).",
    )
    last_schedule_time: datetime | None = Field(
        default=None,
        description="The newest tick the operator handled: run, or skipped by policy, "
        "deadline or `concurrencyPolicy: Forbid` (counted in `missedTicks`).",
    )
    next_schedule_time: datetime | None = Field(
        default=None,
        description="The next tick; unset while suspended, invalid, or while the "
        "Deployment is missing or paused.",
    )
    last_successful_time: datetime | None = Field(
        default=None, description="When a run of this Schedule last completed."
    )
    active: list[ActiveRun] = Field(
        default_factory=list, description="Runs of this Schedule that are not finished."
    )
    schedule_fingerprint: str | None = Field(
        default=None,
        description="Hash of expression, timezone and anchor the last tick used; a change "
        "means the schedule was edited.",
    )
    missed_ticks: StrictInt = Field(
        default=0, ge=0, description="Ticks skipped by policy or deadline, cumulative."
    )


class Schedule(Resource):
    """When a Deployment runs. Each tick creates one FlowRun with a deterministic name."""

    KIND: ClassVar[str] = "Schedule"
    PLURAL: ClassVar[str] = "schedules"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("hwsched", "hws")
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = (
        PrinterColumn("Expression", ".status.expression", "string", "When it fires."),
        PrinterColumn("Timezone", ".spec.timezone", "string", "Zone of the expression."),
        PrinterColumn("Suspended", ".spec.suspend", "boolean", "Whether ticks are held."),
        PrinterColumn("Last", ".status.lastScheduleTime", "date", "Last tick run."),
        # A string, not a date: kubectl prints a date as its age, and a future time
        # (the next tick always is) as "<invalid>".
        PrinterColumn("Next", ".status.nextScheduleTime", "string", "Next tick (UTC)."),
        PrinterColumn("Deployment", ".spec.deploymentRef.name", "string", "What runs.", 1),
        AGE_COLUMN,
    )
    ROOT_VALIDATIONS: ClassVar[tuple[dict[str, str], ...]] = (
        name_length_rule("Schedule", SCHEDULE_NAME_MAX_LENGTH, _NAME_LIMIT_WHY),
    )

    kind: Literal["Schedule"] = Field(
        default="Schedule", description="Kind of this object: `Schedule`."
    )
    metadata: ObjectMeta = Field(
        default_factory=ObjectMeta, description="Standard metadata; name ≤ 52 characters."
    )
    spec: ScheduleSpec = Field(description="Desired state: when and what to run.")
    status: ScheduleStatus = Field(
        default_factory=ScheduleStatus, description="Observed state, written by the operator."
    )

    @field_validator("metadata")
    @classmethod
    def _short_name(cls, meta: ObjectMeta) -> ObjectMeta:
        if meta.name is not None and len(meta.name) > SCHEDULE_NAME_MAX_LENGTH:
            raise FieldValueError("name", name_limit_message(
                "Schedule", SCHEDULE_NAME_MAX_LENGTH, _NAME_LIMIT_WHY) + (
                f"; {meta.name!r} has {len(meta.name)}"))
        return meta
