"""The ``kubernetes`` concurrency backend: limits shared by pods, one Lease per slot.

The SDK's ``HEADWATER_CONCURRENCY_BACKEND=kubernetes[:<namespace>]`` loads
:func:`backend` through the entry-point group ``headwater.concurrency`` (registered in
operator/pyproject.toml), so ``concurrency()`` and ``rate_limit()`` count slots across
every pod of a namespace (docs/concurrency.md):

* a ``ConcurrencyLimit`` object declares limit ``<name>`` (``spec.limit`` slots,
  ``spec.slotDecayPerSecond``, ``spec.active``); a name without one is undeclared, as
  in-process (a warning, or with ``strict`` an error);
* slot ``i`` is the ``coordination.k8s.io/v1`` Lease ``hw-limit-<name>-<i>``, owned by
  the ConcurrencyLimit. Creating it takes the slot (409: taken); an expired one
  (``renewTime + leaseDurationSeconds`` in the past) is taken by a PUT carrying the
  ``resourceVersion`` read, so of two racing pods one wins and one gets 409;
* held Leases are renewed by a daemon thread every third of their duration and released
  by a DELETE with a ``resourceVersion`` precondition (one taken over meanwhile stays);
* several names or ``occupy`` > 1: the Leases are taken in a fixed order (name, slot);
  if one cannot be, those taken are released and the caller backs off with jitter;
* a ``rate_limit`` slot is a Lease that is never renewed or released, lasting
  ``ceil(limit / slotDecayPerSecond)`` seconds.

What it must respect: every request goes through the one client stack
(:class:`kube.BlockingKube`), and only the calls the Role in docs/concurrency.md grants
(``get`` ConcurrencyLimits; ``get``, ``create``, ``update``, ``delete`` Leases). Expiry
compares the Lease's ``renewTime`` with this host's clock, so the pods' clocks must
agree to well within a lease duration (NTP). The decisions (what to take, when a Lease
is expired, how long to back off) are pure functions next to their unit tests.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from headwater import contract
from headwater.concurrency.limits import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    Mode,
    warn,
)

from headwater_operator import kube
from headwater_operator.api import API_VERSION, ConcurrencyLimit
from headwater_operator.kubetime import format_micro_time, parse_time

LEASE_PREFIX: Final = "hw-limit-"
LIMIT_LABEL: Final = f"{contract.GROUP}/concurrency-limit"
"""The label on a slot's Lease: the limit's name."""
FIRST_BACKOFF_SECONDS: Final = 0.05
MAX_BACKOFF_SECONDS: Final = 2.0
"""Waiting for a slot: the pause after the first failed try, doubling up to this."""

_log = logging.getLogger(__name__)


def lease_name(limit: str, slot: int) -> str:
    """The Lease of slot ``slot`` of limit ``limit``: ``hw-limit-<limit>-<slot>``."""
    return f"{LEASE_PREFIX}{limit}-{slot}"


def lease_seconds(mode: Mode, lease_duration: float, limit: int,
                  slot_decay_per_second: float) -> int:
    """``leaseDurationSeconds`` of a slot: a ``rate_limit`` slot lasts ``limit / decay``
    (so ``limit`` slots give ``decay`` acquisitions a second), a ``concurrency`` slot
    ``lease_duration``; whole seconds (the field is an integer), at least one."""
    if mode == "rate_limit":
        return max(1, math.ceil(limit / slot_decay_per_second))
    return max(1, math.ceil(lease_duration))


def is_expired(lease: Mapping[str, Any], now: datetime) -> bool:
    """Whether a Lease no longer holds its slot: no holder, or ``renewTime`` (else
    ``acquireTime``) plus ``leaseDurationSeconds`` is not after ``now``."""
    spec = lease.get("spec") or {}
    if not spec.get("holderIdentity"):
        return True
    try:
        renewed = parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    except ValueError:
        return True
    duration = spec.get("leaseDurationSeconds")
    if renewed is None or not isinstance(duration, int):
        return True
    return renewed + timedelta(seconds=duration) <= now


def backoff_seconds(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """The pause after failed try ``attempt`` (0, 1, …): doubling from
    :data:`FIRST_BACKOFF_SECONDS` up to :data:`MAX_BACKOFF_SECONDS`, times a jitter in
    [0.5, 1.5) so pods that collided do not collide again in step."""
    base = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** min(attempt, 32))
    return float(base * (0.5 + rand()))


def holder_identity(env: Mapping[str, str]) -> str:
    """``<pod>/<flow-run>/<random>``: who holds a Lease, readable in ``kubectl get
    lease -o yaml`` and unique to this process."""
    pod = env.get("HOSTNAME") or socket.gethostname()
    run = env.get(contract.ENV_FLOW_RUN_NAME) or "-"
    return f"{pod}/{run}/{secrets.token_hex(4)}"


def lease_body(limit: ConcurrencyLimit, slot: int, *, holder: str, seconds: int,
               now: datetime, namespace: str) -> dict[str, Any]:
    """The Lease that holds slot ``slot`` of ``limit`` for ``holder``, owned by the
    ConcurrencyLimit so that deleting it deletes its Leases."""
    name = limit.metadata.name or ""
    stamp = format_micro_time(now)
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {
            "name": lease_name(name, slot), "namespace": namespace,
            "labels": {LIMIT_LABEL: name},
            # Not controller-bound to finalizers (blockOwnerDeletion false): creating it
            # needs no `update concurrencylimits/finalizers` where the
            # OwnerReferencesPermissionEnforcement admission plugin runs.
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": "ConcurrencyLimit",
                                 "name": name, "uid": limit.metadata.uid,
                                 "controller": True, "blockOwnerDeletion": False}]},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds,
                 "acquireTime": stamp, "renewTime": stamp},
    }


@dataclass
class _Lease:
    """A Lease this process holds."""

    @property
    def name(self) -> str:
        """The Lease's name."""
        name: str = self.body["metadata"]["name"]
        return name

    body: dict[str, Any]
    """The Lease as last written (a renewal PUTs it back with a new ``renewTime``)."""
    seconds: int
    renew: bool
    """False for a rate-limit slot: it is left to expire."""
    next_renewal: float = 0.0
    """When the renewer sends it again (``time.monotonic``)."""


