"""The pure decisions of the Lease-backed concurrency backend: names, durations, expiry,
backoff and the Lease it writes (headwater_operator.leaselimits)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from headwater_operator.api import ConcurrencyLimit
from headwater_operator.leaselimits import (
    MAX_BACKOFF_SECONDS,
    backoff_seconds,
    holder_identity,
    is_expired,
    lease_body,
    lease_name,
    lease_seconds,
)

NOW = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)


def _lease(**spec: object) -> dict[str, object]:
    return {"metadata": {"name": "hw-limit-x-0"}, "spec": spec}


def test_a_slot_is_the_lease_named_after_its_limit_and_index() -> None:
    assert lease_name("warehouse", 0) == "hw-limit-warehouse-0"
    assert lease_name("github-api", 12) == "hw-limit-github-api-12"


@pytest.mark.parametrize(("mode", "lease_duration", "limit", "decay", "seconds"), [
    ("concurrency", 300, 2, 0.0, 300),
    ("concurrency", 2.5, 2, 0.0, 3),       # whole seconds, rounded up
    ("concurrency", 0, 2, 0.0, 1),         # at least one second
    ("rate_limit", 0, 10, 2.0, 5),         # 10 slots of 5 s: 2 a second
    ("rate_limit", 300, 10, 3.0, 4),       # ceil(10 / 3); lease_duration is not used
    ("rate_limit", 0, 1, 10.0, 1),         # faster than a slot a second: still 1 s
])
def test_lease_seconds(mode: str, lease_duration: float, limit: int, decay: float,
                       seconds: int) -> None:
    assert lease_seconds(mode, lease_duration, limit, decay) == seconds  # type: ignore[arg-type]


def test_a_lease_is_expired_once_renew_time_plus_duration_has_passed() -> None:
    renewed = "2026-12-07T09:59:50.000000Z"
    held = _lease(holderIdentity="p/r/1", renewTime=renewed, leaseDurationSeconds=15)
    assert not is_expired(held, NOW)
    assert not is_expired(held, NOW + timedelta(seconds=4, microseconds=999999))
    assert is_expired(held, NOW + timedelta(seconds=5))
    # acquireTime stands in for a renewTime that was never written
    acquired = _lease(holderIdentity="p/r/1", acquireTime=renewed, leaseDurationSeconds=15)
    assert not is_expired(acquired, NOW)


@pytest.mark.parametrize("spec", [
    {},                                                                 # nobody holds it
    {"holderIdentity": "", "renewTime": "2026-12-07T10:00:00.000000Z",
     "leaseDurationSeconds": 60},
    {"holderIdentity": "p", "leaseDurationSeconds": 60},                # never renewed
    {"holderIdentity": "p", "renewTime": "2026-12-07T10:00:00.000000Z"},  # no duration
    {"holderIdentity": "p", "renewTime": "yesterday", "leaseDurationSeconds": 60},
])
def test_a_lease_without_a_live_holder_is_expired(spec: dict[str, object]) -> None:
    assert is_expired(_lease(**spec), NOW)


def test_backoff_doubles_up_to_the_cap_with_jitter_around_it() -> None:
    middle = [backoff_seconds(attempt, rand=lambda: 0.5) for attempt in range(8)]
    assert middle[:3] == [0.05, 0.1, 0.2]
    assert middle == sorted(middle)
    assert middle[-1] == MAX_BACKOFF_SECONDS
    assert backoff_seconds(1000, rand=lambda: 0.0) == MAX_BACKOFF_SECONDS / 2
    assert backoff_seconds(1000, rand=lambda: 0.999) < MAX_BACKOFF_SECONDS * 1.5


def test_the_holder_names_the_pod_and_the_run_and_differs_per_process() -> None:
    env = {"HOSTNAME": "etl-r1-1", "HEADWATER_FLOW_RUN_NAME": "r1"}
    first, second = holder_identity(env), holder_identity(env)
    assert first.startswith("etl-r1-1/r1/")
    assert first != second


def test_the_lease_of_a_slot_is_owned_by_its_limit_and_held_from_now() -> None:
    limit = ConcurrencyLimit.model_validate({
        "apiVersion": "headwater.dev/v1alpha1", "kind": "ConcurrencyLimit",
        "metadata": {"name": "warehouse", "namespace": "data", "uid": "u-1"},
        "spec": {"limit": 2}})
    body = lease_body(limit, 1, holder="p/r/1", seconds=300, now=NOW, namespace="data")
    assert body["metadata"]["name"] == "hw-limit-warehouse-1"
    assert body["metadata"]["labels"] == {"headwater.dev/concurrency-limit": "warehouse"}
    (owner,) = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["blockOwnerDeletion"]) == (
        "ConcurrencyLimit", "warehouse", "u-1", False)
    assert body["spec"] == {"holderIdentity": "p/r/1", "leaseDurationSeconds": 300,
                            "acquireTime": "2026-12-07T10:00:00.000000Z",
                            "renewTime": "2026-12-07T10:00:00.000000Z"}
    assert not is_expired(body, NOW + timedelta(seconds=299))
    assert is_expired(body, NOW + timedelta(seconds=300))
