"""The pure parts of leader election: what a Lease record says, what a claim, a renewal and
a release write, and which timings are refused (the election itself runs against the
emulator in ``tests/api/test_leader.py``)."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from headwater_operator import kube
from headwater_operator.leader import (
    LeaderElection,
    LeaseRecord,
    Timing,
    claim_spec,
    default_identity,
    lease_manifest,
    release_spec,
    versioned_patch,
)

NOW = datetime(2026, 11, 22, 4, 0, 0, 123456, tzinfo=UTC)
ACQUIRED = "2026-11-22T03:00:00.000000Z"


def _record(holder: str = "a", *, transitions: int = 2, acquired: str | None = ACQUIRED,
            renewed: str = "2026-11-22T03:59:58.000000Z", version: str = "42") -> LeaseRecord:
    spec: kube.JsonObject = {"holderIdentity": holder, "leaseDurationSeconds": 15,
                             "leaseTransitions": transitions, "renewTime": renewed}
    if acquired is not None:
        spec["acquireTime"] = acquired
    return LeaseRecord.from_object({"metadata": {"resourceVersion": version}, "spec": spec})


# --- reading a Lease ---------------------------------------------------------------------
def test_a_lease_is_read_with_its_fields_as_stored() -> None:
    record = _record()
    assert record == LeaseRecord(holder="a", renew_time="2026-11-22T03:59:58.000000Z",
                                 duration_seconds=15.0, transitions=2,
                                 acquire_time=ACQUIRED, resource_version="42")


def test_malformed_or_missing_fields_read_as_not_held() -> None:
    record = LeaseRecord.from_object({"spec": {"holderIdentity": None,
                                               "leaseDurationSeconds": "15",
                                               "leaseTransitions": None}})
    assert record == LeaseRecord(holder="", renew_time="", duration_seconds=0.0,
                                 transitions=0, acquire_time=None, resource_version="")
    assert LeaseRecord.from_object({}).holder == ""


def test_a_renewal_or_any_write_changes_what_a_standby_observes() -> None:
    # A standby restarts its lease-duration wait whenever this tuple changes: a renewal
    # (renewTime), a new holder, or any other write (resourceVersion).
    base = _record()
    assert base.observed == ("a", "2026-11-22T03:59:58.000000Z", "42")
    assert _record(renewed="2026-11-22T04:00:00.000000Z").observed != base.observed
    assert _record(holder="b").observed != base.observed
    assert _record(version="43").observed != base.observed
    assert _record(transitions=3).observed == base.observed  # same holder, renewal, write


# --- what is written ---------------------------------------------------------------------
def test_the_first_claim_creates_the_record() -> None:
    assert claim_spec(None, "a", NOW, 15.0) == {
        "holderIdentity": "a", "leaseDurationSeconds": 15,
        "acquireTime": "2026-11-22T04:00:00.123456Z",
        "renewTime": "2026-11-22T04:00:00.123456Z", "leaseTransitions": 0,
    }


def test_a_renewal_keeps_acquire_time_and_transitions() -> None:
    spec = claim_spec(_record(holder="a"), "a", NOW + timedelta(seconds=5), 15.0)
    assert spec == {"holderIdentity": "a", "leaseDurationSeconds": 15,
                    "renewTime": "2026-11-22T04:00:05.123456Z",
                    "acquireTime": ACQUIRED, "leaseTransitions": 2}


def test_a_renewal_of_a_record_without_acquire_time_stamps_it() -> None:
    spec = claim_spec(_record(holder="a", acquired=None), "a", NOW, 15.0)
    assert spec["acquireTime"] == "2026-11-22T04:00:00.123456Z"
    assert spec["leaseTransitions"] == 2


@pytest.mark.parametrize("previous", ["a", ""])
def test_a_takeover_counts_a_transition_and_restamps_acquire_time(previous: str) -> None:
    spec = claim_spec(_record(holder=previous), "b", NOW, 15.0)
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 3
    assert spec["acquireTime"] == spec["renewTime"] == "2026-11-22T04:00:00.123456Z"


def test_the_lease_duration_is_a_whole_number_of_seconds_at_least_one() -> None:
    # leaseDurationSeconds is an int32 in coordination/v1.
    assert claim_spec(None, "a", NOW, 0.2)["leaseDurationSeconds"] == 1
    assert claim_spec(None, "a", NOW, 14.6)["leaseDurationSeconds"] == 15


def test_a_release_frees_the_lease_for_the_next_look_and_keeps_the_transitions() -> None:
    released = release_spec(NOW)
    assert released == {"holderIdentity": None, "leaseDurationSeconds": 1,
                        "renewTime": "2026-11-22T04:00:00.123456Z",
                        "acquireTime": "2026-11-22T04:00:00.123456Z"}
    # Sent as a merge patch: null removes holderIdentity, leaseTransitions stays as stored.
    stored: kube.JsonObject = {"holderIdentity": "a", "leaseDurationSeconds": 15,
                               "leaseTransitions": 2, "acquireTime": ACQUIRED,
                               "renewTime": "2026-11-22T03:59:58.000000Z"}
    after = {k: v for k, v in {**stored, **released}.items() if v is not None}
    record = LeaseRecord.from_object({"metadata": {"resourceVersion": "43"}, "spec": after})
    assert (record.holder, record.duration_seconds, record.transitions) == ("", 1.0, 2)
    # Whoever takes it next, the releasing replica included, counts a hand-over.
    assert claim_spec(record, "a", NOW, 15.0)["leaseTransitions"] == 3
    assert claim_spec(record, "b", NOW, 15.0)["leaseTransitions"] == 3


def test_writes_carry_the_read_resource_version() -> None:
    patch = versioned_patch("42", {"holderIdentity": "a"})
    assert patch == {"metadata": {"resourceVersion": "42"}, "spec": {"holderIdentity": "a"}}
    assert lease_manifest("ns", "l", {"holderIdentity": "a"}) == {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l", "namespace": "ns"}, "spec": {"holderIdentity": "a"}}


# --- timing ------------------------------------------------------------------------------
def test_the_default_timing_is_client_gos() -> None:
    # kube-controller-manager's defaults: --leader-elect-lease-duration=15s,
    # --leader-elect-renew-deadline=10s, --leader-elect-retry-period=2s.
    assert Timing() == Timing(lease_duration=15.0, renew_deadline=10.0, retry_period=2.0)


@pytest.mark.parametrize(("timing", "message"), [
    ((15, 15, 2), "leader election: the lease duration (15s) must be greater than the "
                  "renew deadline (15s), or a standby could take over while the leader "
                  "still works; raise the lease duration"),
    ((10, 12, 2), "leader election: the lease duration (10s) must be greater than the "
                  "renew deadline (12s)"),
    ((15, 2.4, 2), "leader election: the renew deadline (2.4s) must be greater than "
                   "1.2 × the retry period (2s), so the leader gets more than one renewal "
                   "attempt; shorten the retry period"),
    ((15, 0, 2), "leader election: the renew deadline (0s) must be greater than 1.2 × the "
                 "retry period"),
    ((15, 5, 0), "leader election: the retry period must be positive, not 0s"),
    ((15, 5, -1), "leader election: the retry period must be positive, not -1s"),
])
def test_timings_that_could_lose_the_lease_are_refused_with_the_fix(
        timing: tuple[float, float, float], message: str) -> None:
    lease, renew, retry = timing
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        Timing(lease_duration=lease, renew_deadline=renew, retry_period=retry)


def test_the_shortest_valid_timings_are_accepted() -> None:
    Timing(lease_duration=1.5, renew_deadline=1.0, retry_period=0.05)
    Timing(lease_duration=10.001, renew_deadline=10, retry_period=8.33)


# --- identity and reporting ----------------------------------------------------------------
def test_the_identity_names_the_pod_and_differs_per_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "headwater-7f9c-abcde")
    first, second = default_identity(), default_identity()
    assert first.startswith("headwater-7f9c-abcde_")
    assert first != second


class ForbiddenKube(kube.Kube):
    """A client whose ServiceAccount may not read Leases."""

    async def get(self, resource: kube.Resource, name: str, **_: Any) -> kube.JsonObject:
        raise kube.KubeError(403, "Forbidden", f'{resource.plural} "{name}" is forbidden')


async def test_missing_rbac_is_reported_once_with_the_fix(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    attempts = 0

    async def sleep(_: float) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            raise asyncio.CancelledError  # as when the operator stops

    election = LeaderElection(ForbiddenKube(), namespace="headwater-system",
                              name="headwater-operator", identity="a", sleep=sleep)
    with caplog.at_level(logging.DEBUG, "headwater_operator.leader"), \
            pytest.raises(asyncio.CancelledError):
        await election.run(_never_called)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "403" in warnings[0]
    assert "coordination.k8s.io leases in namespace headwater-system" in warnings[0]
    assert attempts == 3, "the standby kept looking every retry period"
    assert not election.is_leader


async def _never_called() -> None:
    raise AssertionError("work ran without the Lease")