@dataclass
class LeaseHolding:
    """The Leases of one ``concurrency()`` block or ``rate_limit()`` call."""

    backend: LeaseLimits
    leases: list[_Lease] = field(default_factory=list)

    def release(self) -> None:
        """Delete the held Leases (a ``rate_limit``'s are left to expire)."""
        leases, self.leases = self.leases, []
        self.backend.give_back([lease for lease in leases if lease.renew])


class LeaseLimits:
    """Limits declared by ConcurrencyLimit objects, slots held as Leases (see the
    module)."""

    def __init__(self, client: kube.BlockingKube, namespace: str, *,
                 identity: str | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.namespace = namespace
        self.identity = identity or holder_identity(os.environ)
        self.now = now
        self.sleep = sleep
        self.monotonic = monotonic
        """``now`` stamps and judges Leases; ``sleep`` and ``monotonic`` pace and bound a
        wait for slots (tests move them together instead of waiting)."""
        self._held: dict[str, _Lease] = {}
        self._lock = threading.Condition()
        self._renewer: threading.Thread | None = None

    # --- requests ------------------------------------------------------------------------
    def _call(self, what: str, request: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``request(*args, namespace=…)``; NotFound, AlreadyExists and Conflict pass
        through, other failures become a :class:`ConcurrencySlotAcquisitionError`."""
        import aiohttp

        try:
            return request(*args, namespace=self.namespace, **kwargs)
        except (kube.NotFound, kube.AlreadyExists, kube.Conflict):
            raise
        except kube.KubeError as exc:
            if exc.status == 403:
                raise ConcurrencySlotAcquisitionError(
                    f"{what}: the Kubernetes API server refused it ({exc.message}); the "
                    f"identity in use needs the Role of docs/concurrency.md in namespace "
                    f"{self.namespace} (get concurrencylimits; get, create, update, delete "
                    "leases), bound to the Deployment's runTemplate.serviceAccountName"
                ) from None
            raise ConcurrencySlotAcquisitionError(
                f"{what}: the Kubernetes API server refused it ({exc.status} {exc.reason}): "
                f"{exc.message}") from None
        except (OSError, aiohttp.ClientError) as exc:
            raise ConcurrencySlotAcquisitionError(
                f"{what}: cannot reach the Kubernetes API server "
                f"({exc or type(exc).__name__}); check $KUBECONFIG") from None

    def _limit(self, name: str) -> ConcurrencyLimit | None:
        try:
            body = self._call(f"reading concurrency limit {name!r}", self.client.get,
                              kube.CONCURRENCY_LIMITS, name)
        except kube.NotFound:
            return None
        try:
            return ConcurrencyLimit.model_validate(body)
        except ValueError as exc:
            raise ConcurrencySlotAcquisitionError(
                f"ConcurrencyLimit {self.namespace}/{name} is invalid ({exc}); fix it "
                "with kubectl edit concurrencylimit") from None

    # --- acquiring -----------------------------------------------------------------------
    def resolve(self, names: list[str], occupy: int, mode: Mode,
                strict: bool) -> list[ConcurrencyLimit]:
        """The active ConcurrencyLimits among ``names``, in the order slots are taken;
        raises for a request that can never be granted, as in-process."""
        found = [limit for limit in (self._limit(n) for n in sorted(set(names)))
                 if limit is not None]
        if not found:
            if strict:
                raise ConcurrencySlotAcquisitionError(
                    f"Concurrency limits {names!r} must be declared before acquiring slots: "
                    f"create a ConcurrencyLimit named {names[0]!r} in namespace "
                    f"{self.namespace} (kubectl apply, docs/concurrency.md)")
            warn(f"Concurrency limits {names!r} do not exist - skipping acquisition.")
            return []
        active = [limit for limit in found if limit.spec.active]
        too_small = [limit.metadata.name for limit in active if limit.spec.limit < occupy]
        if too_small:
            raise ConcurrencySlotAcquisitionError(
                f"Unable to acquire concurrency slots on {names!r}: occupy={occupy} is more "
                f"than the slots of {too_small!r}; lower occupy or raise spec.limit")
        if mode == "rate_limit":
            steady = [lim.metadata.name for lim in active if lim.spec.slot_decay_per_second == 0]
            if steady:
                raise ConcurrencySlotAcquisitionError(
                    "Only concurrency limits with slot decay can be used for rate limiting; "
                    f"{steady!r} have none: set spec.slotDecayPerSecond > 0")
        return active

    def acquire(self, names: list[str], occupy: int, mode: Mode,  # noqa: PLR0917
                timeout_seconds: float | None, strict: bool,
                lease_duration: float) -> LeaseHolding:
        """Wait until ``occupy`` slots of every declared limit in ``names`` are held (all
        or none), at most ``timeout_seconds``."""
        deadline = None if timeout_seconds is None else self.monotonic() + timeout_seconds
        attempt = 0
        while True:
            limits = self.resolve(names, occupy, mode, strict)
            holding = LeaseHolding(self)
            if not limits or self._take_all(limits, occupy, mode, lease_duration, holding):
                return holding
            pause = backoff_seconds(attempt)
            attempt += 1
            if deadline is not None:
                remaining = deadline - self.monotonic()
                if remaining <= 0:
                    raise AcquireConcurrencySlotTimeoutError(
                        f"Attempt to acquire concurrency slots timed out after "
                        f"{timeout_seconds} second(s)")
                pause = min(pause, remaining)
            self.sleep(pause)

    def _take_all(self, limits: list[ConcurrencyLimit], occupy: int, mode: Mode,
                  lease_duration: float, holding: LeaseHolding) -> bool:
        """Take ``occupy`` slots of every limit, in order; on the first that lacks them,
        release what was taken and return False."""
        try:
            for limit in limits:
                if self._take_limit(limit, occupy, mode, lease_duration, holding) < occupy:
                    # All or nothing: rate-limit slots taken so far go back too.
                    leases, holding.leases = holding.leases, []
                    self.give_back(leases)
                    return False
        except BaseException:
            # A refused request or an interrupt: nothing stays taken that nobody renews.
            leases, holding.leases = holding.leases, []
            with contextlib.suppress(Exception):
                self.give_back(leases)
            raise
        self._hold(holding.leases)
        return True

    def _take_limit(self, limit: ConcurrencyLimit, occupy: int, mode: Mode,
                    lease_duration: float, holding: LeaseHolding) -> int:
        """Take up to ``occupy`` free slots of ``limit`` into ``holding``; how many."""
        seconds = lease_seconds(mode, lease_duration, limit.spec.limit,
                                limit.spec.slot_decay_per_second)
        taken = 0
        for slot in range(limit.spec.limit):
            if taken == occupy:
                break
            lease = self._take(limit, slot, seconds, renew=mode == "concurrency")
            if lease is not None:
                holding.leases.append(lease)
                taken += 1
        return taken

    def _take(self, limit: ConcurrencyLimit, slot: int, seconds: int,
              renew: bool) -> _Lease | None:
        """Create the slot's Lease, or take it over if it expired; None if it is held."""
        name = limit.metadata.name or ""
        body = lease_body(limit, slot, holder=self.identity, seconds=seconds, now=self.now(),
                          namespace=self.namespace)
        what = f"taking a slot of concurrency limit {name!r}"
        try:
            created = self._call(what, self.client.create, kube.LEASES, body)
        except kube.AlreadyExists:
            try:
                current = self._call(what, self.client.get, kube.LEASES, body["metadata"]["name"])
            except kube.NotFound:
                return None  # released meanwhile: the next try creates it
            if not is_expired(current, self.now()):
                return None
            # Take it over; the resourceVersion read is the precondition, so of two pods
            # that saw it expire one PUT succeeds and the other gets 409 Conflict.
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                created = self._call(what, self.client.replace, kube.LEASES, body)
            except (kube.Conflict, kube.NotFound):
                return None
        return _Lease(created, seconds, renew)

    # --- holding and releasing -----------------------------------------------------------
    def _hold(self, leases: list[_Lease]) -> None:
        renewed = [lease for lease in leases if lease.renew]
        if not renewed:
            return
        with self._lock:
            for lease in renewed:
                lease.next_renewal = time.monotonic() + lease.seconds / 3
                self._held[lease.name] = lease
            if self._renewer is None or not self._renewer.is_alive():
                self._renewer = threading.Thread(target=self._renew_forever, daemon=True,
                                                 name="headwater-lease-renewer")
                self._renewer.start()
            self._lock.notify_all()

    def give_back(self, leases: list[_Lease]) -> None:
        """Delete ``leases``, each only if it is still the version this process wrote."""
        for lease in leases:
            with self._lock:
                self._held.pop(lease.name, None)
                version = lease.body["metadata"]["resourceVersion"]
            # NotFound, Conflict: it expired and another holder took it; not ours to delete.
            with contextlib.suppress(kube.NotFound, kube.Conflict):
                self._call(f"releasing Lease {lease.name}", self.client.delete, kube.LEASES,
                           lease.name, resource_version=version)

    def _renew_forever(self) -> None:
        while True:
            with self._lock:
                due = [lease for lease in self._held.values()
                       if lease.next_renewal <= time.monotonic()]
                if not due:
                    soonest = min((lease.next_renewal for lease in self._held.values()),
                                  default=None)
                    self._lock.wait(None if soonest is None else soonest - time.monotonic())
                    continue
                for lease in due:
                    self._renew(lease)

    def _renew(self, lease: _Lease) -> None:
        """PUT a new ``renewTime`` with the version held (called with the lock held, so a
        release deletes the version this wrote)."""
        lease.next_renewal = time.monotonic() + lease.seconds / 3
        body = {**lease.body, "spec": {**lease.body["spec"],
                                       "renewTime": format_micro_time(self.now())}}
        try:
            # The body carries the resourceVersion last written: 409 if anyone else wrote.
            lease.body = self.client.replace(kube.LEASES, body, namespace=self.namespace)
        except (kube.NotFound, kube.Conflict):
            self._held.pop(lease.name, None)
            _log.warning("lost the slot Lease %s/%s (it expired and another holder took "
                         "it, or it was deleted); the block holding it keeps running",
                         self.namespace, lease.name)
        except Exception as exc:  # keep renewing: the next renewal retries
            _log.warning("renewing the slot Lease %s/%s failed (%s); retrying",
                         self.namespace, lease.name, exc)


def backend(argument: str | None) -> LeaseLimits:
    """The entry point (``headwater.concurrency``, name ``kubernetes``): limits of
    namespace ``argument``, else the kubeconfig context's (or the pod's), else
    ``default``."""
    from headwater_operator.cli.common import resolve_namespace

    namespace = argument or resolve_namespace(argparse.Namespace())
    return LeaseLimits(kube.get_blocking_client(), namespace)
