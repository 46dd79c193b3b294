"""``@task`` and the :class:`Task` object, with Prefect 3's keyword names and semantics.

Calling a task inside a flow runs it at once and returns its value (or raises its
exception); ``.submit()`` runs it on the flow's task runner and returns a future;
``.map()`` submits one run per element. All three go through :mod:`headwater.engine`.

Everything derivable from the decorator arguments is computed once here, so the
per-call path in the engine does no signature inspection unless a feature needs the
bound parameters (cache keys, run-name templates, assets).
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from headwater import cache_policies
from headwater.cache_policies import CacheKeyFnPolicy, CachePolicy
from headwater.utilities.asyncutils import is_async_callable

if TYPE_CHECKING:
    from inspect import Signature

    from headwater.context import TaskRun, TaskRunContext
    from headwater.futures import PrefectFutureList, TaskFuture
    from headwater.results import ResultStorage
    from headwater.states import State
    from headwater.transactions import Transaction

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

RetryDelay = float | int | list[float] | list[int] | Callable[[int], list[float]]
TaskHook = Callable[["Task[..., Any]", "TaskRun", "State[Any]"], Any]
TransactionHook = Callable[["Transaction"], Any]
RetryConditionFn = Callable[["Task[..., Any]", "TaskRun", "State[Any]"], bool]

_NOT_SET: Any = object()


def _doc(fn: Any) -> str | None:
    doc = getattr(fn, "__doc__", None)
    if not doc:
        return None
    lines = doc.strip().splitlines()
    return "\n".join([lines[0], *(line.strip() for line in lines[1:])])


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Retry delays ``backoff_factor * 2**n`` for ``retry_delay_seconds``."""
    if backoff_factor < 0:
        raise ValueError("exponential_backoff: backoff_factor must be >= 0")

    def retry_backoff_callable(retries: int) -> list[float]:
        return [backoff_factor * 2**n for n in range(max(retries, 0))]

    return retry_backoff_callable


def task_input_hash(context: TaskRunContext, arguments: dict[str, Any]) -> str | None:
    """Prefect's classic ``cache_key_fn``: a hash of the task's source and inputs."""
    return cache_policies.hash_objects(
        context.task.name, cache_policies.hash_source(context.task.fn),
        cache_policies.hash_inputs(arguments),
    )


def retry_delays(retries: int, retry_delay_seconds: RetryDelay | None) -> list[float]:
    """The delay before each retry, one entry per retry (the last repeats if short)."""
    if retries <= 0:
        return []
    if retry_delay_seconds is None:
        return [0.0] * retries
    if callable(retry_delay_seconds):
        raw = list(retry_delay_seconds(retries))
    elif isinstance(retry_delay_seconds, (list, tuple)):
        raw = list(retry_delay_seconds)
    else:
        raw = [retry_delay_seconds]
    if not raw:
        return [0.0] * retries
    for delay in raw:
        if delay < 0:
            raise ValueError(f"retry_delay_seconds must be >= 0, got {delay!r}")
    delays = [float(d) for d in raw[:retries]]
    return delays + [delays[-1]] * (retries - len(delays))


