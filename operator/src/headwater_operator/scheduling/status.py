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
from typing import Any


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
