"""``concurrency()`` and ``rate_limit()`` for ``async`` code, as Prefect 3's
``prefect.concurrency.asyncio``; waiting never blocks the event loop.

Slots are shared with :mod:`headwater.concurrency.sync`: one limit counts threads and
coroutines of the process together. With a shared backend
(``HEADWATER_CONCURRENCY_BACKEND``, :mod:`headwater.concurrency.backends`) its blocking
calls run in a worker thread; a coroutine cancelled while that thread waits for slots
leaves the thread to finish, and whatever it takes is released at once (a thread cannot
be interrupted, and slots nobody holds must not stay taken).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

from headwater.concurrency import backends
from headwater.concurrency.backends import Backend, Holding
from headwater.concurrency.limits import (
    REGISTRY,
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    acquire_async,
    check_request,
)


@contextlib.asynccontextmanager
async def concurrency(  # noqa: PLR0917 - Prefect's signature
        names: str | list[str], occupy: int = 1, timeout_seconds: float | None = None,
        max_retries: int | None = None, lease_duration: float = 300, strict: bool = False,
        holder: Any = None, raise_on_lease_renewal_failure: bool | None = None,
) -> AsyncIterator[None]:
    """``async with``: hold ``occupy`` slots of every limit in ``names`` (see
    :func:`headwater.concurrency.sync.concurrency`)."""
    del max_retries, holder, raise_on_lease_renewal_failure
    wanted = check_request(names, occupy)
    backend = backends.current() if wanted else None
    if backend is not None:
        held = await _acquire_in_thread(backend, wanted, occupy, timeout_seconds, strict,
                                        lease_duration)
        try:
            yield
        finally:
            await asyncio.to_thread(held.release)
        return
    limits = await acquire_async(wanted, occupy, "concurrency", timeout_seconds,
                                 strict) if wanted else []
    try:
        yield
    finally:
        if limits:
            REGISTRY.give_back(limits, occupy)


async def _acquire_in_thread(  # noqa: PLR0917
        backend: Backend, names: list[str], occupy: int, timeout_seconds: float | None,
        strict: bool, lease_duration: float) -> Holding:
    acquiring = asyncio.ensure_future(asyncio.to_thread(
        backend.acquire, names, occupy, "concurrency", timeout_seconds, strict,
        lease_duration))
    try:
        return await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        acquiring.add_done_callback(_release_when_acquired)
        raise


def _release_when_acquired(acquiring: asyncio.Future[Holding]) -> None:
    if not acquiring.cancelled() and acquiring.exception() is None:
        threading.Thread(target=acquiring.result().release, daemon=True,
                         name="headwater-concurrency-release").start()


async def rate_limit(names: str | list[str], occupy: int = 1,
                     timeout_seconds: float | None = None, strict: bool = False) -> None:
    """Wait until ``occupy`` decaying slots of every limit in ``names`` are free and take
    them (see :func:`headwater.concurrency.sync.rate_limit`)."""
    wanted = check_request(names, occupy)
    backend = backends.current() if wanted else None
    if backend is not None:
        await asyncio.to_thread(backend.acquire, wanted, occupy, "rate_limit",
                                timeout_seconds, strict, 0)
    elif wanted:
        await acquire_async(wanted, occupy, "rate_limit", timeout_seconds, strict)


__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencySlotAcquisitionError",
    "concurrency",
    "rate_limit",
]
