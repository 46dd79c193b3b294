"""Task calling conventions, retries, timeouts, hooks and dependency handling."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from headwater import allow_failure, engine, exponential_backoff, flow, task, unmapped
from headwater.exceptions import UpstreamTaskError
from headwater.futures import TaskFuture, wait
from headwater.states import State


@task
def double(x: int) -> int:
    return x * 2


@task
def explode(message: str = "boom") -> None:
    raise ValueError(message)


def test_direct_call_inside_flow_returns_value() -> None:
    @flow
    def f() -> int:
        return double(21)

    assert f() == 42


def test_task_called_outside_a_flow_still_runs() -> None:
    assert double(4) == 8


def test_failed_direct_call_raises_the_original_exception_in_the_flow() -> None:
    seen: list[str] = []

    @flow
    def f() -> str:
        try:
            explode("bad row")
        except ValueError as exc:
            seen.append(str(exc))
        return "handled"

    assert f() == "handled"
    assert seen == ["bad row"]


def test_return_state_gives_state_instead_of_raising() -> None:
    @flow
    def f() -> State:
        return explode(return_state=True)  # type: ignore[no-any-return]

    state = f(return_state=True)
    assert state.is_failed()


def test_submit_returns_future_with_result_and_state() -> None:
    @flow
    def f() -> tuple[int, str]:
        future = double.submit(5)
        assert isinstance(future, TaskFuture)
        future.wait()
        return future.result(), future.state.name

    assert f() == (10, "Completed")


def test_future_result_raises_task_exception() -> None:
    @flow
    def f() -> None:
        explode.submit("from future").result()

    state = f(return_state=True)
    assert state.is_failed()
    assert "from future" in (state.message or "")


def test_futures_passed_as_arguments_are_resolved() -> None:
    @flow
    def f() -> int:
        result: int = double(double.submit(3))
        return result

    assert f() == 12


def test_futures_nested_in_lists_are_resolved() -> None:
    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @flow
    def f() -> int:
        result: int = total([double.submit(i) for i in range(4)])
        return result

    assert f() == 12


def test_map_iterates_and_unmapped_stays_whole() -> None:
    @task
    def scale(x: int, factor: int, names: list[str]) -> tuple[int, int]:
        return x * factor, len(names)

    @flow
    def f() -> list[tuple[int, int]]:
        return scale.map([1, 2, 3], factor=unmapped(10), names=unmapped(["a", "b"])).result()

    assert f() == [(10, 2), (20, 2), (30, 2)]


def test_map_with_unequal_lengths_names_the_parameters() -> None:
    @task
    def add(a: int, b: int) -> int:
        return a + b

    @flow
    def f() -> None:
        add.map([1, 2], [1, 2, 3])

    state = f(return_state=True)
    assert state.is_failed()
    assert "different lengths" in (state.message or "")
    assert "'a': 2" in (state.message or "")


def test_wait_for_orders_execution() -> None:
    order: list[str] = []
    gate = threading.Event()

    @task
    def first() -> None:
        gate.wait(5)
        order.append("first")

    @task
    def second() -> None:
        order.append("second")

    @flow
    def f() -> None:
        upstream = first.submit()
        downstream = second.submit(wait_for=[upstream])
        gate.set()
        downstream.wait()

    f()
    assert order == ["first", "second"]


def test_failed_upstream_makes_downstream_not_ready() -> None:
    @flow
    def g() -> tuple[str, bool]:
        bad = explode.submit()
        downstream = double.submit(bad)
        downstream.wait()
        with pytest.raises(UpstreamTaskError):
            downstream.result()
        return downstream.state.name, downstream.state.is_pending()

    assert g() == ("NotReady", True)


def test_allow_failure_passes_the_exception_downstream() -> None:
    @task
    def describe(value: Any) -> str:
        return type(value).__name__

    @flow
    def f() -> str:
        bad = explode.submit()
        return describe(allow_failure(bad))

    assert f() == "ValueError"


def test_wait_helper_splits_done_and_not_done() -> None:
    @flow
    def f() -> int:
        futures = [double.submit(i) for i in range(3)]
        done = wait(futures)
        return len(done.done)

    assert f() == 3


def test_retries_use_list_delays_in_order(sleeps: list[float]) -> None:
    attempts: list[int] = []

    @task(retries=3, retry_delay_seconds=[1, 5, 30])
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 4:
            raise ConnectionError("try again")
        return "ok"

    @flow
    def f() -> str:
        return flaky()

    assert f() == "ok"
    assert sleeps == [1.0, 5.0, 30.0]


def test_retries_exhausted_fail_with_last_error(sleeps: list[float]) -> None:
    @task(retries=2, retry_delay_seconds=2)
    def always() -> None:
        raise ConnectionError("down")

    state = always(return_state=True)
    assert state.is_failed()
    assert "down" in (state.message or "")
    assert sleeps == [2.0, 2.0]


def test_retry_state_history_goes_through_awaiting_retry_and_retrying() -> None:
    calls: list[int] = []

    @task(retries=1)
    def once_flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first")
        return 1

    @flow
    def f() -> list[str]:
        future = once_flaky.submit()
        future.wait()
        return [s.name for s in future.task_run.state_history]

    assert f() == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]


def test_exponential_backoff_delays(sleeps: list[float]) -> None:
    @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=10))
    def always() -> None:
        raise RuntimeError("no")

    always(return_state=True)
    assert sleeps == [10.0, 20.0, 40.0]


def test_retry_jitter_scales_delay(sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "random_uniform", lambda lo, hi: hi)

    @task(retries=1, retry_delay_seconds=10, retry_jitter_factor=0.5)
    def always() -> None:
        raise RuntimeError("no")

    always(return_state=True)
    assert sleeps == [15.0]


def test_retry_condition_fn_can_refuse_retry(sleeps: list[float]) -> None:
    calls: list[int] = []

    def only_connection_errors(tsk: Any, task_run: Any, state: State) -> bool:
        return isinstance(state.data, ConnectionError)

    @task(retries=3, retry_condition_fn=only_connection_errors)
    def bad_input() -> None:
        calls.append(1)
        raise ValueError("bad input will not fix itself")

    assert bad_input(return_state=True).is_failed()
    assert len(calls) == 1


def test_task_timeout_marks_timed_out() -> None:
    release = threading.Event()

    @task(timeout_seconds=0.05)
    def hang() -> None:
        while not release.is_set():
            release.wait(0.01)

    @flow
    def f() -> tuple[str, bool, str]:
        state = hang(return_state=True)
        return state.name, state.is_failed(), state.message or ""

    try:
        name, failed, message = f()
    finally:
        release.set()
    assert (name, failed) == ("TimedOut", True)
    assert "exceeded timeout of 0.05s" in message


def test_hooks_receive_task_run_and_state() -> None:
    events: list[tuple[str, str]] = []

    def on_ok(tsk: Any, task_run: Any, state: State) -> None:
        events.append(("ok", state.name))

    def on_bad(tsk: Any, task_run: Any, state: State) -> None:
        events.append(("bad", state.name))

    good = task(lambda: 1, name="good", on_completion=[on_ok])
    bad = task(lambda: 1 / 0, name="bad", on_failure=[on_bad])
    good()
    bad(return_state=True)
    assert events == [("ok", "Completed"), ("bad", "Failed")]


def test_failing_hook_does_not_fail_the_task() -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("hook broke")

    ok = task(lambda: 7, name="ok", on_completion=[broken])
    assert ok() == 7


def test_task_run_name_template_uses_parameters() -> None:
    @task(task_run_name="double-{x}")
    def named(x: int) -> int:
        return x

    @flow
    def f() -> str:
        future = named.submit(7)
        future.wait()
        return future.task_run.name

    assert f() == "double-7"


def test_with_options_overrides_settings(sleeps: list[float]) -> None:
    @task
    def always() -> None:
        raise RuntimeError("x")

    retried = always.with_options(retries=2, name="retried")
    assert retried.name == "retried"
    retried(return_state=True)
    assert len(sleeps) == 0  # delay 0 never sleeps
    assert retried.retries == 2


def test_task_returning_a_failed_state_is_failed() -> None:
    from headwater.states import Failed

    @task
    def manual() -> State:
        return Failed("decided to fail")

    state = manual(return_state=True)
    assert state.is_failed()
    assert state.message == "decided to fail"


def test_bad_arguments_name_the_task() -> None:
    @flow
    def f() -> None:
        double.map(x=[1], y=[2])

    state = f(return_state=True)
    assert "task 'double'" in (state.message or "")
