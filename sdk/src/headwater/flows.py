"""``@flow`` and the :class:`Flow` object, with Prefect 3's keyword names and semantics.

Calling a flow runs it in-process: top-level on a laptop or in a flow-run pod (``headwater
execute``), or as a subflow with its own run record when called from another flow.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from headwater.utilities.asyncutils import is_async_callable

if TYPE_CHECKING:
    from inspect import Signature

    from headwater.context import FlowRun
    from headwater.results import ResultStorage
    from headwater.states import State
    from headwater.task_runners import TaskRunner

P = ParamSpec("P")
R = TypeVar("R")

FlowHook = Callable[["Flow[..., Any]", "FlowRun", "State[Any]"], Any]


def _doc(fn: Any) -> str | None:
    doc = getattr(fn, "__doc__", None)
    if not doc:
        return None
    lines = doc.strip().splitlines()
    return "\n".join([lines[0], *(line.strip() for line in lines[1:])])


class Flow(Generic[P, R]):
    """A function whose calls are tracked as flow runs."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        version: str | None = None,
        flow_run_name: str | Callable[[], str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | None = None,
        task_runner: TaskRunner | None = None,
        description: str | None = None,
        timeout_seconds: float | None = None,
        validate_parameters: bool = True,
        persist_result: bool | None = None,
        result_storage: str | ResultStorage | None = None,
        result_serializer: str | None = None,
        log_prints: bool | None = None,
        tags: Iterable[str] | None = None,
        on_completion: list[FlowHook] | None = None,
        on_failure: list[FlowHook] | None = None,
        on_cancellation: list[FlowHook] | None = None,
        on_crashed: list[FlowHook] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("@flow must decorate a function")
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds!r}")
        if retry_delay_seconds is not None and retry_delay_seconds < 0:
            raise ValueError(f"retry_delay_seconds must be >= 0, got {retry_delay_seconds!r}")
        from headwater.task_runners import ThreadPoolTaskRunner

        self.fn = fn
        self.isasync = is_async_callable(fn)
        """``async def`` flow: calling it returns a coroutine (``asyncio.run(main())``)."""
        self.name: str = name or str(getattr(fn, "__name__", "flow")).replace("_", "-")
        self.version = version
        self.flow_run_name = flow_run_name
        self.retries = retries or 0
        self.retry_delay_seconds = retry_delay_seconds
        self.task_runner: TaskRunner = task_runner or ThreadPoolTaskRunner()
        self.description = description or _doc(fn)
        self.timeout_seconds = timeout_seconds
        self.validate_parameters = validate_parameters
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.log_prints = log_prints
        self.tags = frozenset(tags or ())
        self.on_completion_hooks = list(on_completion or [])
        self.on_failure_hooks = list(on_failure or [])
        self.on_cancellation_hooks = list(on_cancellation or [])
        self.on_crashed_hooks = list(on_crashed or [])
        self._signature: Signature | None = None
        self._validator: Any = None
        self._options = {
            "name": name, "version": version, "flow_run_name": flow_run_name,
            "retries": retries, "retry_delay_seconds": retry_delay_seconds,
            "task_runner": task_runner, "description": description,
            "timeout_seconds": timeout_seconds, "validate_parameters": validate_parameters,
            "persist_result": persist_result, "result_storage": result_storage,
            "result_serializer": result_serializer, "log_prints": log_prints, "tags": tags,
            "on_completion": on_completion, "on_failure": on_failure,
            "on_cancellation": on_cancellation, "on_crashed": on_crashed,
        }
        functools.update_wrapper(self, fn)

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A copy of this flow with some decorator arguments changed."""
        return type(self)(self.fn, **{**self._options, **options})

    @property
    def signature(self) -> Signature:
        """The wrapped function's signature (computed once)."""
        if self._signature is None:
            import inspect

            self._signature = inspect.signature(self.fn)
        return self._signature

    @property
    def parameters(self) -> dict[str, Any]:
        """The flow's parameter JSON schema (what ``headwater schema`` prints)."""
        from headwater.parameters import parameter_schema

        return parameter_schema(self)

    def bind_parameters(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Arguments by parameter name (defaults not applied); a mismatch names the flow."""
        if not args and not self.signature.parameters and not kwargs:
            return {}
        import inspect

        params = self.signature.parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        # Unknown names are kept so validation can report them next to any other problem.
        unknown = {} if takes_any else {k: v for k, v in kwargs.items() if k not in params}
        known = {k: v for k, v in kwargs.items() if k not in unknown}
        try:
            bound = self.signature.bind_partial(*args, **known)
        except TypeError as exc:
            from headwater.exceptions import ParameterTypeError

            raise ParameterTypeError(f"flow {self.name!r}: {exc}") from None
        return {**bound.arguments, **unknown}

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Coerce ``parameters`` to the annotated types; raise ``ParameterTypeError``."""
        from headwater.parameters import validate_parameters

        return validate_parameters(self, parameters)

    def split_parameters(self, parameters: dict[str, Any]) -> tuple[tuple[Any, ...],
                                                                      dict[str, Any]]:
        """Turn named parameters into the ``*args, **kwargs`` of the function call."""
        from headwater.parameters import split_arguments

        return split_arguments(self.signature, parameters)

    def on_completion(self, fn: FlowHook) -> FlowHook:
        """Decorator form of ``on_completion=[fn]``."""
        self.on_completion_hooks.append(fn)
        return fn

    def on_failure(self, fn: FlowHook) -> FlowHook:
        """Decorator form of ``on_failure=[fn]``."""
        self.on_failure_hooks.append(fn)
        return fn

    def on_cancellation(self, fn: FlowHook) -> FlowHook:
        """Decorator form of ``on_cancellation=[fn]``."""
        self.on_cancellation_hooks.append(fn)
        return fn

    def on_crashed(self, fn: FlowHook) -> FlowHook:
        """Decorator form of ``on_crashed=[fn]``."""
        self.on_crashed_hooks.append(fn)
        return fn

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the flow; ``return_state=True`` returns its final State instead of raising.

        For an ``async def`` flow this returns a coroutine: ``await`` it inside another
        flow, or ``asyncio.run(main())`` at the top level, as with Prefect.
        """
        from headwater import engine

        return_state = kwargs.pop("return_state", False)
        if self.isasync:
            from headwater import async_engine

            return async_engine.run_flow_async(self, args, kwargs, return_state=return_state)
        return engine.run_flow(self, args, kwargs, return_state=return_state)

    def serve(self, *args: Any, **kwargs: Any) -> Any:
        """Prefect's ``flow.serve(...)``: not available yet (issue #14, item 4).

        Present so that a flow file ending in ``if __name__ == "__main__":
        my_flow.serve(...)`` imports and can be a Flow's entrypoint; calling it raises
        ``NotImplementedError`` saying how to run the flow on a schedule today.
        """
        raise NotImplementedError(
            f"flow {self.name!r}: Flow.serve() is not implemented in Headwater yet (issue "
            "#14, item 4). Run the flow with `python <file>.py` calling it directly, or "
            "schedule it on a cluster with a Flow, a Deployment and a Schedule manifest "
            "(see examples/quickstart)")

    def deploy(self, *args: Any, **kwargs: Any) -> Any:
        """Prefect's ``flow.deploy(...)``: not available yet (issue #14, item 4).

        Present so that a flow file that calls it under ``if __name__ == "__main__":``
        imports and can be a Flow's entrypoint; calling it raises ``NotImplementedError``.
        """
        raise NotImplementedError(
            f"flow {self.name!r}: Flow.deploy() is not implemented in Headwater yet (issue "
            "#14, item 4). Write the Flow, Deployment and Schedule manifests and apply them "
            "with kubectl (see examples/quickstart)")

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


@overload
def flow(__fn: Callable[P, R], /, **options: Any) -> Flow[P, R]: ...
@overload
def flow(
    __fn: None = None,
    *,
    name: str | None = None,
    version: str | None = None,
    flow_run_name: str | Callable[[], str] | None = None,
    retries: int | None = None,
    retry_delay_seconds: float | None = None,
    task_runner: TaskRunner | None = None,
    description: str | None = None,
    timeout_seconds: float | None = None,
    validate_parameters: bool = True,
    persist_result: bool | None = None,
    result_storage: str | ResultStorage | None = None,
    result_serializer: str | None = None,
    log_prints: bool | None = None,
    tags: Iterable[str] | None = None,
    on_completion: list[FlowHook] | None = None,
    on_failure: list[FlowHook] | None = None,
    on_cancellation: list[FlowHook] | None = None,
    on_crashed: list[FlowHook] | None = None,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(__fn: Callable[P, R] | None = None, **options: Any) -> Any:
    """Decorate a function as a flow (``@flow`` or ``@flow(name=..., retries=...)``)."""
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)
