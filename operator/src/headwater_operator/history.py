"""Which finished FlowRuns of a Deployment to delete: history limits and TTL.

Every FlowRun is a Kubernetes object in etcd; a schedule firing every minute leaves
1,440 of them a day. Like a CronJob's ``successfulJobsHistoryLimit`` /
``failedJobsHistoryLimit`` and a Job's ``ttlSecondsAfterFinished``, a Deployment's
``spec.history`` bounds what is kept:

* ``successfulRunsLimit`` (default :data:`DEFAULT_SUCCESSFUL_RUNS_LIMIT` = 10): how many
  ``Completed`` runs to keep, newest first.
* ``failedRunsLimit`` (default :data:`DEFAULT_FAILED_RUNS_LIMIT` = 10): how many
  unsuccessful runs (``Failed``, ``Crashed``, ``Cancelled``) to keep. Cancelled runs count
  here because, as with a failed CronJob Job, someone may want to look at why.
* ``ttlSecondsAfterFinished`` (default unset = no expiry): a finished run older than this
  (measured from its ``endTime``) is deleted whatever the limits say.

The defaults (10/10, the same as ``HistorySpec`` in the API models, which the CRD
defaults come from) are larger than CronJob's 3/1 on purpose: a Headwater run's status is
the only record of its task counts, assets and artifacts (there is no separate database),
and failures are what people come back to look at; each run costs only a few KB.

Runs that have not finished are never candidates, and neither is a finished scheduled run
whose tick its Schedule has not recorded yet (:func:`tick_is_recorded`): the run is the
only record that the tick ran until ``Schedule.status.lastScheduleTime`` says so, and a
Schedule catching up from an older ``lastScheduleTime`` would create it again (the run's
deterministic name protects against that only while the run exists). Such a run is kept,
beyond the limits and the TTL, until its Schedule records the tick or is gone.

"Newest" means latest ``endTime``; a run without one (e.g. cancelled while queued) falls
back to its creation time; ties are broken by creation time, then by name (the larger is
newer), so the choice is deterministic. Deleting a FlowRun deletes its pods
through owner references.

Everything here is pure: the handler feeds in what a kopf index holds and ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from headwater_operator.api import TERMINAL_PHASES, FlowRunPhase
from headwater_operator.kubetime import parse_time

DEFAULT_SUCCESSFUL_RUNS_LIMIT = 10
DEFAULT_FAILED_RUNS_LIMIT = 10

SUCCESSFUL_PHASES: frozenset[str] = frozenset({FlowRunPhase.COMPLETED})
UNSUCCESSFUL_PHASES: frozenset[str] = TERMINAL_PHASES - SUCCESSFUL_PHASES
"""What ``failedRunsLimit`` keeps: every other terminal phase (Failed, Crashed, Cancelled)."""


@dataclass(frozen=True)
class HistoryPolicy:
    """The effective ``Deployment.spec.history`` with defaults applied."""

    successful_runs_limit: int = DEFAULT_SUCCESSFUL_RUNS_LIMIT
    failed_runs_limit: int = DEFAULT_FAILED_RUNS_LIMIT
    ttl_seconds_after_finished: int | None = None

    @classmethod
    def from_spec(cls, history: Mapping[str, Any] | None) -> HistoryPolicy:
        """Read ``spec.history`` in wire form (camelCase); absent fields take defaults.

        Negative numbers (which the CRD schema rejects anyway) are treated as 0 rather
        than crashing the reconciler.
        """
        history = history or {}
        successful = history.get("successfulRunsLimit")
        failed = history.get("failedRunsLimit")
        ttl = history.get("ttlSecondsAfterFinished")
        return cls(
            successful_runs_limit=(
                DEFAULT_SUCCESSFUL_RUNS_LIMIT if successful is None else max(0, int(successful))
            ),
            failed_runs_limit=DEFAULT_FAILED_RUNS_LIMIT if failed is None else max(0, int(failed)),
            ttl_seconds_after_finished=None if ttl is None else max(0, int(ttl)),
        )


@dataclass(frozen=True)
class RunRecord:
    """What pruning needs to know about one FlowRun."""

    name: str
    phase: str | None
    created: datetime
    end_time: datetime | None = None

    @property
    def finished(self) -> bool:
        """True once the run reached a terminal phase."""
        return self.phase in TERMINAL_PHASES

    @property
    def finished_at(self) -> datetime:
        """When the run finished, or its creation time when no ``endTime`` was recorded."""
        return self.end_time or self.created


@dataclass(frozen=True)
class Deletion:
    """One FlowRun to delete and why (the reason goes into the Event message)."""

    name: str
    reason: str


def runs_to_delete(
    runs: Iterable[RunRecord], policy: HistoryPolicy, now: datetime
) -> list[Deletion]:
    """Return the finished runs that exceed the history limits or have outlived the TTL.

    The result is sorted by name so callers (and tests) see a stable order.
    """
    finished = [run for run in runs if run.finished]
    deletions: dict[str, str] = {}
    if policy.ttl_seconds_after_finished is not None:
        ttl = timedelta(seconds=policy.ttl_seconds_after_finished)
        for run in finished:
            if run.finished_at + ttl <= now:
                deletions[run.name] = (
                    f"finished more than ttlSecondsAfterFinished="
                    f"{policy.ttl_seconds_after_finished}s ago"
                )
    for phases, limit, field in (
        (SUCCESSFUL_PHASES, policy.successful_runs_limit, "successfulRunsLimit"),
        (UNSUCCESSFUL_PHASES, policy.failed_runs_limit, "failedRunsLimit"),
    ):
        group = _newest_first(run for run in finished if run.phase in phases)
        for run in group[limit:]:
            deletions.setdefault(run.name, f"beyond history.{field}={limit}")
    return [Deletion(name, reason) for name, reason in sorted(deletions.items())]


def recorded_through(schedule: Mapping[str, Any]) -> datetime | None:
    """The newest instant a Schedule will never fire a tick at or before, from its
    durable state: its ``status.lastScheduleTime`` or its ``creationTimestamp``, the later.

    The Schedule controller plans only ticks after ``max(lastScheduleTime, the moment
    its expression took effect)``, the latter never earlier than the Schedule's
    creation, and writes ``lastScheduleTime`` only after the runs of the ticks it covers
    exist (``controllers/schedules.py``). It never moves backwards: each write is the
    newest tick due at its wake-up, and an edited expression only fires ticks after the
    edit was seen. None when neither is known.
    """
    status = schedule.get("status") or {}
    meta = schedule.get("metadata") or {}
    instants = [moment for moment in (parse_time(status.get("lastScheduleTime")),
                                      parse_time(meta.get("creationTimestamp")))
                if moment is not None]
    return max(instants, default=None)


def tick_is_recorded(tick: datetime, recorded: datetime | None) -> bool:
    """Whether a Schedule whose :func:`recorded_through` is ``recorded`` can never fire
    ``tick`` again, so that its run may be pruned.

    A finished run of a later tick must be kept: if it were deleted, a Schedule
    controller starting from the older ``lastScheduleTime`` (a new leader after a kill,
    a wake-up retried after its status write failed) would plan the tick again, and its
    create would succeed — a second run for one tick.
    """
    return recorded is not None and tick <= recorded


def next_expiry(runs: Iterable[RunRecord], policy: HistoryPolicy, now: datetime) -> datetime | None:
    """When the next finished run's TTL runs out (None without a TTL or finished runs).

    A handler uses it to wake up exactly once for that Deployment instead of polling.
    Runs already expired are not considered: :func:`runs_to_delete` handles them now.
    """
    if policy.ttl_seconds_after_finished is None:
        return None
    ttl = timedelta(seconds=policy.ttl_seconds_after_finished)
    expiries = [run.finished_at + ttl for run in runs if run.finished]
    future = [moment for moment in expiries if moment > now]
    return min(future, default=None)


def _newest_first(runs: Iterable[RunRecord]) -> list[RunRecord]:
    # ``endTime`` has one-second precision, so ties are common (a backfill, a burst of
    # short runs); the creation time, then the name, break them, all newest/largest
    # first: generated and scheduled run names grow with time.
    return sorted(runs, key=lambda run: (run.finished_at, run.created, run.name), reverse=True)