class Task(Generic[P, R]):
    """A function whose calls are tracked as task runs with states, retries and caching."""

    def __init__(  # noqa: PLR0915 - one attribute per decorator argument
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        cache_policy: CachePolicy | None = _NOT_SET,
        cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None] | None = None,
        cache_expiration: _dt.timedelta | None = None,
        task_run_name: str | Callable[[], str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: RetryDelay | None = None,
        retry_jitter_factor: float | None = None,
        persist_result: bool | None = None,
        result_storage: str | ResultStorage | None = None,
        result_serializer: str | None = None,
        result_storage_key: str | None = None,
        cache_result_in_memory: bool = True,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        refresh_cache: bool | None = None,
        on_completion: list[TaskHook] | None = None,
        on_failure: list[TaskHook] | None = None,
        retry_condition_fn: RetryConditionFn | None = None,
        on_commit: list[TransactionHook] | None = None,
        on_rollback: list[TransactionHook] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("@task must decorate a function")
        if retry_jitter_factor is not None and retry_jitter_factor < 0:
            raise ValueError("retry_jitter_factor must be >= 0")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds!r}")
        if result_storage_key is not None and not (
                isinstance(result_storage_key, str) and result_storage_key.strip()):
            raise ValueError("result_storage_key must be a non-empty string such as "
                             f"'{{parameters[day]}}-report', got {result_storage_key!r}")
        self.fn = fn
        self.isasync = is_async_callable(fn)
        """``async def`` task: calling it returns a coroutine to ``await``."""
        self.name: str = name or str(getattr(fn, "__name__", "task"))
        self.description = description or _doc(fn)
        self.tags = frozenset(tags or ())
        self.version = version
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.task_run_name = task_run_name
        self.retries = retries or 0
        self.retry_delay_seconds = retry_delay_seconds
        self.retry_jitter_factor = retry_jitter_factor
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.result_storage_key = result_storage_key
        """Where the result is stored and looked up, a template filled like Prefect's
        (``{parameters[x]}``, ``{flow_run.name}``, ``{task_run.id}``); it takes the place
        of the cache policy's key unless ``cache_policy=NO_CACHE``."""
        self.cache_result_in_memory = cache_result_in_memory
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        self.refresh_cache = refresh_cache
        self.on_completion_hooks = list(on_completion or [])
        self.on_failure_hooks = list(on_failure or [])
        self.retry_condition_fn = retry_condition_fn
        self.on_commit_hooks: list[TransactionHook] = list(on_commit or [])
        """Called with the task run's transaction when it commits (headwater.transactions)."""
        self.on_rollback_hooks: list[TransactionHook] = list(on_rollback or [])
        """Called with the task run's transaction when it rolls back."""
        self._explicit_cache = cache_key_fn is not None or (
            cache_policy is not _NOT_SET and cache_policy is not None
            and cache_policy is not cache_policies.NO_CACHE
        )
        if cache_key_fn is not None:
            self.cache_policy: CachePolicy = CacheKeyFnPolicy(cache_key_fn)
        elif cache_policy is _NOT_SET:
            self.cache_policy = cache_policies.DEFAULT
        else:
            self.cache_policy = cache_policy or cache_policies.NO_CACHE
        self.retry_delays = retry_delays(self.retries, retry_delay_seconds)
        self._signature: Signature | None = None
        self._options = {
            "name": name, "description": description, "tags": tags, "version": version,
            "cache_policy": cache_policy, "cache_key_fn": cache_key_fn,
            "cache_expiration": cache_expiration, "task_run_name": task_run_name,
            "retries": retries, "retry_delay_seconds": retry_delay_seconds,
            "retry_jitter_factor": retry_jitter_factor, "persist_result": persist_result,
            "result_storage": result_storage, "result_serializer": result_serializer,
            "result_storage_key": result_storage_key,
            "cache_result_in_memory": cache_result_in_memory,
            "timeout_seconds": timeout_seconds, "log_prints": log_prints,
            "refresh_cache": refresh_cache, "on_completion": on_completion,
            "on_failure": on_failure, "retry_condition_fn": retry_condition_fn,
            "on_commit": on_commit, "on_rollback": on_rollback,
        }
        functools.update_wrapper(self, fn)
        module = getattr(fn, "__module__", None)
        qualname = getattr(fn, "__qualname__", None) or self.name
        self.task_key: str = f"{module}.{qualname}" if module else qualname
        """The task function's module and qualified name (the run record's ``taskKey``)."""

    # --- configuration ---------------------------------------------------------------

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some decorator arguments changed."""
        merged = {**self._options, **options}
        return type(self)(self.fn, **merged)

    def on_completion(self, fn: TaskHook) -> TaskHook:
        """Decorator form of ``on_completion=[fn]``."""
        self.on_completion_hooks.append(fn)
        return fn

    def on_failure(self, fn: TaskHook) -> TaskHook:
        """Decorator form of ``on_failure=[fn]``."""
        self.on_failure_hooks.append(fn)
        return fn

    def on_commit(self, fn: TransactionHook) -> TransactionHook:
        """Decorator form of ``on_commit=[fn]``: ``fn(txn)`` runs when the task run's
        transaction commits."""
        self.on_commit_hooks.append(fn)
        return fn

    def on_rollback(self, fn: TransactionHook) -> TransactionHook:
        """Decorator form of ``on_rollback=[fn]``: ``fn(txn)`` runs when the transaction
        the task run completed in rolls back (another task failed, or its block raised)."""
        self.on_rollback_hooks.append(fn)
        return fn

    @property
    def signature(self) -> Signature:
        """The wrapped function's signature (computed once)."""
        if self._signature is None:
            import inspect

            self._signature = inspect.signature(self.fn)
        return self._signature

    def bind_parameters(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Arguments by parameter name, defaults applied; a mismatch names the task."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"task {self.name!r}: {exc}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def storage_key(self, task_ctx: TaskRunContext) -> str:
        """``result_storage_key`` filled in for this run (Prefect's fields: ``parameters``,
        ``flow_run``, ``task_run``, ``deployment``); a path relative to result storage.

        Raises :class:`~headwater.exceptions.ResultStorageKeyError` naming the task, the
        template and the fix when it cannot be filled or is not a safe relative path.
        """
        from headwater import runtime
        from headwater.exceptions import ResultStorageKeyError

        template = self.result_storage_key or ""
        try:
            key = template.format(parameters=task_ctx.parameters, flow_run=runtime.flow_run,
                                  task_run=runtime.task_run, deployment=runtime.deployment)
        except (KeyError, IndexError, AttributeError, ValueError) as exc:
            raise ResultStorageKeyError(
                f"task {self.name!r}: result_storage_key {template!r} cannot be filled "
                f"({type(exc).__name__}: {exc}); use fields such as {{parameters[name]}}, "
                "{flow_run.name} or {task_run.id}") from None
        parts = key.split("/")
        if key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts):
            raise ResultStorageKeyError(
                f"task {self.name!r}: result_storage_key {template!r} gave {key!r}, which is "
                "not a relative path inside result storage; use names separated by single "
                "'/', without '.', '..' or a leading '/'")
        return key

    def persists(self, flow_persist_result: bool | None) -> bool:
        """Whether results are persisted (and so cached), following Prefect 3's rules."""
        if self.persist_result is not None:
            return self.persist_result
        if self._explicit_cache or self.result_storage_key is not None:
            return True
        return bool(flow_persist_result)

    # --- calling ---------------------------------------------------------------------

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task now; ``return_state=True`` returns its State instead of raising.

        For an ``async def`` task this returns a coroutine: ``await`` it (or pass it to
        ``asyncio.gather``); the task runs in the awaiting event loop.
        """
        from headwater import engine

        return_state = kwargs.pop("return_state", False)
        wait_for = kwargs.pop("wait_for", None)
        if self.isasync:
            from headwater import async_engine

            return async_engine.call_task_async(self, args, kwargs, return_state=return_state,
                                                wait_for=wait_for)
        return engine.call_task(self, args, kwargs, return_state=return_state, wait_for=wait_for)

    @overload
    def submit(self: Task[P, Coroutine[Any, Any, T]], *args: Any,
               **kwargs: Any) -> TaskFuture[T]: ...
    @overload
    def submit(self: Task[P, T], *args: Any, **kwargs: Any) -> TaskFuture[T]: ...

    def submit(self, *args: Any, **kwargs: Any) -> TaskFuture[Any]:
        """Run the task on the flow's task runner; returns a future.

        An ``async def`` task runs in an event loop of its own on the runner's worker;
        its future resolves to the coroutine's return value.
        """
        from headwater import engine

        kwargs.pop("return_state", None)
        wait_for = kwargs.pop("wait_for", None)
        return engine.submit_task(self, args, kwargs, wait_for=wait_for)

    @overload
    def map(self: Task[P, Coroutine[Any, Any, T]], *args: Any,
            **kwargs: Any) -> PrefectFutureList[T]: ...
    @overload
    def map(self: Task[P, T], *args: Any, **kwargs: Any) -> PrefectFutureList[T]: ...

    def map(self, *args: Any, **kwargs: Any) -> PrefectFutureList[Any]:
        """Submit one run per element of the iterable arguments (``unmapped`` stays whole)."""
        from headwater import engine

        kwargs.pop("return_state", None)
        wait_for = kwargs.pop("wait_for", None)
        return engine.map_task(self, args, kwargs, wait_for=wait_for)

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"


@overload
def task(__fn: Callable[P, R], /, **options: Any) -> Task[P, R]: ...
@overload
def task(
    __fn: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    version: str | None = None,
    cache_policy: CachePolicy | None = ...,
    cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None] | None = None,
    cache_expiration: _dt.timedelta | None = None,
    task_run_name: str | Callable[[], str] | None = None,
    retries: int | None = None,
    retry_delay_seconds: RetryDelay | None = None,
    retry_jitter_factor: float | None = None,
    persist_result: bool | None = None,
    result_storage: str | ResultStorage | None = None,
    result_serializer: str | None = None,
    result_storage_key: str | None = None,
    cache_result_in_memory: bool = True,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    refresh_cache: bool | None = None,
    on_completion: list[TaskHook] | None = None,
    on_failure: list[TaskHook] | None = None,
    retry_condition_fn: RetryConditionFn | None = None,
    on_commit: list[TransactionHook] | None = None,
    on_rollback: list[TransactionHook] | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(__fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Decorate a function as a task (``@task`` or ``@task(retries=3, ...)``)."""
    if __fn is not None:
        return Task(__fn, **options)
    return lambda fn: Task(fn, **options)
