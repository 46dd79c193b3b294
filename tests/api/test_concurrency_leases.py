"""Concurrency and rate limits across pods: ConcurrencyLimit objects and Leases (issue #14).

Against the emulated API server, through the ``kubernetes`` backend the SDK finds by the
entry point operator/pyproject.toml declares (``HEADWATER_CONCURRENCY_BACKEND``): two
holders with their own clients never hold a limit of one at once; a holder that dies
with its slot frees it when the Lease expires; a rate limit lets ``limit`` calls through,
then one per freed slot; an undeclared name warns (or, strict, raises); several names
are taken all or none; and every call is one the Role in docs/concurrency.md grants.
Waits that would depend on the wall clock run on a hand-moved clock instead.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater import contract
from headwater.concurrency import backends
from headwater.concurrency.limits import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
)
from headwater.concurrency.sync import concurrency, rate_limit
from headwater_dev.emulator import BackgroundEmulator
from headwater_operator import kube as k
from headwater_operator.kubetime import parse_time
from headwater_operator.leaselimits import LeaseLimits
from k8s_rbac import Request, Rule, rules_allow, rules_of
from store_plugin import CONCURRENCY_GROUP, registered_entry_point_path

ROOT = Path(__file__).resolve().parents[2]
HW = "headwater.dev/v1alpha1"


def _limit(name: str, limit: int, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": HW, "kind": "ConcurrencyLimit", "metadata": {"name": name},
            "spec": {"limit": limit, **spec}}


@pytest.fixture
def entry_points_dir(tmp_path: Path) -> Path | None:
    """A directory registering the ``kubernetes`` backend as operator/pyproject.toml
    declares it (None: the installed metadata already does)."""
    return registered_entry_point_path(tmp_path / "entry-points", CONCURRENCY_GROUP)


@pytest.fixture
def leases_backend(emulator: BackgroundEmulator, entry_points_dir: Path | None,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``HEADWATER_CONCURRENCY_BACKEND=kubernetes`` in this process."""
    if entry_points_dir is not None:
        monkeypatch.syspath_prepend(str(entry_points_dir))
    monkeypatch.setenv(contract.ENV_CONCURRENCY_BACKEND, "kubernetes")
    monkeypatch.setenv(contract.ENV_NAMESPACE, "default")
    backends.reset()
    yield
    backends.reset()


class HandClock:
    """Wall clock and monotonic clock that move only when a waiter sleeps."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC)
        self.elapsed = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        self.elapsed += seconds


def _hand_clocked(clock: HandClock, identity: str) -> LeaseLimits:
    return LeaseLimits(k.BlockingKube(), "default", identity=identity, now=clock.now,
                       sleep=clock.sleep, monotonic=clock.monotonic)


def _slot_leases(emulator: BackgroundEmulator) -> dict[str, str]:
    """Lease name → holder of every slot Lease in the namespace."""
    return {lease["metadata"]["name"]: lease["spec"].get("holderIdentity", "")
            for lease in emulator.objects("leases", "default")
            if lease["metadata"]["name"].startswith("hw-limit-")}


async def test_two_holders_of_a_limit_of_one_never_hold_it_at_once(
    kube: k.Kube, emulator: BackgroundEmulator, leases_backend: None,
) -> None:
    await kube.create(k.CONCURRENCY_LIMITS, _limit("warehouse", 1), namespace="default")
    intervals: list[tuple[float, float, str]] = []
    errors: list[BaseException] = []
    other = LeaseLimits(k.BlockingKube(), "default", identity="other-pod/r2/x")

    def sdk_holder() -> None:  # through concurrency() and the entry point
        for _ in range(4):
            with concurrency("warehouse", timeout_seconds=60):
                start = time.monotonic()
                time.sleep(0.05)
                intervals.append((start, time.monotonic(), "sdk"))

    def other_holder() -> None:  # another identity with its own client
        for _ in range(4):
            held = other.acquire(["warehouse"], 1, "concurrency", 60, False, 300)
            try:
                start = time.monotonic()
                time.sleep(0.05)
                intervals.append((start, time.monotonic(), "other"))
            finally:
                held.release()

    def run(target: Any) -> None:
        try:
            target()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in (sdk_holder, other_holder)]
    await asyncio.to_thread(lambda: [t.start() for t in threads] and [t.join() for t in threads])
    assert errors == []
    assert sorted(who for *_, who in intervals) == ["other"] * 4 + ["sdk"] * 4
    ordered = sorted(intervals)
    overlaps = [(a, b) for a, b in itertools.pairwise(ordered) if b[0] < a[1]]
    assert overlaps == []
    # Released: the slot's Lease is gone, and it was owned by the ConcurrencyLimit.
    assert _slot_leases(emulator) == {}


CRASHING_HOLDER = """
import os
from headwater.concurrency.sync import concurrency
with concurrency("warehouse", lease_duration=2, strict=True):
    print("holding", flush=True)
    os._exit(3)
