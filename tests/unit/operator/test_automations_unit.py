"""The Automation controller's own rules, without a server: the model's validation, the
idempotency key, the ledger's bound, and that a delivery is never started twice by one
operator (an outcome that arrives while the status is being written)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from headwater_operator.api import Automation, InvalidResourceError, parse_resource
from headwater_operator.clock import ManualClock
from headwater_operator.controllers import automations as module
from headwater_operator.controllers.automations import (
    AutomationController,
    _prune,
    idempotency_key,
    safe_message,
    triggered_run_name,
)
from headwater_operator.informer import Store

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def manifest(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "Automation",
            "metadata": {"name": "a", "namespace": "data"}, "spec": spec}


NOTIFY = [{"notify": {"blockRef": {"name": "hook"}}}]


def test_a_trigger_is_exactly_one_thing() -> None:
    with pytest.raises(InvalidResourceError) as error:
        parse_resource(manifest({"trigger": {"runPhase": {"phases": ["Failed"]},
                                             "recovery": {}}, "actions": NOTIFY}))
    assert "set exactly one of trigger.runPhase, trigger.freshness or trigger.recovery" \
        in str(error.value)


def test_freshness_takes_a_duration_and_refuses_run_actions() -> None:
    parsed = parse_resource(manifest({"trigger": {"freshness": {
        "deployment": "etl", "within": "1d6h"}}, "actions": NOTIFY}))
    assert isinstance(parsed, Automation)
    assert parsed.spec.trigger.freshness is not None
    assert parsed.spec.trigger.freshness.seconds == 30 * 3600
    with pytest.raises(InvalidResourceError) as error:
        parse_resource(manifest({"trigger": {"freshness": {
            "deployment": "etl", "withinSeconds": 60}}, "actions": [{"cancelRun": {}}]}))
    assert "cancelRun needs a triggering run" in str(error.value)


def test_the_idempotency_key_is_one_per_action_of_one_transition() -> None:
    key = idempotency_key("uid-1", "run-uid/Failed/1", 0)
    assert key == idempotency_key("uid-1", "run-uid/Failed/1", 0)
    assert len({key, idempotency_key("uid-1", "run-uid/Failed/1", 1),
                idempotency_key("uid-1", "run-uid/Failed/2", 0),
                idempotency_key("uid-2", "run-uid/Failed/1", 0)}) == 4
    name = triggered_run_name("a-deployment-name-that-is-rather-long-indeed-yes", key)
    assert len(name) <= 63
    assert name == triggered_run_name("a-deployment-name-that-is-rather-long-indeed-yes", key)


def test_errors_in_status_never_carry_a_url() -> None:
    text = safe_message(RuntimeError("POST https://hooks.slack.com/services/T0/B0/secret "
                                     "answered 500"))
    assert "hooks.slack.com" not in text
    assert "<url>" in text


def _entry(index: int, state: str) -> dict[str, Any]:
    when = (T0 + timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"id": f"r{index}/Failed/1", "run": f"r{index}", "time": when,
            "actions": [{"action": 0, "state": state, "attempts": 1}]}


def test_the_ledger_keeps_pending_entries_and_the_latest_finished_ones() -> None:
    keep = module.LEDGER_KEEP
    ledger = [_entry(i, "Delivered") for i in range(keep + 10)]
    ledger.insert(0, _entry(-5, "Pending"))
    pruned, watermark = _prune(ledger, T0 - timedelta(hours=1))
    assert len(pruned) == keep + 1
    assert pruned[0]["id"] == "r-5/Failed/1"  # pending: kept, however old
    assert {e["id"] for e in pruned} >= {f"r{i}/Failed/1" for i in range(10, keep + 10)}
    assert watermark == T0 + timedelta(seconds=9)  # the newest dropped entry


class FakeKube:
    """Status writes that can be held open; everything else unused."""

    def __init__(self) -> None:
        self.version = 1
        self.gate: asyncio.Event | None = None
        self.writes = 0

    async def patch_status(self, _resource: Any, name: str, patch: dict[str, Any], *,
                           namespace: str) -> dict[str, Any]:
        if self.gate is not None:
            await self.gate.wait()
        self.writes += 1
        self.version += 1
        return {"metadata": {"name": name, "namespace": namespace, "uid": "auto-uid",
                             "generation": 1, "resourceVersion": str(self.version),
                             "creationTimestamp": "2026-12-07T11:00:00Z"},
                "spec": AUTOMATION["spec"], "status": patch["status"]}


class Recorder:
    def post(self, *_: Any) -> None:
        pass


AUTOMATION: dict[str, Any] = {
    "apiVersion": "headwater.dev/v1alpha1", "kind": "Automation",
    "metadata": {"name": "a", "namespace": "data", "uid": "auto-uid", "generation": 1,
                 "resourceVersion": "1", "creationTimestamp": "2026-12-07T11:00:00Z"},
    "spec": {"trigger": {"runPhase": {"phases": ["Failed"]}},
             "actions": [{"notify": {"blockRef": {"name": "hook"}, "subject": "{{ run.name }}",
                                     "body": "x"}}]}}


def failed_run(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "data", "uid": f"{name}-uid"},
            "spec": {"deploymentRef": {"name": "etl"}},
            "status": {"phase": "Failed", "attempts": 1, "endTime": "2026-12-07T12:00:00Z"}}


async def test_an_outcome_arriving_during_a_status_write_is_not_delivered_again() -> None:
    sent: list[str] = []
    release = {"r1": threading.Event(), "r2": threading.Event()}

    class Block:
        timeout_seconds = 5.0

        def notify(self, subject: str, _body: str, *, idempotency_key: str,
                   _sync: bool) -> None:
            sent.append(subject)
            release[subject].wait(5)

    client = FakeKube()
    controller = AutomationController(client, deployments=Store(),  # type: ignore[arg-type]
                                      events=Recorder(), clock=ManualClock(T0),
                                      notifier=lambda _ns, _name: Block())
    key = ("data", "a")
    try:
        controller.on_automation("ADDED", AUTOMATION)
        controller.on_flowrun("MODIFIED", failed_run("r1"))
        await controller.reconcile(key)  # intent for r1, then its delivery starts
        for _ in range(200):
            if sent:
                break
            await asyncio.sleep(0.01)
        assert sent == ["r1"]
        controller.on_flowrun("MODIFIED", failed_run("r2"))
        client.gate = asyncio.Event()
        second = asyncio.create_task(controller.reconcile(key))  # the write is held open
        await asyncio.sleep(0.05)
        release["r1"].set()  # r1's outcome arrives while r2's intent is being written
        state = controller.states[key]
        for _ in range(200):
            if state.outcomes:
                break
            await asyncio.sleep(0.01)
        client.gate.set()
        await second
        release["r2"].set()
        for _ in range(100):
            await controller.reconcile(key)
            ledger = controller.bodies[key]["status"]["ledger"]
            if all(e["actions"][0]["state"] == "Delivered" for e in ledger) and len(ledger) == 2:
                break
            await asyncio.sleep(0.02)
        assert sorted(sent) == ["r1", "r2"]
        assert controller.bodies[key]["status"]["delivered"] == 2
    finally:
        await controller.aclose()


def test_selectors_reasons_and_tags_narrow_which_runs_fire() -> None:
    deployments = Store()
    deployments.on_event("ADDED", {"metadata": {"name": "etl", "namespace": "data"},
                                   "spec": {"flowRef": {"name": "extract"},
                                            "tags": ["critical"]}})
    controller = AutomationController(FakeKube(), deployments=deployments,  # type: ignore[arg-type]
                                      events=Recorder(), clock=ManualClock(T0))
    timed_out = Automation.model_validate(manifest({"trigger": {"runPhase": {
        "phases": ["Failed"], "reasons": ["TimedOut"],
        "selector": {"tags": ["critical"], "flows": ["extract"],
                     "labelSelector": {"matchLabels": {"team": "data"}}}}},
        "actions": NOTIFY}))
    run = failed_run("r")
    run["metadata"]["labels"] = {"team": "data"}
    run["status"]["reason"] = "TimedOut"
    assert controller._selects(timed_out, "data", run, "Failed")
    assert not controller._selects(timed_out, "data", run, "Crashed")
    other_reason = {**run, "status": {**run["status"], "reason": "FlowFailed"}}
    assert not controller._selects(timed_out, "data", other_reason, "Failed")
    other_team = {**run, "metadata": {**run["metadata"], "labels": {"team": "web"}}}
    assert not controller._selects(timed_out, "data", other_team, "Failed")
    untagged = {**run, "spec": {"deploymentRef": {"name": "adhoc"}}}
    assert not controller._selects(timed_out, "data", untagged, "Failed")


def _finished_run(name: str, phase: str, end: str) -> dict[str, Any]:
    run = failed_run(name)
    run["status"] = {"phase": phase, "attempts": 1, "endTime": end}
    return run


@pytest.mark.parametrize("order", [("failed", "completed"), ("completed", "failed")])
def test_a_recovery_is_seen_whichever_order_the_runs_arrive_in(
        order: tuple[str, str]) -> None:
    """A new leader's first list hands runs over in any order: a Completed run listed
    before the Failed run it recovers from is still a recovery, found once."""
    controller = AutomationController(FakeKube(), deployments=Store(),  # type: ignore[arg-type]
                                      events=Recorder(), clock=ManualClock(T0))
    recovery = {**AUTOMATION, "spec": {**AUTOMATION["spec"], "trigger": {"recovery": {}}}}
    controller.on_automation("ADDED", recovery)
    runs = {"failed": _finished_run("r1", "Failed", "2026-12-07T12:00:00Z"),
            "completed": _finished_run("r2", "Completed", "2026-12-07T12:05:00Z"),
            "earlier": _finished_run("r0", "Completed", "2026-12-07T11:00:00Z")}
    controller.on_flowrun("ADDED", runs["earlier"])
    for name in order:
        controller.on_flowrun("ADDED", runs[name])
    observed = controller.states[("data", "a")].observed
    assert list(observed) == ["r2-uid/Recovered"]
    controller.on_flowrun("MODIFIED", runs["completed"])  # seen again: still one
    assert list(observed) == ["r2-uid/Recovered"]
    assert observed["r2-uid/Recovered"].run == "r2"
    assert observed["r2-uid/Recovered"].time == datetime(2026, 12, 7, 12, 5, tzinfo=UTC)
