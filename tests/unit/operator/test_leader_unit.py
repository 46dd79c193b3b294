"""The pure Lease logic of leader election: who may take a Lease, and what is written."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from headwater_operator import kube
from headwater_operator.leader import (
    LeaderElection,
    LeaseRecord,
    claim_spec,
    default_identity,
    format_micro_time,
    parse_micro_time,
    versioned_patch,
)

NOW = datetime(2026, 11, 22, 4, 0, 0, 123456, tzinfo=UTC)


def _record(holder: str = "a", renewed: datetime | None = NOW, duration: int = 15,
            transitions: int = 2) -> LeaseRecord:
    spec: kube.JsonObject = {"holderIdentity": holder, "leaseDurationSeconds": duration,
                             "leaseTransitions": transitions,
                             "acquireTime": "2026-11-22T03:00:00.000000Z"}
    if renewed is not None:
        spec["renewTime"] = format_micro_time(renewed)
    return LeaseRecord.from_object({"metadata": {"resourceVersion": "42"}, "spec": spec})


def test_micro_time_is_written_as_kubernetes_does_and_read_back() -> None:
    assert format_micro_time(NOW) == "2026-11-22T04:00:00.123456Z"
    east = NOW.astimezone(timezone(timedelta(hours=2)))
    assert format_micro_time(east) == "2026-11-22T04:00:00.123456Z"
    assert parse_micro_time("2026-11-22T04:00:00.123456Z") == NOW
    assert parse_micro_time("2026-11-22T04:00:00Z") == NOW.replace(microsecond=0)


def test_another_holders_claim_lasts_until_renew_time_plus_duration() -> None:
    record = _record(holder="a")
    assert record.is_held_by_other("b", NOW + timedelta(seconds=14.999))
    assert not record.is_held_by_other("b", NOW + timedelta(seconds=15))


def test_own_unheld_or_unrenewed_leases_are_free_to_take() -> None:
    assert not _record(holder="b").is_held_by_other("b", NOW)
    assert not _record(holder="").is_held_by_other("b", NOW)
    assert not _record(renewed=None).is_held_by_other("b", NOW)


def test_malformed_lease_fields_read_as_not_held() -> None:
    record = LeaseRecord.from_object({"spec": {"holderIdentity": "a", "renewTime": "yesterday",
                                               "leaseDurationSeconds": "15",
                                               "leaseTransitions": None}})
    assert (record.renew_time, record.duration_seconds, record.transitions) == (None, 0.0, 0)
    assert not record.is_held_by_other("b", NOW)
    assert LeaseRecord.from_object({}).holder == ""


def test_first_claim_creates_the_record() -> None:
    assert claim_spec(None, "a", NOW, 15.0) == {
        "holderIdentity": "a", "leaseDurationSeconds": 15,
        "acquireTime": "2026-11-22T04:00:00.123456Z",
        "renewTime": "2026-11-22T04:00:00.123456Z", "leaseTransitions": 0,
    }


def test_renewal_keeps_acquire_time_and_transitions() -> None:
    spec = claim_spec(_record(holder="a"), "a", NOW + timedelta(seconds=5), 15.0)
    assert spec["acquireTime"] == "2026-11-22T03:00:00.000000Z"
    assert spec["leaseTransitions"] == 2
    assert spec["renewTime"] == "2026-11-22T04:00:05.123456Z"


@pytest.mark.parametrize("previous", ["a", ""])
def test_takeover_counts_a_transition_and_restamps_acquire_time(previous: str) -> None:
    spec = claim_spec(_record(holder=previous), "b", NOW, 15.0)
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 3
    assert spec["acquireTime"] == spec["renewTime"] == "2026-11-22T04:00:00.123456Z"


def test_lease_duration_is_a_whole_number_of_seconds_at_least_one() -> None:
    assert claim_spec(None, "a", NOW, 0.2)["leaseDurationSeconds"] == 1
    assert claim_spec(None, "a", NOW, 14.6)["leaseDurationSeconds"] == 15


def test_writes_carry_the_read_resource_version() -> None:
    patch = versioned_patch("42", {"holderIdentity": "a"})
    assert patch == {"metadata": {"resourceVersion": "42"}, "spec": {"holderIdentity": "a"}}


@pytest.mark.parametrize(("lease", "renew", "retry"), [(15, 15, 2), (15, 0, 2), (15, 5, 0)])
def test_settings_that_would_lose_the_lease_are_rejected(lease: float, renew: float,
                                                         retry: float) -> None:
    with pytest.raises(ValueError, match="LeaderElection ns/l: re"):
        LeaderElection(kube.Kube(), namespace="ns",
                       name="l", identity="a", lease_seconds=lease, renew_every=renew,
                       retry_every=retry)


def test_identity_names_the_pod_and_differs_per_process(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
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
                              name="headwater-scheduler", identity="a", sleep=sleep)
    with caplog.at_level(logging.DEBUG, "headwater_operator.leader"), \
            pytest.raises(asyncio.CancelledError):
        await election.run(_never_called)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "403" in warnings[0]
    assert "coordination.k8s.io leases in namespace headwater-system" in warnings[0]
    assert not election.is_leader


async def _never_called() -> None:
    raise AssertionError("work ran without the Lease")
