"""Argument annotations: ``unmapped``, ``allow_failure`` and ``quote`` (Prefect's names).

Importable as ``headwater.utilities.annotations`` (Prefect's path) and from ``headwater``.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")


class BaseAnnotation(Generic[T]):
    """Wraps an argument to change how the engine treats it."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        """The wrapped value."""
        return self.value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.value == other.value

    def __hash__(self) -> int:
        return hash((type(self), id(self.value)))


class unmapped(BaseAnnotation[T]):
    """Pass the same value to every call of ``Task.map`` instead of iterating it."""


class allow_failure(BaseAnnotation[T]):
    """Run the downstream task even if this upstream future failed.

    The downstream receives the upstream's exception in place of its result.
    """


def unwrap(value: Any) -> Any:
    """Strip annotations from ``value``."""
    while isinstance(value, BaseAnnotation):
        value = value.value
    return value


class quote(BaseAnnotation[T]):
    """Pass the value to the task exactly as given: the engine does not look inside it.

    Without ``quote`` the engine walks lists, tuples, sets and dicts in the arguments to
    find futures and states to resolve; for a large collection that walk costs time, and
    a future inside it would be replaced by its result. ``quote(big_list)`` skips both.
    ``Task.map`` treats a quoted iterable as one value, like ``unmapped``.
    """
