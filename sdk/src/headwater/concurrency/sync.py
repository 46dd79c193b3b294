"""``concurrency()`` and ``rate_limit()`` for synchronous code, as Prefect 3's
``prefect.concurrency.sync``; they block the calling thread while they wait.

Slots are counted in this process unless ``HEADWATER_CONCURRENCY_BACKEND`` selects a
shared backend (:mod:`headwater.concurrency.backends`; ``kubernetes``: Leases). The lease
arguments ``max_retries``, ``holder`` and ``raise_on_lease_renewal_failure`` are accepted
for compatibility and unused; ``lease_duration`` is how long a shared backend's slot
outlives a holder that stopped renewing it (in this process: unused).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from headwater.concurrency import backends
from headwater.concurrency.limits import (
    REGISTRY,
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    acquire_blocking,
    check_request,
)


@contextlib.contextmanager
def concurrency(  # noqa: PLR0917 - Prefect's signature
        names: str | list[str], occupy: int = 1, timeout_seconds: float | None = None,
        max_retries: int | None = None, lease_duration: float = 300, strict: bool = False,
        holder: Any = None, raise_on_lease_renewal_failure: bool | None = None,
) -> Iterator[None]:
    """Hold ``occupy`` slots of every limit in ``names`` while the block runs.

    Waits for them (at most ``timeout_seconds``, then
    :class:`AcquireConcurrencySlotTimeoutError`); a name that is not declared takes no
    slot (``strict=True``: :class:`ConcurrencySlotAcquisitionError`).
    """
    del max_retries, holder, raise_on_lease_renewal_failure
    wanted = check_request(names, occupy)
    backend = backends.current() if wanted else None
    if backend is not None:
        held = backend.acquire(wanted, occupy, "concurrency", timeout_seconds, strict,
                               lease_duration)
        try:
            yield
        finally:
            held.release()
        return
    limits = acquire_blocking(wanted, occupy, "concurrency", timeout_seconds,
                              strict) if wanted else []
    try:
        yield
    finally:
        if limits:
            REGISTRY.give_back(limits, occupy)


def rate_limit(names: str | list[str], occupy: int = 1, timeout_seconds: float | None = None,
               strict: bool = False) -> None:
    """Wait until ``occupy`` slots of every limit in ``names`` are free, and take them;
    they free themselves by decay (every limit needs a ``slot_decay_per_second``)."""
    wanted = check_request(names, occupy)
    backend = backends.current() if wanted else None
    if backend is not None:
        backend.acquire(wanted, occupy, "rate_limit", timeout_seconds, strict, 0)
    elif wanted:
        acquire_blocking(wanted, occupy, "rate_limit", timeout_seconds, strict)


__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencySlotAcquisitionError",
    "concurrency",
    "rate_limit",
]
