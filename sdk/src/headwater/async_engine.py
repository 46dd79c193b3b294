"""The engine for ``async def`` flows and tasks, on top of :mod:`headwater.engine`.

Design (and why):

* **Awaited calls run in the caller's event loop.** ``await my_task(x)`` and
  ``asyncio.gather(my_task(1), my_task(2))`` execute the task's coroutine in the loop of
  the flow that awaits it, concurrently where the author gathers them, exactly as
  Prefect 3 does. An async flow called at the top level returns a coroutine, so
  ``asyncio.run(main())`` in ``python my_flow.py`` works as with Prefect; an async
  subflow is awaited by its parent.
* **Submitted async tasks run on the task runner, in the worker thread's own loop.**
  ``.submit()``/``.map()`` hand the task runner a plain callable that runs the coroutine
  to completion in an event loop owned by the worker thread (one per worker, reused
  across the tasks it runs, closed when the worker ends). The returned future is an
  ordinary :class:`~headwater.futures.TaskFuture`, so sync and async flows wait on it the
  same way, and a submitted task never needs the flow's loop to make progress: a flow
  may block on ``future.result()`` without deadlocking. Submitted async tasks share the
  runner's ``max_workers`` limit with sync tasks: to run thousands of I/O-bound
  coroutines concurrently, ``asyncio.gather`` direct calls inside an async flow instead.
* **Timeouts are asyncio-native.** An async task or flow with ``timeout_seconds`` runs
  under ``asyncio.timeout``: on expiry its coroutine is cancelled at the ``await`` it is
  blocked in, so nothing keeps running in the background (unlike a timed-out *sync*
  task, whose thread runs until its blocking call returns; see :mod:`headwater.timeouts`).
  Task runs cancelled this way end Cancelled; the timed-out run ends TimedOut.
* **Everything else is the sync engine's code**: task-run records, caching and the
  per-key lock, retries and their delays, states, hooks (``async def`` hooks are
  awaited), logging. Retry delays go through :data:`sleep`, which tests replace.

Blocking work on the loop: cache records are read and written with blocking file I/O
(small files), the per-key cache lock is waited for on a helper thread, and a sync task
called directly from an async flow runs in the loop's thread, as in Prefect.

SIGTERM (``headwater execute``): :func:`run_flow_in_loop` installs a loop signal handler
that cancels the root flow; the run ends Cancelled with the same summary as a sync run.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from headwater import engine
from headwater import states as st
from headwater.context import (
    FLOW_RUN_CONTEXT,
    TRANSACTION,
    FlowRun,
    FlowRunContext,
    RunTree,
    TaskRun,
)
from headwater.exceptions import (
    FlowRunTimeoutError,
    ResultStorageKeyError,
    TaskRunTimeoutError,
    TerminationSignal,
    UpstreamTaskError,
)
from headwater.futures import PrefectFutureList, TaskFuture
from headwater.states import State, StateType
from headwater.utilities.annotations import BaseAnnotation, quote

if TYPE_CHECKING:
    from headwater.context import TaskRunContext
    from headwater.flows import Flow
    from headwater.results import ResultStore
    from headwater.tasks import Task

sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
"""How async runs wait between retries; tests replace it to avoid real sleeping."""

TERMINATION_MESSAGE = "headwater: SIGTERM"
"""The cancel message :func:`run_flow_in_loop` uses for SIGTERM."""
_terminating = threading.Event()
"""Set once SIGTERM cancelled the root flow (a cancel message may not reach every await)."""


# --- tasks -----------------------------------------------------------------------------


async def call_task_async(task: Task[..., Any], args: tuple[Any, ...],
                          kwargs: dict[str, Any], *, return_state: bool = False,
                          wait_for: Iterable[Any] | None = None) -> Any:
    """Run an async task in the current event loop; return its value (or State)."""
    flow_ctx = FLOW_RUN_CONTEXT.get()
    task_run = engine._new_task_run(task, flow_ctx)
    state = await run_task_async(task, task_run, args, kwargs, wait_for, flow_ctx)
    return engine.task_result(state, return_state)


def run_task_in_new_loop(  # noqa: PLR0917 - mirrors engine.run_task
        task: Task[..., Any], task_run: TaskRun, args: tuple[Any, ...],
        kwargs: dict[str, Any], wait_for: Iterable[Any] | None,
        flow_ctx: FlowRunContext | None) -> State[Any]:
    """Run a submitted async task to completion in the worker thread's own event loop."""
    coro = run_task_async(task, task_run, args, kwargs, wait_for, flow_ctx)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _thread_loop().run(coro)
    # A runner that calls in the caller's thread (ImmediateTaskRunner) inside a loop.
    result: State[Any] = run_awaitable_blocking(coro)
    return result


