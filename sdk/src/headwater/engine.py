"""The in-process engine: runs task and flow calls and tracks their states.

The hot path (a task called directly inside a flow) is: create a :class:`TaskRun`,
resolve futures among the arguments, call the function, record ``Completed``. Features
that cost more — binding parameters, cache keys, result persistence, timeouts, asset
fingerprints — are paid only by tasks that use them.

Time and randomness go through module attributes (:data:`sleep`, :data:`random_uniform`)
so tests replace them instead of waiting for real retry delays.

Final-state rules (Prefect 3):

* a task's state is Completed with its return value, Failed with its exception,
  TimedOut past ``timeout_seconds``, Cached when its result came from the cache,
  NotReady when an upstream future it depends on did not complete;
* a flow's state follows its return value (:func:`state_from_return_value`): an
  exception raised in the flow body (for example by a failed task called directly)
  fails it; a State its code created is its state; a run's State (a task's, from
  ``return_state=True``), a future, or a list/tuple/set made only of them, is
  aggregated: Completed when all completed, else Cancelled, or Failed; anything else
  (a dict of states included) is Completed, even if a submitted task failed and nobody
  looked at its result.
* what calling a flow gives back (:func:`flow_result`) is what its function returned,
  futures replaced by their final states, even when that failed the flow (a list holding
  a failed state is returned as is, not raised); only a returned State is unwrapped: its
  value, or its exception raised.
"""

from __future__ import annotations

import contextvars
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from types import GeneratorType
from typing import TYPE_CHECKING, Any

from headwater import cache_policies
from headwater import states as st
from headwater.context import (
    FLOW_RUN_CONTEXT,
    TAGS,
    TASK_RUN_CONTEXT,
    TRANSACTION,
    FlowRun,
    FlowRunContext,
    RunTree,
    TaskRun,
    TaskRunContext,
)
from headwater.exceptions import (
    FlowRunTimeoutError,
    ParameterTypeError,
    ResultStorageKeyError,
    TaskRunTimeoutError,
    TerminationSignal,
    UpstreamTaskError,
)
from headwater.futures import PrefectFutureList, TaskFuture
from headwater.states import State, StateType
from headwater.utilities.annotations import BaseAnnotation, allow_failure, quote, unmapped

if TYPE_CHECKING:
    from headwater.flows import Flow
    from headwater.results import ResultStore
    from headwater.task_runners import TaskRunner
    from headwater.tasks import Task

sleep: Callable[[float], None] = time.sleep
"""How the engine waits between retries; tests replace it to avoid real sleeping."""
random_uniform: Callable[[float, float], float] = random.uniform
"""Source of retry jitter; tests replace it for determinism."""

_SCALARS = frozenset({int, str, float, bool, bytes, type(None)})
_NO_HOOKS: list[tuple[Any, Any]] = []  # shared and never mutated: most runs have no hooks
_TERMINAL = st.TERMINAL_STATE_TYPES
_NOT_RETRIED = frozenset({StateType.COMPLETED, StateType.CRASHED, StateType.CANCELLED})
"""Final flow states that end the run whatever its ``retries``."""
_SDK_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


# --- run configuration for the root flow run (set by `headwater execute`) --------------


class RootRunConfig:
    """Identity the operator gives the top-level flow run of a pod."""

    __slots__ = ("attempt", "deployment_name", "flow_run_id", "flow_run_name",
                 "scheduled_start_time", "source")

    def __init__(self, flow_run_id: str | None = None, flow_run_name: str | None = None,
                 scheduled_start_time: float | None = None, attempt: int = 1,
                 deployment_name: str | None = None, *,
                 source: dict[str, Any] | None = None) -> None:
        self.flow_run_id = flow_run_id
        self.flow_run_name = flow_run_name
        self.scheduled_start_time = scheduled_start_time
        self.attempt = attempt
        self.deployment_name = deployment_name
        self.source = source
        """What ``headwater fetch-source`` fetched (Flow.spec.source), for the run record."""


ROOT_RUN_CONFIG: contextvars.ContextVar[RootRunConfig | None] = contextvars.ContextVar(
    "headwater_root_run_config", default=None
)
LAST_RUN_TREE: list[RunTree] = []
"""The most recent root run tree (``headwater execute`` reads it for the summary)."""


# --- helpers -------------------------------------------------------------------------


def _new_id() -> str:
    """A random RFC 4122 version-4 UUID string (``uuid`` itself imports ``platform``)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_ADJECTIVES = ("amber", "brisk", "calm", "daring", "eager", "fluent", "gentle", "hardy",
               "icy", "jolly", "keen", "lively", "mellow", "nimble", "olive", "proud")
_ANIMALS = ("otter", "heron", "salmon", "beaver", "trout", "kingfisher", "newt", "mink",
            "pike", "dipper", "vole", "crane", "eel", "frog", "grebe", "teal")


def generate_run_name() -> str:
    """A readable random run name such as ``calm-heron``."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_ANIMALS)}"


def _render_name(template: str | Callable[[], str] | None, parameters: dict[str, Any],
                 fallback: str) -> str:
    if template is None:
        return fallback
    if callable(template):
        return str(template())
    try:
        return template.format(**parameters)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"run name template {template!r} could not be filled from parameters "
            f"{sorted(parameters)}: {exc}"
        ) from None


def _logger_for_task(task_run: TaskRun, flow_ctx: FlowRunContext | None) -> Any:
    from headwater.logging import setup_logging, task_run_logger

    setup_logging()
    flow_run = flow_ctx.flow_run if flow_ctx else None
    return task_run_logger(task_run.id, task_run.name, flow_run.id if flow_run else None,
                           flow_run.name if flow_run else None)


def _logger_for_flow(flow_run: FlowRun) -> Any:
    from headwater.logging import flow_run_logger, setup_logging

    setup_logging()
    return flow_run_logger(flow_run.id, flow_run.name, flow_run.flow_name)


