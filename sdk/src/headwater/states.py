"""Run states with Prefect's names and semantics.

A state has a *type* (what the engine reasons about: is it final, did it fail) and a
*name* (what users read). Several names share a type exactly as in Prefect: ``Cached``
is a kind of ``COMPLETED``, ``TimedOut`` a kind of ``FAILED``, ``Retrying`` a kind of
``RUNNING``, ``AwaitingRetry`` a kind of ``SCHEDULED`` and ``NotReady`` a kind of
``PENDING``. Run-summary counts use the name, so ``Cached`` and ``Completed`` are told
apart.

States are small slotted objects created several times per task run, so they hold a
float timestamp and format it only when asked.

``State`` is generic over the run's result, as in Prefect 3: ``State[int]`` and
``State[Any]`` are valid annotations (hook signatures included) at import and at run time.
A state remembers which run it was recorded for (:attr:`State.run_id`): a state the
flow's own code creates (``return Completed(...)``) has none, and the flow-return rules
(:func:`headwater.engine.state_from_return_value`) treat the two kinds differently.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar, overload

from headwater import exceptions

R = TypeVar("R")


class StateType(enum.Enum):
    """The kind of a state; the engine's decisions look only at this."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"


TERMINAL_STATE_TYPES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}
)
FAILURE_STATE_TYPES = frozenset({StateType.FAILED, StateType.CANCELLED, StateType.CRASHED})
"""The final types whose ``result()`` raises."""

_NOT_SET: Any = object()


class PersistedResult:
    """A result kept only in result storage (``cache_result_in_memory=False``).

    The state holds this small reference instead of the value; reading ``State.data``
    (and so ``future.result()``) loads the value from storage each time.
    """

    __slots__ = ("key", "load")

    def __init__(self, key: str, load: Callable[[], Any]) -> None:
        self.key = key
        self.load = load

    def __repr__(self) -> str:
        return f"PersistedResult({self.key!r})"


