"""What a Schedule's status says about its runs, and whether a wake-up changes it at all.

Pure functions the reconciler applies. Two rules they keep:

* ``status.active`` follows the Schedule's runs whether or not it may create runs: a
  suspended Schedule, or one whose Deployment is paused, missing or whose expression is
  invalid, still has runs that end, and its status must stop listing them. CronJob does
  the same: its controller reconciles ``status.active`` (and ``lastSuccessfulTime``)
  with the Jobs it owns before it looks at ``spec.suspend`` or parses the schedule
  (kubernetes/kubernetes ``pkg/controller/cronjob/cronjob_controllerv2.go``
  ``syncCronJob``; the stored copy read is newer than 1.32, where the order is the same).
* A wake-up that changes nothing writes nothing: ``syncCronJob`` reports whether the
  status needs an update and ``sync`` calls ``UpdateStatus`` only then. Here a
  :func:`status_changes` that comes back empty skips the status patch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from headwater_operator import reasons
from headwater_operator.conditions import get_condition, make_condition
from headwater_operator.kubetime import format_time, parse_time


def active_entries(active_runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``status.active``: name and scheduled time of each active run, in the given order."""
    return [{"name": run["metadata"]["name"],
             "scheduledTime": (run.get("spec") or {}).get("scheduledTime")}
            for run in active_runs]


def status_changes(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the merge patch ``patch`` that changes the status ``current``.

    A ``None`` value deletes a field (JSON merge patch, RFC 7386), which changes nothing
    when the field is absent already. Empty: the status is already what ``patch`` says.
    """
    return {key: value for key, value in patch.items()
            if (current.get(key) is not None if value is None else current.get(key) != value)}


def invalid_reason(field_path: str) -> str:
    """``spec.catchup.maxRuns`` → ``InvalidCatchupMaxRuns``: the reason names the field."""
    parts = [part for part in field_path.removeprefix("spec").split(".") if part]
    return "Invalid" + "".join(part[:1].upper() + part[1:] for part in parts) if parts \
        else "InvalidSpec"


def rejected_run_message(run_name: str, tick: datetime, server_message: str) -> str:
    """The condition and Event message of a tick whose FlowRun the API server refused."""
    return (f"the API server refused run {run_name} for tick {format_time(tick)}: "
            f"{server_message}; the tick is skipped. Fix the Schedule or its Deployment "
            "(or the policy that refused it); later ticks are tried again")


def run_conditions(existing: Iterable[Mapping[str, Any]] | None, created: list[str],
                   rejected: list[str], ready_message: str) -> list[dict[str, Any]]:
    """``Ready`` and ``RunRejected`` after a wake-up of a valid, unheld Schedule.

    A refused run makes both say so (a human has to act), and they keep saying it on
    wake-ups that try no run, until a run is accepted again. Refused runs win over
    created ones in the same wake-up.
    """
    previous = get_condition(existing, "RunRejected")
    if not rejected and not created and previous and previous.get("status") == "True":
        rejected = [str(previous.get("message") or "")]
    if rejected:
        return [make_condition("Ready", False, reasons.RUN_REJECTED, rejected[-1]),
                make_condition("RunRejected", True, reasons.RUN_REJECTED, rejected[-1])]
    ready = make_condition("Ready", True, "Scheduled", ready_message)
    if created and previous is not None:
        return [ready, make_condition("RunRejected", False, reasons.RUNS_ACCEPTED,
                                      "the last run created was accepted")]
    return [ready]


def effective_since(
    meta: Mapping[str, Any], status: Mapping[str, Any], fingerprint: str,
    edit_seen_at: dict[str, datetime], now: datetime,
) -> datetime:
    """When the current expression took effect: creation, or when its edit was seen.

    A schedule that never ticked has its creation time. An edited one has the time this
    process first saw the new fingerprint — after an operator restart that is later than
    the real edit, which can only skip ticks, never fire one from before the edit.
    """
    created = parse_time(meta.get("creationTimestamp")) or now
    if status.get("scheduleFingerprint") in (None, fingerprint):
        return created
    return max(created, edit_seen_at.setdefault(fingerprint, now))


def expression_summary(spec: Mapping[str, Any]) -> str:
    """``status.expression``: the Schedule's expression in a few words."""
    if spec.get("cron"):
        return str(spec["cron"])
    if spec.get("interval"):
        return f"every {spec['interval']}"
    return f"rrule {spec.get('rrule')}"
