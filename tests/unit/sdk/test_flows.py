"""Flow runs: final-state rules, subflows, retries, timeouts, parameters, runtime, logging."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pydantic
import pytest
from headwater import flow, get_run_logger, runtime, task
from headwater.context import FlowRun
from headwater.engine import LAST_RUN_TREE
from headwater.exceptions import ParameterTypeError
from headwater.states import Completed, Failed, State


@task
def ok(x: int = 1) -> int:
    return x


@task
def fail() -> None:
    raise RuntimeError("task broke")


def test_flow_returns_its_value() -> None:
    @flow
    def f(x: int) -> int:
        return ok(x) + 1

    assert f(1) == 2


def test_default_flow_name_uses_dashes() -> None:
    @flow
    def my_etl_flow() -> None:
        pass

    assert my_etl_flow.name == "my-etl-flow"


def test_exception_in_flow_body_fails_the_flow_and_reraises() -> None:
    @flow
    def f() -> None:
        fail()

    with pytest.raises(RuntimeError, match="task broke"):
        f()
    state = f(return_state=True)
    assert state.is_failed()
    assert "task broke" in (state.message or "")


def test_unobserved_failed_future_does_not_fail_the_flow() -> None:
    @flow
    def f() -> str:
        fail.submit()
        return "done"

    state = f(return_state=True)
    assert state.is_completed()
    assert LAST_RUN_TREE[0].task_runs[0].state.is_failed()


def test_returning_a_failed_future_fails_the_flow() -> None:
    @flow
    def f() -> Any:
        return fail.submit()

    assert f(return_state=True).is_failed()


def test_returning_list_of_states_fails_when_any_failed() -> None:
    @flow
    def f() -> list[State]:
        return [ok(return_state=True), fail(return_state=True)]

    state = f(return_state=True)
    assert state.is_failed()
    assert state.message == "1/2 states failed."


def test_returning_completed_futures_gives_their_states() -> None:
    @flow
    def f() -> Any:
        return [ok.submit(1), ok.submit(2)]

    returned = f()  # Prefect 3: futures become their final states, the list is kept
    assert [type(s) for s in returned] == [State, State]
    assert [s.result() for s in returned] == [1, 2]
    assert f(return_state=True).message == "All states completed."


# --- Prefect 3's flow-return rules (prefect/flow_engine.py handle_success and result(),
# prefect/states.py return_value_to_state and get_state_exception) -----------------------


def test_a_list_holding_a_failed_state_fails_the_flow_but_is_returned_as_is() -> None:
    @flow
    def f() -> list[State[Any]]:
        return [ok(return_state=True), fail(return_state=True)]

    returned = f()  # no exception: the caller gets the list it returned
    assert [s.name for s in returned] == ["Completed", "Failed"]
    state = f(return_state=True)
    assert state.is_failed()
    with pytest.raises(RuntimeError, match="task broke"):  # the first failed state's error
        state.result()
    assert [s.name for s in state.result(raise_on_failure=False)] == ["Completed", "Failed"]


def test_a_returned_failed_future_raises_its_task_exception() -> None:
    @flow
    def f() -> Any:
        return fail.submit()

    with pytest.raises(RuntimeError, match="task broke"):
        f()
    assert f(return_state=True).message == "1/1 states failed."


def test_a_returned_completed_task_state_is_given_back_as_a_state() -> None:
    @flow
    def f() -> State[int]:
        return ok(7, return_state=True)

    returned = f()
    assert isinstance(returned, State)
    assert returned.result() == 7


def test_a_dict_or_a_mixed_list_of_states_does_not_fail_the_flow() -> None:
    @flow
    def as_dict() -> dict[str, Any]:
        return {"bad": fail.submit(), "good": ok.submit(1)}

    returned = as_dict()
    assert as_dict(return_state=True).is_completed()
    assert returned["bad"].is_failed()  # the future became its state
    assert returned["good"].result() == 1

    @flow
    def mixed() -> list[Any]:
        return [1, fail(return_state=True)]

    assert mixed(return_state=True).is_completed()
    assert mixed()[0] == 1


def test_a_manual_failed_state_without_data_raises_failed_run_with_its_message() -> None:
    from headwater.exceptions import FailedRun

    @flow
    def f() -> State[Any]:
        return Failed(message="quality gate")

    with pytest.raises(FailedRun, match="quality gate"):
        f()


def test_a_returned_cancelled_state_cancels_the_flow() -> None:
    @flow
    def child() -> None:
        pass

    @flow
    def f() -> list[State[Any]]:
        state = child(return_state=True)
        from headwater.states import Cancelled

        cancelled = Cancelled("stopped")
        cancelled.run_id = "a-run"  # as if a run had recorded it
        return [state, cancelled]

    state = f(return_state=True)
    assert state.is_cancelled()
    assert state.message == "1/2 states cancelled."


def test_async_flows_follow_the_same_return_rules() -> None:
    import asyncio

    @flow
    async def f() -> list[Any]:
        return [ok.submit(1), fail.submit()]

    returned = asyncio.run(f())
    assert [s.name for s in returned] == ["Completed", "Failed"]
    assert asyncio.run(f(return_state=True)).message == "1/2 states failed."


def test_returning_a_manual_state_sets_the_flow_state() -> None:
    @flow
    def f() -> State:
        return Completed(message="nothing to do", data=0)

    state = f(return_state=True)
    assert state.message == "nothing to do"
    assert state.result() == 0

    @flow
    def g() -> State:
        return Failed(message="quality gate")

    assert g(return_state=True).message == "quality gate"


def test_flow_waits_for_submitted_tasks_before_finishing() -> None:
    gate = threading.Event()
    finished: list[int] = []

    @task
    def slow() -> None:
        gate.wait(5)
        finished.append(1)

    @flow
    def f() -> None:
        slow.submit()
        gate.set()

    f()
    assert finished == [1]


def test_subflow_has_its_own_run_record_linked_to_parent() -> None:
    @flow
    def child(n: int) -> int:
        return ok(n)

    @flow
    def parent() -> int:
        return child(2) + child(3)

    assert parent() == 5
    tree = LAST_RUN_TREE[0]
    runs: list[FlowRun] = tree.flow_runs
    assert [r.flow_name for r in runs] == ["parent", "child", "child"]
    assert all(r.parent_flow_run_id == runs[0].id for r in runs[1:])
    assert len({r.id for r in runs}) == 3
    assert len(tree.task_runs) == 2


def test_failed_subflow_raises_in_parent() -> None:
    @flow
    def child() -> None:
        fail()

    @flow
    def parent() -> str:
        try:
            child()
        except RuntimeError:
            return "recovered"
        return "not reached"

    assert parent() == "recovered"


def test_flow_retries_rerun_the_body(sleeps: list[float]) -> None:
    attempts: list[int] = []

    @flow(retries=2, retry_delay_seconds=7)
    def f() -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("flaky")
        return len(attempts)

    assert f() == 3
    assert sleeps == [7.0, 7.0]


def test_flow_timeout_gives_timed_out_state() -> None:
    release = threading.Event()

    @flow(timeout_seconds=0.05)
    def f() -> None:
        while not release.is_set():
            release.wait(0.01)

    try:
        state = f(return_state=True)
    finally:
        release.set()
    assert state.name == "TimedOut"
    assert "exceeded timeout" in (state.message or "")


def test_parameters_are_coerced_from_strings() -> None:
    seen: dict[str, Any] = {}

    @flow
    def f(day: dt.date, n: int, ratio: float = 0.5) -> None:
        seen.update(day=day, n=n, ratio=ratio)

    f(day="2024-01-31", n="3")
    assert seen == {"day": dt.date(2024, 1, 31), "n": 3, "ratio": 0.5}


def test_bad_parameter_fails_before_body_and_names_it() -> None:
    ran: list[int] = []

    @flow
    def f(day: dt.date) -> None:
        ran.append(1)

    state = f(day="yesterday-ish", return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, ParameterTypeError)
    assert "day" in (state.message or "")
    assert "yesterday-ish" in (state.message or "")
    assert ran == []


def test_missing_and_unknown_parameters_are_reported() -> None:
    @flow
    def f(a: int) -> None:
        pass

    message = f(b=1, return_state=True).message or ""
    assert "unknown parameter 'b'" in message


def test_missing_required_parameter_is_named() -> None:
    @flow
    def f(a: int, b: int = 2) -> None:
        pass

    with pytest.raises(ParameterTypeError, match="missing required parameter 'a'"):
        f()


def test_validate_parameters_false_passes_values_through() -> None:
    @flow(validate_parameters=False)
    def f(day: dt.date) -> Any:
        return day

    assert f(day="2024-01-31") == "2024-01-31"


class Window(pydantic.BaseModel):
    start: dt.date
    days: int = 1


def test_pydantic_models_are_coerced_from_dicts() -> None:
    @flow
    def f(window: Window) -> Window:
        return window

    result = f(window={"start": "2024-02-01"})
    assert isinstance(result, Window)
    assert result.start == dt.date(2024, 2, 1)


def test_flow_run_name_template() -> None:
    @flow(flow_run_name="ingest-{day}")
    def f(day: str) -> str:
        return str(runtime.flow_run.name)

    assert f("2024-01-01") == "ingest-2024-01-01"


def test_runtime_exposes_flow_run_fields() -> None:
    @flow
    def f(x: int) -> dict[str, Any]:
        fr = runtime.flow_run
        return {"id": fr.id, "params": fr.parameters, "flow": fr.flow_name,
                "count": fr.run_count, "scheduled": fr.scheduled_start_time}

    info = f(5)
    assert info["params"] == {"x": 5}
    assert info["flow"] == "f"
    assert info["count"] == 1
    assert info["id"] == LAST_RUN_TREE[0].root.id
    assert isinstance(info["scheduled"], dt.datetime)


def test_runtime_task_run_inside_task() -> None:
    @task
    def which() -> tuple[str, int]:
        return runtime.task_run.task_name, runtime.task_run.run_count

    assert which() == ("which", 1)


def test_flow_hooks_fire_by_outcome() -> None:
    events: list[str] = []

    def done(fl: Any, run: Any, state: State) -> None:
        events.append(f"completion:{run.flow_name}")

    def failed(fl: Any, run: Any, state: State) -> None:
        events.append(f"failure:{state.name}")

    @flow(on_completion=[done], on_failure=[failed])
    def good() -> None:
        pass

    @flow(on_completion=[done], on_failure=[failed])
    def bad() -> None:
        raise RuntimeError("x")

    good()
    bad(return_state=True)
    assert events == ["completion:good", "failure:Failed"]


def test_get_run_logger_labels_records(capsys: pytest.CaptureFixture[str]) -> None:
    from headwater.logging import setup_logging

    setup_logging(force=True)

    @task
    def noisy() -> None:
        get_run_logger().info("inside task")

    @flow(flow_run_name="labelled")
    def f() -> None:
        get_run_logger().warning("inside flow")
        noisy()

    f()
    out = capsys.readouterr().out
    assert "| WARNING | Flow run 'labelled' - inside flow" in out
    assert "| INFO    | Task run 'noisy-0' - inside task" in out


def test_get_run_logger_outside_run_explains() -> None:
    with pytest.raises(RuntimeError, match="outside a flow or task run"):
        get_run_logger()


def test_log_prints_routes_print_to_logger(capsys: pytest.CaptureFixture[str]) -> None:
    from headwater.logging import setup_logging

    setup_logging(force=True)

    @flow(log_prints=True, flow_run_name="printer")
    def f() -> None:
        print("hello from print")

    f()
    print("plain print")
    out = capsys.readouterr().out
    assert "Flow run 'printer' - hello from print" in out
    assert "\nplain print\n" in out


def test_custom_task_runner_receives_submissions() -> None:
    from headwater.task_runners import ImmediateTaskRunner

    submitted: list[int] = []

    class CountingRunner(ImmediateTaskRunner):
        def submit(self, fn: Any) -> Any:
            submitted.append(1)
            return super().submit(fn)

        def duplicate(self) -> CountingRunner:
            return self

    @flow(task_runner=CountingRunner())
    def f() -> list[int]:
        return ok.map([1, 2, 3]).result()

    assert f() == [1, 2, 3]
    assert len(submitted) == 3


def test_thread_pool_runner_runs_tasks_concurrently() -> None:
    from headwater import ThreadPoolTaskRunner

    barrier = threading.Barrier(3, timeout=10)

    @task
    def meet(i: int) -> int:
        return barrier.wait()

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def f() -> list[int]:
        return sorted(meet.map([1, 2, 3]).result())

    assert f() == [0, 1, 2]  # all three were inside meet() at once


def test_flow_persist_result_turns_on_caching_for_its_tasks() -> None:
    calls: list[int] = []

    @task
    def step(x: int) -> int:
        calls.append(x)
        return x

    @flow(persist_result=True)
    def f() -> None:
        step(1)
        step(1)

    f()
    assert calls == [1]


def test_cancellation_hook_runs_on_keyboard_interrupt_as_crashed() -> None:
    events: list[str] = []

    def crashed(fl: Any, run: Any, state: State) -> None:
        events.append(state.name)

    @flow(on_crashed=[crashed])
    def f() -> None:
        raise KeyboardInterrupt

    state = f(return_state=True)
    assert state.is_crashed()
    assert events == ["Crashed"]


def test_a_flow_run_name_function_sees_its_run_and_its_errors_fail_the_run() -> None:
    def from_parameters() -> str:  # Prefect's documented pattern
        return f"{runtime.flow_run.flow_name}-{runtime.flow_run.parameters['day']}"

    @flow(flow_run_name=from_parameters)
    def daily(day: str) -> str:
        return runtime.flow_run.name  # type: ignore[no-any-return]

    assert daily("mon") == "daily-mon"

    def broken() -> str:
        raise KeyError("region")

    @flow(flow_run_name=broken)
    def regional() -> None:
        pass

    state = regional(return_state=True)
    assert state.is_failed()
    assert state.message == ("flow 'regional': its flow_run_name function 'broken' raised "
                             "KeyError: 'region'")
    with pytest.raises(KeyError):
        regional()
