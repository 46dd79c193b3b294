"""The emulator's fault plan as data: which requests a rule picks, how often, with a seed,
and the exact answers it gives (their HTTP behaviour: tests/api/test_retries_emulator_faults.py).
"""

from __future__ import annotations

import json

import pytest
from headwater_dev import faults
from headwater_dev.faults import FaultPlan, FaultRequest

CREATE_POD = FaultRequest("create", "pods", "default", None, "headwater-operator/1")
PATCH_STATUS = FaultRequest("patch", "flowruns/status", "default", "r1", "kopf/1.45")


def test_a_rule_fires_on_matching_requests_only_and_only_times_times() -> None:
    plan = FaultPlan()
    rule = plan.add(faults.internal_error(), verb="create", resource="pods", times=2)
    assert plan.pick(PATCH_STATUS) is None
    assert plan.pick(CREATE_POD) == faults.internal_error()
    assert plan.pick(CREATE_POD) == faults.internal_error()
    assert plan.pick(CREATE_POD) is None
    assert rule.fired == 2
    assert [each.request for each in plan.injected] == [CREATE_POD, CREATE_POD]
    assert plan.count(faults.StatusAnswer, verb="create") == 2
    assert plan.count(resource="flowruns/status") == 0


def test_rules_match_namespace_name_and_user_agent() -> None:
    plan = FaultPlan()
    plan.add(faults.Delay(0.1), name="r2", times=None)
    plan.add(faults.Reset(), user_agent="kopf", namespace="default", times=None)
    assert plan.pick(CREATE_POD) is None
    assert plan.pick(PATCH_STATUS) == faults.Reset()
    assert plan.pick(FaultRequest("get", "flowruns", "default", "r2")) == faults.Delay(0.1)


def test_the_first_rule_that_fires_decides() -> None:
    plan = FaultPlan()
    plan.add(faults.throttled(2), verb="create", times=1)
    plan.add(faults.service_unavailable(), times=None)
    assert plan.pick(CREATE_POD) == faults.throttled(2)
    assert plan.pick(CREATE_POD) == faults.service_unavailable()


def test_watch_faults_pick_watches_only_and_expiry_needs_a_resource_version() -> None:
    plan = FaultPlan()
    plan.add(faults.ExpireWatch(), times=None)
    plan.add(faults.CutWatch(3), times=None)
    watch = FaultRequest("watch", "pods", "default")
    assert plan.pick(CREATE_POD) is None
    assert plan.pick(watch) == faults.CutWatch(3)
    assert plan.pick(FaultRequest("watch", "pods", "default", resource_version="0")) == (
        faults.CutWatch(3))
    assert plan.pick(FaultRequest("watch", "pods", "default", resource_version="17")) == (
        faults.ExpireWatch())


def _fired(seed: int) -> list[int]:
    plan = FaultPlan(seed=seed)
    plan.add(faults.internal_error(), probability=0.3, times=None)
    return [index for index in range(200) if plan.pick(CREATE_POD) is not None]


def test_a_probability_is_drawn_from_the_plan_seed() -> None:
    assert _fired(5) == _fired(5)
    assert _fired(5) != _fired(6)
    assert 40 <= len(_fired(5)) <= 80  # about 30 % of 200


def test_times_caps_a_probability() -> None:
    plan = FaultPlan(seed=1)
    rule = plan.add(faults.Delay(0.0), probability=0.5, times=3)
    for _ in range(100):
        plan.pick(CREATE_POD)
    assert rule.fired == 3


@pytest.mark.parametrize(("fields", "message"), [
    ({"probability": 1.5}, "probability"), ({"times": -1}, "times")])
def test_impossible_rules_are_refused(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultPlan().add(faults.Reset(), **fields)  # type: ignore[arg-type]


# --- the answers, as the API server words them ------------------------------------------
def _body(answer: faults.StatusAnswer) -> object:
    return json.loads(answer.response().text or "")


def test_priority_and_fairness_answers_429_in_plain_text() -> None:
    response = faults.throttled(3).response()
    assert response.status == 429
    assert response.text == "Too many requests, please try again later.\n"
    assert response.content_type == "text/plain"
    assert response.headers["Retry-After"] == "3"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_429_status_carries_retry_after_in_details_and_header() -> None:
    answer = faults.too_many_requests()
    assert _body(answer) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "storage is (re)initializing", "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 1}, "code": 429}
    assert answer.response().headers["Retry-After"] == "1"


def test_an_internal_error_names_its_cause_twice() -> None:
    assert _body(faults.internal_error("etcdserver: leader changed")) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Internal error occurred: etcdserver: leader changed",
        "reason": "InternalError",
        "details": {"causes": [{"message": "etcdserver: leader changed"}]}, "code": 500}
    assert "Retry-After" not in faults.internal_error().response().headers


def test_a_server_shutting_down_answers_503_with_retry_after() -> None:
    answer = faults.service_unavailable()
    assert _body(answer) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "apiserver is shutting down", "reason": "ServiceUnavailable", "code": 503}
    assert answer.response().headers["Retry-After"] == "1"


def test_a_timeout_sends_empty_details() -> None:
    assert _body(faults.gateway_timeout()) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Timeout: request did not complete within requested timeout - context "
                   "deadline exceeded",
        "reason": "Timeout", "details": {}, "code": 504}


def test_an_expired_watch_status_is_the_watch_cache_one() -> None:
    assert faults.ExpireWatch().status("12", 40) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version: 12 (40)", "reason": "Expired", "code": 410}
