"""State names, types and result semantics that Prefect users rely on."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from headwater import Flow, states
from headwater.context import FlowRun
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


def test_state_is_generic_at_run_time_as_in_prefect() -> None:
    def on_failure(flow: Flow[..., Any], flow_run: FlowRun, state: states.State[Any]) -> None:
        pass

    hints = typing.get_type_hints(on_failure)  # evaluates the annotations, as a decorator would
    assert hints["state"] == states.State[Any]
    assert typing.get_origin(states.State[int]) is states.State
    assert isinstance(states.Completed(data=1), states.State)


def test_a_failed_state_holding_states_raises_the_first_failed_ones_exception() -> None:
    ok = states.Completed(data=1)
    bad = states.Failed(data=ValueError("row 3"))
    aggregate = states.Failed("1/2 states failed.", data=[ok, bad])
    with pytest.raises(ValueError, match="row 3"):
        aggregate.result()
    assert aggregate.result(raise_on_failure=False) == [ok, bad]
    with pytest.raises(ValueError, match="row 3"):
        states.Failed(data=bad).result()


def test_a_failed_state_holding_a_string_raises_it_as_the_message() -> None:
    with pytest.raises(FailedRun, match="bad input"):
        states.Failed(data="bad input").result()
    with pytest.raises(CancelledRun, match="Run was cancelled"):
        states.Cancelled().result()
    assert isinstance(states.Failed("why").result(raise_on_failure=False), FailedRun)


def test_hook_annotations_import_from_prefect_s_client_paths() -> None:
    from headwater.client.schemas import State as ClientState
    from headwater.client.schemas.objects import FlowRun as ObjectsFlowRun
    from headwater.client.schemas.objects import TaskRun

    assert ClientState is states.State
    assert ObjectsFlowRun is FlowRun
    assert TaskRun.__name__ == "TaskRun"