"""


async def test_a_crashed_holders_slot_frees_when_its_lease_expires(
    kube: k.Kube, emulator: BackgroundEmulator, leases_backend: None,
    entry_points_dir: Path | None,
) -> None:
    await kube.create(k.CONCURRENCY_LIMITS, _limit("warehouse", 1), namespace="default")
    paths = [str(ROOT / "sdk" / "src"), str(ROOT / "operator" / "src"), str(ROOT / "dev" / "src")]
    if entry_points_dir is not None:
        paths.insert(0, str(entry_points_dir))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    crashed = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", CRASHING_HOLDER],
                                      env=env, capture_output=True, text=True, timeout=120)
    assert (crashed.returncode, crashed.stdout) == (3, "holding\n"), crashed.stderr
    (left,) = emulator.objects("leases", "default")
    assert left["metadata"]["name"] == "hw-limit-warehouse-0"
    assert left["spec"]["leaseDurationSeconds"] == 2
    (owner,) = left["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("ConcurrencyLimit", "warehouse")

    mark = emulator.requests.mark()
    survivor = LeaseLimits(k.BlockingKube(), "default", identity="survivor/r2/y")
    held = await asyncio.to_thread(survivor.acquire, ["warehouse"], 1, "concurrency", 120,
                                   True, 300)
    lease = emulator.object("leases", "hw-limit-warehouse-0")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "survivor/r2/y"
    renewed = parse_time(left["spec"]["renewTime"])
    assert renewed is not None
    # Taken over by an update of the expired Lease, not by deleting it first.
    verbs = [r.verb for r in emulator.requests.since(mark) if r.resource == "leases"]
    assert "update" in verbs
    assert "delete" not in verbs
    await asyncio.to_thread(held.release)
    assert emulator.object("leases", "hw-limit-warehouse-0") is None


async def test_a_rate_limit_lets_its_limit_through_then_waits_for_its_slots_to_expire(
    kube: k.Kube, emulator: BackgroundEmulator,
) -> None:
    await kube.create(k.CONCURRENCY_LIMITS, _limit("github-api", 2, slotDecayPerSecond=1.0),
                      namespace="default")
    clock = HandClock()
    limits = _hand_clocked(clock, "crawler/r1/z")
    passed: list[float] = []
    for _ in range(4):
        await asyncio.to_thread(limits.acquire, ["github-api"], 1, "rate_limit", None,
                                False, 0)
        passed.append(clock.elapsed)
    # A burst of two; the third waits until the slots' Leases (2 s: limit / decay) end,
    # and then both slots are free again for the third and the fourth.
    assert passed[:2] == [0.0, 0.0]
    assert passed[2] >= 2.0
    assert passed[3] == passed[2]
    leases = {lease["metadata"]["name"]: lease["spec"]
              for lease in emulator.objects("leases", "default")}
    assert set(leases) == {"hw-limit-github-api-0", "hw-limit-github-api-1"}
    assert {spec["leaseDurationSeconds"] for spec in leases.values()} == {2}
    assert {spec["holderIdentity"] for spec in leases.values()} == {"crawler/r1/z"}
    # Both slots are fresh again: a fifth call within half a second of that times out.
    with pytest.raises(AcquireConcurrencySlotTimeoutError, match=r"timed out after 0\.5 second"):
        await asyncio.to_thread(limits.acquire, ["github-api"], 1, "rate_limit", 0.5,
                                False, 0)
    # rate_limit never releases: its Leases stay for the next caller to find expired.
    assert len(emulator.objects("leases", "default")) == 2


async def test_an_undeclared_name_warns_and_takes_nothing_or_raises_when_strict(
    kube: k.Kube, emulator: BackgroundEmulator, leases_backend: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="headwater.concurrency")

    def use() -> None:
        with concurrency("nowhere"):
            pass
        rate_limit("nowhere")

    await asyncio.to_thread(use)
    assert [r.getMessage() for r in caplog.records] == [
        "Concurrency limits ['nowhere'] do not exist - skipping acquisition."] * 2
    with pytest.raises(ConcurrencySlotAcquisitionError, match="create a ConcurrencyLimit"):
        await asyncio.to_thread(lambda: concurrency("nowhere", strict=True).__enter__())
    assert emulator.objects("leases", "default") == []


async def test_several_names_are_taken_all_or_none(
    kube: k.Kube, emulator: BackgroundEmulator,
) -> None:
    for name in ("a", "b"):
        await kube.create(k.CONCURRENCY_LIMITS, _limit(name, 1), namespace="default")
    holder = LeaseLimits(k.BlockingKube(), "default", identity="holder/r1/a")
    held_b = await asyncio.to_thread(holder.acquire, ["b"], 1, "concurrency", 10, True, 300)
    clock = HandClock()
    both = _hand_clocked(clock, "both/r2/b")
    with pytest.raises(AcquireConcurrencySlotTimeoutError):
        await asyncio.to_thread(both.acquire, ["b", "a"], 1, "concurrency", 5, True, 300)
    # It took "a" on each try and gave it back: nothing of "a" is held.
    assert _slot_leases(emulator) == {"hw-limit-b-0": "holder/r1/a"}
    await asyncio.to_thread(held_b.release)
    held = await asyncio.to_thread(both.acquire, ["b", "a"], 1, "concurrency", 5, True, 300)
    assert _slot_leases(emulator) == {"hw-limit-a-0": "both/r2/b",
                                      "hw-limit-b-0": "both/r2/b"}
    await asyncio.to_thread(held.release)
    assert _slot_leases(emulator) == {}


def _documented_role() -> list[Rule]:
    """The Role docs/concurrency.md gives the flow-run pods' service account."""
    text = (ROOT / "docs" / "concurrency.md").read_text(encoding="utf-8")
    section = text.split("### RBAC: a Role for the flow-run pods", 1)[1]
    manifest = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (role,) = [doc for doc in yaml.safe_load_all(manifest) if doc["kind"] == "Role"]
    return rules_of(role)


