"""Lease-based leader election against the emulated API server.

Two :class:`LeaderElection` instances compete for one Lease, as two operator replicas
would. Time is a hand-moved clock shared by both (so expiry happens only when a test
moves it), and each instance's sleep only yields briefly while counting its calls, so a
test can wait until an instance has looked at the Lease again after a change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from headwater_operator import kube as kube_module
from headwater_operator.devcluster.emulator import BackgroundEmulator
from headwater_operator.leader import LeaderElection, format_micro_time

WaitFor = Callable[..., Awaitable[Any]]

LEASE = "headwater-scheduler"
START = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


class Clock:
    """A wall clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.moment = START

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@dataclass
class Replica:
    """One competitor: its election, its work's record, and its run task."""

    election: LeaderElection = field(init=False)
    started: int = 0
    cancelled: int = 0
    sleeps: int = 0
    finish: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: BaseException | None = None
    task: asyncio.Task[None] | None = None

    async def work(self) -> None:
        self.started += 1
        try:
            await self.finish.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.outcome is not None:
            raise self.outcome

    async def sleep(self, _seconds: float) -> None:
        self.sleeps += 1
        await asyncio.sleep(0.005)

    @property
    def working(self) -> bool:
        """Inside work() right now."""
        return self.started > self.cancelled and not self.finish.is_set()

    def start(self) -> None:
        self.task = asyncio.create_task(self.election.run(self.work))

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def looked_again(self, wait_for: WaitFor) -> None:
        """Wait until this replica has finished at least one more full attempt."""
        seen = self.sleeps
        await wait_for(lambda: self.sleeps >= seen + 2)


class FlakyKube(kube_module.Kube):
    """A client whose Lease writes fail while ``broken`` (a partitioned replica)."""

    broken = False

    async def patch(self, resource: kube_module.Resource, name: str, patch: Any,
                    **kwargs: Any) -> kube_module.JsonObject:
        if self.broken and resource == kube_module.LEASES:
            raise TimeoutError("the API server did not answer (test)")
        return await super().patch(resource, name, patch, **kwargs)


class HangingKube(kube_module.Kube):
    """A client whose Lease writes never answer while ``hanging`` (a dead connection)."""

    hanging = False

    async def patch(self, resource: kube_module.Resource, name: str, patch: Any,
                    **kwargs: Any) -> kube_module.JsonObject:
        if self.hanging and resource == kube_module.LEASES:
            await asyncio.Event().wait()
        return await super().patch(resource, name, patch, **kwargs)


class GatedKube(kube_module.Kube):
    """A client whose first Lease read waits at ``barrier``: both replicas read one version."""

    def __init__(self, barrier: asyncio.Barrier) -> None:
        super().__init__()
        self.barrier = barrier
        self.reads = 0

    async def get(self, resource: kube_module.Resource, name: str,
                  **kwargs: Any) -> kube_module.JsonObject:
        found = await super().get(resource, name, **kwargs)
        self.reads += 1
        if resource == kube_module.LEASES and self.reads == 1:
            await self.barrier.wait()
        return found


MakeReplica = Callable[..., Replica]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def replicas(kube: kube_module.Kube, namespace: str,
                   clock: Clock) -> AsyncIterator[MakeReplica]:
    """``make(identity, client=None, **options)``: a Replica (not started), stopped at the
    end of the test; ``options`` go to :class:`LeaderElection`."""
    made: list[Replica] = []

    def make(identity: str, client: kube_module.Kube | None = None, **options: Any) -> Replica:
        replica = Replica()
        replica.election = LeaderElection(client or kube, namespace=namespace, name=LEASE,
                                          identity=identity, now=clock, sleep=replica.sleep,
                                          **options)
        made.append(replica)
        return replica

    yield make
    for replica in made:
        await replica.stop()


def leads(replica: Replica) -> bool:
    """Whether the replica's election says it leads (a call, so checks are not narrowed)."""
    return replica.election.is_leader


def lease_spec(emulator: BackgroundEmulator, namespace: str) -> dict[str, Any]:
    found = emulator.object("leases", LEASE, namespace)
    assert found is not None, f"no Lease {namespace}/{LEASE}"
    spec: dict[str, Any] = found["spec"]
    return spec


async def test_exactly_one_replica_works(replicas: MakeReplica, wait_for: WaitFor,
                                         emulator: BackgroundEmulator, namespace: str) -> None:
    a, b = replicas("a"), replicas("b")
    a.start()
    await wait_for(lambda: a.working)
    b.start()
    await b.looked_again(wait_for)
    await b.looked_again(wait_for)

    assert (a.election.is_leader, b.election.is_leader) == (True, False)
    assert b.started == 0
    spec = lease_spec(emulator, namespace)
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["renewTime"] == format_micro_time(START) == "2026-11-22T04:00:00.000000Z"
    assert spec["leaseTransitions"] == 0


