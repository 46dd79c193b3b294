"""Timeouts for synchronous code (``async def`` tasks and flows use ``asyncio.timeout``).

Python cannot kill a thread, so a timed call runs in a daemon helper thread while the
caller waits at most ``timeout`` seconds. On expiry the caller raises the timeout error
at once: the run is marked TimedOut, the flow moves on and finishes on time (the task
runner's worker is free again; flow-end waits only for the runner's workers, never for
timeout helpers). The helper thread gets the same exception injected with
``PyThreadState_SetAsyncExc``: pure-Python code stops at its next bytecode.

What authors must know (Prefect behaves the same way): **a timed-out sync task keeps
its helper thread running until the blocking call it is in returns** — a socket read,
``time.sleep``, a database driver call, ``Event.wait()``. Until then it holds whatever it
holds (connections, file handles, memory), and when the call returns the injected
exception stops the task's remaining code, so nothing after the blocking call runs.
A call that never returns pins its thread until the process exits; daemon helpers never
keep the process alive, so the pod still ends when the flow does. To stop promptly, give
the blocking call its own timeout (``requests.get(url, timeout=...)``) or write the task
as ``async def``, whose timeout cancels the coroutine at its ``await``.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")


def raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> bool:
    """Ask thread ``thread_id`` to raise ``exc_type``; ``False`` if it no longer exists."""
    import ctypes

    count = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type)
    )
    return bool(count == 1)


def call_with_timeout(
    fn: Callable[..., R],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float,
    *,
    exc_type: type[BaseException],
    message: str,
) -> R:
    """Call ``fn(*args, **kwargs)``; raise ``exc_type(message)`` after ``timeout`` seconds."""
    context = contextvars.copy_context()
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = context.run(fn, *args, **kwargs)
        except BaseException as exc:  # handed to the waiting caller
            box["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=target, name="headwater-timeout", daemon=True)
    worker.start()
    if not done.wait(timeout):
        if worker.ident is not None:
            raise_in_thread(worker.ident, exc_type)
        raise exc_type(message)
    if "error" in box:
        raise box["error"]
    value: R = box["value"]
    return value
