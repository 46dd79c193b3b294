"""Leader election on a ``coordination.k8s.io/v1`` Lease: one operator process does the work.

Every controller of the operator runs only in the process that holds the Lease
(:func:`headwater_operator.runner.run_operator` with ``leader_election``); the other
replicas are hot standbys. It is the protocol of client-go's ``tools/leaderelection``
(what kube-controller-manager and controller-runtime use), with its three durations:

* ``lease_duration`` (15 s): how long a standby waits, after it last *saw the Lease
  change*, before it may take it over. Measured on the standby's own monotonic clock,
  never by comparing another process's ``renewTime`` with our wall clock, so clock skew
  between nodes cannot shorten it. The holder's own ``leaseDurationSeconds`` is what
  standbys honour.
* ``renew_deadline`` (10 s): how long the leader keeps trying to renew before it gives
  up. It then stops every controller — before ``lease_duration`` runs out, so that by
  the time a standby may take over, the old leader has stopped writing — and
  :meth:`LeaderElection.run` raises :class:`LeadershipLost`; the operator process exits
  and Kubernetes restarts it as a fresh standby (as controller-runtime does).
* ``retry_period`` (2 s): how often the leader renews and a standby looks.

The Lease's ``spec``: ``holderIdentity`` names the leader (pod name plus a random suffix,
so ``kubectl get lease`` shows the pod), ``renewTime`` its last renewal (``MicroTime``),
``acquireTime`` when it took over, ``leaseTransitions`` how many hand-overs there were.
Every write carries the ``resourceVersion`` that was read, so when two standbys take a
free Lease at once the API server accepts one write and answers ``409 Conflict`` to the
other. A leader that is stopped (SIGTERM, a rolling update) releases the Lease — empty
``holderIdentity``, ``leaseDurationSeconds: 1`` — so a standby takes over on its next
look instead of waiting out the lease.

Leadership is a best effort, not a lock: a leader cut off from the API server for longer
than ``renew_deadline`` stops, but a process frozen (SIGSTOP, a long GC pause) may still
write once it resumes. Headwater's writes are safe under that: run and pod names are
deterministic (``AlreadyExists`` means done) and status writes carry the
``resourceVersion`` they decided from (``409`` means decide again).

Both clocks are injectable (``monotonic`` and ``now``), as is ``sleep``, so tests drive
expiry by hand instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from headwater_operator import kube
from headwater_operator.kubetime import format_micro_time

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    kube.KubeError, aiohttp.ClientError, TimeoutError, OSError)
"""What a Lease request may raise that only costs this attempt: error responses (5xx,
429, 403 until RBAC is fixed), connection trouble and timeouts."""

LOST_RACE_ERRORS: tuple[type[kube.KubeError], ...] = (
    kube.Conflict, kube.AlreadyExists, kube.Invalid)
"""Another replica wrote the Lease between our read and our write (409 on a stale
resourceVersion or an existing name; 422 from a failed JSON-patch ``test``)."""

RELEASE_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, kube.Conflict)
"""What a release may meet: trouble, or a renewal of someone else in between."""

DEFAULT_LEASE_NAME = "headwater-operator"


def utc_now() -> datetime:
    """The wall clock, in UTC (what ``renewTime`` and ``acquireTime`` record)."""
    return datetime.now(UTC)


def default_identity() -> str:
    """This process's name in ``holderIdentity``: its pod name plus a random suffix.

    The pod name comes from ``POD_NAME`` (the chart sets it from the downward API) or
    else the host name, which in a pod is the pod name too; ``kubectl get lease`` then
    shows which pod leads. The suffix keeps a restarted container (same pod name) from
    mistaking the previous process's Lease for its own.
    """
    pod = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{pod}_{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Timing:
    """The three durations of leader election, in seconds (see the module docstring)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        # client-go's NewLeaderElector checks the same (tools/leaderelection/
        # leaderelection.go): the leader must give up before a standby may take over,
        # and must get more than one renewal attempt in before it gives up.
        if not self.lease_duration > self.renew_deadline:
            raise ValueError(
                f"leader election: the lease duration ({self.lease_duration:g}s) must be "
                f"greater than the renew deadline ({self.renew_deadline:g}s), or a standby "
                "could take over while the leader still works; raise the lease duration")
        if not self.renew_deadline > 1.2 * self.retry_period:
            raise ValueError(
                f"leader election: the renew deadline ({self.renew_deadline:g}s) must be "
                f"greater than 1.2 × the retry period ({self.retry_period:g}s), so the "
                "leader gets more than one renewal attempt; shorten the retry period")
        if self.retry_period <= 0:
            raise ValueError(f"leader election: the retry period must be positive, not "
                             f"{self.retry_period:g}s")