# --- resolving futures among arguments -------------------------------------------------


def _upstream_error(task_run: TaskRun, state: State[Any]) -> UpstreamTaskError:
    return UpstreamTaskError(
        f"Upstream task run {task_run.name!r} did not reach a 'COMPLETED' state "
        f"(it is {state.name}); wrap the argument in allow_failure(...) to run anyway."
    )


def _future_state(future: TaskFuture[Any]) -> State[Any]:
    future.wait()
    return future.state


def _resolve(value: Any, upstream: list[TaskRun], allow: bool = False) -> Any:
    """Replace futures/states inside ``value`` with their results; keeps identity if none."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if isinstance(value, TaskFuture):
        state = _future_state(value)
        upstream.append(value.task_run)
        if state.type is not StateType.COMPLETED:
            if not allow:
                raise _upstream_error(value.task_run, state)
            return state.result(raise_on_failure=False)
        return state.data
    if isinstance(value, State):
        if value.type is not StateType.COMPLETED and not allow:
            raise UpstreamTaskError(f"an upstream state is {value.name}, not Completed")
        return value.result(raise_on_failure=False)
    if isinstance(value, BaseAnnotation):
        if isinstance(value, quote):
            return value.value  # quoted: passed exactly as given, never inspected
        return _resolve(value.value, upstream, allow or isinstance(value, allow_failure))
    if kind in (list, tuple, set, frozenset) or isinstance(value, PrefectFutureList):
        items = [_resolve(v, upstream, allow) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return list(items) if isinstance(value, list) else kind(items)
    if kind is dict:
        resolved = {k: _resolve(v, upstream, allow) for k, v in value.items()}
        if all(resolved[k] is v for k, v in value.items()):
            return value
        return resolved
    return value


def _producers(values: Iterable[Any], owners: dict[int, tuple[Any, TaskRun]],
               found: list[TaskRun]) -> None:
    """Add the task runs whose results are among ``values`` (or one level inside them)."""
    for value in values:
        kind = type(value)
        if kind in _SCALARS:
            continue
        entry = owners.get(id(value))
        if entry is not None and entry[0] is value:
            found.append(entry[1])
        elif kind is list or kind is tuple:
            for item in value:
                if type(item) not in _SCALARS:
                    entry = owners.get(id(item))
                    if entry is not None and entry[0] is item:
                        found.append(entry[1])


def resolve_inputs(
    args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Iterable[Any] | None,
    owners: dict[int, tuple[Any, TaskRun]] | None = None,
) -> tuple[tuple[Any, ...], dict[str, Any], list[TaskRun], list[TaskRun]]:
    """Wait for upstream futures; raise :class:`UpstreamTaskError` if one did not complete.

    Returns the resolved arguments, the task runs that fed them (futures, and results
    found in ``owners``) and the task runs named in ``wait_for``.
    """
    upstream: list[TaskRun] = []
    waited: list[TaskRun] = []
    if wait_for:
        for item in wait_for:
            _resolve(item, waited)
    if args:
        for value in args:
            if type(value) not in _SCALARS:
                if owners:
                    _producers(args, owners, upstream)
                args = tuple(_resolve(v, upstream) for v in args)
                break
    if kwargs:
        for value in kwargs.values():
            if type(value) not in _SCALARS:
                if owners:
                    _producers(kwargs.values(), owners, upstream)
                kwargs = {k: _resolve(v, upstream) for k, v in kwargs.items()}
                break
    return args, kwargs, upstream, waited


# --- task runs -----------------------------------------------------------------------


def _next_run_name(flow_ctx: FlowRunContext, name: str) -> str:
    """``<name>-<n>``: the next task-run name for ``name`` in this flow run (a subflow
    call's task run counts among them)."""
    counts = flow_ctx.task_name_counts
    n = counts.get(name, 0)
    counts[name] = n + 1
    return f"{name}-{n}"


def _new_task_run(task: Task[..., Any], flow_ctx: FlowRunContext | None,
                  map_index: int | None = None) -> TaskRun:
    extra_tags = TAGS.get()
    tags = task.tags | extra_tags if extra_tags else task.tags
    if flow_ctx is not None:
        name = _next_run_name(flow_ctx, task.name)
        task_run = TaskRun(_new_id(), name, task.name, flow_ctx.flow_run.id, st.Pending(), tags,
                           task.task_key, map_index)
        flow_ctx.tree.task_runs.append(task_run)
    else:
        task_run = TaskRun(_new_id(), f"{task.name}-0", task.name, None, st.Pending(), tags,
                           task.task_key, map_index)
    return task_run


def call_task(task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *,
              return_state: bool = False, wait_for: Iterable[Any] | None = None) -> Any:
    """Run ``task`` in the caller's thread; return its value (or State)."""
    flow_ctx = FLOW_RUN_CONTEXT.get()
    task_run = _new_task_run(task, flow_ctx)
    state = run_task(task, task_run, args, kwargs, wait_for, flow_ctx)
    return task_result(state, return_state)


def task_result(state: State[Any], return_state: bool) -> Any:
    """What calling a task gives back: its State, its value, or its exception raised."""
    if return_state:
        return state
    if state.type is StateType.COMPLETED:
        return state.data
    return state.result()


_standalone_runner: TaskRunner | None = None
_standalone_lock = threading.Lock()


def _runner_for(flow_ctx: FlowRunContext | None) -> TaskRunner:
    global _standalone_runner  # noqa: PLW0603 - one lazily created runner per process
    if flow_ctx is not None:
        return flow_ctx.task_runner
    with _standalone_lock:
        if _standalone_runner is None:
            from headwater.task_runners import ThreadPoolTaskRunner

            _standalone_runner = ThreadPoolTaskRunner()
        return _standalone_runner


def submit_task(task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *,
                wait_for: Iterable[Any] | None = None,
                map_index: int | None = None) -> TaskFuture[Any]:
    """Run ``task`` on the current flow's task runner; return a future.

    An ``async def`` task runs to completion in an event loop of its own on the runner's
    worker (see :mod:`headwater.async_engine`), so its future is like any other.
    """
    flow_ctx = FLOW_RUN_CONTEXT.get()
    task_run = _new_task_run(task, flow_ctx, map_index)
    context = contextvars.copy_context()
    if flow_ctx is not None:
        flow_ctx.submitted = True
    runner = run_task
    if task.isasync:
        from headwater.async_engine import run_task_in_new_loop

        runner = run_task_in_new_loop
    future = _runner_for(flow_ctx).submit(
        lambda: context.run(runner, task, task_run, args, kwargs, wait_for, flow_ctx)
    )
    return TaskFuture(task_run, future)


def _is_mappable(value: Any) -> bool:
    if isinstance(value, (str, bytes, dict, BaseAnnotation)):
        return False
    return isinstance(value, Iterable)


def map_task(task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *,
             wait_for: Iterable[Any] | None = None) -> PrefectFutureList[Any]:
    """Submit one run per element of the iterable arguments, zipped."""
    bound = task.bind_parameters(args, kwargs)
    iterables = {k: list(v) for k, v in bound.items() if _is_mappable(v)}
    static = {k: (v.value if isinstance(v, unmapped) else v)
              for k, v in bound.items() if k not in iterables}
    if not iterables:
        raise ValueError(
            f"task {task.name!r}: .map() needs at least one iterable argument; wrap values "
            "that should be passed whole in unmapped(...)"
        )
    lengths = {k: len(v) for k, v in iterables.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"task {task.name!r}: .map() got iterables of different lengths {lengths}; "
            "make them equal or wrap the constant ones in unmapped(...)"
        )
    from headwater.parameters import split_arguments

    futures: PrefectFutureList[Any] = PrefectFutureList()
    count = next(iter(lengths.values()))
    for i in range(count):
        call_kwargs = {**static, **{k: v[i] for k, v in iterables.items()}}
        call_args, call_kwargs = split_arguments(task.signature, call_kwargs)
        futures.append(submit_task(task, call_args, call_kwargs, wait_for=wait_for,
                                   map_index=i))
    return futures


def _retry_delay(task: Task[..., Any], attempt_index: int) -> float:
    delay = task.retry_delays[attempt_index] if task.retry_delays else 0.0
    jitter = task.retry_jitter_factor
    if jitter and delay > 0:
        # Spread retries of many identical tasks so they do not hit a service together.
        delay = delay * random_uniform(max(0.0, 1.0 - jitter), 1.0 + jitter)
    return delay


def _result_store_for(task: Task[..., Any], flow_ctx: FlowRunContext | None) -> ResultStore:
    from headwater.results import ResultStore, get_serializer, resolve_storage

    if flow_ctx is not None and task.result_storage is None and task.result_serializer is None:
        return flow_ctx.result_store()
    storage = resolve_storage(task.result_storage if task.result_storage is not None else (
        flow_ctx.flow.result_storage if flow_ctx else None))
    serializer = task.result_serializer or (flow_ctx.result_serializer if flow_ctx else None)
    return ResultStore(storage, get_serializer(serializer))


def run_task(  # noqa: PLR0917 - called positionally through Context.run
        task: Task[..., Any], task_run: TaskRun, args: tuple[Any, ...],
             kwargs: dict[str, Any], wait_for: Iterable[Any] | None,
             flow_ctx: FlowRunContext | None) -> State[Any]:
    """Run one task run to a final state (never raises, except on termination)."""
    try:
        args, kwargs, upstream = task_inputs(task_run, args, kwargs, wait_for, flow_ctx)
    except UpstreamTaskError as exc:
        return not_ready(task, task_run, exc, flow_ctx)
    task_ctx, tokens = enter_task(task, task_run, args, kwargs, flow_ctx)
    try:
        if task.task_run_name is not None:
            render_task_run_name(task, task_ctx)
        if uses_store(task, flow_ctx):
            state = _run_with_cache(task, task_ctx, upstream, flow_ctx)
        else:
            state = _run_attempts(task, task_ctx, flow_ctx)
    except TerminationSignal:
        task_run.set_state(st.Cancelled("The run received a termination signal (SIGTERM)."))
        raise
    except ResultStorageKeyError as exc:  # the task's configuration, not the engine
        state = configuration_failure(task_run, exc)
    except BaseException as exc:  # an engine error crashes this task run, not the process
        state = engine_crash(task_run, exc)
    finally:
        exit_task(tokens)
    task_run.end_time = state.timestamp
    if flow_ctx is not None:
        note_result(flow_ctx, task_run, state)
    if task.on_commit_hooks or TRANSACTION.get() is not None:
        from headwater import transactions

        transactions.join(task, task_run, state, task_ctx.staged)
    pending = run_hooks(task, task_run, state, flow_ctx)
    if pending:
        settle_hooks(pending, task)
    if state.type is not StateType.COMPLETED:
        log_final(task, task_run, flow_ctx)
    return state


# Pieces of a task run shared with the async engine (headwater.async_engine).


def task_inputs(task_run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any],
                wait_for: Iterable[Any] | None, flow_ctx: FlowRunContext | None,
                ) -> tuple[tuple[Any, ...], dict[str, Any], list[TaskRun]]:
    """Resolve the inputs and note the task runs they depend on (the record's graph).

    Returns the arguments and every upstream task run (inputs and ``wait_for``: asset
    lineage follows both).
    """
    args, kwargs, upstream, waited = resolve_inputs(
        args, kwargs, wait_for, flow_ctx.tree.result_owners if flow_ctx is not None else None)
    if upstream:
        task_run.upstream = upstream
    if waited:
        task_run.wait_for = waited
        return args, kwargs, upstream + waited
    return args, kwargs, upstream


