"""The ``headwater.dev/v1alpha1`` API: pydantic models of Flow, Deployment, Schedule, FlowRun,
Block, Variable and ConcurrencyLimit.

These models are the single source of truth: the CRDs in ``crds/`` are generated from
them (``python -m headwater_operator.crdgen``), the operator parses watched objects with
:func:`parse_resource`, and the CLI validates manifests offline with
:func:`headwater_operator.api.validation.validate_manifest`.

Python attributes are snake_case; the wire form is camelCase. Produce it with
``obj.to_wire()`` (``model_dump(mode="json", by_alias=True, exclude_none=True)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from headwater.contract import API_VERSION, GROUP, VERSION
from pydantic import ValidationError

from headwater_operator.api.automation import (
    Action,
    Automation,
    AutomationSpec,
    AutomationStatus,
    LedgerEntry,
)
from headwater_operator.api.block import (
    BLOCK_NAME_MAX_LENGTH,
    BLOCK_TYPE_RULE,
    Block,
    BlockReference,
    BlockSpec,
    SecretKeyReference,
    check_block_name,
)
from headwater_operator.api.common import (
    Condition,
    LocalObjectReference,
    ObjectMeta,
    OwnerReference,
)
from headwater_operator.api.concurrencylimit import (
    CONCURRENCY_LIMIT_NAME_MAX_LENGTH,
    ConcurrencyLimit,
    ConcurrencyLimitSpec,
)
from headwater_operator.api.deployment import (
    ConcurrencySpec,
    Deployment,
    DeploymentSpec,
    DeploymentStatus,
    HistorySpec,
    LastRun,
    ResultStorage,
    RunStore,
    RunTemplate,
)
from headwater_operator.api.enums import (
    TERMINAL_PHASES,
    CatchupPolicy,
    CollisionStrategy,
    ConcurrencyPolicy,
    ConditionStatus,
    FlowRunPhase,
    FlowRunTrigger,
    ImagePullPolicy,
    RetryCause,
    WindowFormat,
)
from headwater_operator.api.errors import (
    InvalidResourceError,
    field_path,
    format_validation_error,
)
from headwater_operator.api.expressions import (
    check_cron,
    check_rrule,
    check_timezone,
    parse_interval,
    parse_rrule,
)
from headwater_operator.api.flow import DEFAULT_COMMAND, Flow, FlowSpec, FlowStatus
from headwater_operator.api.flowrun import (
    AssetStatus,
    FlowRun,
    FlowRunSpec,
    FlowRunStatus,
    RunRecordStatus,
)
from headwater_operator.api.k8s import (
    EnvFromSource,
    EnvVar,
    ResourceRequirements,
    Toleration,
    Volume,
    VolumeMount,
)
from headwater_operator.api.resource import PrinterColumn, Resource
from headwater_operator.api.schedule import (
    SCHEDULE_NAME_MAX_LENGTH,
    ActiveRun,
    CatchupSpec,
    Schedule,
    ScheduleSpec,
    ScheduleStatus,
    WindowParameters,
)
from headwater_operator.api.variable import (
    Variable,
    VariableSpec,
    check_variable_name,
    variable_object_name,
)

AnyResource = (Flow | Deployment | Schedule | FlowRun | Block | Variable | ConcurrencyLimit
               | Automation)
"""Any of the eight kinds."""

RESOURCE_TYPES: Final[tuple[type[Resource], ...]] = (
    Flow, Deployment, Schedule, FlowRun, Block, Variable, ConcurrencyLimit, Automation)
"""The eight kinds: the four that run flows in dependency order (a Deployment needs a
Flow, …), then the configuration flows read (Blocks, Variables, ConcurrencyLimits), then
what reacts to runs (Automations)."""

KINDS: Final[dict[str, type[Resource]]] = {cls.KIND: cls for cls in RESOURCE_TYPES}
"""Model class by kind, e.g. ``KINDS["FlowRun"] is FlowRun``."""

PLURALS: Final[dict[str, str]] = {cls.KIND: cls.PLURAL for cls in RESOURCE_TYPES}
"""Plural resource name by kind, e.g. ``PLURALS["FlowRun"] == "flowruns"`` (for API URLs)."""

FLOW_PLURAL: Final = Flow.PLURAL
DEPLOYMENT_PLURAL: Final = Deployment.PLURAL
SCHEDULE_PLURAL: Final = Schedule.PLURAL
FLOWRUN_PLURAL: Final = FlowRun.PLURAL


def describe_object(body: Mapping[str, Any]) -> str:
    """``Schedule default/nightly``-style name of a raw object, for error messages."""
    kind = body.get("kind") or "object"
    meta = body.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = meta.get("name") or meta.get("generateName") or "<unnamed>"
    namespace = meta.get("namespace")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def parse_resource(body: Mapping[str, Any]) -> AnyResource:
    """Parse a raw Kubernetes object (a kopf body, a YAML document) into its model.

    Raises :class:`InvalidResourceError` whose ``errors`` name each offending field, e.g.
    ``spec.concurrency.limit: must be ≥ 1 (got 0)``.
    """
    what = describe_object(body)
    api_version = body.get("apiVersion")
    if api_version != API_VERSION:
        raise InvalidResourceError(
            what, [f"apiVersion: expected {API_VERSION!r}, got {api_version!r}"]
        )
    kind = body.get("kind")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidResourceError(
            what, [f"kind: expected one of {', '.join(KINDS)}, got {kind!r}"]
        )
    try:
        parsed = cls.model_validate(dict(body))
    except ValidationError as exc:
        raise InvalidResourceError(what, format_validation_error(exc)) from exc
    assert isinstance(parsed, Flow | Deployment | Schedule | FlowRun | Block | Variable
                      | ConcurrencyLimit | Automation)
    return parsed


__all__ = [
    "API_VERSION",
    "BLOCK_NAME_MAX_LENGTH",
    "BLOCK_TYPE_RULE",
    "CONCURRENCY_LIMIT_NAME_MAX_LENGTH",
    "DEFAULT_COMMAND",
    "DEPLOYMENT_PLURAL",
    "FLOWRUN_PLURAL",
    "FLOW_PLURAL",
    "GROUP",
    "KINDS",
    "PLURALS",
    "RESOURCE_TYPES",
    "SCHEDULE_NAME_MAX_LENGTH",
    "SCHEDULE_PLURAL",
    "TERMINAL_PHASES",
    "VERSION",
    "Action",
    "ActiveRun",
    "AnyResource",
    "AssetStatus",
    "Automation",
    "AutomationSpec",
    "AutomationStatus",
    "Block",
    "BlockReference",
    "BlockSpec",
    "CatchupPolicy",
    "CatchupSpec",
    "CollisionStrategy",
    "ConcurrencyLimit",
    "ConcurrencyLimitSpec",
    "ConcurrencyPolicy",
    "ConcurrencySpec",
    "Condition",
    "ConditionStatus",
    "Deployment",
    "DeploymentSpec",
    "DeploymentStatus",
    "EnvFromSource",
    "EnvVar",
    "Flow",
    "FlowRun",
    "FlowRunPhase",
    "FlowRunSpec",
    "FlowRunStatus",
    "FlowRunTrigger",
    "FlowSpec",
    "FlowStatus",
    "HistorySpec",
    "ImagePullPolicy",
    "InvalidResourceError",
    "LastRun",
    "LedgerEntry",
    "LocalObjectReference",
    "ObjectMeta",
    "OwnerReference",
    "PrinterColumn",
    "Resource",
    "ResourceRequirements",
    "ResultStorage",
    "RetryCause",
    "RunRecordStatus",
    "RunStore",
    "RunTemplate",
    "Schedule",
    "ScheduleSpec",
    "ScheduleStatus",
    "SecretKeyReference",
    "Toleration",
    "Variable",
    "VariableSpec",
    "Volume",
    "VolumeMount",
    "WindowFormat",
    "WindowParameters",
    "check_block_name",
    "check_cron",
    "check_rrule",
    "check_timezone",
    "check_variable_name",
    "describe_object",
    "field_path",
    "format_validation_error",
    "parse_interval",
    "parse_resource",
    "parse_rrule",
    "variable_object_name",
]