class _ThreadLoop:
    """One event loop per worker thread, reused by the async tasks that thread runs.

    ``asyncio.run`` per task costs a new loop (selector, self-pipe) every time; a worker
    thread runs one task at a time, so it can keep one loop. The loop is closed when the
    thread ends and drops its thread-local state.
    """

    def __init__(self) -> None:
        self.runner = asyncio.Runner()

    def run(self, coro: Coroutine[Any, Any, State[Any]]) -> State[Any]:
        return self.runner.run(coro)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.runner.close()


_local = threading.local()


def _thread_loop() -> _ThreadLoop:
    loop: _ThreadLoop | None = getattr(_local, "loop", None)
    if loop is None:
        loop = _local.loop = _ThreadLoop()
    return loop


async def run_task_async(  # noqa: PLR0917 - mirrors engine.run_task
        task: Task[..., Any], task_run: TaskRun, args: tuple[Any, ...],
        kwargs: dict[str, Any], wait_for: Iterable[Any] | None,
        flow_ctx: FlowRunContext | None) -> State[Any]:
    """Run one async task run to a final state (raises only on cancellation/termination)."""
    await _wait_for_upstream(args, kwargs, wait_for)
    try:
        args, kwargs, upstream = engine.task_inputs(task_run, args, kwargs, wait_for, flow_ctx)
    except UpstreamTaskError as exc:
        return engine.not_ready(task, task_run, exc, flow_ctx)
    task_ctx, tokens = engine.enter_task(task, task_run, args, kwargs, flow_ctx)
    try:
        engine.render_task_run_name(task, task_ctx)
        if engine.uses_store(task, flow_ctx):
            state = await _run_with_cache(task, task_ctx, upstream, flow_ctx)
        else:
            state = await _run_attempts(task, task_ctx, flow_ctx)
    except asyncio.CancelledError:
        _cancelled(task_run, "The task run was cancelled (its flow timed out or stopped).")
        raise
    except TerminationSignal:
        _cancelled(task_run, "The run received a termination signal (SIGTERM).")
        raise
    except ResultStorageKeyError as exc:  # the task's configuration, not the engine
        state = engine.configuration_failure(task_run, exc)
    except BaseException as exc:  # an engine error crashes this task run, not the process
        state = engine.engine_crash(task_run, exc)
    finally:
        engine.exit_task(tokens)
    task_run.end_time = state.timestamp
    if flow_ctx is not None:
        engine.note_result(flow_ctx, task_run, state)
    if task.on_commit_hooks or TRANSACTION.get() is not None:
        from headwater import transactions

        transactions.join(task, task_run, state, task_ctx.staged)
    await _settle_hooks(engine.run_hooks(task, task_run, state, flow_ctx), task)
    engine.log_final(task, task_run, flow_ctx)
    return state


def _cancelled(task_run: TaskRun, message: str) -> None:
    state = st.Cancelled(message)
    task_run.set_state(state)
    task_run.end_time = state.timestamp


