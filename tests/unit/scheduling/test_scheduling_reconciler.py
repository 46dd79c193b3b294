"""The Schedule wake-up against an in-memory client: what runs get created, what status says."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from headwater.contract import ANNOTATION_SCHEDULED_TIME, LABEL_DEPLOYMENT, LABEL_SCHEDULE
from headwater_operator import kube
from headwater_operator.controllers.schedules import Cache, WatchState, reconcile_schedule
from headwater_operator.labels import label_value
from headwater_operator.scheduling.status import invalid_reason

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
STARTED = T0
"""The Schedule was created, and the operator's daemon started watching, at 12:00:00."""


class FakeKube:
    """Just enough of :class:`kube.Kube`: objects by (plural, name), 409 on duplicates."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.creates = 0
        self.refusal: kube.KubeError | None = None
        """Raised by every create while set (an admission webhook saying no)."""

    @staticmethod
    def refuse_invalid_labels(body: Mapping[str, Any]) -> None:
        """422 for a label value over 63 characters, as every API server answers
        (apimachinery v0.32.9 pkg/apis/meta/v1/validation ValidateLabels →
        validation.IsValidLabelValue)."""
        for key, value in (body["metadata"].get("labels") or {}).items():
            if len(value) > 63:
                raise kube.Invalid(422, "Invalid", (
                    f'FlowRun.headwater.dev "{body["metadata"]["name"]}" is invalid: '
                    f'metadata.labels: Invalid value: "{value}": must be no more than 63 '
                    f"characters (label {key})"))

    async def get(self, resource: kube.Resource, name: str, *, namespace: str) -> Any:
        try:
            return self.objects[resource.plural, name]
        except KeyError:
            raise kube.NotFound(404, "NotFound", f"{name} not found") from None

    async def list(self, resource: kube.Resource, *, namespace: str,
                   label_selector: Mapping[str, str]) -> list[dict[str, Any]]:
        return [obj for (plural, _), obj in self.objects.items() if plural == resource.plural
                and all(obj["metadata"].get("labels", {}).get(k) == v
                        for k, v in label_selector.items())]

    async def create(self, resource: kube.Resource, body: Mapping[str, Any], *,
                     namespace: str) -> Any:
        key = (resource.plural, body["metadata"]["name"])
        if key in self.objects:
            raise kube.AlreadyExists(409, "AlreadyExists", "exists")
        self.refuse_invalid_labels(body)
        if self.refusal is not None:
            raise self.refusal
        self.creates += 1
        self.objects[key] = dict(body)
        return body

    async def patch(self, resource: kube.Resource, name: str, patch: Mapping[str, Any], *,
                    namespace: str) -> Any:
        obj = self.objects[resource.plural, name]
        obj["spec"] = {**obj["spec"], **patch["spec"]}
        return obj

    async def patch_status(self, resource: kube.Resource, name: str,
                           patch: Mapping[str, Any], *, namespace: str) -> Any:
        obj = self.objects[resource.plural, name]
        status = {**obj.get("status", {}), **patch["status"]}
        obj["status"] = {k: v for k, v in status.items() if v is not None}
        return obj


def setup(spec: dict[str, Any], *, paused: bool = False, deployment: str = "etl") -> FakeKube:
    client = FakeKube()
    client.objects["deployments", deployment] = {
        "metadata": {"name": deployment, "uid": "dep-uid"}, "spec": {"paused": paused}}
    client.objects["schedules", "nightly"] = {
        "metadata": {"name": "nightly", "namespace": "default", "generation": 1,
                     "creationTimestamp": "2026-03-01T12:00:00Z"},
        "spec": {"deploymentRef": {"name": deployment}, **spec},
        "status": {},
    }
    return client


async def wake(client: FakeKube, state: WatchState, now: datetime) -> Any:
    body = client.objects["schedules", "nightly"]
    return await reconcile_schedule(client, body, state, now)  # type: ignore[arg-type]


def runs(client: FakeKube) -> list[str]:
    return sorted(name for plural, name in client.objects if plural == "flowruns")


def status(client: FakeKube) -> dict[str, Any]:
    result: dict[str, Any] = client.objects["schedules", "nightly"]["status"]
    return result


def condition(client: FakeKube, type_: str) -> dict[str, Any]:
    return next(c for c in status(client)["conditions"] if c["type"] == type_)


async def test_tick_creates_one_idempotent_run_with_the_contract() -> None:
    client = setup({"interval": "1m", "parameters": {"x": 1},
                    "windowParameters": {"start": "s", "end": "e", "format": "DateTime"}})
    state = WatchState(watching_since=STARTED)
    result = await wake(client, state, T0 + timedelta(minutes=1, seconds=1))
    assert runs(client) == ["nightly-1772366460"]
    run = client.objects["flowruns", "nightly-1772366460"]
    assert run["spec"]["scheduledTime"] == "2026-03-01T12:01:00Z"
    assert run["metadata"]["annotations"][ANNOTATION_SCHEDULED_TIME] == "2026-03-01T12:01:00Z"
    assert run["metadata"]["labels"][LABEL_SCHEDULE] == "nightly"
    assert run["metadata"]["labels"][LABEL_DEPLOYMENT] == "etl"
    assert run["metadata"]["ownerReferences"][0]["uid"] == "dep-uid"
    assert run["spec"]["parameters"] == {
        "x": 1, "s": "2026-03-01T12:00:00+00:00", "e": "2026-03-01T12:01:00+00:00"}
    assert status(client)["lastScheduleTime"] == "2026-03-01T12:01:00Z"
    assert status(client)["nextScheduleTime"] == "2026-03-01T12:02:00Z"
    assert result.next_tick == T0 + timedelta(minutes=2)
    # A restarted operator (fresh state, stale status) repeating the tick creates nothing.
    status(client).pop("lastScheduleTime")
    await wake(client, WatchState(watching_since=STARTED), T0 + timedelta(minutes=1, seconds=2))
    assert client.creates == 1


async def test_operator_down_catchup_latest_runs_one_and_reports_missed() -> None:
    client = setup({"interval": "1m"})
    await wake(client, WatchState(watching_since=STARTED), T0 + timedelta(minutes=1))
    # Operator down until 12:05:30: ticks 12:02..12:05 missed; restarts with a fresh state.
    restart = T0 + timedelta(minutes=5, seconds=30)
    result = await wake(client, WatchState(watching_since=restart), restart)
    assert runs(client) == ["nightly-1772366460", "nightly-1772366700"]
    assert status(client)["missedTicks"] == 3
    assert condition(client, "MissedTicks")["status"] == "True"
    assert any(reason == "MissedTicks" for _, reason, _ in result.events)


async def test_forbid_skips_while_a_run_is_active_and_replace_cancels_it() -> None:
    client = setup({"interval": "1m", "concurrencyPolicy": "Forbid"})
    state = WatchState(watching_since=STARTED)
    await wake(client, state, T0 + timedelta(minutes=1))
    await wake(client, state, T0 + timedelta(minutes=2))
    assert runs(client) == ["nightly-1772366460"]
    assert status(client)["missedTicks"] == 1
    client.objects["schedules", "nightly"]["spec"]["concurrencyPolicy"] = "Replace"
    await wake(client, state, T0 + timedelta(minutes=3))
    assert client.objects["flowruns", "nightly-1772366460"]["spec"]["cancel"] is True
    assert runs(client) == ["nightly-1772366460", "nightly-1772366580"]
    assert [a["name"] for a in status(client)["active"]] == ["nightly-1772366580"]


async def test_paused_deployment_creates_nothing_and_says_so() -> None:
    client = setup({"interval": "1m"}, paused=True)
    await wake(client, WatchState(watching_since=STARTED), T0 + timedelta(minutes=3))
    assert runs(client) == []
    assert condition(client, "Ready")["reason"] == "DeploymentPaused"
    assert "nextScheduleTime" not in status(client)


async def test_deployment_missing_from_the_watch_cache_is_confirmed_with_the_server() -> None:
    # The watch may not have delivered a Deployment created a moment ago: the Schedule
    # must not report DeploymentNotFound (nor skip the tick) while the server has it.
    client = setup({"interval": "1m"})
    empty = Cache(deployments={}, runs={})
    body = client.objects["schedules", "nightly"]
    await reconcile_schedule(client, body, WatchState(watching_since=STARTED),  # type: ignore[arg-type]
                             T0 + timedelta(minutes=1, seconds=1), cache=empty)
    assert condition(client, "Ready")["status"] == "True"
    assert runs(client) == ["nightly-1772366460"]


async def test_deployment_gone_from_cache_and_server_is_reported_not_found() -> None:
    client = setup({"interval": "1m"})
    del client.objects["deployments", "etl"]
    body = client.objects["schedules", "nightly"]
    await reconcile_schedule(client, body, WatchState(watching_since=STARTED),  # type: ignore[arg-type]
                             T0 + timedelta(minutes=1), cache=Cache(deployments={}, runs={}))
    assert condition(client, "Ready")["reason"] == "DeploymentNotFound"
    assert runs(client) == []


async def test_suspend_then_resume_follows_catchup_policy() -> None:
    client = setup({"interval": "1m", "suspend": True, "catchup": {"policy": "None"}})
    state = WatchState(watching_since=STARTED)
    await wake(client, state, T0 + timedelta(minutes=1))
    assert condition(client, "Ready")["reason"] == "Suspended"
    client.objects["schedules", "nightly"]["spec"]["suspend"] = False
    await wake(client, state, T0 + timedelta(minutes=4, seconds=30))
    assert runs(client) == []  # the 4 ticks during suspension were missed: policy None
    assert status(client)["missedTicks"] == 4
    await wake(client, state, T0 + timedelta(minutes=5))
    assert runs(client) == ["nightly-1772366700"]


async def test_edit_never_fires_a_run_by_itself() -> None:
    client = setup({"cron": "0 * * * *", "catchup": {"policy": "All"}})
    state = WatchState(watching_since=STARTED)
    await wake(client, state, T0 + timedelta(hours=1))
    assert len(runs(client)) == 1
    client.objects["schedules", "nightly"]["spec"]["cron"] = "*/10 * * * *"
    await wake(client, state, T0 + timedelta(hours=1, minutes=35))
    assert len(runs(client)) == 1  # 13:10, 13:20, 13:30 predate the edit
    await wake(client, state, T0 + timedelta(hours=1, minutes=40))
    assert runs(client)[-1] == "nightly-1772372400"  # 13:40
    assert len(runs(client)) == 2


async def test_invalid_schedule_is_marked_and_not_applied() -> None:
    client = setup({"cron": "0 2 * * *", "timezone": "Mars/Olympus"})
    result = await wake(client, WatchState(watching_since=STARTED), T0 + timedelta(days=1))
    assert runs(client) == []
    assert condition(client, "Invalid")["reason"] == "InvalidTimezone"
    assert "spec.timezone" in condition(client, "Invalid")["message"]
    assert result.next_tick is None
    assert invalid_reason("spec.catchup.maxRuns") == "InvalidCatchupMaxRuns"


LONG_DEPLOYMENT = "nightly-ingest-of-customer-orders-from-the-eu-warehouse-into-the-lake"
"""69 characters: a valid Deployment name, too long for a label value."""


async def test_long_deployment_name_gives_runs_a_valid_shortened_label() -> None:
    client = setup({"interval": "1m"}, deployment=LONG_DEPLOYMENT)
    result = await wake(client, WatchState(watching_since=STARTED),
                        T0 + timedelta(minutes=1, seconds=1))
    assert runs(client) == ["nightly-1772366460"], result.events
    run = client.objects["flowruns", "nightly-1772366460"]
    label = run["metadata"]["labels"][LABEL_DEPLOYMENT]
    assert label == label_value(LONG_DEPLOYMENT)
    assert len(label) <= 63
    assert label.startswith("nightly-ingest-of-customer")
    assert run["spec"]["deploymentRef"]["name"] == LONG_DEPLOYMENT  # the reference is whole


REFUSED = kube.Invalid(422, "Invalid", 'FlowRun.headwater.dev "nightly-1772366460" is invalid: '
                                       "spec.parameters: Invalid value: denied by policy")


async def test_refused_run_skips_the_tick_says_why_and_is_not_retried() -> None:
    client = setup({"interval": "1m"})
    client.refusal = REFUSED
    state = WatchState(watching_since=STARTED)
    result = await wake(client, state, T0 + timedelta(minutes=1, seconds=1))
    assert runs(client) == []
    warnings = [(reason, message) for type_, reason, message in result.events
                if type_ == "Warning"]
    assert [reason for reason, _ in warnings] == ["RunRejected"]
    assert "nightly-1772366460" in warnings[0][1]
    assert "denied by policy" in warnings[0][1]
    for type_ in ("Ready", "RunRejected"):
        assert condition(client, type_)["reason"] == "RunRejected"
        assert "denied by policy" in condition(client, type_)["message"]
    assert condition(client, "Ready")["status"] == "False"
    assert status(client)["lastScheduleTime"] == "2026-03-01T12:01:00Z"  # handled: skipped
    assert status(client)["missedTicks"] == 1
    assert result.next_tick == T0 + timedelta(minutes=2)
    # The same wake-up again (a replayed event) does not try the refused tick again, and
    # the conditions keep saying why until a run is accepted.
    result = await wake(client, state, T0 + timedelta(minutes=1, seconds=30))
    assert result.events == []
    assert condition(client, "Ready")["status"] == "False"
    client.refusal = None
    await wake(client, state, T0 + timedelta(minutes=2))
    assert runs(client) == ["nightly-1772366520"]
    assert condition(client, "Ready")["status"] == "True"
    assert condition(client, "RunRejected")["status"] == "False"


async def test_transient_create_failure_is_retried_by_the_caller() -> None:
    client = setup({"interval": "1m"})
    client.refusal = kube.KubeError(503, "ServiceUnavailable", "etcd is unavailable")
    with pytest.raises(kube.KubeError):
        await wake(client, WatchState(watching_since=STARTED), T0 + timedelta(minutes=1))
    assert "lastScheduleTime" not in status(client)
