"""Named concurrency and rate limits held in this process, and how slots are taken.

A *limit* has a name, a number of slots and an optional ``slot_decay_per_second``. A
``concurrency()`` block holds ``occupy`` slots of every named limit while it runs; a
``rate_limit()`` call takes slots that are never given back but *decay*: a limit of 10
slots decaying at 2 per second lets bursts of 10 through, then 2 per second. This is
Prefect 3's global-concurrency-limit model (its server's ``concurrency_limits_v2``),
kept in memory.

What it must respect (Prefect 3's rules, docs "global concurrency limits"):

* Limits are **declared**, never created by use: in ``HEADWATER_CONCURRENCY_LIMITS`` (a
  JSON object, read on first use; the operator or a Deployment's ``env`` sets it in a
  pod) or with :func:`declare_limit`. Asking for a name that is not declared takes no
  slot and logs a warning (``strict=True``: raises
  :class:`ConcurrencySlotAcquisitionError`), as Prefect does for a limit that does not
  exist. When only some of the names are declared, those are taken.
* All the named limits are taken at once or not at all, so two blocks asking for the
  same limits in different orders never deadlock.
* An inactive limit (``active=False``) never blocks; asking for more slots than a limit
  has, or rate-limiting on a limit without decay, is an error, not a wait forever.
* Limits here hold **within one process** (threads, task runners, async tasks).
  Across pods, ``HEADWATER_CONCURRENCY_BACKEND`` selects a shared backend instead
  (:mod:`headwater.concurrency.backends`; ``kubernetes``: Leases, docs/concurrency.md).

Time goes through :data:`monotonic` so tests move the clock instead of waiting.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

from headwater import contract

Mode = Literal["concurrency", "rate_limit"]

monotonic: Callable[[], float] = time.monotonic
"""The clock slots decay by; tests replace it."""
async_sleep: Callable[[float], Awaitable[None]] | None = None
"""How ``async`` waiters pause (``None``: ``asyncio.sleep``); tests replace it."""
POLL_SECONDS = 0.05
"""How often an ``async`` waiter for a non-decaying limit looks again (a releasing
thread cannot wake an event loop's coroutine through a threading.Condition)."""

_log = logging.getLogger("headwater.concurrency")


class ConcurrencySlotAcquisitionError(Exception):
    """Slots cannot be acquired: undeclared limits with ``strict=True``, more slots than
    a limit has, or a rate limit on a limit without decay."""


class AcquireConcurrencySlotTimeoutError(TimeoutError):
    """The slots were not free within ``timeout_seconds``."""


class Limit:
    """One declared limit and the slots taken from it."""

    __slots__ = ("active", "active_slots", "limit", "name", "slot_decay_per_second",
                 "updated")

    def __init__(self, name: str, limit: int, slot_decay_per_second: float,
                 active: bool) -> None:
        self.name = name
        self.limit = limit
        self.slot_decay_per_second = slot_decay_per_second
        self.active = active
        self.active_slots = 0.0
        self.updated = monotonic()

    def decay(self, now: float) -> None:
        """Give back the slots that decayed since the last look."""
        if self.slot_decay_per_second > 0:
            elapsed = max(0.0, now - self.updated)
            self.active_slots = max(0.0, self.active_slots - self.slot_decay_per_second * elapsed)
        self.updated = now

    def wait_for(self, occupy: int) -> float | None:
        """Seconds until ``occupy`` slots are free by decay alone (``None``: only a
        release frees them)."""
        excess = self.active_slots + occupy - self.limit
        if excess <= 0:
            return 0.0
        if self.slot_decay_per_second > 0:
            return excess / self.slot_decay_per_second
        return None

    def __repr__(self) -> str:
        return (f"Limit(name={self.name!r}, limit={self.limit}, "
                f"slot_decay_per_second={self.slot_decay_per_second}, active={self.active}, "
                f"active_slots={self.active_slots:g})")


def _validated(name: Any, limit: Any, slot_decay_per_second: Any, active: Any,
               where: str) -> Limit:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: a concurrency limit's name must be a non-empty string, "
                         f"got {name!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"{where}: limit {name!r}: 'limit' must be a whole number of slots "
                         f">= 0, got {limit!r}")
    if (isinstance(slot_decay_per_second, bool)
            or not isinstance(slot_decay_per_second, (int, float))
            or not math.isfinite(slot_decay_per_second) or slot_decay_per_second < 0):
        raise ValueError(f"{where}: limit {name!r}: 'slot_decay_per_second' must be a "
                         f"number >= 0 (0: no decay), got {slot_decay_per_second!r}")
    if not isinstance(active, bool):
        raise ValueError(f"{where}: limit {name!r}: 'active' must be true or false, "
                         f"got {active!r}")
    return Limit(name, limit, float(slot_decay_per_second), active)