def _collect_futures(value: Any, found: list[TaskFuture[Any]]) -> None:
    """Gather the futures among the arguments (the structures ``engine._resolve`` walks)."""
    if isinstance(value, TaskFuture):
        found.append(value)
    elif isinstance(value, BaseAnnotation):
        if not isinstance(value, quote):
            _collect_futures(value.value, found)
    elif isinstance(value, (list, tuple, set, frozenset, PrefectFutureList)):
        for item in value:
            _collect_futures(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_futures(item, found)


async def _wait_for_upstream(args: tuple[Any, ...], kwargs: dict[str, Any],
                             wait_for: Iterable[Any] | None) -> None:
    """Await upstream futures so that resolving them afterwards never blocks the loop."""
    scalars = engine._SCALARS
    if not wait_for and all(type(v) in scalars for v in args) and all(
            type(v) in scalars for v in kwargs.values()):
        return  # the common case: plain values, nothing to wait for
    found: list[TaskFuture[Any]] = []
    _collect_futures((args, kwargs, wait_for), found)
    pending = [asyncio.wrap_future(f._future) for f in found if not f._future.done()]
    if pending:
        await asyncio.wait(pending)


async def _run_attempts(task: Task[..., Any], task_ctx: TaskRunContext,
                        flow_ctx: FlowRunContext | None) -> State[Any]:
    """Await the coroutine, retrying failures as configured (the sync engine's rules)."""
    task_run = task_ctx.task_run
    task_run.start_time = time.time()
    while True:
        engine.start_attempt(task_run)
        try:
            value = await _call_with_timeout(
                task.fn(*task_ctx.args, **task_ctx.kwargs), task.timeout_seconds,
                TaskRunTimeoutError, lambda: engine.timeout_message(task, task_run))
        except TaskRunTimeoutError as exc:
            state = st.TimedOut(str(exc), data=exc)
        except Exception as exc:  # the task's code failed: that is a Failed state
            state = st.failed_from_exception(exc)
        else:
            state = value if isinstance(value, State) else st.Completed(data=value)
            if state.type is StateType.COMPLETED or not state.is_final():
                task_run.set_state(state)
                return state
        delay = engine.plan_retry(task, task_run, state, flow_ctx)
        if delay is None:
            return state
        if delay > 0:
            await sleep(delay)


async def _call_with_timeout(coro: Coroutine[Any, Any, Any], seconds: float | None,
                             exc_type: type[BaseException],
                             message: Callable[[], str]) -> Any:
    """Await ``coro``; past ``seconds`` cancel it and raise ``exc_type``."""
    if seconds is None:
        return await coro
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await coro
    except TimeoutError:
        if deadline.expired():
            raise exc_type(message()) from None
        raise  # the code itself raised TimeoutError: an ordinary failure


async def _run_with_cache(task: Task[..., Any], task_ctx: TaskRunContext,
                          upstream: list[TaskRun], flow_ctx: FlowRunContext | None) -> State[Any]:
    """Cache lookup, per-key lock, execution and persistence (as ``engine._run_with_cache``)."""
    store, key, plan = engine.cache_plan(task, task_ctx, upstream, flow_ctx)
    if key is None:
        state = await _run_attempts(task, task_ctx, flow_ctx)
        engine.keep_out_of_memory(task, task_ctx, store, state)
        return state
    use_cache = engine.may_use_cache(task, plan)
    if use_cache:
        cached = engine.read_cached(store, key, task_ctx, plan)
        if cached is not None:
            return cached
    async with _key_lock(store, key):
        if use_cache:
            cached = engine.read_cached(store, key, task_ctx, plan)
            if cached is not None:
                return cached
        state = await _run_attempts(task, task_ctx, flow_ctx)
        engine.persist(task, task_ctx, store, key, plan, state)
    return state


@contextlib.asynccontextmanager
async def _key_lock(store: ResultStore, key: str) -> AsyncIterator[None]:
    """Hold the store's per-key lock without blocking the event loop while waiting.

    The lock is a blocking (thread + file) lock shared with sync tasks and other
    processes, so it is acquired on a helper thread. If the waiting coroutine is
    cancelled, the acquisition still completes in the background and is released at
    once, so a cancelled waiter never leaves the key locked.
    """
    lock = store.lock(key)
    acquiring = asyncio.ensure_future(asyncio.to_thread(lock.__enter__))
    try:
        await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        acquiring.add_done_callback(lambda done: _release_if_acquired(lock, done))
        raise
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def _release_if_acquired(lock: contextlib.AbstractContextManager[None],
                         acquiring: asyncio.Future[Any]) -> None:
    if not acquiring.cancelled() and acquiring.exception() is None:
        lock.__exit__(None, None, None)


# --- hooks -----------------------------------------------------------------------------


async def _settle_hooks(pending: list[tuple[Any, Any]], subject: Any) -> None:
    """Await the ``async def`` hooks ``engine.run_hooks`` started."""
    for hook, awaitable in pending:
        try:
            await awaitable
        except Exception as exc:  # hooks are advisory: log and carry on
            engine.hook_failed(subject, hook, exc)


def run_awaitable_blocking(awaitable: Awaitable[Any]) -> Any:
    """Run ``awaitable`` to completion from sync code, inside a running loop or not."""

    async def main() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    # asyncio.run refuses to nest, so a sync caller inside a loop uses a helper thread.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(main())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    helper = threading.Thread(target=target, name="headwater-async-hook")
    helper.start()
    helper.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


# --- flows -----------------------------------------------------------------------------


async def run_flow_async(flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                         *, return_state: bool = False) -> Any:
    """Run an async flow (top-level or subflow); return its value or final State.

    A cancellation from outside (``asyncio.wait_for``, a parent's timeout) ends the run
    Cancelled and is re-raised, as asyncio expects; a SIGTERM cancellation of the root
    flow run (see :func:`run_flow_in_loop`) returns the Cancelled state instead.
    """
    parent = FLOW_RUN_CONTEXT.get()
    flow_run, tree, state = engine._start_flow_run(flow, args, kwargs, parent)
    cancelled: BaseException | None = None
    returned = engine.NOT_RETURNED
    if state is None:
        try:
            state, returned = await _run_flow_body(flow, flow_run, tree, parent)
        except (asyncio.CancelledError, TerminationSignal) as exc:
            cancelled = exc
            state = flow_run.state
    flow_run.end_time = state.timestamp
    await _settle_hooks(engine.run_hooks(flow, flow_run, state, None), flow)
    if parent is None:
        engine._finish_root(flow_run, tree)
    if cancelled is not None and not (parent is None and _is_termination(cancelled)):
        raise cancelled
    return engine.flow_result(state, return_state, returned)


def _is_termination(exc: BaseException) -> bool:
    if isinstance(exc, TerminationSignal) or _terminating.is_set():
        return True
    return TERMINATION_MESSAGE in exc.args


async def _run_flow_body(flow: Flow[..., Any], flow_run: FlowRun, tree: RunTree,
                         parent: FlowRunContext | None) -> tuple[State[Any], Any]:
    """As ``engine._run_flow_body``: the final state and what the last attempt returned."""
    flow_ctx, logger, tokens = engine.enter_flow(flow, flow_run, tree, parent)
    try:
        state, returned = await _flow_attempts(flow, flow_run, flow_ctx, logger)
    finally:
        engine.exit_flow(tokens)
    engine.log_flow_final(logger, state)
    return state, returned


async def _flow_attempts(flow: Flow[..., Any], flow_run: FlowRun, flow_ctx: FlowRunContext,
                         logger: Any) -> tuple[State[Any], Any]:
    local_attempt = 0
    while True:
        local_attempt += 1
        engine.start_flow_attempt(flow_run, local_attempt)
        returned = engine.NOT_RETURNED
        try:
            fn_args, fn_kwargs = flow.split_parameters(flow_run.parameters)
            value = await _call_with_timeout(
                flow.fn(*fn_args, **fn_kwargs), flow.timeout_seconds, FlowRunTimeoutError,
                lambda: engine.flow_timeout_message(flow, flow_run))
            await _drain(flow_ctx)
            returned = engine.futures_to_states(value)
            state = engine.state_from_return_value(returned)
        except (asyncio.CancelledError, TerminationSignal) as exc:
            if _is_termination(exc):
                engine.terminated(flow_ctx)
            else:
                _cancel_own(flow_ctx)
            raise
        except KeyboardInterrupt as exc:
            state = engine.interrupted(flow_ctx, exc)
        except Exception as exc:  # the flow's code failed
            await _drain(flow_ctx)
            state = engine.flow_failure_state(exc)
        delay = engine.plan_flow_retry(flow, flow_ctx, state, local_attempt, logger)
        if delay is None:
            return state, returned
        if delay > 0:
            await sleep(delay)


def _cancel_own(flow_ctx: FlowRunContext) -> None:
    """Cancel this flow run and its unfinished task runs (not its siblings' in the tree)."""
    message = "The flow run was cancelled."
    flow_ctx.task_runner.shutdown(wait=False, cancel_futures=True)
    flow_run = flow_ctx.flow_run
    for task_run in flow_ctx.tree.task_runs:
        if task_run.flow_run_id == flow_run.id and not task_run.state.is_final():
            task_run.set_state(st.Cancelled(message))
    flow_run.set_state(st.Cancelled(message))


async def _drain(flow_ctx: FlowRunContext) -> None:
    """Wait for submitted task runs without blocking the loop (other flows may share it)."""
    runner = flow_ctx.task_runner
    if flow_ctx.submitted:
        await asyncio.to_thread(runner.shutdown, True)
    else:
        runner.shutdown(wait=True)


def run_flow_in_loop(flow: Flow[..., Any], parameters: dict[str, Any]) -> State[Any]:
    """Run an async flow as a process's main work (``headwater execute``); its final State.

    SIGTERM cancels the flow's coroutine through the loop (so the cancellation reaches
    whichever ``await`` the flow is in, and ``finally`` blocks run); the run ends
    Cancelled like a sync run does on SIGTERM.
    """

    async def main() -> State[Any]:
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if in_main_thread else None
        if current is not None and in_main_thread:
            loop.add_signal_handler(signal.SIGTERM, _on_sigterm, loop, current)
        try:
            state: State[Any] = await run_flow_async(flow, (), parameters, return_state=True)
        finally:
            if in_main_thread:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(signal.SIGTERM)
                # remove_signal_handler leaves SIG_DFL, which would kill the process while
                # it writes the summary; put back the caller's handler (or keep ignoring a
                # SIGTERM that has already been handled).
                signal.signal(signal.SIGTERM, signal.SIG_IGN if _terminating.is_set()
                              else previous)
        return state

    _terminating.clear()
    return asyncio.run(main())


def _on_sigterm(loop: asyncio.AbstractEventLoop, main: asyncio.Task[Any]) -> None:
    # A second SIGTERM while stopping must not interrupt writing the summary.
    _terminating.set()
    loop.remove_signal_handler(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    main.cancel(TERMINATION_MESSAGE)
