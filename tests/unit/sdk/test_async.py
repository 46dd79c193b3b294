"""``async def`` flows and tasks: awaiting, gather, submit/map, subflows, retries,
timeouts, caching, hooks, and ``asyncio.run`` / ``headwater execute`` entrypoints."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from headwater import flow, get_run_logger, runtime, task
from headwater.engine import LAST_RUN_TREE
from headwater.exceptions import UpstreamTaskError
from headwater.states import State, StateType


@task
async def add_one(x: int) -> int:
    await asyncio.sleep(0)
    return x + 1


def _task_states(name: str | None = None) -> list[str]:
    return [tr.state.name for tr in LAST_RUN_TREE[0].task_runs
            if name is None or tr.task_name == name]


# --- calling -----------------------------------------------------------------------------


def test_async_flow_awaits_async_task_and_records_runs() -> None:
    @flow
    async def main(x: int) -> int:
        return await add_one(x) + await add_one(x)

    assert main.isasync
    assert add_one.isasync
    assert asyncio.run(main(1)) == 4
    tree = LAST_RUN_TREE[0]
    assert tree.root.state.name == "Completed"
    assert [tr.name for tr in tree.task_runs] == ["add_one-0", "add_one-1"]
    assert all(tr.flow_run_id == tree.root.id for tr in tree.task_runs)


def test_gathered_task_calls_run_concurrently_in_the_flow_loop() -> None:
    """Each task waits for an event only the other sets: sequential execution would hang."""
    first, second = asyncio.Event(), asyncio.Event()

    @task(timeout_seconds=10)
    async def ping() -> str:
        first.set()
        await second.wait()
        return "ping"

    @task(timeout_seconds=10)
    async def pong() -> str:
        second.set()
        await first.wait()
        return "pong"

    @flow
    async def main() -> list[str]:
        return list(await asyncio.gather(ping(), pong()))

    assert asyncio.run(main()) == ["ping", "pong"]
    assert _task_states() == ["Completed", "Completed"]


def test_async_task_return_state_and_failure() -> None:
    @task
    async def boom() -> None:
        raise ValueError("bad input")

    @flow
    async def main() -> State:
        state: State = await boom(return_state=True)
        assert state.is_failed()
        with pytest.raises(ValueError, match="bad input"):
            await boom()
        return state

    state = asyncio.run(main(return_state=True))
    assert state.is_failed()  # the flow returned a failed State: it fails too
    assert _task_states() == ["Failed", "Failed"]


def test_async_task_outside_a_flow() -> None:
    assert asyncio.run(add_one(41)) == 42


def test_submit_async_task_from_sync_flow_runs_on_a_worker_loop() -> None:
    seen: dict[str, Any] = {}

    @task
    async def where(x: int) -> int:
        seen["thread"] = threading.current_thread().name
        seen["flow_run"] = runtime.flow_run.name
        await asyncio.sleep(0)
        return x * 10

    @flow
    def main() -> int:
        value: int = where.submit(4).result()
        return value

    assert main() == 40
    assert seen["thread"].startswith("headwater-task")
    assert seen["flow_run"] == LAST_RUN_TREE[0].root.name  # the run context follows


def test_submit_and_map_async_tasks_from_async_flow() -> None:
    @flow
    async def main() -> tuple[int, list[int]]:
        future = add_one.submit(1)
        mapped = add_one.map([10, 20, 30])
        # A sync wait inside the flow cannot deadlock: the tasks do not need this loop.
        return future.result(), mapped.result()

    assert asyncio.run(main()) == (2, [11, 21, 31])
    assert _task_states() == ["Completed"] * 4


def test_async_task_waits_for_upstream_future_without_blocking_the_loop() -> None:
    release = threading.Event()

    @task
    def slow_source() -> int:
        release.wait(10)
        return 5

    @task
    async def releaser() -> None:
        release.set()  # runs in the flow's loop while the consumer awaits the future

    @flow
    async def main() -> int:
        upstream = slow_source.submit()
        consumer = add_one(upstream)
        results = await asyncio.gather(consumer, releaser())
        value: int = results[0]
        return value

    assert asyncio.run(main()) == 6


def test_async_task_not_ready_when_upstream_failed() -> None:
    @task
    def broken() -> int:
        raise RuntimeError("upstream broke")

    captured: list[State] = []

    @flow
    async def main() -> None:
        captured.append(await add_one(broken.submit(), return_state=True))

    asyncio.run(main())
    state = captured[0]
    assert state.name == "NotReady"
    assert isinstance(state.data, UpstreamTaskError)


# --- subflows and top-level ----------------------------------------------------------------


def test_async_subflow_has_its_own_run_record() -> None:
    @flow
    async def child(x: int) -> int:
        return await add_one(x)

    @flow
    async def parent() -> list[int]:
        return list(await asyncio.gather(child(1), child(2)))

    assert asyncio.run(parent()) == [2, 3]
    tree = LAST_RUN_TREE[0]
    root, *children = tree.flow_runs
    assert [c.flow_name for c in children] == ["child", "child"]
    assert {c.parent_flow_run_id for c in children} == {root.id}
    assert {tr.flow_run_id for tr in tree.task_runs} == {c.id for c in children}


def test_sync_flow_can_run_async_subflow_with_asyncio_run() -> None:
    @flow
    async def child() -> str:
        return str(runtime.flow_run.parent_flow_run_id)

    @flow
    def parent() -> str:
        return asyncio.run(child())

    assert parent() == LAST_RUN_TREE[0].root.id


def test_async_flow_parameters_are_validated_before_the_body() -> None:
    ran: list[int] = []

    @flow
    async def main(n: int) -> int:
        ran.append(n)
        return n

    assert asyncio.run(main("7")) == 7
    state = asyncio.run(main("seven", return_state=True))
    assert state.is_failed()
    assert "parameter n: Input should be a valid integer" in (state.message or "")
    assert ran == [7]


# --- retries, timeouts, caching, hooks ------------------------------------------------------


def test_async_task_retries_use_the_injected_sleep(sleeps: list[float]) -> None:
    attempts: list[int] = []

    @task(retries=3, retry_delay_seconds=[1, 5])
    async def flaky() -> str:
        attempts.append(runtime.task_run.run_count)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "ok"

    @flow
    async def main() -> str:
        return await flaky()

    assert asyncio.run(main()) == "ok"
    assert attempts == [1, 2, 3]
    assert sleeps == [1.0, 5.0]
    history = [s.name for s in LAST_RUN_TREE[0].task_runs[0].state_history]
    assert history == ["Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry",
                       "Retrying", "Completed"]


def test_async_flow_retries(sleeps: list[float]) -> None:
    calls: list[int] = []

    @flow(retries=1, retry_delay_seconds=3)
    async def main() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")
        return len(calls)

    assert asyncio.run(main()) == 2
    assert sleeps == [3.0]


def test_async_task_timeout_cancels_the_coroutine() -> None:
    cleaned_up: list[str] = []

    @task(timeout_seconds=0.05)
    async def hangs() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.append("finally ran")  # proof the coroutine was cancelled

    captured: list[State] = []

    @flow
    async def main() -> None:
        captured.append(await hangs(return_state=True))

    asyncio.run(main())
    state = captured[0]
    assert state.name == "TimedOut"
    assert state.type is StateType.FAILED
    assert "exceeded timeout of 0.05s" in (state.message or "")
    assert cleaned_up == ["finally ran"]


def test_timeout_error_raised_by_code_is_a_plain_failure() -> None:
    @task(timeout_seconds=30)
    async def raises_timeout() -> None:
        raise TimeoutError("the remote service timed out")

    state = asyncio.run(raises_timeout(return_state=True))
    assert state.name == "Failed"


def test_async_flow_timeout_cancels_awaited_task() -> None:
    @task
    async def hangs() -> None:
        await asyncio.Event().wait()

    @flow(timeout_seconds=0.05)
    async def main() -> None:
        await hangs()

    state = asyncio.run(main(return_state=True))
    assert state.name == "TimedOut"
    assert _task_states() == ["Cancelled"]


def test_gathered_subflows_time_out_independently() -> None:
    @flow(timeout_seconds=0.05)
    async def short() -> None:
        await asyncio.Event().wait()

    @flow(timeout_seconds=30)
    async def long(gate: asyncio.Event) -> str:
        await gate.wait()
        return "done"

    @flow
    async def parent() -> list[str]:
        gate = asyncio.Event()

        async def short_then_open() -> str:
            state: State = await short(return_state=True)
            gate.set()  # the long subflow finishes only after the short one timed out
            return state.name

        return list(await asyncio.gather(short_then_open(), long(gate)))

    assert asyncio.run(parent()) == ["TimedOut", "done"]


def test_async_cache_hit_skips_execution() -> None:
    calls: list[int] = []

    @task(cache_key_fn=lambda ctx, args: f"square-{args['x']}")
    async def square(x: int) -> int:
        calls.append(x)
        return x * x

    @flow
    async def main() -> list[int]:
        return [await square(3), await square(3), await square(4)]

    assert asyncio.run(main()) == [9, 9, 16]
    assert calls == [3, 4]
    assert _task_states() == ["Completed", "Cached", "Completed"]


def test_gathered_identical_cached_tasks_compute_once() -> None:
    calls: list[int] = []

    @task(cache_key_fn=lambda ctx, args: "shared-key")
    async def expensive() -> int:
        calls.append(1)
        for _ in range(5):
            await asyncio.sleep(0)  # give the other call every chance to interleave
        return 7

    @flow
    async def main() -> list[int]:
        return list(await asyncio.gather(expensive(), expensive(), expensive()))

    assert asyncio.run(main()) == [7, 7, 7]
    assert calls == [1]
    assert sorted(_task_states()) == ["Cached", "Cached", "Completed"]


def test_async_task_hooks_sync_and_async() -> None:
    seen: list[str] = []

    async def async_hook(tsk: Any, run: Any, state: State) -> None:
        await asyncio.sleep(0)
        seen.append(f"async:{run.name}:{state.name}")

    def sync_hook(tsk: Any, run: Any, state: State) -> None:
        seen.append(f"sync:{run.name}:{state.name}")

    def broken_hook(tsk: Any, run: Any, state: State) -> None:
        raise RuntimeError("hook bug")

    @task(on_completion=[sync_hook, async_hook], on_failure=[broken_hook, async_hook])
    async def maybe(fail: bool) -> int:
        if fail:
            raise ValueError("no")
        return 1

    @flow
    async def main() -> None:
        await maybe(False)
        await maybe(True, return_state=True)

    asyncio.run(main())
    assert seen == ["sync:maybe-0:Completed", "async:maybe-0:Completed",
                    "async:maybe-1:Failed"]


def test_async_hooks_on_sync_task_and_flow() -> None:
    seen: list[str] = []

    async def on_done(subject: Any, run: Any, state: State) -> None:
        await asyncio.sleep(0)
        seen.append(f"{subject.name}:{state.name}")

    @task(on_completion=[on_done])
    def plain() -> int:
        return 1

    @flow(on_completion=[on_done])
    def sync_flow() -> int:
        return plain()

    @flow
    async def async_flow() -> int:
        return plain()  # a sync task inside a running loop: the hook uses a helper thread

    assert sync_flow() == 1
    assert asyncio.run(async_flow()) == 1
    assert seen == ["plain:Completed", "sync-flow:Completed", "plain:Completed"]


def test_async_flow_hooks_and_logger(capsys: pytest.CaptureFixture[str]) -> None:
    from headwater.logging import setup_logging

    setup_logging(force=True)  # bind the handler to this test's captured stdout
    seen: list[str] = []

    async def failed(fl: Any, run: Any, state: State) -> None:
        seen.append(state.name)

    @flow(on_failure=[failed])
    async def main() -> None:
        get_run_logger().info("inside async flow")
        raise RuntimeError("flow code failed")

    with pytest.raises(RuntimeError, match="flow code failed"):
        asyncio.run(main())
    assert seen == ["Failed"]
    assert "inside async flow" in capsys.readouterr().out


def test_external_cancellation_marks_flow_cancelled_and_propagates() -> None:
    seen: list[str] = []

    @flow(on_cancellation=[lambda fl, run, state: seen.append(state.name)])
    async def main() -> None:
        await asyncio.Event().wait()

    async def caller() -> None:
        running = asyncio.ensure_future(main())
        await asyncio.sleep(0)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(caller())
    assert LAST_RUN_TREE[0].root.state.name == "Cancelled"
    assert seen == ["Cancelled"]


# --- entrypoints (real processes) -----------------------------------------------------------

ASYNC_FLOWS = textwrap.dedent(
    """
    import asyncio
    from pathlib import Path

    from headwater import flow, task

    @task(retries=1)
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    @flow
    async def main(n: int = 2) -> int:
        values = await asyncio.gather(*[fetch(i) for i in range(n)])
        return sum(values)

    @flow
    async def waits(marker: str) -> None:
        Path(marker).write_text("started")
        await asyncio.sleep(60)

    if __name__ == "__main__":
        print("result", asyncio.run(main(4)))
    """
)


@pytest.fixture
def async_flows_file(tmp_path: Path) -> Path:
    path = tmp_path / "async_flows.py"
    path.write_text(ASYNC_FLOWS)
    return path


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env["HEADWATER_HOME"] = str(home)
    return env


def test_script_with_asyncio_run_prints_summary(async_flows_file: Path,
                                                headwater_home: Path) -> None:
    done = subprocess.run([sys.executable, str(async_flows_file)], env=_env(headwater_home),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "result 12" in done.stdout
    assert "Completed" in done.stdout  # the run summary line


def test_execute_runs_async_entrypoint(async_flows_file: Path, tmp_path: Path,
                                       headwater_home: Path) -> None:
    from headwater import contract

    summary_path = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "headwater", "execute", "--entrypoint",
         f"{async_flows_file}:main", "--param", "n=3", "--summary-path", str(summary_path)],
        env=_env(headwater_home), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == contract.EXIT_COMPLETED, done.stderr
    summary = contract.decode_summary(summary_path.read_text())
    assert summary["state"] == "Completed"
    assert summary["taskRuns"] == {"Completed": 3}


def test_sigterm_cancels_async_flow(async_flows_file: Path,
                                    execute_then_sigterm: Callable[[str], Any]) -> None:
    from headwater import contract

    done = execute_then_sigterm(f"{async_flows_file}:waits")
    assert done.returncode == contract.EXIT_CANCELLED, done.stderr
    summary_path = done.summary_path
    summary = contract.decode_summary(summary_path.read_text())
    assert summary["state"] == "Cancelled"
    assert summary["reason"] == "TerminationSignal"


def test_immediate_runner_submits_async_task_from_inside_a_loop() -> None:
    from headwater.task_runners import ImmediateTaskRunner

    @flow(task_runner=ImmediateTaskRunner())
    async def main() -> int:
        value: int = add_one.submit(1).result()  # runs now, in this (looping) thread
        return value

    assert asyncio.run(main()) == 2


def test_async_detection_sees_partials_and_callable_objects() -> None:
    import functools

    from headwater.utilities.asyncutils import is_async_callable

    async def coro_fn(x: int) -> int:
        return x

    class AsyncCallable:
        async def __call__(self) -> None:
            return None

    assert is_async_callable(functools.partial(coro_fn, 1))
    assert is_async_callable(AsyncCallable())
    assert not is_async_callable(lambda: None)
    assert task(functools.partial(coro_fn, 1)).isasync


def test_cancelling_one_gathered_subflow_leaves_its_sibling_alone() -> None:
    gate = asyncio.Event()

    @task
    async def wait_for_gate() -> str:
        await gate.wait()
        return "opened"

    @flow
    async def sibling() -> str:
        return await wait_for_gate()

    @flow
    async def doomed() -> None:
        await asyncio.Event().wait()

    @flow
    async def parent() -> str:
        other = asyncio.ensure_future(sibling())
        victim = asyncio.ensure_future(doomed())
        await asyncio.sleep(0)
        victim.cancel()
        with pytest.raises(asyncio.CancelledError):
            await victim
        gate.set()
        return await other

    assert asyncio.run(parent()) == "opened"
    runs = {r.flow_name: r.state.name for r in LAST_RUN_TREE[0].flow_runs}
    assert runs == {"parent": "Completed", "sibling": "Completed", "doomed": "Cancelled"}
    history = [s.name for s in LAST_RUN_TREE[0].task_runs[0].state_history]
    assert history == ["Pending", "Running", "Completed"]  # never marked Cancelled