def parse_declarations(text: str) -> list[Limit]:
    """The limits ``HEADWATER_CONCURRENCY_LIMITS`` declares; errors name the limit, the
    field and the expected form."""
    where = contract.ENV_CONCURRENCY_LIMITS
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{where} is not JSON ({exc}); write an object such as "
                         '{"database": 2, "api": {"limit": 10, "slot_decay_per_second": 1}}'
                         ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a JSON object of limits by name, got "
                         f"{type(data).__name__}")
    limits = []
    for name, spec in data.items():
        if isinstance(spec, dict):
            unknown = set(spec) - {"limit", "slot_decay_per_second", "active"}
            if unknown:
                raise ValueError(f"{where}: limit {name!r} has unknown fields "
                                 f"{sorted(unknown)}; use limit, slot_decay_per_second, active")
            if "limit" not in spec:
                raise ValueError(f"{where}: limit {name!r} needs 'limit' (its slots)")
            limits.append(_validated(name, spec["limit"], spec.get("slot_decay_per_second", 0.0),
                                     spec.get("active", True), where))
        else:
            limits.append(_validated(name, spec, 0.0, True, where))
    return limits


class Registry:
    """The declared limits of this process and the slots taken from them."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self._limits: dict[str, Limit] = {}
        self._env_read = False

    def _load_env(self) -> None:
        if not self._env_read:
            self._env_read = True
            text = os.environ.get(contract.ENV_CONCURRENCY_LIMITS)
            if text:
                for limit in parse_declarations(text):
                    self._limits.setdefault(limit.name, limit)

    def declare(self, name: str, limit: int, slot_decay_per_second: float = 0.0,
                active: bool = True) -> None:
        """Declare (or redeclare: slots taken stay taken) the limit ``name``."""
        new = _validated(name, limit, slot_decay_per_second, active, "declare_limit")
        with self.condition:
            self._load_env()
            old = self._limits.get(name)
            if old is not None:
                old.decay(monotonic())
                new.active_slots = old.active_slots
            self._limits[name] = new
            self.condition.notify_all()

    def remove(self, name: str) -> None:
        """Forget the limit ``name`` (blocks holding its slots release nothing)."""
        with self.condition:
            self._load_env()
            self._limits.pop(name, None)
            self.condition.notify_all()

    def read(self, name: str) -> Limit | None:
        """A snapshot of the limit ``name`` (slots decayed to now), or ``None``."""
        with self.condition:
            self._load_env()
            limit = self._limits.get(name)
            if limit is None:
                return None
            limit.decay(monotonic())
            copy = Limit(limit.name, limit.limit, limit.slot_decay_per_second, limit.active)
            copy.active_slots, copy.updated = limit.active_slots, limit.updated
            return copy

    def clear(self) -> None:
        """Forget every limit and read the environment again on next use (tests)."""
        with self.condition:
            self._limits.clear()
            self._env_read = False
            self.condition.notify_all()

    def resolve(self, names: list[str], occupy: int, mode: Mode,
                strict: bool) -> list[Limit]:
        """The declared limits among ``names`` that take slots (active ones); raises for
        requests that can never be granted. Call with :attr:`condition` held."""
        self._load_env()
        found = [self._limits[n] for n in names if n in self._limits]
        if not found:
            if strict:
                raise ConcurrencySlotAcquisitionError(
                    f"Concurrency limits {names!r} must be declared before acquiring slots: "
                    f"set {contract.ENV_CONCURRENCY_LIMITS} (for example "
                    f"'{{\"{names[0]}\": 2}}') or call "
                    "headwater.concurrency.declare_limit(...)")
            warn(f"Concurrency limits {names!r} do not exist - skipping acquisition.")
            return []
        active = [limit for limit in found if limit.active]
        too_small = [limit.name for limit in active if limit.limit < occupy]
        if too_small:
            raise ConcurrencySlotAcquisitionError(
                f"Unable to acquire concurrency slots on {names!r}: occupy={occupy} is more "
                f"than the slots of {too_small!r}; lower occupy or raise the limit")
        if mode == "rate_limit":
            steady = [limit.name for limit in active if limit.slot_decay_per_second == 0]
            if steady:
                raise ConcurrencySlotAcquisitionError(
                    "Only concurrency limits with slot decay can be used for rate limiting; "
                    f"{steady!r} have none: declare them with a slot_decay_per_second > 0")
        return active

    def try_take(self, limits: list[Limit], occupy: int) -> float | None:
        """Take ``occupy`` slots of every limit if all have them free: ``0.0``; else
        take none and return the seconds until decay may free them (``None``: only a
        release can). Call with :attr:`condition` held."""
        now = monotonic()
        waits: list[float] = []
        blocked_forever = False
        for limit in limits:
            limit.decay(now)
            wait = limit.wait_for(occupy)
            if wait is None:
                blocked_forever = True
            elif wait > 0:
                waits.append(wait)
        if blocked_forever:
            return None
        if waits:
            return max(waits)
        for limit in limits:
            limit.active_slots += occupy
        return 0.0

    def give_back(self, limits: Iterable[Limit], occupy: int) -> None:
        """Release ``occupy`` slots of each limit and wake the waiters."""
        with self.condition:
            now = monotonic()
            for limit in limits:
                limit.decay(now)
                limit.active_slots = max(0.0, limit.active_slots - occupy)
            self.condition.notify_all()


REGISTRY = Registry()
"""This process's limits."""