def note_result(flow_ctx: FlowRunContext, task_run: TaskRun, state: State[Any]) -> None:
    """Remember which task run produced a completed run's value (non-scalar values only:
    small ints and interned strings are shared by unrelated code)."""
    if state.type is StateType.COMPLETED:
        data = state._data
        if type(data) not in _SCALARS and type(data) is not st.PersistedResult:
            flow_ctx.tree.result_owners[id(data)] = (data, task_run)


def not_ready(task: Task[..., Any], task_run: TaskRun, exc: UpstreamTaskError,
              flow_ctx: FlowRunContext | None) -> State[Any]:
    """Record that ``task_run`` did not run because an upstream did not complete."""
    state = st.NotReady(str(exc))
    state._data = exc
    task_run.set_state(state)
    log_final(task, task_run, flow_ctx)
    return state


def enter_task(task: Task[..., Any], task_run: TaskRun, args: tuple[Any, ...],
               kwargs: dict[str, Any], flow_ctx: FlowRunContext | None,
               ) -> tuple[TaskRunContext, tuple[Any, Any]]:
    """Make ``task_run`` the current run (and route prints when asked); see :func:`exit_task`."""
    task_ctx = TaskRunContext(task, task_run, args, kwargs, flow_ctx)
    token = TASK_RUN_CONTEXT.set(task_ctx)
    prints_token = None
    log_prints = task.log_prints if task.log_prints is not None else (
        flow_ctx.log_prints if flow_ctx else False)
    if log_prints:
        from headwater.logging import LOG_PRINTS, setup_logging

        setup_logging()
        prints_token = LOG_PRINTS.set(True)
    return task_ctx, (token, prints_token)


