"""The run summary: what a finished run reports to the operator and to a person.

:func:`build_summary` turns a run tree into :class:`headwater.contract.RunSummary`;
:func:`fit_summary` encodes it within a byte budget (the pod's share of termination
messages, at most 4096 bytes), dropping the least important parts first: artifact keys,
then asset upstream lists, then assets, then task-run counts, then shortening the
message. ``state`` and ``reason`` always survive, and are written first
(:data:`headwater.contract.SUMMARY_FIELD_ORDER`), so even a summary the kubelet cuts
shorter than its budget still says how the run ended.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from headwater import contract
from headwater.context import RunTree
from headwater.exceptions import ParameterTypeError, TerminationSignal
from headwater.secrets import redact
from headwater.states import State, StateType


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def summary_state(state: State[Any]) -> contract.FinalState:
    """The contract's final-state name for ``state``."""
    if state.name == "TimedOut":
        return "TimedOut"
    mapping: dict[StateType, contract.FinalState] = {
        StateType.COMPLETED: "Completed",
        StateType.FAILED: "Failed",
        StateType.CANCELLED: "Cancelled",
    }
    return mapping.get(state.type, "Crashed")


def summary_reason(state: State[Any]) -> str:
    """A CamelCase machine reason for ``state`` (the FlowRun's ``status.reason``)."""
    if state.type is StateType.COMPLETED:
        return "Completed"
    if state.name == "TimedOut":
        return "FlowRunTimedOut"
    if isinstance(state.data, ParameterTypeError):
        return contract.SUMMARY_REASON_INVALID_PARAMETERS
    if state.type is StateType.FAILED:
        return "FlowRunFailed"
    if state.type is StateType.CANCELLED:
        return "TerminationSignal" if "SIGTERM" in (state.message or "") else "Cancelled"
    if isinstance(state.data, TerminationSignal):
        return "TerminationSignal"
    return "FlowRunCrashed"


def exit_code(state: State[Any]) -> int:
    """The ``headwater execute`` exit code for a final state."""
    if state.type is StateType.COMPLETED:
        return contract.EXIT_COMPLETED
    if state.type is StateType.CANCELLED:
        return contract.EXIT_CANCELLED
    if state.type is StateType.CRASHED:
        return contract.EXIT_CRASHED
    return contract.EXIT_FAILED


def task_run_counts(tree: RunTree) -> dict[str, int]:
    """Task runs of the whole tree by final state name."""
    return dict(Counter(tr.state.name for tr in tree.task_runs))


def _asset_records(tree: RunTree) -> list[contract.AssetRecord]:
    latest: dict[str, contract.AssetRecord] = {}
    for record in tree.assets:
        latest[record["key"]] = {"key": record["key"], "version": record["version"],
                                 "upstream": list(record["upstream"])}
    return list(latest.values())


def build_summary(tree: RunTree, state: State[Any] | None = None) -> contract.RunSummary:
    """The run summary of ``tree`` (final ``state`` defaults to the root run's)."""
    root = tree.root
    final = state or root.state
    summary: contract.RunSummary = {
        "version": contract.SUMMARY_VERSION,
        "state": summary_state(final),
        "reason": summary_reason(final),
        "message": redact(final.message or f"Flow run {root.name!r} finished: {final.name}."),
        "flowRunId": root.id,
        "taskRuns": task_run_counts(tree),
        "assets": _asset_records(tree),
        "artifacts": list(tree.artifacts),
    }
    if tree.record_written is not None:
        summary["recordWritten"] = tree.record_written
    start, end = _iso(root.start_time), _iso(root.end_time or final.timestamp)
    if start:
        summary["startTime"] = start
    if end:
        summary["endTime"] = end
    return summary


def crash_summary(reason: str, message: str) -> contract.RunSummary:
    """A summary for a run the engine could not start (bad entrypoint, bad contract)."""
    return {"version": contract.SUMMARY_VERSION, "state": "Crashed", "reason": reason,
            "message": redact(message)}


def _size(summary: contract.RunSummary) -> int:
    return len(contract.encode_summary(summary).encode())


def _fit_list(summary: Any, field: str, limit: int) -> bool:
    """Keep the longest prefix of ``summary[field]`` that fits; True if anything dropped."""
    items = summary.get(field)
    if not items:
        return False
    lo, hi = 0, len(items)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        summary[field] = items[:mid]
        if _size(summary) <= limit:
            lo = mid
        else:
            hi = mid - 1
    summary[field] = items[:lo]
    if not summary[field]:
        del summary[field]
    return lo < len(items)


def fit_summary(summary: contract.RunSummary,
                max_bytes: int = contract.SUMMARY_MAX_BYTES) -> str:
    """Encode ``summary`` in at most ``max_bytes`` bytes, truncating least important first."""
    work: Any = dict(summary)
    if _size(work) <= max_bytes:
        return contract.encode_summary(work)
    work["truncated"] = True
    if len(work["message"]) > 1024:
        work["message"] = work["message"][:1021] + "..."
    steps = (
        lambda: _fit_list(work, "artifacts", max_bytes),
        lambda: work.get("assets") and [a.update(upstream=[]) for a in work["assets"]],
        lambda: _fit_list(work, "assets", max_bytes),
        lambda: work.pop("taskRuns", None),
        lambda: (work.pop("startTime", None), work.pop("endTime", None)),
    )
    for step in steps:
        if _size(work) <= max_bytes:
            break
        step()
    while _size(work) > max_bytes and len(work["message"]) > 3:
        overflow = _size(work) - max_bytes
        keep = max(len(work["message"]) - overflow - 8, 0)
        work["message"] = work["message"][:keep] + "..."
    if _size(work) > max_bytes:
        work["reason"] = work["reason"][:64]
    return contract.encode_summary(work)


def describe_run(tree: RunTree) -> str:
    """The human summary line printed when a top-level run ends."""
    root = tree.root
    counts = task_run_counts(tree)
    parts = [f"Run summary: flow {root.flow_name!r} run {root.name!r} -> {root.state.name}"]
    if counts:
        total = sum(counts.values())
        by_state = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
        parts.append(f"{total} task run(s): {by_state}")
    if len(tree.flow_runs) > 1:
        parts.append(f"{len(tree.flow_runs) - 1} subflow run(s)")
    latest = {record["key"]: record for record in tree.assets}
    for record in latest.values():
        upstream = ", ".join(record["upstream"]) or "no upstream"
        note = "unchanged, skipped" if record.get("skipped") else "materialized"
        parts.append(f"asset {record['key']} v{record['version']} {note} (from {upstream})")
    if tree.artifacts:
        parts.append("artifacts: " + ", ".join(tree.artifacts))
    return "; ".join(parts)