async def test_every_call_of_the_backend_is_granted_by_the_documented_role(
    kube: k.Kube, emulator: BackgroundEmulator, leases_backend: None, wait_for: Any,
) -> None:
    await kube.create(k.CONCURRENCY_LIMITS, _limit("warehouse", 1), namespace="default")
    await kube.create(k.CONCURRENCY_LIMITS, _limit("api", 1, slotDecayPerSecond=1.0),
                      namespace="default")
    mark = emulator.requests.mark()
    entered = threading.Event()
    leave = threading.Event()

    def hold() -> None:  # renewed every third of its 3 s while held
        with concurrency(["warehouse", "missing"], lease_duration=3):
            entered.set()
            leave.wait(60)

    holding = asyncio.create_task(asyncio.to_thread(hold))
    await asyncio.to_thread(entered.wait, 60)
    first = emulator.object("leases", "hw-limit-warehouse-0")
    assert first is not None
    await wait_for(lambda: (emulator.object("leases", "hw-limit-warehouse-0") or first)[
        "spec"]["renewTime"] != first["spec"]["renewTime"], timeout=30)
    leave.set()
    await holding
    await asyncio.to_thread(rate_limit, "api")
    # A second rate_limit finds the slot taken (create 409, get) and, once its 1 s Lease
    # ends, takes it over with an update.
    await asyncio.to_thread(rate_limit, "api", timeout_seconds=60)

    calls = [Request(r.verb, r.group, r.resource, namespace="default")
             for r in emulator.requests.since(mark)]
    assert {call.verb for call in calls} == {"get", "create", "update", "delete"}
    role = _documented_role()
    assert [str(call) for call in calls if not rules_allow(role, call)] == []