async def test_cancelled_leader_releases_and_standby_takes_over_at_once(
        replicas: MakeReplica, wait_for: WaitFor, emulator: BackgroundEmulator,
        namespace: str) -> None:
    a, b = replicas("a"), replicas("b")
    a.start()
    await wait_for(lambda: a.working)
    b.start()
    await b.looked_again(wait_for)

    await a.stop()  # the clock does not move: only the release lets b in
    assert a.cancelled == 1
    assert a.task is not None
    assert a.task.cancelled()
    await wait_for(lambda: b.working)

    spec = lease_spec(emulator, namespace)
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1


async def test_standby_waits_out_the_lease_of_a_silent_leader(
        replicas: MakeReplica, wait_for: WaitFor, clock: Clock,
        emulator: BackgroundEmulator, namespace: str) -> None:
    flaky = FlakyKube()
    a, b = replicas("a", flaky), replicas("b")
    a.start()
    await wait_for(lambda: a.working)
    b.start()
    flaky.broken = True  # a's renewals now fail

    clock.advance(14.9)
    await a.looked_again(wait_for)
    await b.looked_again(wait_for)
    assert a.working, "a is still within lease_seconds of its last renewal"
    assert leads(a)
    assert b.started == 0, "b took a Lease that had not expired"

    clock.advance(0.2)
    await wait_for(lambda: b.working)
    await wait_for(lambda: a.cancelled == 1)
    assert not leads(a)
    assert lease_spec(emulator, namespace)["holderIdentity"] == "b"


async def test_leader_whose_renewals_hang_still_steps_down_after_lease_seconds(
        replicas: MakeReplica, wait_for: WaitFor, clock: Clock) -> None:
    hanging = HangingKube()
    # renew_every also bounds each renewal; small, so the hung requests end quickly.
    a = replicas("a", hanging, renew_every=0.05)
    a.start()
    await wait_for(lambda: a.working)
    hanging.hanging = True
    clock.advance(15)
    await wait_for(lambda: a.cancelled == 1)
    assert not leads(a)


async def test_leader_whose_lease_was_taken_cancels_its_work(
        replicas: MakeReplica, wait_for: WaitFor, kube: kube_module.Kube, clock: Clock,
        namespace: str) -> None:
    a = replicas("a")
    a.start()
    await wait_for(lambda: a.working)
    # Another replica took over (e.g. a's clock stalled): the Lease names someone else.
    found = await kube.get(kube_module.LEASES, LEASE, namespace=namespace)
    await kube.patch(kube_module.LEASES, LEASE, {"spec": {"holderIdentity": "c"}},
                     namespace=namespace)
    clock.advance(5)
    await wait_for(lambda: a.cancelled == 1)
    assert not a.election.is_leader
    await a.looked_again(wait_for)
    assert a.started == 1, "a must stand by while c's claim is current"
    assert found["spec"]["holderIdentity"] == "a"


async def test_concurrent_takeover_of_an_expired_lease_has_one_winner(
        replicas: MakeReplica, wait_for: WaitFor, kube: kube_module.Kube,
        emulator: BackgroundEmulator, namespace: str) -> None:
    await kube.create(kube_module.LEASES, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": LEASE},
        "spec": {"holderIdentity": "gone", "leaseDurationSeconds": 15, "leaseTransitions": 3,
                 "renewTime": format_micro_time(START - timedelta(minutes=1))},
    }, namespace=namespace)
    barrier = asyncio.Barrier(2)
    a = replicas("a", GatedKube(barrier))
    b = replicas("b", GatedKube(barrier))
    a.start()
    b.start()
    await wait_for(lambda: a.working or b.working)
    loser = b if a.working else a
    await loser.looked_again(wait_for)

    assert loser.started == 0
    assert [a.election.is_leader, b.election.is_leader].count(True) == 1
    spec = lease_spec(emulator, namespace)
    assert spec["holderIdentity"] == ("a" if a.working else "b")
    assert spec["leaseTransitions"] == 4
    assert emulator.requests.count(verb="patch", resource="leases", code=409) >= 1


@pytest.mark.parametrize("outcome", [None, RuntimeError("controller crashed")],
                         ids=["returns", "raises"])
async def test_work_that_ends_releases_the_lease_and_reports_how_it_ended(
        outcome: Exception | None, replicas: MakeReplica, wait_for: WaitFor,
        emulator: BackgroundEmulator, namespace: str) -> None:
    a = replicas("a")
    a.start()
    await wait_for(lambda: a.working)
    a.outcome = outcome
    a.finish.set()
    assert a.task is not None
    if outcome is None:
        await a.task
    else:
        with pytest.raises(RuntimeError, match="controller crashed"):
            await a.task
    assert "holderIdentity" not in lease_spec(emulator, namespace)