def exit_task(tokens: tuple[Any, Any]) -> None:
    """Undo :func:`enter_task`."""
    token, prints_token = tokens
    TASK_RUN_CONTEXT.reset(token)
    if prints_token is not None:
        from headwater.logging import LOG_PRINTS

        LOG_PRINTS.reset(prints_token)


def render_task_run_name(task: Task[..., Any], task_ctx: TaskRunContext) -> None:
    """Apply ``task_run_name`` (needs the bound parameters, so only when set)."""
    if task.task_run_name is not None:
        task_run = task_ctx.task_run
        task_run.name = _render_name(task.task_run_name, task_ctx.parameters, task_run.name)


def uses_store(task: Task[..., Any], flow_ctx: FlowRunContext | None) -> bool:
    """Whether the run goes through result storage (cache, persistence, assets)."""
    return bool(getattr(task, "assets", None)) or task.persists(
        flow_ctx.persist_result if flow_ctx else None)


def configuration_failure(task_run: TaskRun, exc: BaseException) -> State[Any]:
    """The Failed state of a task whose settings cannot work for this call (its message
    says which setting and how to fix it)."""
    state = st.Failed(str(exc), data=exc)
    task_run.set_state(state)
    return state


def engine_crash(task_run: TaskRun, exc: BaseException) -> State[Any]:
    """The Crashed state for an error inside the engine itself."""
    state = st.Crashed(f"Engine error while running the task: {st.exception_message(exc)}",
                       data=exc)
    task_run.set_state(state)
    return state


def _run_with_cache(task: Task[..., Any], task_ctx: TaskRunContext, upstream: list[TaskRun],
                    flow_ctx: FlowRunContext | None) -> State[Any]:
    """Cache lookup, per-key lock, execution and persistence."""
    store, key, plan = cache_plan(task, task_ctx, upstream, flow_ctx)
    if key is None:
        state = _run_attempts(task, task_ctx, flow_ctx)
        keep_out_of_memory(task, task_ctx, store, state)
        return state
    use_cache = may_use_cache(task, plan)
    if use_cache:
        # Optimistic read first: a cache hit needs no lock (records are written atomically).
        cached = read_cached(store, key, task_ctx, plan)
        if cached is not None:
            return cached
    with store.lock(key):
        if use_cache:
            # Someone may have computed it while we waited for the lock.
            cached = read_cached(store, key, task_ctx, plan)
            if cached is not None:
                return cached
        state = _run_attempts(task, task_ctx, flow_ctx)
        persist(task, task_ctx, store, key, plan, state)
    return state


def cache_plan(task: Task[..., Any], task_ctx: TaskRunContext, upstream: list[TaskRun],
               flow_ctx: FlowRunContext | None) -> tuple[ResultStore, str | None, Any]:
    """The result store, the cache key (``None``: no caching) and the asset plan."""
    from headwater import assets

    store = _result_store_for(task, flow_ctx)
    plan = assets.plan_materialization(task, task_ctx, upstream, store) if getattr(
        task, "assets", None) else None
    if plan is not None:
        key: str | None = plan.result_key
    elif task.result_storage_key is not None:
        key = task.storage_key(task_ctx)
    else:
        flow_params = flow_ctx.flow_run.parameters if flow_ctx else {}
        key = task.cache_policy.compute_key(task_ctx, task_ctx.parameters, flow_params)
    task_ctx.task_run.cache_key = key
    return store, key, plan


def may_use_cache(task: Task[..., Any], plan: Any) -> bool:
    """A cached record may answer unless refreshing or an asset's inputs changed (or the
    key is a ``result_storage_key`` on a task that asked for ``cache_policy=NO_CACHE``:
    its result is written there, never read back)."""
    if task.result_storage_key is not None and task.cache_policy is cache_policies.NO_CACHE:
        return False
    return not task.refresh_cache and (plan is None or plan.unchanged)