def warn(message: str) -> None:
    """Log ``message`` to the current run's log (or this module's logger outside a run)."""
    from headwater.context import FLOW_RUN_CONTEXT, TASK_RUN_CONTEXT

    if FLOW_RUN_CONTEXT.get() is not None or TASK_RUN_CONTEXT.get() is not None:
        from headwater.logging import get_run_logger

        get_run_logger().warning("%s", message)
    else:
        _log.warning("%s", message)


def check_request(names: str | list[str] | None, occupy: int) -> list[str]:
    """``names`` as a list (empty: nothing to take); a bad ``occupy`` is an error."""
    if isinstance(occupy, bool) or not isinstance(occupy, int) or occupy < 1:
        raise ValueError(f"occupy must be a whole number of slots >= 1, got {occupy!r}")
    if not names:
        return []
    return [names] if isinstance(names, str) else list(names)


def timeout_error(timeout_seconds: float | None) -> AcquireConcurrencySlotTimeoutError:
    """The error for slots not acquired in time."""
    return AcquireConcurrencySlotTimeoutError(
        f"Attempt to acquire concurrency slots timed out after {timeout_seconds} second(s)")


def acquire_blocking(names: list[str], occupy: int, mode: Mode,
                     timeout_seconds: float | None, strict: bool) -> list[Limit]:
    """Wait (in this thread) until the slots are taken; return the limits taken from."""
    registry = REGISTRY
    deadline = None if timeout_seconds is None else monotonic() + timeout_seconds
    with registry.condition:
        limits = registry.resolve(names, occupy, mode, strict)
        if not limits:
            return limits
        while True:
            wait = registry.try_take(limits, occupy)
            if wait == 0.0:
                return limits
            if deadline is not None:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    raise timeout_error(timeout_seconds)
                wait = remaining if wait is None else min(wait, remaining)
            registry.condition.wait(wait)


async def acquire_async(names: list[str], occupy: int, mode: Mode,
                        timeout_seconds: float | None, strict: bool) -> list[Limit]:
    """Like :func:`acquire_blocking` without blocking the event loop."""
    import asyncio

    registry = REGISTRY
    deadline = None if timeout_seconds is None else monotonic() + timeout_seconds
    while True:
        with registry.condition:
            limits = registry.resolve(names, occupy, mode, strict)
            if not limits:
                return limits
            wait = registry.try_take(limits, occupy)
        if wait == 0.0:
            return limits
        pause = POLL_SECONDS if wait is None else wait
        if deadline is not None:
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise timeout_error(timeout_seconds)
            pause = min(pause, remaining)
        await (async_sleep or asyncio.sleep)(pause)


def declare_limit(name: str, limit: int, slot_decay_per_second: float = 0.0,
                  active: bool = True) -> None:
    """Declare the limit ``name`` with ``limit`` slots in this process (a rate limit
    when ``slot_decay_per_second`` > 0); ``HEADWATER_CONCURRENCY_LIMITS`` does the same
    from the environment."""
    REGISTRY.declare(name, limit, slot_decay_per_second, active)


def remove_limit(name: str) -> None:
    """Forget the limit ``name`` in this process."""
    REGISTRY.remove(name)


def read_limit(name: str) -> Limit | None:
    """The limit ``name`` with its slots in use now, or ``None`` if it is not declared."""
    return REGISTRY.read(name)
