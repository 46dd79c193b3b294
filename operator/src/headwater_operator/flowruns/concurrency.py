"""Deployment concurrency: may this run start now, wait for a slot, or be cancelled?

A run occupies a slot from the moment its first pod is created until it is terminal,
including while it waits between retries (``AwaitingRetry``): a queued run must not
slip in between two attempts of a run that is still going.

Waiting runs are admitted oldest scheduled time first (ties: creation time, then name),
so the order is the same whichever operator replica or restart decides it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum

from headwater_operator.api import CollisionStrategy, FlowRun, FlowRunPhase
from headwater_operator.api.deployment import ConcurrencySpec

SLOT_HOLDING_PHASES = frozenset(
    {
        FlowRunPhase.PENDING,
        FlowRunPhase.RUNNING,
        FlowRunPhase.RETRYING,
        FlowRunPhase.AWAITING_RETRY,
        FlowRunPhase.CANCELLING,
    }
)
WAITING_PHASES = frozenset(
    {None, FlowRunPhase.SCHEDULED, FlowRunPhase.LATE, FlowRunPhase.AWAITING_CONCURRENCY_SLOT}
)


class SlotVerdict(StrEnum):
    """The outcome of a concurrency check."""

    ADMIT = "Admit"
    QUEUE = "Queue"
    CANCEL = "Cancel"


def scheduled_time(run: FlowRun) -> datetime | None:
    """When ``run`` is due: its spec's scheduled time, else when it was created."""
    return run.spec.scheduled_time or run.metadata.creation_timestamp


def queue_key(run: FlowRun) -> tuple[datetime, datetime, str]:
    """Sort key of waiting runs: scheduled time, creation time, name."""
    floor = datetime.min.replace(tzinfo=UTC)
    return (
        scheduled_time(run) or floor,
        run.metadata.creation_timestamp or floor,
        run.metadata.name or "",
    )


def _is_waiting(run: FlowRun, now: datetime) -> bool:
    due = scheduled_time(run)
    return (
        run.status.phase in WAITING_PHASES
        and not run.spec.cancel
        and (due is None or due <= now)
    )


def slot_verdict(
    run: FlowRun, concurrency: ConcurrencySpec | None, siblings: Iterable[FlowRun], now: datetime
) -> SlotVerdict:
    """Decide whether ``run`` may start now, given the other runs of its Deployment.

    ``siblings`` are all FlowRuns referencing the same Deployment (``run`` itself may be
    among them; it is recognised by name).
    """
    if concurrency is None:
        return SlotVerdict.ADMIT
    others = [s for s in siblings if s.metadata.name != run.metadata.name]
    active = sum(1 for s in others if s.status.phase in SLOT_HOLDING_PHASES)
    free = concurrency.limit - active
    waiting = sorted([*(s for s in others if _is_waiting(s, now)), run], key=queue_key)
    if waiting.index(run) < free:
        return SlotVerdict.ADMIT
    if concurrency.collision_strategy == CollisionStrategy.CANCEL_NEW:
        return SlotVerdict.CANCEL
    return SlotVerdict.QUEUE