# --- pure Lease logic -----------------------------------------------------------------
@dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease that leader election reads."""

    holder: str
    """``spec.holderIdentity``; empty when nobody holds the Lease."""
    renew_time: str
    """``spec.renewTime`` as stored (compared, never parsed for expiry)."""
    duration_seconds: float
    """``spec.leaseDurationSeconds``: how long standbys must wait for this holder."""
    transitions: int
    acquire_time: str | None
    """``spec.acquireTime`` as stored (kept verbatim when the holder renews)."""
    resource_version: str

    @classmethod
    def from_object(cls, lease: kube.JsonObject) -> LeaseRecord:
        """Read a Lease object; missing or malformed fields count as "not held"."""
        spec: dict[str, Any] = lease.get("spec") or {}
        duration = spec.get("leaseDurationSeconds")
        transitions = spec.get("leaseTransitions")
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            renew_time=str(spec.get("renewTime") or ""),
            duration_seconds=float(duration) if isinstance(duration, int | float) else 0.0,
            transitions=transitions if isinstance(transitions, int) else 0,
            acquire_time=spec.get("acquireTime"),
            resource_version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
        )

    @property
    def observed(self) -> tuple[str, str, str]:
        """What must change for a standby to count the holder as alive."""
        return self.holder, self.renew_time, self.resource_version


def claim_spec(record: LeaseRecord | None, identity: str, now: datetime,
               lease_seconds: float) -> kube.JsonObject:
    """The Lease ``spec`` with which ``identity`` takes or renews the Lease at ``now``.

    A renewal keeps ``acquireTime`` and ``leaseTransitions``; a change of holder (a
    takeover, including after a release) stamps ``acquireTime`` and counts a transition.
    """
    stamp = format_micro_time(now)
    spec: kube.JsonObject = {
        "holderIdentity": identity,
        "leaseDurationSeconds": max(1, round(lease_seconds)),
        "renewTime": stamp,
    }
    if record is None:
        return {**spec, "acquireTime": stamp, "leaseTransitions": 0}
    if record.holder == identity:
        return {**spec, "acquireTime": record.acquire_time or stamp,
                "leaseTransitions": record.transitions}
    return {**spec, "acquireTime": stamp, "leaseTransitions": record.transitions + 1}


def release_spec(now: datetime) -> kube.JsonObject:
    """What a stepping-down leader writes: nobody holds it, and it lapses in 1 s (as
    client-go's release: a standby that read the old record waits no longer)."""
    stamp = format_micro_time(now)
    return {"holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": stamp,
            "acquireTime": stamp}


def lease_manifest(namespace: str, name: str, spec: kube.JsonObject) -> kube.JsonObject:
    """A new Lease object."""
    return {"apiVersion": kube.LEASES.api_version, "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def versioned_patch(resource_version: str, spec: kube.JsonObject) -> kube.JsonObject:
    """A merge patch that applies only to ``resource_version`` (409 Conflict otherwise)."""
    return {"metadata": {"resourceVersion": resource_version}, "spec": spec}


# --- the election ---------------------------------------------------------------------
class LeadershipLost(Exception):
    """Raised by :meth:`LeaderElection.run` once the work has been stopped because the
    Lease could not be renewed in time, was taken, or was deleted."""


class LeaderElection:
    """Run some work only while this process holds the Lease ``namespace/name``."""

    def __init__(self, client: kube.Kube, *, namespace: str, name: str, identity: str,
                 timing: Timing = Timing(), now: Callable[[], datetime] = utc_now,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_change: Callable[[bool], None] | None = None) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing
        self._now = now
        self._monotonic = monotonic
        self._sleep = sleep
        self._on_change = on_change
        self.is_leader = False
        """True from winning the Lease until the work has been stopped."""
        self._observed: tuple[str, str, str] | None = None
        self._observed_at = 0.0
        self._observed_duration = 0.0
        self._last_error = ""
        self._may_hold = False  # whether a write of ours may have made us the holder

    def __repr__(self) -> str:
        return f"LeaderElection({self.namespace}/{self.name}, identity={self.identity!r})"

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        """Win the Lease, then run ``work`` while holding it.

        If renewals stop proving leadership, ``work`` is cancelled and waited for, then
        :class:`LeadershipLost` is raised. If ``work`` returns or raises, the Lease is
        released and this returns or re-raises. On cancellation, ``work`` is cancelled,
        the Lease released, and ``CancelledError`` re-raised.
        """
        try:
            # Inside the try: a cancellation just after winning still releases.
            await self._acquire()
            await self._lead(work)
        except LeadershipLost:
            self._may_hold = False
            raise
        finally:
            await self._release()

    # --- standby ----------------------------------------------------------------------
    async def _acquire(self) -> None:
        """Return once this process holds the Lease; look every ``retry_period``."""
        logger.info("%s: standing by for the Lease %s/%s", self.identity, self.namespace,
                    self.name)
        while not await self._try_acquire_or_renew():
            await self._sleep(self.timing.retry_period)
        logger.info("%s: became the leader (Lease %s/%s)", self.identity, self.namespace,
                    self.name)

    def _observe(self, record: LeaseRecord) -> None:
        """Note when the Lease last changed, by our own monotonic clock."""
        if record.observed != self._observed:
            self._observed = record.observed
            self._observed_at = self._monotonic()
            self._observed_duration = record.duration_seconds

    def _held_by_other(self, record: LeaseRecord) -> bool:
        if not record.holder or record.holder == self.identity:
            return False
        return self._monotonic() < self._observed_at + self._observed_duration

    async def _try_acquire_or_renew(self) -> bool:
        """One attempt to create, take over or renew the Lease; True if we hold it now.

        Failed requests count as "not now"; a lost race (409/422) likewise.
        """
        now = self._now()
        try:
            found = await self.client.get(kube.LEASES, self.name, namespace=self.namespace)
        except kube.NotFound:
            if self.is_leader:
                raise LeadershipLost("the Lease was deleted") from None
            return await self._write(self.client.create(
                kube.LEASES,
                lease_manifest(self.namespace, self.name,
                               claim_spec(None, self.identity, now,
                                          self.timing.lease_duration)),
                namespace=self.namespace))
        except TRANSIENT_ERRORS as exc:
            self._report("reading", exc)
            return False
        record = LeaseRecord.from_object(found)
        self._observe(record)
        if self.is_leader and record.holder != self.identity:
            raise LeadershipLost(f"{record.holder or 'nobody'} holds it now")
        if self._held_by_other(record):
            return False
        return await self._write(self.client.patch(
            kube.LEASES, self.name,
            versioned_patch(record.resource_version,
                            claim_spec(record, self.identity, now,
                                       self.timing.lease_duration)),
            namespace=self.namespace))

    async def _write(self, request: Awaitable[kube.JsonObject]) -> bool:
        """Send a claim or renewal; True if it was applied."""
        # From here the server may have applied it (a lost answer is not a lost write),
        # so shutdown must try to release.
        self._may_hold = True
        try:
            written = await request
        except LOST_RACE_ERRORS:
            # The server refused it: another replica wrote first (it leads, or retries).
            self._may_hold = self.is_leader
            return False
        except TRANSIENT_ERRORS as exc:
            self._report("writing", exc)
            return False
        self._observe(LeaseRecord.from_object(written))
        self._last_error = ""
        return True

    def _report(self, action: str, exc: BaseException) -> None:
        """Log a failed request: WARNING when the failure is new, DEBUG while it repeats
        (a standby retries every ``retry_period``; one line per outage is enough)."""
        text = f"{type(exc).__name__}: {exc}"
        hint = ""
        if isinstance(exc, kube.KubeError) and exc.status == 403:
            hint = (f"; grant the operator's ServiceAccount get, create, update and patch "
                    f"on coordination.k8s.io leases in namespace {self.namespace} (the "
                    "Helm chart does)")
        level = logging.DEBUG if text == self._last_error else logging.WARNING
        self._last_error = text
        logger.log(level, "%s: %s the Lease %s/%s failed (%s)%s", self.identity, action,
                   self.namespace, self.name, text, hint)

    # --- leader -----------------------------------------------------------------------
    async def _lead(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` while renewing; return or raise as ``work`` does.

        Raises :class:`LeadershipLost` (after ``work`` has been cancelled and has ended)
        when no renewal succeeded within ``renew_deadline``, or another holds the Lease.
        """
        self._set_leader(True)
        task = asyncio.ensure_future(work())
        try:
            await self._renew_while(task)
            await task  # its result or its exception
        finally:
            # Bounded: a standby may take over lease_duration - renew_deadline after the
            # last renewal; the caller must learn in time that the work did not stop.
            margin = self.timing.lease_duration - self.timing.renew_deadline
            if not await _cancel_and_wait(task, within=margin):
                logger.critical("%s: the work did not stop within %gs of losing the Lease",
                                self.identity, margin)
            self._set_leader(False)

    def _set_leader(self, leading: bool) -> None:
        self.is_leader = leading
        if self._on_change is not None:
            self._on_change(leading)

    async def _renew_while(self, task: asyncio.Future[None]) -> None:
        """Renew every ``retry_period`` until ``task`` is done; raise once leadership is lost."""
        renewed_at = self._monotonic()  # the claim that made us leader just succeeded
        while not task.done():
            ticker = asyncio.ensure_future(self._sleep(self.timing.retry_period))
            try:
                await asyncio.wait({task, ticker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await _cancel_and_wait(ticker)
            if task.done():
                return
            attempted_at = self._monotonic()
            left = renewed_at + self.timing.renew_deadline - attempted_at
            if left > 0 and await self._renew_within(left):
                renewed_at = attempted_at
            elif self._monotonic() - renewed_at >= self.timing.renew_deadline:
                raise LeadershipLost(
                    f"no renewal succeeded within the renew deadline "
                    f"({self.timing.renew_deadline:g}s)")

    async def _renew_within(self, seconds: float) -> bool:
        """One renewal, counted as failed if it takes longer than ``seconds``.

        A request hanging on a dead connection must not keep the leader from noticing
        that its renew deadline has passed.
        """
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that arrives as the inner call finishes, and run() must stop.
        try:
            async with asyncio.timeout(seconds):
                return await self._try_acquire_or_renew()
        except TimeoutError:
            self._report("renewing", TimeoutError(f"no answer within {seconds:g}s"))
            return False

    # --- release ----------------------------------------------------------------------
    async def _release(self) -> None:
        """Give the Lease up if we may hold it (best effort, bounded, logged)."""
        if not self._may_hold:
            return
        try:
            # Bounded: shutdown must not wait a full request timeout for a dead server.
            async with asyncio.timeout(self.timing.retry_period):
                released = await self._clear_holder()
        except RELEASE_ERRORS as exc:
            logger.warning("%s: could not release the Lease %s/%s (%s); a standby takes "
                           "over when it expires", self.identity, self.namespace,
                           self.name, exc)
            return
        self._may_hold = False
        if released:
            logger.info("%s: stepped down, released the Lease %s/%s", self.identity,
                        self.namespace, self.name)

    async def _clear_holder(self) -> bool:
        """Clear ``holderIdentity``, only if we hold it; False if someone else does."""
        found = await self.client.get(kube.LEASES, self.name, namespace=self.namespace)
        record = LeaseRecord.from_object(found)
        if record.holder != self.identity:
            return False
        await self.client.patch(
            kube.LEASES, self.name,
            versioned_patch(record.resource_version, release_spec(self._now())),
            namespace=self.namespace)
        return True


async def _cancel_and_wait(task: asyncio.Future[Any],
                           within: float | None = None) -> bool:
    """Cancel ``task`` and wait until it has finished (at most ``within`` seconds),
    whatever it ends with; False if it had not finished in time.

    ``asyncio.wait`` rather than ``await task``: a cancellation of the caller itself must
    still propagate, while the task's own outcome is only logged.
    """
    if not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=within)
        if not task.done():
            return False
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.debug("a cancelled task ended with %r", error)
    return True
