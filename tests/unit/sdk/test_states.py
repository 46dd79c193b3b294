"""State names, types and result semantics that Prefect users rely on."""

from __future__ import annotations

import pytest
from headwater import states
from headwater.exceptions import CancelledRun, FailedRun
from headwater.states import StateType


@pytest.mark.parametrize(
    ("factory", "name", "state_type"),
    [
        (states.Scheduled, "Scheduled", StateType.SCHEDULED),
        (states.AwaitingRetry, "AwaitingRetry", StateType.SCHEDULED),
        (states.Pending, "Pending", StateType.PENDING),
        (states.NotReady, "NotReady", StateType.PENDING),
        (states.Running, "Running", StateType.RUNNING),
        (states.Retrying, "Retrying", StateType.RUNNING),
        (states.Completed, "Completed", StateType.COMPLETED),
        (states.Cached, "Cached", StateType.COMPLETED),
        (states.Failed, "Failed", StateType.FAILED),
        (states.TimedOut, "TimedOut", StateType.FAILED),
        (states.Crashed, "Crashed", StateType.CRASHED),
        (states.Cancelled, "Cancelled", StateType.CANCELLED),
    ],
)
def test_state_names_map_to_prefect_types(factory: object, name: str,
                                          state_type: StateType) -> None:
    state = factory()  # type: ignore[operator]
    assert state.name == name
    assert state.type is state_type


def test_only_terminal_types_are_final() -> None:
    assert states.Completed().is_final()
    assert states.Cached().is_final()
    assert states.TimedOut().is_final()
    assert not states.AwaitingRetry().is_final()
    assert not states.Retrying().is_final()


def test_completed_result_returns_data() -> None:
    assert states.Completed(data=42).result() == 42


def test_failed_result_raises_the_original_exception() -> None:
    error = KeyError("missing")
    with pytest.raises(KeyError):
        states.Failed(data=error).result()
    assert states.Failed(data=error).result(raise_on_failure=False) is error


def test_failed_without_exception_raises_failed_run_with_message() -> None:
    with pytest.raises(FailedRun, match="boom"):
        states.Failed("boom").result()


def test_cancelled_result_raises() -> None:
    with pytest.raises(CancelledRun):
        states.Cancelled().result()


def test_count_failed_counts_crashed_and_cancelled() -> None:
    items = [states.Completed(), states.Failed(), states.Crashed(), states.Cancelled()]
    assert states.count_failed(items) == (3, 4)
