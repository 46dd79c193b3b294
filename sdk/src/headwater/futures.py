"""Futures returned by ``Task.submit`` and ``Task.map`` (Prefect's ``PrefectFuture``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from headwater.context import TaskRun
from headwater.states import Pending, State

if TYPE_CHECKING:
    import concurrent.futures

R = TypeVar("R")


class TaskFuture(Generic[R]):
    """A task run that may still be executing."""

    __slots__ = ("_future", "task_run")

    def __init__(self, task_run: TaskRun, future: concurrent.futures.Future[State[Any]]) -> None:
        self.task_run = task_run
        self._future = future

    @property
    def task_run_id(self) -> str:
        """The task run's id."""
        return self.task_run.id

    @property
    def state(self) -> State[Any]:
        """The current state (final once :meth:`wait` returns)."""
        if self._future.done():
            return self._final_state()
        return self.task_run.state if self.task_run.state is not None else Pending()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the task run is final (or ``timeout`` seconds pass)."""
        import concurrent.futures

        try:
            self._future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            return
        except BaseException:  # the run's state already records the failure
            return

    def _final_state(self) -> State[Any]:
        import concurrent.futures

        try:
            return self._future.result()
        except concurrent.futures.CancelledError:
            return self.task_run.state
        except BaseException:  # an engine error still leaves a run state
            return self.task_run.state

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """Wait and return the task's value; raise its exception if it failed."""
        import concurrent.futures

        try:
            state = self._future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"task run {self.task_run.name!r} did not finish within {timeout}s"
            ) from None
        except concurrent.futures.CancelledError:
            state = self.task_run.state
        value: R = state.result(raise_on_failure=raise_on_failure)  # type: ignore[assignment]
        return value

    def add_done_callback(self, fn: Any) -> None:
        """Call ``fn(self)`` when the run is final."""
        self._future.add_done_callback(lambda _f: fn(self))

    def __repr__(self) -> str:
        return f"TaskFuture({self.task_run.name!r}, state={self.state.name})"


PrefectFuture = TaskFuture


class PrefectFutureList(list[TaskFuture[R]]):
    """The futures of a ``Task.map`` call."""

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every future."""
        wait(self, timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """Every future's value, in order."""
        return [f.result(timeout=timeout, raise_on_failure=raise_on_failure) for f in self]


class DoneAndNotDoneFutures(NamedTuple):
    """What :func:`wait` returns."""

    done: set[TaskFuture[Any]]
    not_done: set[TaskFuture[Any]]


def wait(futures: Iterable[TaskFuture[Any]], timeout: float | None = None) -> DoneAndNotDoneFutures:
    """Wait for ``futures`` to finish; returns which are done and which are not."""
    import concurrent.futures

    items = list(futures)
    by_inner = {f._future: f for f in items}
    done, not_done = concurrent.futures.wait(list(by_inner), timeout=timeout)
    return DoneAndNotDoneFutures({by_inner[f] for f in done}, {by_inner[f] for f in not_done})


def as_completed(
    futures: Iterable[TaskFuture[Any]], timeout: float | None = None
) -> Iterator[TaskFuture[Any]]:
    """Yield futures as they finish."""
    import concurrent.futures

    by_inner = {f._future: f for f in futures}
    for inner in concurrent.futures.as_completed(list(by_inner), timeout=timeout):
        yield by_inner[inner]
