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
