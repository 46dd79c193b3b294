"""``concurrency()`` and ``rate_limit()`` for ``async`` code, as Prefect 3's
``prefect.concurrency.asyncio``; waiting never blocks the event loop.

Slots are shared with :mod:`headwater.concurrency.sync`: one limit counts threads and
coroutines of the process together.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

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
    del max_retries, lease_duration, holder, raise_on_lease_renewal_failure
    wanted = check_request(names, occupy)
    limits = await acquire_async(wanted, occupy, "concurrency", timeout_seconds,
                                 strict) if wanted else []
    try:
        yield
    finally:
        if limits:
            REGISTRY.give_back(limits, occupy)


async def rate_limit(names: str | list[str], occupy: int = 1,
                     timeout_seconds: float | None = None, strict: bool = False) -> None:
    """Wait until ``occupy`` decaying slots of every limit in ``names`` are free and take
    them (see :func:`headwater.concurrency.sync.rate_limit`)."""
    wanted = check_request(names, occupy)
    if wanted:
        await acquire_async(wanted, occupy, "rate_limit", timeout_seconds, strict)


__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencySlotAcquisitionError",
    "concurrency",
    "rate_limit",
]
