"""``@flow`` and the :class:`Flow` object, with Prefect 3's keyword names and semantics.

Calling a flow runs it in-process: top-level on a laptop or in a flow-run pod (``headwater
execute``), or as a subflow with its own run record when called from another flow.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from headwater.utilities.asyncutils import is_async_callable

if TYPE_CHECKING:
    from inspect import Signature

    from headwater.context import FlowRun
    from headwater.results import ResultStorage
    from headwater.schedules import Schedule
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

    def serve(  # noqa: PLR0917 - Prefect's signature, positional as there
        self,
        name: str | None = None,
        interval: Any = None,
        cron: str | Iterable[str] | None = None,
        rrule: str | Iterable[str] | None = None,
        paused: bool | None = None,
        schedule: Schedule | None = None,
        schedules: Iterable[Schedule] | None = None,
        global_limit: int | None = None,
        triggers: Any = None,
        parameters: dict[str, Any] | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        enforce_parameter_schema: bool | None = None,
        pause_on_shutdown: bool | None = None,
        print_starting_message: bool | None = None,
        limit: int | None = None,
        webserver: bool | None = None,
        entrypoint_type: Any = None,
    ) -> None:
        """Prefect's ``flow.serve(...)``: fire this flow's runs on a laptop until Ctrl-C.

        A development scheduler (:mod:`headwater.serve`): each tick of ``cron``,
        ``interval`` (seconds or a timedelta), ``rrule`` or ``schedules=[Cron(...)]``
        starts a run as a subprocess, with ``parameters`` (a schedule's own parameters
        win). The fire times are computed by the operator's scheduling code, so they are
        those the Schedule that ``deploy()`` writes fires at in a cluster. ``limit`` caps
        the runs in progress; ``paused=True`` serves nothing. Arguments that need
        Prefect's server (``triggers``, ``webserver``...) are ignored with a warning.
        Without a schedule, serve() has nothing to fire and says so.
        """
        import dataclasses
        import warnings

        from headwater.deployments import collect_schedules, flow_entrypoint, ignored_arguments
        from headwater.serve import Server, served_schedules

        for line in ignored_arguments({
                "triggers": triggers, "global_limit": global_limit, "webserver": webserver,
                "enforce_parameter_schema": enforce_parameter_schema,
                "pause_on_shutdown": pause_on_shutdown, "entrypoint_type": entrypoint_type,
                "print_starting_message": print_starting_message}):
            warnings.warn(f"flow.serve(): {line}", stacklevel=2)
        del description, tags, version  # what a served run records is the flow's own
        found = collect_schedules(interval=interval, cron=cron, rrule=rrule,
                                  schedule=schedule, schedules=schedules)
        served = served_schedules(name or self.name, found, dict(parameters or {}))
        if paused:
            served = [dataclasses.replace(s, active=False) for s in served]
        if not any(s.active for s in served):
            raise ValueError(f"flow {self.name!r}: serve() needs an active schedule (cron=, "
                             "interval=, rrule= or schedules=[...]); to run the flow once, "
                             "call it")
        Server(flow_entrypoint(self, absolute=True), name or self.name, served,
               limit=limit).serve_forever()

    def deploy(  # noqa: PLR0917 - Prefect's signature, positional as there
        self,
        name: str,
        work_pool_name: str | None = None,
        image: str | None = None,
        build: bool | None = None,
        push: bool | None = None,
        work_queue_name: str | None = None,
        job_variables: dict[str, Any] | None = None,
        interval: Any = None,
        cron: str | Iterable[str] | None = None,
        rrule: str | Iterable[str] | None = None,
        paused: bool | None = None,
        schedule: Schedule | None = None,
        schedules: Iterable[Schedule] | None = None,
        concurrency_limit: int | None = None,
        triggers: Any = None,
        parameters: dict[str, Any] | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        version_type: Any = None,
        enforce_parameter_schema: bool | None = None,
        entrypoint_type: Any = None,
        print_next_steps: bool | None = None,
        ignore_warnings: bool | None = None,
        *,
        timezone: str | None = None,
        namespace: str | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        apply: bool = False,
        entrypoint_root: str | os.PathLike[str] | None = None,
    ) -> str:
        """Prefect's ``flow.deploy(...)``, the Kubernetes way: the Flow, Deployment and
        Schedule manifests of this flow, written to ``output_dir`` (default
        ``manifests/<name>``) for GitOps, or applied to the cluster of your kubeconfig
        with ``apply=True``.

        Does exactly what ``headwater deploy <this file>:<this flow> --name NAME --image
        IMAGE ...`` does (the same command runs), so it needs the ``headwater-operator``
        package, which provides that command. ``image`` is required (Headwater builds
        and pushes no image); ``work_pool_name``, ``build``, ``push``, ``job_variables``
        and ``triggers`` are ignored with a warning. ``timezone`` applies to ``cron=``,
        ``interval=`` and ``rrule=``; ``namespace`` sets ``metadata.namespace``;
        ``entrypoint_root`` is the directory the image copies into its working
        directory (default: the working directory), which the entrypoint is relative to.
        Returns the Deployment's name.
        """
        import warnings
        from pathlib import Path

        from headwater.deployments import (
            DeployRequest,
            collect_schedules,
            flow_entrypoint,
            ignored_arguments,
        )

        for line in ignored_arguments({
                "work_pool_name": work_pool_name, "build": build, "push": push,
                "work_queue_name": work_queue_name, "job_variables": job_variables,
                "triggers": triggers, "version_type": version_type,
                "enforce_parameter_schema": enforce_parameter_schema,
                "entrypoint_type": entrypoint_type, "print_next_steps": print_next_steps,
                "ignore_warnings": ignore_warnings}):
            warnings.warn(f"flow.deploy(): {line}", stacklevel=2)
        if image is None:
            raise ValueError(f"flow {self.name!r}: deploy() needs image=, the container "
                             "image with this flow's code and the Headwater SDK (Headwater "
                             "builds no image), e.g. image='ghcr.io/acme/etl:1.4'")
        fetched = self.source
        request = DeployRequest(
            flow=self, name=name, image=image,
            entrypoint=fetched[1] if fetched else flow_entrypoint(
                self, None if entrypoint_root is None else Path(entrypoint_root)),
            source=fetched[0] if fetched else None,
            schedules=tuple(collect_schedules(interval=interval, cron=cron, rrule=rrule,
                                              schedule=schedule, schedules=schedules,
                                              timezone=timezone)),
            parameters=dict(parameters or {}), description=description,
            tags=tuple(tags or ()), version=version, paused=bool(paused),
            concurrency_limit=concurrency_limit, namespace=namespace)
        from headwater.cli import run_deploy

        target = None if apply else str(output_dir or os.path.join("manifests", name))
        run_deploy(request, output_dir=target)
        return request.deployment_name

    @property
    def source(self) -> tuple[dict[str, Any], str] | None:
        """``(Flow spec.source, entrypoint inside it)`` of a flow loaded by
        :meth:`from_source`; None for one defined in local code."""
        return getattr(self, "_fetched_from", None)

    @classmethod
    def from_source(cls, source: Any, entrypoint: str) -> Flow[..., Any]:
        """Prefect's ``flow.from_source(source, entrypoint)``: the flow ``entrypoint``
        (``path/in/repo.py:function``) of ``source`` — a Git URL, a
        :class:`~headwater.runner.storage.GitRepository` or a ``.tar.gz`` bundle URL.

        The code is fetched now, into a temporary directory, to load the flow (as Prefect
        does), with your own Git credentials. The flow remembers where it came from, so
        ``.deploy(...)`` writes a Flow whose ``spec.source`` makes each run's pod fetch
        the same repository at run time (docs/flow-source.md), and calling it runs the
        fetched code here.
        """
        import tempfile
        from pathlib import Path, PurePosixPath

        from headwater import contract
        from headwater import source as fetching
        from headwater.loader import load_flow, split_entrypoint
        from headwater.runner.storage import source_spec

        spec = source_spec(source)
        target, attribute = split_entrypoint(entrypoint)
        relative = PurePosixPath(target)
        if relative.is_absolute() or ".." in relative.parts or not target.endswith(".py"):
            raise ValueError(f"from_source(entrypoint={entrypoint!r}): give the flow file's "
                             "path inside the source, e.g. 'flows/etl.py:nightly'")
        directory = Path(tempfile.mkdtemp(prefix="headwater-source-"))
        fetching.fetch(spec, directory, None)
        code = directory / contract.SOURCE_CODE_DIR
        loaded = load_flow(f"{(code / relative).as_posix()}:{attribute}")
        loaded._fetched_from = (spec, entrypoint)  # type: ignore[attr-defined]
        return loaded

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


# Prefect's spelling: ``flow.from_source(...)`` on the decorator itself.
flow.from_source = Flow.from_source  # type: ignore[attr-defined]
