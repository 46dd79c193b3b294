"""``Variable``: named, mutable JSON values shared across flows (Prefect 3's API)::

    from headwater.variables import Variable

    Variable.set("batch_size", 500, overwrite=True)
    size = Variable.get("batch_size", default=100)
    Variable.unset("batch_size")

Variables live in the store ``HEADWATER_BLOCK_STORE`` selects, as blocks do
(:mod:`headwater.blocks.stores`): the local store on a laptop, the variables a Deployment
declares (``spec.variables``) in a flow-run pod, the cluster with ``kubernetes``.

What it must respect: Prefect 3's rules — a name is 1 to 255 lowercase letters, digits,
``_`` and ``-``; a value is JSON of at most 5000 characters (compact encoding). ``tags``
are accepted for compatibility and not stored. Called directly from an ``async def``,
``get``/``set``/``unset`` return a coroutine, as Prefect 3's do.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from headwater.blocks import stores
from headwater.exceptions import VariableAlreadyExistsError
from headwater.utilities.asyncutils import called_from_coroutine

__all__ = ["Variable"]

T = TypeVar("T")


def _store() -> stores.VariableStore:
    return stores.current().variables


class Variable(BaseModel, Generic[T]):
    """A named JSON value; use the class methods, as in Prefect 3."""

    name: str = Field(max_length=stores.VARIABLE_NAME_MAX,
                      description="The name of the variable")
    value: Any = Field(description="The value of the variable (JSON)")
    tags: list[str] | None = Field(default=None, description="Accepted, not stored")

    # --- get -------------------------------------------------------------------------

    @classmethod
    def get(cls, name: str, default: Any = None, *, _sync: bool | None = None) -> Any:
        """The value of variable ``name``, or ``default`` when it does not exist."""
        if _sync is False or (_sync is None and called_from_coroutine()):
            return cls.aget(name, default)
        return cls._get(name, default)

    @classmethod
    async def aget(cls, name: str, default: Any = None) -> Any:
        """:meth:`get` as a coroutine."""
        import asyncio

        return await asyncio.to_thread(cls._get, name, default)

    @classmethod
    def _get(cls, name: str, default: Any) -> Any:
        value = _store().get(stores.validate_variable_name(name))
        return default if value is stores.MISSING else value

    # --- set -------------------------------------------------------------------------

    @classmethod
    def set(cls, name: str, value: Any, tags: list[str] | None = None,
            overwrite: bool = False, *, _sync: bool | None = None) -> Variable[Any]:
        """Set variable ``name`` to ``value`` (JSON); an existing one only with
        ``overwrite=True``. Returns the variable."""
        if _sync is False or (_sync is None and called_from_coroutine()):
            coroutine: Any = cls.aset(name, value, tags, overwrite)
            return coroutine  # type: ignore[no-any-return]
        return cls._set(name, value, tags, overwrite)

    @classmethod
    async def aset(cls, name: str, value: Any, tags: list[str] | None = None,
                   overwrite: bool = False) -> Variable[Any]:
        """:meth:`set` as a coroutine."""
        import asyncio

        return await asyncio.to_thread(cls._set, name, value, tags, overwrite)

    @classmethod
    def _set(cls, name: str, value: Any, tags: list[str] | None,
             overwrite: bool) -> Variable[Any]:
        stores.validate_variable_name(name)
        stores.check_variable_value(name, value)
        try:
            _store().set(name, value, overwrite)
        except VariableAlreadyExistsError as exc:
            raise VariableAlreadyExistsError(
                f"Variable.set({name!r}): {exc}") from None
        return cls(name=name, value=value, tags=tags)

    # --- unset -----------------------------------------------------------------------

    @classmethod
    def unset(cls, name: str, *, _sync: bool | None = None) -> bool:
        """Delete variable ``name``: ``True`` if it existed, ``False`` if not."""
        if _sync is False or (_sync is None and called_from_coroutine()):
            coroutine: Any = cls.aunset(name)
            return coroutine  # type: ignore[no-any-return]
        return cls._unset(name)

    @classmethod
    async def aunset(cls, name: str) -> bool:
        """:meth:`unset` as a coroutine."""
        import asyncio

        return await asyncio.to_thread(cls._unset, name)

    @classmethod
    def _unset(cls, name: str) -> bool:
        return _store().delete(stores.validate_variable_name(name))
