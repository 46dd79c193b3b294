"""Leader election on a ``coordination.k8s.io/v1`` Lease: one replica does the work.

Why a Lease of our own: the Schedule controller runs as plain asyncio tasks fed by our
own watches, not as kopf daemons, so kopf peering no longer pauses it on standby
replicas. A Lease is how Kubernetes' own controllers (kube-controller-manager, client-go's
``leaderelection``) pick one active replica, and ``kubectl get lease`` shows who holds it.

The protocol, in the Lease's ``spec``:

* ``holderIdentity`` names the leader; ``renewTime`` is when it last proved it is alive,
  and the Lease is *held* until ``renewTime + leaseDurationSeconds``. A Lease without a
  holder (released on shutdown) or past that instant may be taken over by anyone.
* Every write carries the ``resourceVersion`` that was read, so when two standbys take an
  expired Lease at once, the API server accepts one write and answers ``409 Conflict`` to
  the other, which stays standby. Clocks are only compared with the ``renewTime`` that
  a replica reads, never with another replica's clock directly: skew between replicas
  shortens or lengthens the hand-over, it does not allow two holders to both write.
* ``leaseTransitions`` counts hand-overs; ``acquireTime`` is when the holder took it.

The leader renews every ``renew_every`` seconds. If no renewal succeeded within
``lease_seconds`` of the last one (the API server unreachable, say), a standby may
already have taken over, so the leader cancels its work and goes back to standby; it
does the same at once when a renewal finds another holder. On cancellation (operator
shutdown) it cancels the work and releases the Lease, so a standby takes over on its
next attempt instead of waiting for the Lease to expire.

Leadership is a best effort, not a lock: between the Lease expiring and the old leader
noticing, both may briefly act. The scheduler tolerates that because its writes are
idempotent (run names derive from the Schedule and the tick, see DESIGN.md).

The clock and the sleep are injected, so tests drive expiry with a hand-moved clock
instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from headwater_operator import kube

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    kube.KubeError, aiohttp.ClientError, TimeoutError, OSError)
"""What a Lease request may raise that only costs this attempt: error responses (5xx,
429, 403 until RBAC is fixed), connection trouble and timeouts."""

LOST_RACE_ERRORS: tuple[type[kube.KubeError], ...] = (
    kube.Conflict, kube.AlreadyExists, kube.Invalid)
"""Another replica wrote the Lease between our read and our write (409 on a stale
resourceVersion or an existing name; 422 from a failed JSON-patch ``test``)."""

MICRO_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> datetime:
    """The wall clock, in UTC (Lease times are wall-clock instants)."""
    return datetime.now(UTC)


def default_identity() -> str:
    """This replica's name in ``holderIdentity``: its pod name plus a random suffix.

    The pod name comes from ``POD_NAME`` (the chart sets it from the downward API) or
    else the host name, which in a pod is the pod name too; ``kubectl get lease`` then
    shows which pod leads. The suffix keeps a restarted container (same pod name) from
    mistaking the previous process's Lease for its own.
    """
    pod = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{pod}_{secrets.token_hex(4)}"


# --- pure Lease logic -----------------------------------------------------------------
def format_micro_time(moment: datetime) -> str:
    """An RFC 3339 ``MicroTime`` as Kubernetes writes it: ``2026-11-22T04:00:00.000000Z``."""
    return moment.astimezone(UTC).strftime(MICRO_TIME_FORMAT)


def parse_micro_time(text: str) -> datetime:
    """Parse a ``MicroTime`` (or any RFC 3339 instant) into an aware UTC datetime."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease that leader election reads."""

    holder: str
    """``spec.holderIdentity``; empty when nobody holds the Lease."""
    renew_time: datetime | None
    duration_seconds: float
    transitions: int
    acquire_time: str | None
    """``spec.acquireTime`` as stored (kept verbatim when the holder renews)."""
    resource_version: str

    @classmethod
    def from_object(cls, lease: kube.JsonObject) -> LeaseRecord:
        """Read a Lease object; missing or malformed fields count as "not held"."""
        spec: dict[str, Any] = lease.get("spec") or {}
        renew = spec.get("renewTime")
        try:
            renew_time = parse_micro_time(renew) if isinstance(renew, str) else None
        except ValueError:
            renew_time = None
        duration = spec.get("leaseDurationSeconds")
        transitions = spec.get("leaseTransitions")
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            renew_time=renew_time,
            duration_seconds=float(duration) if isinstance(duration, int | float) else 0.0,
            transitions=transitions if isinstance(transitions, int) else 0,
            acquire_time=spec.get("acquireTime"),
            resource_version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
        )

    def expires_at(self) -> datetime | None:
        """When the holder's claim lapses (None: no renewTime, so no claim)."""
        if self.renew_time is None:
            return None
        return self.renew_time + timedelta(seconds=self.duration_seconds)

    def is_held_by_other(self, identity: str, now: datetime) -> bool:
        """True while another replica's claim is current, so ``identity`` must stand by."""
        if not self.holder or self.holder == identity:
            return False
        expires = self.expires_at()
        return expires is not None and now < expires


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


