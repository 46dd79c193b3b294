"""Concurrency and rate limits: ``headwater.concurrency.sync`` and ``.asyncio`` hold
Prefect 3's ``concurrency()`` and ``rate_limit()``; limits are declared with
``HEADWATER_CONCURRENCY_LIMITS`` or :func:`declare_limit` (see
:mod:`headwater.concurrency.limits` and docs/concurrency.md)."""

from headwater.concurrency.limits import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    declare_limit,
    read_limit,
    remove_limit,
)

__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencySlotAcquisitionError",
    "declare_limit",
    "read_limit",
    "remove_limit",
]
