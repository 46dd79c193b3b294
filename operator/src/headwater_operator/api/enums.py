"""Enumerations of the v1alpha1 API.

Every enum is a ``str`` enum whose values are the exact strings on the wire, so a
``FlowRunPhase.RUNNING`` compares equal to ``"Running"`` read from a raw object.
"""

from __future__ import annotations

from enum import StrEnum


class FlowRunPhase(StrEnum):
    """Where a FlowRun is in its life; the names follow Prefect's state names."""

    SCHEDULED = "Scheduled"
    LATE = "Late"
    AWAITING_CONCURRENCY_SLOT = "AwaitingConcurrencySlot"
    PENDING = "Pending"
    RUNNING = "Running"
    AWAITING_RETRY = "AwaitingRetry"
    RETRYING = "Retrying"
    CANCELLING = "Cancelling"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CRASHED = "Crashed"
    CANCELLED = "Cancelled"

    @property
    def terminal(self) -> bool:
        """True when the run is over and its phase never changes again."""
        return self in TERMINAL_PHASES


TERMINAL_PHASES: frozenset[FlowRunPhase] = frozenset(
    {FlowRunPhase.COMPLETED, FlowRunPhase.FAILED, FlowRunPhase.CRASHED, FlowRunPhase.CANCELLED}
)
"""Phases a FlowRun never leaves."""


class FinalPhase(StrEnum):
    """The phases a run ends in (:data:`TERMINAL_PHASES`), as a trigger selects them."""

    COMPLETED = "Completed"
    FAILED = "Failed"
    CRASHED = "Crashed"
    CANCELLED = "Cancelled"


class CollisionStrategy(StrEnum):
    """What a Deployment does with a new run when its concurrency limit is reached."""

    ENQUEUE = "Enqueue"
    """Keep the run in AwaitingConcurrencySlot until a slot frees up."""
    CANCEL_NEW = "CancelNew"
    """Cancel the new run straight away."""


class ConcurrencyPolicy(StrEnum):
    """What a Schedule does when a tick fires while its previous run is still active."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class CatchupPolicy(StrEnum):
    """How many missed ticks a Schedule runs after downtime or suspension."""

    NONE = "None"
    LATEST = "Latest"
    ALL = "All"


class RetryCause(StrEnum):
    """Which terminal outcomes of an attempt are retried."""

    FAILED = "Failed"
    """The flow's code failed."""
    CRASHED = "Crashed"
    """The infrastructure failed (pod evicted, OOM-killed, node lost, …)."""


class WindowFormat(StrEnum):
    """How a Schedule renders a tick's window bounds into flow parameters."""

    DATE = "Date"
    """``YYYY-MM-DD`` in the schedule's timezone."""
    DATE_TIME = "DateTime"
    """RFC 3339 timestamp with offset, in the schedule's timezone."""


class FlowRunTrigger(StrEnum):
    """How a FlowRun came to be (informational; mirrors the trigger annotation)."""

    SCHEDULE = "schedule"
    BACKFILL = "backfill"
    CLI = "cli"
    MANUAL = "manual"
    DEPLOYMENT = "deployment"
    """Created by a Deployment's ``afterDeployment`` trigger (docs/triggers.md)."""
    ASSET = "asset"
    """Created by a Deployment's ``assets`` trigger (docs/triggers.md)."""


class ImagePullPolicy(StrEnum):
    """Kubernetes image pull policy of the flow-run container."""

    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class ConditionStatus(StrEnum):
    """Status of a condition, as in every Kubernetes API."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"