def persist(  # noqa: PLR0917 - internal, mirrors the cache steps
        task: Task[..., Any], task_ctx: TaskRunContext, store: ResultStore, key: str,
        plan: Any, state: State[Any]) -> None:
    """Write a completed run's result under ``key`` and record its materialization.

    Inside a transaction (or for a task with ``on_commit`` hooks) the record is staged
    instead: the transaction writes it when it commits, and never if it rolls back."""
    if state.type is not StateType.COMPLETED:
        return
    expiration = None
    if task.cache_expiration is not None:
        from headwater import results

        expiration = results.now() + task.cache_expiration.total_seconds()
    if task.on_commit_hooks or TRANSACTION.get() is not None:
        from headwater.transactions import StagedWrite

        task_ctx.staged = StagedWrite(store, key, state.data, expiration)
    else:
        store.write(key, state.data, expiration)
        task_ctx.task_run.result_location = store.location(key)
    if plan is not None:
        from headwater import assets

        assets.record_materialization(plan, task_ctx, store, skipped=False)
    if not task.cache_result_in_memory and task_ctx.staged is None:
        state._data = store.reference(key)


def keep_out_of_memory(task: Task[..., Any], task_ctx: TaskRunContext, store: ResultStore,
                       state: State[Any]) -> None:
    """``cache_result_in_memory=False`` without a cache key: persist under the run's id."""
    if not task.cache_result_in_memory and state.type is StateType.COMPLETED:
        key = f"task-runs/{task_ctx.task_run.id}"
        store.write(key, state.data)
        task_ctx.task_run.result_location = store.location(key)
        state._data = store.reference(key)


def read_cached(store: ResultStore, key: str, task_ctx: TaskRunContext,
                plan: Any) -> State[Any] | None:
    """The Cached state for a valid record under ``key``, else ``None``."""
    task = task_ctx.task
    if task.cache_result_in_memory:
        hit, value = store.read(key)
    else:
        hit, value = store.exists(key), None
    if not hit:
        return None
    state = st.Cached(data=value if task.cache_result_in_memory else store.reference(key))
    task_ctx.task_run.set_state(state)
    task_ctx.task_run.result_location = store.location(key)
    if plan is not None:
        from headwater import assets

        assets.record_materialization(plan, task_ctx, store, skipped=True)
    return state


def _run_attempts(task: Task[..., Any], task_ctx: TaskRunContext,
                  flow_ctx: FlowRunContext | None) -> State[Any]:
    """Call the function, retrying failures as configured."""
    task_run = task_ctx.task_run
    fn = task.fn
    args, kwargs = task_ctx.args, task_ctx.kwargs
    task_run.start_time = time.time()
    while True:
        start_attempt(task_run)
        try:
            if task.timeout_seconds is None:
                value = fn(*args, **kwargs)
            else:
                from headwater.timeouts import call_with_timeout

                value = call_with_timeout(
                    fn, args, kwargs, task.timeout_seconds, exc_type=TaskRunTimeoutError,
                    message=timeout_message(task, task_run))
        except TaskRunTimeoutError as exc:
            state = st.TimedOut(str(exc), data=exc)
        except Exception as exc:  # the task's code failed: that is a Failed state
            state = st.failed_from_exception(exc)
        else:
            state = value if isinstance(value, State) else st.Completed(data=value)
            if state.type is StateType.COMPLETED or not state.is_final():
                task_run.set_state(state)
                return state
        delay = plan_retry(task, task_run, state, flow_ctx)
        if delay is None:
            return state
        if delay > 0:
            sleep(delay)


def start_attempt(task_run: TaskRun) -> None:
    """Count the attempt and move to Running (first) or Retrying."""
    task_run.run_count += 1
    task_run.set_state(st.Running() if task_run.run_count == 1 else st.Retrying())


def timeout_message(task: Task[..., Any], task_run: TaskRun) -> str:
    """What a TimedOut task run says."""
    return f"Task run {task_run.name!r} exceeded timeout of {task.timeout_seconds}s"


def plan_retry(task: Task[..., Any], task_run: TaskRun, state: State[Any],
               flow_ctx: FlowRunContext | None) -> float | None:
    """The delay before the next attempt, or ``None`` (``state`` is then final)."""
    if flow_ctx is not None and flow_ctx.tree.recorder is not None:
        note_attempt_error(task_run, state)  # only a run record reads it
    if not _should_retry(task, task_run, state):
        task_run.set_state(state)
        return None
    delay = _retry_delay(task, task_run.run_count - 1)
    task_run.set_state(st.AwaitingRetry(f"Retry {task_run.run_count} of {task.retries} "
                                        f"in {delay:g}s after: {state.message}"))
    _logger_for_task(task_run, flow_ctx).warning(
        "%s - Retry %d/%d will start %s", state.message, task_run.run_count, task.retries,
        f"in {delay:.3g} second(s)" if delay else "immediately")
    return delay


def note_attempt_error(task_run: TaskRun, state: State[Any]) -> None:
    """Keep a failed attempt's error type, message and traceback for the run record."""
    from headwater.secrets import redact

    exc = state._data if isinstance(state._data, BaseException) else None
    error: dict[str, str] = {
        "type": type(exc).__name__ if exc is not None else state.name,
        "message": redact(str(exc) if exc is not None else (state.message or state.name)),
        "state": state.name,
    }
    if exc is not None and exc.__traceback__ is not None:
        import traceback

        tb = exc.__traceback__
        # Start at the user's code: the engine's own frames above it say nothing.
        while tb.tb_next is not None and tb.tb_frame.f_code.co_filename.startswith(_SDK_DIR):
            tb = tb.tb_next
        error["traceback"] = redact("".join(traceback.format_exception(type(exc), exc, tb)))
    if task_run.errors is None:
        task_run.errors = {}
    task_run.errors[task_run.run_count] = error