async def test_an_async_block_cancelled_while_waiting_leaves_no_slot_taken(
    kube: k.Kube, emulator: BackgroundEmulator, leases_backend: None, wait_for: Any,
) -> None:
    from headwater.concurrency.asyncio import concurrency as async_concurrency

    await kube.create(k.CONCURRENCY_LIMITS, _limit("warehouse", 1), namespace="default")
    other = LeaseLimits(k.BlockingKube(), "default", identity="other-pod/r2/x")
    held = await asyncio.to_thread(other.acquire, ["warehouse"], 1, "concurrency", 10,
                                   True, 300)
    entered: list[str] = []

    async def block() -> None:
        async with async_concurrency("warehouse"):
            entered.append("in")

    waiting = asyncio.create_task(block())
    await wait_for(lambda: any(r.verb == "create" and r.code == 409
                               for r in emulator.requests.since(0)), timeout=30)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # The waiting thread takes the slot once it is free, and gives it back at once.
    mark = emulator.requests.mark()
    await asyncio.to_thread(held.release)
    await wait_for(lambda: any(r.verb == "create" and r.code == 201
                               and r.resource == "leases"
                               for r in emulator.requests.since(mark)), timeout=30)
    await wait_for(lambda: _slot_leases(emulator) == {}, timeout=30)
    assert entered == []
    again = await asyncio.to_thread(other.acquire, ["warehouse"], 1, "concurrency", 30,
                                    True, 300)
    await asyncio.to_thread(again.release)


async def test_a_refused_request_fails_naming_the_role_and_leaves_no_slot_taken(
    kube: k.Kube, emulator: BackgroundEmulator,
) -> None:
    from headwater_dev import faults

    for name in ("a", "b"):
        await kube.create(k.CONCURRENCY_LIMITS, _limit(name, 1), namespace="default")
    holder = LeaseLimits(k.BlockingKube(), "default", identity="holder/r1/a")
    held_b = await asyncio.to_thread(holder.acquire, ["b"], 1, "concurrency", 10, True, 300)
    # Looking at the taken slot of "b" is refused, as for a service account without
    # `get leases` (kubernetes v1.32 authorization: errors.NewForbidden).
    plan = faults.FaultPlan()
    plan.add(faults.StatusAnswer(
        403, "Forbidden",
        'leases.coordination.k8s.io "hw-limit-b-0" is forbidden: User '
        '"system:serviceaccount:default:etl" cannot get resource "leases" in API group '
        '"coordination.k8s.io" in the namespace "default"',
        details={"name": "hw-limit-b-0", "group": "coordination.k8s.io", "kind": "leases"}),
        verb="get", resource="leases", name="hw-limit-b-0")
    emulator.install_faults(plan)
    both = LeaseLimits(k.BlockingKube(), "default", identity="both/r2/b")
    with pytest.raises(ConcurrencySlotAcquisitionError,
                       match=r"cannot get resource \"leases\".*docs/concurrency\.md"):
        await asyncio.to_thread(both.acquire, ["a", "b"], 1, "concurrency", 10, True, 300)
    emulator.remove_faults()
    # The slot of "a" it had taken is given back, not left to expire.
    assert _slot_leases(emulator) == {"hw-limit-b-0": "holder/r1/a"}
    await asyncio.to_thread(held_b.release)
