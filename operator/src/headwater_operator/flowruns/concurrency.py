"""Deployment concurrency: may this run start now, wait for a slot, or be cancelled?

A run occupies a slot from the moment its first pod is created until it is terminal,
including while it waits between retries (``AwaitingRetry``): a queued run must not
slip in between two attempts of a run that is still going.

"From its first pod" is taken literally: a run that has a pod holds a slot whatever its
phase says. The operator creates a pod *before* the status write that names it, so an
operator killed in between (or whose status write failed) leaves a run with a running
pod and a waiting phase. Counted by phase alone, that run would free its slot, and a
waiting run with an older queue key (a catch-up or backfill tick) would be admitted
beside it. The pods are therefore an input of :func:`slot_verdict` (the uids of the runs
that own one, :func:`pod_owner_uids`), read by the caller from the API server.

Waiting runs are admitted oldest scheduled time first (ties: creation time, then name),
so the order is the same whichever operator replica or restart decides it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from headwater import contract

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


def pod_owner_uids(pods: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The uids of the FlowRuns that control one of ``pods`` (pod bodies as listed).

    By uid, not name: a FlowRun deleted and created again under the same name may leave
    pods of the old one behind until garbage collection removes them, and those hold no
    slot of the new run.
    """
    uids = set()
    for pod in pods:
        for owner in (pod.get("metadata") or {}).get("ownerReferences") or ():
            if (owner.get("controller") and owner.get("kind") == "FlowRun"
                    and owner.get("apiVersion") == contract.API_VERSION and owner.get("uid")):
                uids.add(str(owner["uid"]))
    return frozenset(uids)


def _has_pod(run: FlowRun, with_pods: Collection[str]) -> bool:
    return run.metadata.uid is not None and run.metadata.uid in with_pods


def holds_slot(run: FlowRun, with_pods: Collection[str]) -> bool:
    """Whether ``run`` occupies a concurrency slot: a slot-holding phase, or a pod of its
    own while it is not terminal (``with_pods``: uids of the runs that have a pod)."""
    phase = run.status.phase
    if phase is not None and phase.terminal:
        return False
    return phase in SLOT_HOLDING_PHASES or _has_pod(run, with_pods)


def _is_waiting(run: FlowRun, now: datetime) -> bool:
    due = scheduled_time(run)
    return (
        run.status.phase in WAITING_PHASES
        and not run.spec.cancel
        and (due is None or due <= now)
    )


def slot_verdict(
    run: FlowRun, concurrency: ConcurrencySpec | None, siblings: Iterable[FlowRun], now: datetime,
    *, with_pods: Collection[str],
) -> SlotVerdict:
    """Decide whether ``run`` may start now, given the other runs of its Deployment.

    ``siblings`` are all FlowRuns referencing the same Deployment (``run`` itself may be
    among them; it is recognised by name). ``with_pods`` are the uids of the runs of the
    Deployment that have a pod (:func:`pod_owner_uids`): such a run holds a slot whatever
    its phase says, and is never queued or cancelled itself, since its pod already runs.
    """
    if concurrency is None or _has_pod(run, with_pods):
        return SlotVerdict.ADMIT
    others = [s for s in siblings if s.metadata.name != run.metadata.name]
    active = sum(1 for s in others if holds_slot(s, with_pods))
    free = concurrency.limit - active
    waiting = sorted([*(s for s in others
                        if _is_waiting(s, now) and not _has_pod(s, with_pods)), run],
                     key=queue_key)
    if waiting.index(run) < free:
        return SlotVerdict.ADMIT
    if concurrency.collision_strategy == CollisionStrategy.CANCEL_NEW:
        return SlotVerdict.CANCEL
    return SlotVerdict.QUEUE