def lease_manifest(namespace: str, name: str, spec: kube.JsonObject) -> kube.JsonObject:
    """A new Lease object."""
    return {"apiVersion": kube.LEASES.api_version, "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def versioned_patch(resource_version: str, spec: kube.JsonObject) -> kube.JsonObject:
    """A merge patch that applies only to ``resource_version`` (409 Conflict otherwise)."""
    return {"metadata": {"resourceVersion": resource_version}, "spec": spec}


# --- the election ---------------------------------------------------------------------
class LeadershipLost(Exception):
    """Raised inside :meth:`LeaderElection.run` when renewals stop proving leadership."""


class LeaderElection:
    """Run some work only while this replica holds the Lease ``namespace/name``.

    ``lease_seconds`` is how long a claim lasts without renewal (what standbys wait for
    after a leader vanishes without releasing), ``renew_every`` how often the leader
    renews (well under ``lease_seconds``, so a few failed renewals are survived), and
    ``retry_every`` how often a standby looks at the Lease.
    """

    def __init__(self, client: kube.Kube, *, namespace: str, name: str, identity: str,
                 lease_seconds: float = 15.0, renew_every: float = 5.0,
                 retry_every: float = 2.0, now: Callable[[], datetime] = utc_now,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if not 0 < renew_every < lease_seconds:
            raise ValueError(
                f"LeaderElection {namespace}/{name}: renew_every ({renew_every}) must be "
                f"positive and below lease_seconds ({lease_seconds}), or the Lease expires "
                "between renewals")
        if retry_every <= 0:
            raise ValueError(f"LeaderElection {namespace}/{name}: retry_every must be "
                             f"positive, not {retry_every}")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_every = renew_every
        self.retry_every = retry_every
        self._now = now
        self._sleep = sleep
        self.is_leader = False
        """True from winning the Lease until work is cancelled (or returns)."""
        self._last_error = ""
        self._may_hold = False  # whether a write of ours may have made us the holder
        self._claimed_at = now()  # the renewTime our latest claim wrote

    def __repr__(self) -> str:
        return f"LeaderElection({self.namespace}/{self.name}, identity={self.identity!r})"

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        """Until cancelled: win the Lease, then run ``work`` while holding it.

        Leadership lost (another holder, or no renewal within ``lease_seconds``) cancels
        ``work`` and goes back to standby. If ``work`` returns or raises, the Lease is
        released and this returns or re-raises. On cancellation, ``work`` is cancelled,
        the Lease released, and ``CancelledError`` re-raised.
        """
        while True:
            try:
                # Inside the try: a cancellation just after winning still releases.
                await self._acquire()
                await self._lead(work)
            except LeadershipLost as lost:
                self._may_hold = False
                logger.warning("%s: lost the Lease %s/%s (%s); work stopped, standing by",
                               self.identity, self.namespace, self.name, lost)
                continue
            except BaseException:
                await self._release()
                raise
            await self._release()
            return

    # --- standby ----------------------------------------------------------------------
    async def _acquire(self) -> None:
        """Return once this replica holds the Lease; try every ``retry_every``."""
        while not await self._try_claim():
            await self._sleep(self.retry_every)
        logger.info("%s: became the leader (Lease %s/%s)", self.identity, self.namespace,
                    self.name)

    async def _try_claim(self) -> bool:
        """One attempt to create, take over or renew the Lease; True if we hold it now.

        Failed requests count as "not now"; a lost race (409/422) likewise.
        """
        now = self._claimed_at = self._now()
        try:
            found = await self.client.get(kube.LEASES, self.name, namespace=self.namespace)
        except kube.NotFound:
            return await self._write(self.client.create(
                kube.LEASES,
                lease_manifest(self.namespace, self.name,
                               claim_spec(None, self.identity, now, self.lease_seconds)),
                namespace=self.namespace))
        except TRANSIENT_ERRORS as exc:
            self._report("reading", exc)
            return False
        record = LeaseRecord.from_object(found)
        if record.is_held_by_other(self.identity, now):
            return False
        return await self._write(self.client.patch(
            kube.LEASES, self.name,
            versioned_patch(record.resource_version,
                            claim_spec(record, self.identity, now, self.lease_seconds)),
            namespace=self.namespace))

    async def _write(self, request: Awaitable[kube.JsonObject]) -> bool:
        """Send a claim or renewal; True if it was applied."""
        # From here the server may have applied it (a lost answer is not a lost write),
        # so shutdown must try to release.
        self._may_hold = True
        try:
            await request
        except LOST_RACE_ERRORS:
            # The server refused it: another replica wrote first (it leads, or retries).
            self._may_hold = self.is_leader
            return False
        except TRANSIENT_ERRORS as exc:
            self._report("writing", exc)
            return False
        self._last_error = ""
        return True

    def _report(self, action: str, exc: BaseException) -> None:
        """Log a failed request: WARNING when the failure is new, DEBUG while it repeats
        (a standby retries every ``retry_every``; one line per outage is enough)."""
        text = f"{type(exc).__name__}: {exc}"
        hint = ""
        if isinstance(exc, kube.KubeError) and exc.status == 403:
            hint = (f"; grant the operator's ServiceAccount get, create, patch and update on "
                    f"coordination.k8s.io leases in namespace {self.namespace} (the Helm "
                    "chart does when replicas > 1)")
        level = logging.DEBUG if text == self._last_error else logging.WARNING
        self._last_error = text
        logger.log(level, "%s: %s the Lease %s/%s failed (%s)%s", self.identity, action,
                   self.namespace, self.name, text, hint)

    # --- leader -----------------------------------------------------------------------
    async def _lead(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` while renewing; return or raise as ``work`` does.

        Raises :class:`LeadershipLost` (after cancelling ``work``) when renewals stop.
        """
        self.is_leader = True
        task = asyncio.ensure_future(work())
        try:
            await self._renew_while(task)
            await task  # its result or its exception
        finally:
            self.is_leader = False
            await _cancel_and_wait(task)

    async def _renew_while(self, task: asyncio.Future[None]) -> None:
        """Renew every ``renew_every`` until ``task`` is done; raise if leadership is lost."""
        # The renewTime of the claim that made us leader: standbys count from there.
        renewed_at = self._claimed_at
        while not task.done():
            ticker = asyncio.ensure_future(self._sleep(self.renew_every))
            try:
                await asyncio.wait({task, ticker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await _cancel_and_wait(ticker)
            if task.done():
                return
            attempted_at = self._now()
            if await self._renew_within(self.renew_every):
                # Standbys count from the renewTime written, i.e. the attempt's start.
                renewed_at = attempted_at
            elif (self._now() - renewed_at).total_seconds() >= self.lease_seconds:
                raise LeadershipLost(
                    f"no renewal succeeded in {self.lease_seconds:g}s")

    async def _renew_within(self, seconds: float) -> bool:
        """:meth:`_renew`, counted as failed if it takes longer than ``seconds``.

        A request hanging on a dead connection must not keep the leader from noticing
        that ``lease_seconds`` have passed since its last renewal.
        """
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that arrives as the inner call finishes, and run() must stop.
        try:
            async with asyncio.timeout(seconds):
                return await self._renew()
        except TimeoutError:
            self._report("renewing", TimeoutError(f"no answer within {seconds:g}s"))
            return False

    async def _renew(self) -> bool:
        """One renewal; False if it failed; :class:`LeadershipLost` if another holds it."""
        now = self._now()
        try:
            found = await self.client.get(kube.LEASES, self.name, namespace=self.namespace)
        except kube.NotFound as exc:
            raise LeadershipLost("the Lease was deleted") from exc
        except TRANSIENT_ERRORS as exc:
            self._report("reading", exc)
            return False
        record = LeaseRecord.from_object(found)
        if record.holder != self.identity:
            raise LeadershipLost(f"{record.holder or 'nobody'} holds it now")
        return await self._write(self.client.patch(
            kube.LEASES, self.name,
            versioned_patch(record.resource_version,
                            claim_spec(record, self.identity, now, self.lease_seconds)),
            namespace=self.namespace))

    # --- release ----------------------------------------------------------------------
    async def _release(self) -> None:
        """Clear ``holderIdentity`` if we still hold the Lease (best effort, logged).

        Runs on shutdown, when a standby should not have to wait out ``lease_seconds``.
        """
        if not self._may_hold:
            return
        try:
            # Bounded: shutdown must not wait a full request timeout for a dead server.
            async with asyncio.timeout(self.renew_every):
                released = await self._clear_holder()
        except TRANSIENT_ERRORS as exc:
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
            versioned_patch(record.resource_version,
                            {"holderIdentity": None,
                             "renewTime": format_micro_time(self._now())}),
            namespace=self.namespace)
        return True


async def _cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it has finished, whatever it ends with.

    ``asyncio.wait`` rather than ``await task``: a cancellation of the caller itself must
    still propagate, while the task's own outcome is only logged.
    """
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.debug("a cancelled task ended with %r", error)
