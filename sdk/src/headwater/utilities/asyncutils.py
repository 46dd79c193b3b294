"""Telling ``async def`` functions apart without importing :mod:`inspect` or :mod:`asyncio`.

Both modules are slow to import and ``import headwater`` must stay cheap, so the check
reads the code object's ``CO_COROUTINE`` flag, which is what
``inspect.iscoroutinefunction`` does for plain functions.
"""

from __future__ import annotations

import functools
from typing import Any

_CO_COROUTINE = 0x80


def is_async_callable(fn: Any) -> bool:
    """Whether calling ``fn`` returns a coroutine (``async def``, also behind partials)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if getattr(fn, "_is_coroutine_marker", None) is not None:
        return True  # inspect.markcoroutinefunction (3.12+)
    code = getattr(fn, "__code__", None)
    if code is None:
        # A callable object: look at its class's __call__ method.
        code = getattr(type(fn).__dict__.get("__call__"), "__code__", None)
    return code is not None and bool(code.co_flags & _CO_COROUTINE)


_CO_ASYNC_GENERATOR = 0x200


def called_from_coroutine(depth: int = 1) -> bool:
    """Whether the function ``depth`` frames above the caller is an ``async def`` (or an
    async generator): ``called_from_coroutine()`` inside ``load`` asks whether ``load``'s
    caller can ``await`` its result.

    Prefect 3's dual sync/async methods (``Block.load``, ``Variable.get``) return a
    coroutine when called from async code; deciding by the *calling function* rather than
    by a running event loop keeps a sync task that runs in the loop's thread (a sync task
    called from an async flow) on the sync path.
    """
    import sys

    code = sys._getframe(depth + 1).f_code
    return bool(code.co_flags & (_CO_COROUTINE | _CO_ASYNC_GENERATOR))
