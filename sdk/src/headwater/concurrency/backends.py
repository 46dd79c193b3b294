"""Where ``concurrency()`` and ``rate_limit()`` count slots: this process, or a backend
plugin shared by several processes.

``HEADWATER_CONCURRENCY_BACKEND`` selects it: unset, empty or ``in-process`` keeps the
slots in this process (:mod:`headwater.concurrency.limits`); any other value
``<plugin>[:<argument>]`` loads the entry point ``<plugin>`` of the group
``headwater.concurrency`` and calls it with the argument. headwater-operator registers
``kubernetes``, whose argument is the namespace (default: ``HEADWATER_NAMESPACE``, then
the kubeconfig's or the pod's); its slots are Leases (docs/concurrency.md).

What it must respect: the SDK never imports a plugin by name (import-linter keeps
``headwater`` free of ``headwater_operator``); a missing plugin is an error that says
which package to install; a backend keeps Prefect's rules (undeclared names warn or,
with ``strict``, raise; all named limits are taken or none; ``timeout_seconds``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from headwater import contract
from headwater.concurrency.limits import ConcurrencySlotAcquisitionError, Mode

IN_PROCESS = "in-process"
"""The setting that keeps slots in this process (the default)."""


class Holding(Protocol):
    """Slots taken by a backend; :meth:`release` gives them back (at most once)."""

    def release(self) -> None:
        """Give the slots back (a rate limit's are never given back: this does nothing)."""


class Backend(Protocol):
    """A place where slots are counted for several processes."""

    def acquire(self, names: list[str], occupy: int, mode: Mode,  # noqa: PLR0917
                timeout_seconds: float | None, strict: bool,
                lease_duration: float) -> Holding:
        """Wait until ``occupy`` slots of every declared limit in ``names`` are taken (all
        or none); raise :class:`~headwater.concurrency.limits.AcquireConcurrencySlotTimeoutError`
        after ``timeout_seconds``. ``mode`` is ``concurrency`` (slots held until released,
        kept alive ``lease_duration`` seconds at a time) or ``rate_limit`` (slots that
        decay)."""
        ...


BackendFactory = Callable[[str | None], Backend]

_cache: dict[tuple[str, str | None], Backend] = {}
_cache_lock = threading.Lock()


def parse_setting(value: str | None) -> tuple[str, str | None]:
    """``(plugin, argument)`` of a ``HEADWATER_CONCURRENCY_BACKEND`` value; ``plugin`` is
    :data:`IN_PROCESS` for the default."""
    setting = (value or "").strip()
    mode, sep, argument = setting.partition(":")
    mode = mode.strip().lower() or (IN_PROCESS if not sep else "")
    if not mode:
        raise ConcurrencySlotAcquisitionError(
            f"{contract.ENV_CONCURRENCY_BACKEND}={setting!r} names no backend before ':': "
            f"use {IN_PROCESS} or kubernetes[:<namespace>]")
    if mode == IN_PROCESS and sep:
        raise ConcurrencySlotAcquisitionError(
            f"{contract.ENV_CONCURRENCY_BACKEND}={setting!r}: '{IN_PROCESS}' takes no "
            "argument")
    return mode, (argument.strip() or None) if sep else None


def current(env: Mapping[str, str] | None = None) -> Backend | None:
    """The backend ``HEADWATER_CONCURRENCY_BACKEND`` selects in ``env`` (default: this
    process's environment); ``None`` for slots in this process. The same setting gives
    the same backend object, so its held slots and renewals are shared."""
    env = os.environ if env is None else env
    mode, argument = parse_setting(env.get(contract.ENV_CONCURRENCY_BACKEND))
    if mode == IN_PROCESS:
        return None
    if mode == "kubernetes" and argument is None:
        argument = env.get(contract.ENV_NAMESPACE) or None
    with _cache_lock:
        backend = _cache.get((mode, argument))
        if backend is None:
            backend = _cache[(mode, argument)] = _plugin(mode)(argument)
    return backend


def _plugin(mode: str) -> BackendFactory:
    from headwater.utilities.plugins import load_plugin

    factory: BackendFactory = load_plugin(
        contract.CONCURRENCY_ENTRY_POINT_GROUP, mode,
        setting=contract.ENV_CONCURRENCY_BACKEND, what="concurrency backend",
        choices=f"{IN_PROCESS} or kubernetes[:<namespace>]",
        error=ConcurrencySlotAcquisitionError)
    return factory


def reset() -> None:
    """Forget the backends built so far (tests; a process that changes its environment)."""
    with _cache_lock:
        _cache.clear()
