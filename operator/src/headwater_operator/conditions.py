"""Pure helpers for ``status.conditions``, the way every Kubernetes API keeps them.

Conditions are handled in their wire form (a list of plain dicts with camelCase keys)
because that is what handlers read from a kopf body and write back in a status patch;
no model round-trip is needed to set one condition.

The rule that matters, and the reason this module exists: ``lastTransitionTime`` changes
only when a condition's ``status`` changes. Re-asserting ``Ready=True`` with a new
message or reason keeps the old time, so ``kubectl describe`` shows how long an object
has *really* been ready, and a reconcile that finds nothing new produces a status equal
to the current one — which lets handlers skip the write entirely.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from headwater_operator.kubetime import format_time

ConditionStatus = Literal["True", "False", "Unknown"]

Condition = dict[str, Any]
"""One condition in wire form: ``type``, ``status``, ``reason``, ``message``,
``lastTransitionTime`` and (optionally) ``observedGeneration``."""


def make_condition(
    type_: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str,
    *,
    observed_generation: int | None = None,
) -> Condition:
    """Build a condition without a transition time (``set_condition`` assigns it).

    ``status`` may be a bool for convenience: ``True`` → ``"True"``.
    """
    if isinstance(status, bool):
        status = "True" if status else "False"
    condition: Condition = {"type": type_, "status": status, "reason": reason, "message": message}
    if observed_generation is not None:
        condition["observedGeneration"] = observed_generation
    return condition


def get_condition(
    conditions: Iterable[Mapping[str, Any]] | None, type_: str
) -> Condition | None:
    """Return a copy of the condition of ``type_``, or None when it is absent."""
    for condition in conditions or ():
        if condition.get("type") == type_:
            return dict(condition)
    return None


def is_condition_true(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> bool:
    """True when the condition of ``type_`` exists and its status is ``"True"``."""
    condition = get_condition(conditions, type_)
    return condition is not None and condition.get("status") == "True"


def set_condition(
    conditions: Iterable[Mapping[str, Any]] | None,
    new: Mapping[str, Any],
    now: datetime,
) -> list[Condition]:
    """Return ``conditions`` with ``new`` put in place of the condition of the same type.

    ``lastTransitionTime`` is carried over from the existing condition when the status
    is unchanged (and the old one had a time), and set to ``now`` otherwise. Other
    conditions keep their order; a new type is appended. The input is not modified.
    """
    result: list[Condition] = []
    replaced = False
    for old in conditions or ():
        if old.get("type") != new["type"]:
            result.append(dict(old))
            continue
        result.append(_merge(old, new, now))
        replaced = True
    if not replaced:
        result.append(_merge(None, new, now))
    return result


def set_conditions(
    conditions: Iterable[Mapping[str, Any]] | None,
    new: Iterable[Mapping[str, Any]],
    now: datetime,
) -> list[Condition]:
    """Apply :func:`set_condition` for each of ``new`` in turn."""
    result: list[Condition] = [dict(c) for c in conditions or ()]
    for condition in new:
        result = set_condition(result, condition, now)
    return result


def remove_condition(
    conditions: Iterable[Mapping[str, Any]] | None, type_: str
) -> list[Condition]:
    """Return ``conditions`` without the condition of ``type_`` (a no-op when absent)."""
    return [dict(c) for c in conditions or () if c.get("type") != type_]


def _merge(old: Mapping[str, Any] | None, new: Mapping[str, Any], now: datetime) -> Condition:
    merged = dict(new)
    unchanged = old is not None and old.get("status") == new["status"]
    if unchanged and old is not None and old.get("lastTransitionTime"):
        merged["lastTransitionTime"] = old["lastTransitionTime"]
    else:
        merged["lastTransitionTime"] = format_time(now)
    return merged
