"""Task runners: where ``Task.submit`` and ``Task.map`` execute.

The interface is deliberately small so other runners (processes, Dask, Ray) can plug in:
``submit(fn) -> concurrent.futures.Future`` plus context-manager entry/exit and
``duplicate()`` (each flow run gets its own copy). The engine wraps the returned future
in a :class:`~headwater.futures.TaskFuture`; the callable it submits already carries the
run's context, so a runner only has to call it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from headwater.states import State

if TYPE_CHECKING:
    import concurrent.futures


class TaskRunner:
    """Base class of task runners."""

    def submit(self, fn: Callable[[], State[Any]]) -> concurrent.futures.Future[State[Any]]:
        """Start ``fn`` and return a future of the state it returns."""
        raise NotImplementedError

    def duplicate(self) -> TaskRunner:
        """A fresh, unstarted runner with the same settings (one per flow run)."""
        raise NotImplementedError

    def __enter__(self) -> TaskRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Stop accepting work; optionally wait for running work or drop queued work."""


class ThreadPoolTaskRunner(TaskRunner):
    """Runs tasks on a thread pool (the default, as in Prefect 3).

    The pool is created on the first submit, so flows that only call tasks directly (and
    subflows) pay nothing for it.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[[], State[Any]]) -> concurrent.futures.Future[State[Any]]:
        """Queue ``fn`` on the pool."""
        if self._executor is None:
            import concurrent.futures

            self._executor = concurrent.futures.ThreadPoolExecutor(
                self.max_workers, thread_name_prefix="headwater-task"
            )
        return self._executor.submit(fn)

    def duplicate(self) -> ThreadPoolTaskRunner:
        """A new pool with the same size."""
        return ThreadPoolTaskRunner(self.max_workers)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Shut the pool down."""
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=cancel_futures)


class ImmediateTaskRunner(TaskRunner):
    """Runs each submitted task immediately in the caller's thread (debugging, tests)."""

    def submit(self, fn: Callable[[], State[Any]]) -> concurrent.futures.Future[State[Any]]:
        """Run ``fn`` now."""
        import concurrent.futures

        future: concurrent.futures.Future[State[Any]] = concurrent.futures.Future()
        try:
            future.set_result(fn())
        except BaseException as exc:  # delivered through the future
            future.set_exception(exc)
        return future

    def duplicate(self) -> ImmediateTaskRunner:
        """Another immediate runner."""
        return ImmediateTaskRunner()