def _should_retry(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    if task_run.run_count > task.retries:
        return False
    if task.retry_condition_fn is not None:
        try:
            return bool(task.retry_condition_fn(task, task_run, state))
        except Exception:  # a broken retry condition must not crash the run
            return False
    return True


def run_hooks(subject: Any, run: Any, state: State[Any],
              flow_ctx: FlowRunContext | None) -> list[tuple[Any, Any]]:
    """Call the hooks for ``state``; return ``(hook, awaitable)`` for ``async def`` hooks."""
    if state.type is StateType.COMPLETED:
        hooks = subject.on_completion_hooks
    elif state.type is StateType.FAILED:
        hooks = subject.on_failure_hooks
    elif state.type is StateType.CANCELLED:
        hooks = getattr(subject, "on_cancellation_hooks", ())
    elif state.type is StateType.CRASHED:
        hooks = getattr(subject, "on_crashed_hooks", ())
    else:
        hooks = ()
    if not hooks:
        return _NO_HOOKS
    pending: list[tuple[Any, Any]] = []
    for hook in hooks:
        try:
            outcome = hook(subject, run, state)
        except Exception as exc:  # hooks are advisory: log and carry on
            hook_failed(subject, hook, exc)
        else:
            if hasattr(outcome, "__await__"):
                pending.append((hook, outcome))
    return pending


def hook_failed(subject: Any, hook: Any, exc: BaseException) -> None:
    """Log a failed hook; the run's state is not changed by it."""
    from headwater.logging import setup_logging

    setup_logging()
    import logging

    logging.getLogger("headwater.hooks").error(
        "Hook %r of %r failed: %s", getattr(hook, "__name__", hook),
        getattr(subject, "name", subject), st.exception_message(exc))


def settle_hooks(pending: list[tuple[Any, Any]], subject: Any = None) -> None:
    """Finish ``async def`` hooks of a sync run, each in an event loop of its own.

    A sync run may execute inside a running loop (a sync task called from an async
    flow), where ``asyncio.run`` is not allowed, so the hook runs on a helper thread.
    """
    if not pending:
        return
    from headwater.async_engine import run_awaitable_blocking

    for hook, awaitable in pending:
        try:
            run_awaitable_blocking(awaitable)
        except Exception as exc:  # hooks are advisory: log and carry on
            hook_failed(subject, hook, exc)


def log_final(task: Task[..., Any], task_run: TaskRun, flow_ctx: FlowRunContext | None) -> None:
    """Log a task run's final state unless it simply completed."""
    state = task_run.state
    # Completed and Cached task runs are not logged one by one: a 10,000-task flow would
    # flood `kubectl logs`, and the run summary counts them. Anything unusual is logged.
    if state.type is StateType.COMPLETED:
        return
    logger = _logger_for_task(task_run, flow_ctx)
    if state.type is StateType.PENDING:
        logger.warning("Did not run: %s", state.message)
    else:
        logger.error("Finished in state %s", state)


# --- flow runs -----------------------------------------------------------------------


NOT_RETURNED: Any = object()
"""What a flow attempt "returned" when its function raised instead."""


def futures_to_states(value: Any) -> Any:
    """``value`` with every future in it (inside lists, tuples, sets and dicts, at any
    depth, but not inside ``quote``) replaced by its final state; ``value`` itself when it
    holds none. A generator is turned into the list of what it yields."""
    if isinstance(value, TaskFuture):
        return _future_state(value)
    kind = type(value)
    if kind in _SCALARS or isinstance(value, (State, quote)):
        return value
    if isinstance(value, GeneratorType):
        return [futures_to_states(item) for item in value]
    if isinstance(value, PrefectFutureList):
        return [futures_to_states(item) for item in value]
    if kind in (list, tuple, set, frozenset):
        items = [futures_to_states(item) for item in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if kind is list else kind(items)
    if kind is dict:
        resolved = {k: futures_to_states(v) for k, v in value.items()}
        if all(resolved[k] is v for k, v in value.items()):
            return value
        return resolved
    return value


def state_from_return_value(value: Any) -> State[Any]:
    """The flow's final state given what its function returned, futures already replaced
    by their states (:func:`futures_to_states`), by Prefect 3's rules (its
    ``return_value_to_state``)."""
    if isinstance(value, State):
        if value.run_id is None:  # created by the flow's code: it is the flow's state
            if value.is_final():
                return value
            return st.Failed(f"Flow returned a non-final state {value.name}.", data=value)
        return aggregate_state([value], value)
    if st.is_state_collection(value):
        return aggregate_state(list(value), value)
    return st.Completed(data=value)


def aggregate_state(states: list[State[Any]], data: Any) -> State[Any]:
    """One state for several run states a flow returned (``data``): Completed when all
    completed, else Cancelled if any was, else Failed."""
    total = len(states)
    counts: dict[StateType, int] = {}
    for state in states:
        counts[state.type] = counts.get(state.type, 0) + 1
    if counts.get(StateType.COMPLETED, 0) == total:
        return st.Completed("All states completed.", data=data)
    if StateType.CANCELLED in counts:
        return st.Cancelled(f"{counts[StateType.CANCELLED]}/{total} states cancelled.",
                            data=data)
    if StateType.PAUSED in counts:
        return State(StateType.PAUSED, message=f"{counts[StateType.PAUSED]}/{total} states "
                     "paused.", data=data)
    failed = counts.get(StateType.FAILED, 0) + counts.get(StateType.CRASHED, 0)
    if failed:
        return st.Failed(f"{failed}/{total} states failed.", data=data)
    not_final = sum(n for kind, n in counts.items() if kind not in _TERMINAL)
    return st.Failed(f"{not_final}/{total} states are not final.", data=data)


def flow_failure_state(exc: BaseException) -> State[Any]:
    """The final state of a flow run whose body raised ``exc``."""
    if isinstance(exc, FlowRunTimeoutError):
        return st.TimedOut(str(exc), data=exc)
    if isinstance(exc, ParameterTypeError):
        return st.Failed(str(exc), data=exc)
    return st.Failed(f"Flow run encountered an exception: {st.exception_message(exc)}", data=exc)


def run_flow(flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *,
             return_state: bool = False) -> Any:
    """Run ``flow`` (top-level or as a subflow); return its value or final State."""
    parent = FLOW_RUN_CONTEXT.get()
    flow_run, tree, state = _start_flow_run(flow, args, kwargs, parent)
    returned = NOT_RETURNED
    if state is None:
        state, returned = _run_flow_body(flow, flow_run, tree, parent)
    flow_run.end_time = state.timestamp
    settle_hooks(run_hooks(flow, flow_run, state, None), flow)
    if parent is None:
        _finish_root(flow_run, tree)
    return flow_result(state, return_state, returned)


def flow_result(state: State[Any], return_state: bool, returned: Any = NOT_RETURNED) -> Any:
    """What calling a flow gives back (Prefect 3's rules): its final State when asked;
    else what its function returned (futures replaced by their states), whatever the
    state; else, when it returned a State or raised, the state's value or its exception
    raised."""
    if return_state:
        return state
    if returned is not NOT_RETURNED and not isinstance(returned, State):
        return returned
    if state.type is StateType.COMPLETED:
        return state.data
    return state.result()


def _start_flow_run(flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                    parent: FlowRunContext | None) -> tuple[FlowRun, RunTree, State[Any] | None]:
    """Create the run record; validate parameters (a failure ends the run right here)."""
    config = ROOT_RUN_CONFIG.get() if parent is None else None
    raw = flow.bind_parameters(args, kwargs)
    flow_run = FlowRun((config.flow_run_id if config and config.flow_run_id else _new_id()),
                       "", flow.name, raw, st.Pending(),
                       parent.flow_run.id if parent else None)
    extra_tags = TAGS.get()
    flow_run.tags = flow.tags | extra_tags if extra_tags else flow.tags
    if parent is not None:
        flow_run.parent_task_run_id = _new_id()
        flow_run.parent_task_run_name = _next_run_name(parent, flow.name)
    if config is not None:
        flow_run.scheduled_start_time = config.scheduled_start_time
        flow_run.deployment_name = config.deployment_name
        flow_run.run_count = max(config.attempt - 1, 0)
    tree = parent.tree if parent is not None else RunTree(flow_run,
                                                          result_storage=flow.result_storage)
    with tree.lock:
        tree.flow_runs.append(flow_run)
    if parent is None:
        LAST_RUN_TREE[:] = [tree]
        from headwater import runrecord

        tree.recorder = runrecord.start(tree)
    failure: State[Any] | None = None
    try:
        if flow.validate_parameters:
            flow_run.parameters = flow.validate(raw)
        fallback = config.flow_run_name if config and config.flow_run_name else None
        flow_run.name = _flow_run_name(flow, flow_run, tree, fallback or generate_run_name())
    except _RunNameError as exc:
        flow_run.name = flow_run.name or generate_run_name()
        cause = exc.__cause__ or exc
        failure = st.Failed(str(exc), data=cause)
        flow_run.set_state(failure)
        _logger_for_flow(flow_run).error("Finished in state %s", failure)
    except (ParameterTypeError, ValueError, TypeError) as exc:
        flow_run.name = flow_run.name or generate_run_name()
        failure = st.Failed(str(exc), data=exc if isinstance(exc, ParameterTypeError)
                            else ParameterTypeError(str(exc)))
        flow_run.set_state(failure)
        _logger_for_flow(flow_run).error("Finished in state %s", failure)
    return flow_run, tree, failure


class _RunNameError(Exception):
    """A ``flow_run_name`` function raised (the cause is its exception)."""


def _no_result_store() -> ResultStore:
    raise RuntimeError("result storage is not available while a flow run's name is made")


def _flow_run_name(flow: Flow[..., Any], flow_run: FlowRun, tree: RunTree,
                   fallback: str) -> str:
    """The run's name from ``flow_run_name``: a template filled from the parameters, or a
    function called with this flow run current, since Prefect's name functions read
    ``runtime.flow_run.parameters`` and ``runtime.flow_run.flow_name``."""
    template = flow.flow_run_name
    if not callable(template):
        return _render_name(template, flow_run.parameters, fallback)
    ctx = FlowRunContext(flow, flow_run, flow.task_runner, tree, _no_result_store, None,
                         None, False)
    token = FLOW_RUN_CONTEXT.set(ctx)
    try:
        return str(template())
    except Exception as exc:  # the author's function: its error fails the run, named
        name = getattr(template, "__name__", repr(template))
        raise _RunNameError(f"flow {flow.name!r}: its flow_run_name function {name!r} "
                            f"raised {st.exception_message(exc)}") from exc
    finally:
        FLOW_RUN_CONTEXT.reset(token)


def _run_flow_body(flow: Flow[..., Any], flow_run: FlowRun, tree: RunTree,
                   parent: FlowRunContext | None) -> tuple[State[Any], Any]:
    """The final state and what the last attempt returned (:data:`NOT_RETURNED`: none)."""
    flow_ctx, logger, tokens = enter_flow(flow, flow_run, tree, parent)
    try:
        state, returned = _flow_attempts(flow, flow_run, flow_ctx, logger)
    finally:
        exit_flow(tokens)
    log_flow_final(logger, state)
    return state, returned


# Pieces of a flow run shared with the async engine (headwater.async_engine).


def enter_flow(flow: Flow[..., Any], flow_run: FlowRun, tree: RunTree,
               parent: FlowRunContext | None) -> tuple[FlowRunContext, Any, tuple[Any, Any]]:
    """Make ``flow_run`` the current run; see :func:`exit_flow`."""
    from headwater.results import ResultStore, get_serializer, resolve_storage

    store_box: list[ResultStore] = []

    def result_store() -> ResultStore:
        if not store_box:
            storage = flow.result_storage if flow.result_storage is not None else (
                parent.flow.result_storage if parent else None)
            store_box.append(ResultStore(resolve_storage(storage),
                                         get_serializer(flow.result_serializer)))
        return store_box[0]

    flow_ctx = FlowRunContext(
        flow, flow_run, flow.task_runner.duplicate(), tree, result_store,
        flow.persist_result if flow.persist_result is not None else (
            parent.persist_result if parent else None),
        flow.result_serializer, bool(flow.log_prints),
    )
    logger = _logger_for_flow(flow_run)
    logger.info("Beginning flow run %r for flow %r", flow_run.name, flow.name)
    token = FLOW_RUN_CONTEXT.set(flow_ctx)
    prints_token = None
    if flow.log_prints is not None:
        from headwater.logging import LOG_PRINTS

        prints_token = LOG_PRINTS.set(bool(flow.log_prints))
    flow_run.start_time = time.time()
    return flow_ctx, logger, (token, prints_token)


def exit_flow(tokens: tuple[Any, Any]) -> None:
    """Undo :func:`enter_flow`."""
    token, prints_token = tokens
    FLOW_RUN_CONTEXT.reset(token)
    if prints_token is not None:
        from headwater.logging import LOG_PRINTS

        LOG_PRINTS.reset(prints_token)


def log_flow_final(logger: Any, state: State[Any]) -> None:
    """Log the flow run's final state."""
    log = logger.info if state.type is StateType.COMPLETED else logger.error
    log("Finished in state %s", state)


def _call_flow_fn(flow: Flow[..., Any], flow_run: FlowRun) -> Any:
    args, kwargs = flow.split_parameters(flow_run.parameters)
    if flow.timeout_seconds is None:
        return flow.fn(*args, **kwargs)
    from headwater.timeouts import call_with_timeout

    return call_with_timeout(
        flow.fn, args, kwargs, flow.timeout_seconds, exc_type=FlowRunTimeoutError,
        message=flow_timeout_message(flow, flow_run))


def flow_timeout_message(flow: Flow[..., Any], flow_run: FlowRun) -> str:
    """What a TimedOut flow run says."""
    return f"Flow run {flow_run.name!r} exceeded timeout of {flow.timeout_seconds}s"


def start_flow_attempt(flow_run: FlowRun, local_attempt: int) -> None:
    """Count the attempt and move to Running (first) or Retrying."""
    flow_run.run_count += 1
    flow_run.set_state(st.Running() if local_attempt == 1 else st.Retrying())


def terminated(flow_ctx: FlowRunContext) -> State[Any]:
    """Cancel what is still queued and record the Cancelled state of a SIGTERM."""
    _cancel_outstanding(flow_ctx, flow_ctx.task_runner, "The run received a termination signal.")
    state = st.Cancelled("The flow run received a termination signal (SIGTERM) and "
                         "stopped; task runs still queued were cancelled.")
    flow_ctx.flow_run.set_state(state)
    return state


def interrupted(flow_ctx: FlowRunContext, exc: KeyboardInterrupt) -> State[Any]:
    """The Crashed state of a Ctrl-C; queued task runs are cancelled."""
    _cancel_outstanding(flow_ctx, flow_ctx.task_runner, "The run was interrupted.")
    return st.Crashed("Execution was interrupted (KeyboardInterrupt).", data=exc)


def plan_flow_retry(flow: Flow[..., Any], flow_ctx: FlowRunContext, state: State[Any],
                    local_attempt: int, logger: Any) -> float | None:
    """The delay before the flow's next attempt, or ``None`` (``state`` is then final)."""
    flow_run = flow_ctx.flow_run
    if local_attempt > flow.retries or state.type in _NOT_RETRIED:
        flow_run.set_state(state)
        return None
    delay = float(flow.retry_delay_seconds or 0)
    flow_run.set_state(st.AwaitingRetry(f"Retrying after: {state.message}"))
    logger.warning("Flow run failed (%s) - retry %d/%d in %gs", state.message,
                   local_attempt, flow.retries, delay)
    flow_ctx.task_runner = flow.task_runner.duplicate()
    return delay


def _flow_attempts(flow: Flow[..., Any], flow_run: FlowRun, flow_ctx: FlowRunContext,
                   logger: Any) -> tuple[State[Any], Any]:
    local_attempt = 0
    while True:
        local_attempt += 1
        start_flow_attempt(flow_run, local_attempt)
        returned = NOT_RETURNED
        try:
            value = _call_flow_fn(flow, flow_run)
            flow_ctx.task_runner.shutdown(wait=True)
            returned = futures_to_states(value)
            state = state_from_return_value(returned)
        except TerminationSignal:
            state = terminated(flow_ctx)
            if flow_run.parent_flow_run_id is not None:
                raise  # the root flow run reports the cancellation
            return state, NOT_RETURNED
        except KeyboardInterrupt as exc:
            state = interrupted(flow_ctx, exc)
        except Exception as exc:  # the flow's code failed
            flow_ctx.task_runner.shutdown(wait=True)
            state = flow_failure_state(exc)
        delay = plan_flow_retry(flow, flow_ctx, state, local_attempt, logger)
        if delay is None:
            return state, returned
        if delay > 0:
            sleep(delay)


def _cancel_outstanding(flow_ctx: FlowRunContext, runner: TaskRunner, message: str) -> None:
    runner.shutdown(wait=False, cancel_futures=True)
    for task_run in flow_ctx.tree.task_runs:
        if task_run.state.type not in _TERMINAL:
            task_run.set_state(st.Cancelled(message))


def _finish_root(flow_run: FlowRun, tree: RunTree) -> None:
    from headwater.summary import describe_run

    if tree.assets:
        from headwater import assets

        assets.write_lineage(tree)
    _logger_for_flow(flow_run).info("%s", describe_run(tree))
    close_record(tree)


def close_record(tree: RunTree) -> None:
    """Write the root run's final record (once; ``headwater execute`` calls it again
    before the summary, in case the run ended without reaching :func:`_finish_root`)."""
    if tree.recorder is not None:
        tree.record_written = tree.recorder.close()
