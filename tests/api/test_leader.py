"""Lease-based leader election against the emulated API server.

Two or more :class:`LeaderElection` instances compete for one Lease, as operator replicas
would. Time is a hand-moved clock shared by all (wall time for ``renewTime``, monotonic
time for expiry), so expiry happens only when a test moves it; each instance's sleep only
yields briefly while counting its calls, so a test can wait until an instance has looked
at the Lease again after a change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from headwater_dev.emulator import BackgroundEmulator
from headwater_operator import kube as kube_module
from headwater_operator.kubetime import format_micro_time
from headwater_operator.leader import LeaderElection, LeadershipLost, Timing

WaitFor = Callable[..., Awaitable[Any]]

LEASE = "headwater-operator"
START = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
TIMING = Timing(lease_duration=15, renew_deadline=10, retry_period=2)


class Clock:
    """Wall and monotonic time that move only when the test says so."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> datetime:
        return START + timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


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
            with contextlib.suppress(asyncio.CancelledError, LeadershipLost):
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
    """``make(identity, client=None, timing=TIMING)``: a Replica (not started), stopped
    at the end of the test."""
    made: list[Replica] = []

    def make(identity: str, client: kube_module.Kube | None = None,
             timing: Timing = TIMING) -> Replica:
        replica = Replica()
        replica.election = LeaderElection(
            client or kube, namespace=namespace, name=LEASE, identity=identity,
            timing=timing, now=clock, monotonic=clock.monotonic, sleep=replica.sleep)
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


async def test_stopped_leader_releases_and_standby_takes_over_at_once(
        replicas: MakeReplica, wait_for: WaitFor, emulator: BackgroundEmulator,
        namespace: str) -> None:
    a, b = replicas("a"), replicas("b")
    a.start()
    await wait_for(lambda: a.working)
    b.start()
    await b.looked_again(wait_for)

    await a.stop()  # SIGTERM, a rolling update: the clock does not move, the release lets b in
    assert a.cancelled == 1
    assert a.task is not None
    assert a.task.cancelled()
    released = lease_spec(emulator, namespace)
    await wait_for(lambda: b.working)

    assert "holderIdentity" not in released or not released["holderIdentity"]
    spec = lease_spec(emulator, namespace)
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1


async def test_a_leader_cut_off_stops_at_the_renew_deadline_before_a_standby_takes_over(
        replicas: MakeReplica, wait_for: WaitFor, clock: Clock,
        emulator: BackgroundEmulator, namespace: str) -> None:
    flaky = FlakyKube()
    a, b = replicas("a", flaky), replicas("b")
    a.start()
    await wait_for(lambda: a.working)
    b.start()
    await b.looked_again(wait_for)
    flaky.broken = True  # a's renewals now fail

    clock.advance(9.9)
    await a.looked_again(wait_for)
    await b.looked_again(wait_for)
    assert a.working, "a is still within its renew deadline"
    assert b.started == 0

    clock.advance(0.2)  # 10.1 s without a renewal: a gives up and stops its work
    await wait_for(lambda: a.cancelled == 1)
    assert a.task is not None
    await wait_for(a.task.done)
    with pytest.raises(LeadershipLost, match="renew deadline"):
        a.task.result()
    assert not leads(a)
    await b.looked_again(wait_for)
    assert b.started == 0, "the Lease is a's for 15 s after b last saw it change"

    clock.advance(5)  # 15.1 s: b may take over; a stopped 5 s ago
    await wait_for(lambda: b.working)
    assert lease_spec(emulator, namespace)["holderIdentity"] == "b"


async def test_a_standby_counts_from_when_it_saw_the_lease_change_not_from_renew_time(
        replicas: MakeReplica, wait_for: WaitFor, clock: Clock, kube: kube_module.Kube,
        namespace: str) -> None:
    # The holder's renewTime says an hour ago (its clock is behind ours, or it died):
    # a standby that just started cannot know which, so it waits a full lease duration
    # from its own first look, as client-go does. Clock skew never shortens the wait.
    await kube.create(kube_module.LEASES, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": LEASE},
        "spec": {"holderIdentity": "skewed", "leaseDurationSeconds": 15,
                 "renewTime": format_micro_time(START - timedelta(hours=1))},
    }, namespace=namespace)
    b = replicas("b")
    b.start()
    await b.looked_again(wait_for)
    clock.advance(14.9)
    await b.looked_again(wait_for)
    assert b.started == 0
    clock.advance(0.2)
    await wait_for(lambda: b.working)


async def test_a_leader_whose_renewals_hang_still_stops_at_the_renew_deadline(
        replicas: MakeReplica, wait_for: WaitFor, clock: Clock) -> None:
    hanging = HangingKube()
    # Short real durations: a renewal in flight when the clock moves waits at most the
    # deadline left (real seconds) before it counts as failed.
    a = replicas("a", hanging, Timing(lease_duration=1.5, renew_deadline=1.0,
                                      retry_period=0.05))
    a.start()
    await wait_for(lambda: a.working)
    hanging.hanging = True
    clock.advance(1.0)
    await wait_for(lambda: a.cancelled == 1, timeout=5)
    assert not leads(a)


async def test_a_leader_whose_lease_was_taken_stops_its_work(
        replicas: MakeReplica, wait_for: WaitFor, kube: kube_module.Kube, clock: Clock,
        namespace: str) -> None:
    a = replicas("a")
    a.start()
    await wait_for(lambda: a.working)
    # Another replica took over (e.g. a was frozen): the Lease names someone else.
    found = await kube.get(kube_module.LEASES, LEASE, namespace=namespace)
    await kube.patch(kube_module.LEASES, LEASE, {"spec": {"holderIdentity": "c"}},
                     namespace=namespace)
    await wait_for(lambda: a.cancelled == 1)
    assert not a.election.is_leader
    assert a.task is not None
    await wait_for(a.task.done)
    with pytest.raises(LeadershipLost, match="c holds it now"):
        a.task.result()
    assert found["spec"]["holderIdentity"] == "a"
    assert a.started == 1


async def test_concurrent_takeover_of_a_free_lease_has_one_winner(
        replicas: MakeReplica, wait_for: WaitFor, kube: kube_module.Kube,
        emulator: BackgroundEmulator, namespace: str) -> None:
    await kube.create(kube_module.LEASES, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": LEASE},
        "spec": {"leaseDurationSeconds": 1, "leaseTransitions": 3,
                 "renewTime": format_micro_time(START - timedelta(minutes=1))},
    }, namespace=namespace)  # released by a leader that stopped: nobody holds it
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
    spec = lease_spec(emulator, namespace)
    assert "holderIdentity" not in spec
    assert spec["leaseDurationSeconds"] == 1  # a standby that read the old record waits 1 s
