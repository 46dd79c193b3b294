"""History pruning decisions: limits per outcome, TTL, and what is never touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from headwater_operator.history import (
    DEFAULT_FAILED_RUNS_LIMIT,
    DEFAULT_SUCCESSFUL_RUNS_LIMIT,
    HistoryPolicy,
    RunRecord,
    next_expiry,
    runs_to_delete,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def run(name: str, phase: str | None, minutes_ago: float, *, ended: bool = True) -> RunRecord:
    """A run created an hour before ``NOW`` that ended ``minutes_ago``."""
    end = NOW - timedelta(minutes=minutes_ago) if ended else None
    return RunRecord(name=name, phase=phase, created=NOW - timedelta(hours=1), end_time=end)


def names(runs: list[RunRecord], policy: HistoryPolicy) -> list[str]:
    return [deletion.name for deletion in runs_to_delete(runs, policy, NOW)]


def test_keeps_the_newest_successful_runs_up_to_the_limit() -> None:
    runs = [run(f"ok-{i}", "Completed", minutes_ago=i) for i in range(5)]

    assert names(runs, HistoryPolicy(successful_runs_limit=2)) == ["ok-2", "ok-3", "ok-4"]


def test_failed_crashed_and_cancelled_share_the_failed_limit() -> None:
    runs = [
        run("failed", "Failed", minutes_ago=1),
        run("crashed", "Crashed", minutes_ago=2),
        run("cancelled", "Cancelled", minutes_ago=3),
        run("ok", "Completed", minutes_ago=4),
    ]

    deleted = names(runs, HistoryPolicy(successful_runs_limit=1, failed_runs_limit=1))

    assert deleted == ["cancelled", "crashed"]


@pytest.mark.parametrize(
    "phase",
    [None, "Scheduled", "Late", "AwaitingConcurrencySlot", "Pending", "Running",
     "AwaitingRetry", "Retrying", "Cancelling"],
)
def test_unfinished_runs_are_never_deleted(phase: str | None) -> None:
    runs = [run("live", phase, minutes_ago=10_000, ended=False)]

    policy = HistoryPolicy(
        successful_runs_limit=0, failed_runs_limit=0, ttl_seconds_after_finished=0
    )

    assert names(runs, policy) == []


def test_limit_zero_deletes_every_finished_run_of_that_kind() -> None:
    runs = [run("ok", "Completed", 1), run("bad", "Failed", 1)]

    assert names(runs, HistoryPolicy(successful_runs_limit=0)) == ["ok"]


def test_ttl_deletes_runs_finished_long_enough_ago_even_within_the_limits() -> None:
    runs = [run("old", "Completed", minutes_ago=61), run("new", "Completed", minutes_ago=59)]

    deletions = runs_to_delete(runs, HistoryPolicy(ttl_seconds_after_finished=3600), NOW)

    assert [d.name for d in deletions] == ["old"]
    assert "ttlSecondsAfterFinished=3600s" in deletions[0].reason


def test_ttl_boundary_is_inclusive() -> None:
    runs = [run("exact", "Failed", minutes_ago=60)]

    assert names(runs, HistoryPolicy(ttl_seconds_after_finished=3600)) == ["exact"]


def test_runs_without_end_time_are_ordered_by_creation() -> None:
    older = RunRecord("older", "Cancelled", created=NOW - timedelta(hours=2))
    newer = RunRecord("newer", "Cancelled", created=NOW - timedelta(hours=1))

    assert names([older, newer], HistoryPolicy(failed_runs_limit=1)) == ["older"]


def test_equal_end_times_keep_the_later_created_then_the_larger_name() -> None:
    runs = [run(n, "Completed", minutes_ago=5) for n in ("c", "a", "b")]
    later = RunRecord("a-late", "Completed", created=NOW, end_time=NOW - timedelta(minutes=5))

    assert names(runs, HistoryPolicy(successful_runs_limit=1)) == ["a", "b"]
    assert names(list(reversed(runs)), HistoryPolicy(successful_runs_limit=1)) == ["a", "b"]
    assert names([*runs, later], HistoryPolicy(successful_runs_limit=1)) == ["a", "b", "c"]


def test_deletion_reason_names_the_limit() -> None:
    runs = [run("a", "Failed", 1), run("b", "Failed", 2)]

    (deletion,) = runs_to_delete(runs, HistoryPolicy(failed_runs_limit=1), NOW)

    assert deletion.name == "b"
    assert deletion.reason == "beyond history.failedRunsLimit=1"


def test_policy_from_spec_applies_defaults_and_reads_camel_case() -> None:
    assert HistoryPolicy.from_spec(None) == HistoryPolicy(
        DEFAULT_SUCCESSFUL_RUNS_LIMIT, DEFAULT_FAILED_RUNS_LIMIT, None
    )
    assert HistoryPolicy.from_spec(
        {"successfulRunsLimit": 0, "failedRunsLimit": 2, "ttlSecondsAfterFinished": 30}
    ) == HistoryPolicy(0, 2, 30)
    assert HistoryPolicy.from_spec({"failedRunsLimit": -1}).failed_runs_limit == 0


def test_defaults_keep_ten_successful_and_ten_failed() -> None:
    runs = [run(f"ok-{i:02}", "Completed", i) for i in range(12)]
    runs += [run(f"bad-{i:02}", "Failed", i) for i in range(11)]

    assert names(runs, HistoryPolicy()) == ["bad-10", "ok-10", "ok-11"]


def test_defaults_match_the_api_model() -> None:
    from headwater_operator.api import HistorySpec

    model = HistorySpec()
    assert HistoryPolicy() == HistoryPolicy(
        model.successful_runs_limit, model.failed_runs_limit, model.ttl_seconds_after_finished
    )


def test_next_expiry_is_the_earliest_future_ttl() -> None:
    runs = [
        run("expired", "Completed", minutes_ago=120),
        run("soon", "Failed", minutes_ago=50),
        run("later", "Completed", minutes_ago=10),
        run("live", "Running", minutes_ago=100, ended=False),
    ]

    expiry = next_expiry(runs, HistoryPolicy(ttl_seconds_after_finished=3600), NOW)

    assert expiry == NOW + timedelta(minutes=10)


def test_next_expiry_without_ttl_or_runs_is_none() -> None:
    assert next_expiry([run("a", "Completed", 1)], HistoryPolicy(), NOW) is None
    assert next_expiry([], HistoryPolicy(ttl_seconds_after_finished=5), NOW) is None