class State(Generic[R]):
    """One state of a flow or task run, optionally carrying its result or exception."""

    __slots__ = ("_data", "message", "name", "run_id", "timestamp", "type")

    def __init__(
        self,
        type: StateType,
        name: str | None = None,
        message: str | None = None,
        data: Any = None,
        timestamp: float | None = None,
    ) -> None:
        self.type = type
        self.name = name or type.value.capitalize()
        self.message = message
        self._data = data
        self.timestamp = time.time() if timestamp is None else timestamp
        self.run_id: str | None = None
        """The task or flow run this state was recorded for; ``None`` for a state that
        user code created and no run has taken yet."""

    @property
    def data(self) -> Any:
        """The run's return value, or the exception for a failed run."""
        data = self._data
        if type(data) is PersistedResult:
            return data.load()
        return data

    @property
    def datetime(self) -> datetime:
        """When the run entered this state (UTC)."""
        return datetime.fromtimestamp(self.timestamp, tz=UTC)

    @overload
    def result(self, raise_on_failure: Literal[True] = ...) -> R: ...
    @overload
    def result(self, raise_on_failure: bool = ...) -> R | BaseException: ...

    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's value; for a failed, crashed or cancelled run raise its exception.

        With ``raise_on_failure=False`` such a run gives back what it holds instead (the
        exception, or the states a flow returned), or the exception when it holds
        nothing, as in Prefect.
        """
        if self.type is StateType.COMPLETED:
            return self.data
        exc = self._exception()
        if exc is None:
            return self._data
        if raise_on_failure:
            raise exc
        if self._data is None or self.type not in FAILURE_STATE_TYPES:
            return exc
        return self._data

    def _exception(self) -> BaseException | None:
        """The exception this state stands for (Prefect's ``get_state_exception`` rules):
        the one it holds; for a state holding states (what a flow returned), the first
        failed one's; a string it holds as the message; else one made from its message."""
        data = self._data
        if isinstance(data, BaseException):
            return data
        if self.type in FAILURE_STATE_TYPES:
            if isinstance(data, State):
                return data._exception() or _wrapper(self.type, data.message)
            if is_state_collection(data):
                failed: list[State[Any]] = [
                    inner for inner in data if inner.type in FAILURE_STATE_TYPES]
                if failed:
                    return failed[0]._exception()
            return _wrapper(self.type, data if isinstance(data, str) else self.message)
        if self.type in (StateType.PENDING, StateType.SCHEDULED, StateType.RUNNING):
            return exceptions.UpstreamTaskError(self.message or f"Run is {self.name}.")
        return None

    def is_scheduled(self) -> bool:
        """True for Scheduled and AwaitingRetry."""
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        """True for Pending and NotReady."""
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        """True for Running and Retrying."""
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        """True for Completed and Cached."""
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        """True for Failed and TimedOut."""
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        """True for Crashed."""
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        """True for Cancelled."""
        return self.type is StateType.CANCELLED

    def is_final(self) -> bool:
        """True once the run will not change state again."""
        return self.type in TERMINAL_STATE_TYPES

    def __repr__(self) -> str:
        if self.message:
            return f"{self.name}(message={self.message!r}, type={self.type.value})"
        return f"{self.name}(type={self.type.value})"

    def __str__(self) -> str:
        return f"{self.name}({self.message!r})" if self.message else f"{self.name}()"


def _wrapper(kind: StateType, message: str | None) -> BaseException:
    if kind is StateType.CANCELLED:
        return exceptions.CancelledRun(message or "Run was cancelled.")
    if kind is StateType.CRASHED:
        return exceptions.CrashedRun(message or "Run crashed.")
    return exceptions.FailedRun(message or "Run failed.")


def is_state_collection(value: Any) -> bool:
    """Whether ``value`` is a non-empty list, tuple or set made only of states (what
    Prefect aggregates when a flow returns it; a dict is never one)."""
    if type(value) not in (list, tuple, set, frozenset) or not value:
        return False
    return all(isinstance(item, State) for item in value)


def Scheduled(message: str | None = None, name: str = "Scheduled") -> State[Any]:
    """A run waiting for its start time."""
    return State(StateType.SCHEDULED, name, message)


def AwaitingRetry(message: str | None = None) -> State[Any]:
    """A failed run waiting for its retry delay."""
    return State(StateType.SCHEDULED, "AwaitingRetry", message)


def Pending(message: str | None = None, name: str = "Pending") -> State[Any]:
    """A run that has been created and not started."""
    return State(StateType.PENDING, name, message)


def NotReady(message: str | None = None) -> State[Any]:
    """A task that did not run because an upstream task did not complete."""
    return State(StateType.PENDING, "NotReady", message)


def Running(message: str | None = None, name: str = "Running") -> State[Any]:
    """A run whose code is executing."""
    return State(StateType.RUNNING, name, message)


def Retrying(message: str | None = None) -> State[Any]:
    """A run executing again after a failure."""
    return State(StateType.RUNNING, "Retrying", message)


def Completed(
    message: str | None = None, data: Any = None, name: str = "Completed"
) -> State[Any]:
    """A run that finished successfully; ``data`` is its return value."""
    return State(StateType.COMPLETED, name, message, data)


def Cached(message: str | None = None, data: Any = None) -> State[Any]:
    """A task whose result came from the cache instead of running its code."""
    return State(StateType.COMPLETED, "Cached", message, data)


def Failed(
    message: str | None = None, data: Any = None, name: str = "Failed"
) -> State[Any]:
    """A run whose code failed; ``data`` is usually the exception."""
    return State(StateType.FAILED, name, message, data)


def TimedOut(message: str | None = None, data: Any = None) -> State[Any]:
    """A run that exceeded its ``timeout_seconds``."""
    return State(StateType.FAILED, "TimedOut", message, data)


def Crashed(message: str | None = None, data: Any = None) -> State[Any]:
    """A run stopped by something other than its code (interrupt, engine error)."""
    return State(StateType.CRASHED, "Crashed", message, data)


def Cancelled(message: str | None = None, data: Any = None) -> State[Any]:
    """A run stopped on request (SIGTERM, cancellation)."""
    return State(StateType.CANCELLED, "Cancelled", message, data)


def exception_message(exc: BaseException) -> str:
    """A one-line ``Type: message`` description of ``exc``, secrets masked."""
    from headwater.secrets import redact

    text = redact(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def failed_from_exception(exc: BaseException) -> State[Any]:
    """The Failed state for an exception raised by user code."""
    return Failed(f"Task run encountered an exception {exception_message(exc)}", data=exc)


def count_failed(states: Iterable[State[Any]]) -> tuple[int, int]:
    """Return ``(failed, total)`` over ``states``; cancelled and crashed count as failed."""
    failed = total = 0
    for state in states:
        total += 1
        if state.type in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
            failed += 1
    return failed, total
