"""The client's retry policy as pure functions: what is retried, on which requests, how long.

``kube.RetryPolicy`` and the functions beside it decide; ``Kube`` only sleeps and sends
again (its loop is tested against the emulator in
tests/api/test_retries_client.py).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from headwater_operator import kube

FLOWRUN = "/apis/headwater.dev/v1alpha1/namespaces/ns/flowruns/r1"
FLOWRUNS = "/apis/headwater.dev/v1alpha1/namespaces/ns/flowruns"
PODS = "/api/v1/namespaces/ns/pods"


def _seeded(seed: int = 7, **fields: Any) -> kube.RetryPolicy:
    return kube.RetryPolicy(random=random.Random(seed).random, **fields)


# --- which failures ---------------------------------------------------------------------
@pytest.mark.parametrize(("error", "reason"), [
    (kube.KubeError(429, "TooManyRequests", "slow down"), "TooManyRequests"),
    (kube.KubeError(500, "InternalError", "etcd"), "InternalError"),
    (kube.KubeError(502, "Error", "bad gateway"), "BadGateway"),
    (kube.KubeError(503, "ServiceUnavailable", "shutting down"), "ServiceUnavailable"),
    (kube.KubeError(504, "Timeout", "deadline"), "Timeout"),
    (ConnectionResetError(104, "Connection reset by peer"), "ConnectionFailed"),
    (ConnectionRefusedError(111, "Connection refused"), "ConnectionFailed"),
    (aiohttp.ServerDisconnectedError(), "ConnectionFailed"),
    (aiohttp.ClientOSError(104, "Connection reset by peer"), "ConnectionFailed"),
    (aiohttp.ClientPayloadError("Response payload is not completed"), "ConnectionFailed"),
])
def test_transient_failures_have_a_retry_reason(error: BaseException, reason: str) -> None:
    assert kube.retry_reason(error) == reason


@pytest.mark.parametrize("error", [
    kube.NotFound(404, "NotFound", "gone"),
    kube.AlreadyExists(409, "AlreadyExists", "exists"),
    kube.Conflict(409, "Conflict", "stale"),
    kube.Invalid(422, "Invalid", "bad"),
    kube.KubeError(403, "Forbidden", "no"),
    kube.KubeError(401, "Unauthorized", "who"),
    kube.Gone(410, "Expired", "too old"),
    kube.KubeError(501, "Error", "not implemented"),
    TimeoutError(),
    aiohttp.ServerTimeoutError("read timed out"),  # a ClientConnectionError, and a timeout
    ValueError("garbled JSON"),
])
def test_answers_timeouts_and_bugs_are_final(error: BaseException) -> None:
    assert kube.retry_reason(error) is None


# --- which requests ---------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "body", "repeatable"), [
    # Reads change nothing.
    ("GET", FLOWRUN, None, True),
    ("GET", FLOWRUNS, None, True),
    ("GET", f"{PODS}/p1/log", None, True),
    # Creates: a deterministic name answers 409 the second time; generateName makes two.
    ("POST", FLOWRUNS, {"metadata": {"name": "r1"}}, True),
    ("POST", FLOWRUNS, {"metadata": {"name": "r1", "generateName": "x-"}}, True),
    ("POST", FLOWRUNS, {"metadata": {"generateName": "nightly-"}}, False),
    ("POST", FLOWRUNS, {"metadata": {"name": ""}}, False),
    ("POST", FLOWRUNS, None, False),
    ("POST", "/api/v1/namespaces", {"metadata": {"name": "team-a"}}, True),
    # A subresource "create" (binding, eviction) is an action, not a named object.
    ("POST", f"{PODS}/p1/binding", {"metadata": {"name": "p1"}}, False),
    # Patches: only with a resourceVersion precondition.
    ("PATCH", FLOWRUN, {"metadata": {"resourceVersion": "42"}, "status": {}}, True),
    ("PATCH", FLOWRUN, {"status": {"phase": "Running"}}, False),
    ("PATCH", FLOWRUN, {"metadata": {"resourceVersion": ""}, "spec": {}}, False),
    ("PATCH", FLOWRUN, [kube.jp_test("/metadata/resourceVersion", "42"),
                        kube.jp_replace("/status/phase", "Running")], True),
    ("PATCH", FLOWRUN, [kube.jp_test("/status/phase", "Pending"),
                        kube.jp_add("/status/history/-", "x")], False),
    ("PATCH", FLOWRUN, [kube.jp_add("/status/history/-", "x")], False),
    # Updates and status replaces: only with a resourceVersion.
    ("PUT", f"{FLOWRUN}/status", {"metadata": {"name": "r1", "resourceVersion": "9"}}, True),
    ("PUT", f"{FLOWRUN}/status", {"metadata": {"name": "r1"}}, False),
    # Deletes: only with preconditions, never a whole collection.
    ("DELETE", f"{PODS}/p1", {"preconditions": {"resourceVersion": "5"}}, True),
    ("DELETE", f"{PODS}/p1", {"preconditions": {"uid": "u-1"}}, True),
    ("DELETE", f"{PODS}/p1", {"propagationPolicy": "Background"}, False),
    ("DELETE", PODS, {"preconditions": {"uid": "u-1"}}, False),
])
def test_only_requests_safe_to_send_twice_are_repeatable(
    method: str, path: str, body: Any, repeatable: bool,
) -> None:
    assert kube.is_repeatable(method, path, body) is repeatable


def test_a_429_is_retried_for_any_request_and_a_5xx_only_for_repeatable_ones() -> None:
    policy = _seeded()
    for reason in ("InternalError", "ServiceUnavailable", "Timeout", "BadGateway",
                   "ConnectionFailed"):
        assert kube.next_delay(policy, reason=reason, repeatable=False, retry=0,
                               elapsed=0.0) is None
        assert kube.next_delay(policy, reason=reason, repeatable=True, retry=0,
                               elapsed=0.0) is not None
    assert kube.next_delay(policy, reason="TooManyRequests", repeatable=False, retry=0,
                           elapsed=0.0) is not None
    assert kube.next_delay(policy, reason=None, repeatable=True, retry=0, elapsed=0.0) is None


# --- how long ---------------------------------------------------------------------------
def test_delays_are_full_jitter_under_an_exponential_ceiling() -> None:
    policy = _seeded(base_delay=0.5, max_delay=4.0)
    draws = random.Random(7)
    for retry, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        assert kube.backoff_delay(policy, retry) == pytest.approx(draws.random() * ceiling)


def test_the_jitter_spreads_the_delays_over_the_whole_window() -> None:
    policy = kube.RetryPolicy(base_delay=1.0, max_delay=1.0, random=random.Random(3).random)
    delays = [kube.backoff_delay(policy, 0) for _ in range(2000)]
    assert min(delays) < 0.05
    assert max(delays) > 0.95
    assert 0.45 < sum(delays) / len(delays) < 0.55


def test_the_same_seed_gives_the_same_delays() -> None:
    first = [kube.backoff_delay(_seeded(11), retry) for retry in range(6)]
    second = [kube.backoff_delay(_seeded(11), retry) for retry in range(6)]
    assert first == second
    assert first != [kube.backoff_delay(_seeded(12), retry) for retry in range(6)]


def test_retry_after_is_a_floor_spread_by_the_jitter_and_capped() -> None:
    policy = kube.RetryPolicy(base_delay=0.25, max_delay=10.0, random=lambda: 0.5)
    assert kube.backoff_delay(policy, 0, retry_after=2.0) == pytest.approx(2.125)
    assert kube.backoff_delay(policy, 2, retry_after=1.0) == pytest.approx(1.5)
    # A server asking for a minute gets the cap: the attempt budget bounds the rest.
    assert kube.backoff_delay(policy, 0, retry_after=60.0) == 10.0
    never_random = kube.RetryPolicy(random=lambda: 0.0)
    assert kube.backoff_delay(never_random, 3, retry_after=1.0) == 1.0


def test_attempts_are_bounded() -> None:
    policy = _seeded(max_attempts=3, base_delay=0.01)
    delays = [kube.next_delay(policy, reason="ServiceUnavailable", repeatable=True,
                              retry=retry, elapsed=0.0) for retry in range(4)]
    assert [delay is not None for delay in delays] == [True, True, False, False]
    assert kube.next_delay(kube.NO_RETRIES, reason="TooManyRequests", repeatable=True,
                           retry=0, elapsed=0.0) is None


def test_time_is_bounded_no_retry_ends_past_the_budget() -> None:
    policy = kube.RetryPolicy(max_elapsed=5.0, random=lambda: 0.0)
    assert kube.next_delay(policy, reason="TooManyRequests", repeatable=True, retry=0,
                           elapsed=3.5, retry_after=1.0) == 1.0
    assert kube.next_delay(policy, reason="TooManyRequests", repeatable=True, retry=0,
                           elapsed=4.5, retry_after=1.0) is None


def test_the_default_budget_is_about_an_api_server_restart() -> None:
    policy = kube.RetryPolicy(random=lambda: 0.999999)
    total, retry = 0.0, 0
    while (delay := kube.next_delay(policy, reason="ConnectionFailed", repeatable=True,
                                    retry=retry, elapsed=total)) is not None:
        total, retry = total + delay, retry + 1
    assert retry == kube.DEFAULT_RETRY_POLICY.max_attempts - 1 == 7
    assert 25.0 < total <= kube.DEFAULT_RETRY_POLICY.max_elapsed


@pytest.mark.parametrize("fields", [{"max_attempts": 0}, {"base_delay": -1.0},
                                    {"max_elapsed": -0.5}])
def test_a_policy_that_cannot_work_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        kube.RetryPolicy(**fields)


# --- what the server asked for ----------------------------------------------------------
@pytest.mark.parametrize(("header", "body", "seconds"), [
    ("3", None, 3.0),
    (" 1 ", None, 1.0),
    ("0", None, None),
    ("-2", None, None),
    ("Wed, 21 Oct 2026 07:28:00 GMT", None, None),  # an HTTP date: no API server sends one
    (None, {"details": {"retryAfterSeconds": 2}}, 2.0),
    ("5", {"details": {"retryAfterSeconds": 2}}, 5.0),
    (None, {"details": {"retryAfterSeconds": 0}}, None),
    (None, {"details": {"retryAfterSeconds": True}}, None),
    (None, {"details": "?"}, None),
    (None, None, None),
])
def test_retry_after_comes_from_the_header_else_the_status(
    header: str | None, body: dict[str, Any] | None, seconds: float | None,
) -> None:
    assert kube.retry_after_seconds(header, body) == seconds


def test_a_plain_text_429_becomes_a_typed_error_with_its_wait() -> None:
    # API Priority and Fairness answers with Go's http.Error, not a Status.
    error = kube.error_from_response(429, b"Too many requests, please try again later.\n", "1")
    assert (error.status, error.reason, error.retry_after) == (429, "TooManyRequests", 1.0)
    assert error.message.startswith("Too many requests")
    status = (b'{"kind":"Status","code":429,"reason":"TooManyRequests","message":"storage is '
              b'(re)initializing","details":{"retryAfterSeconds":1}}')
    assert kube.error_from_response(429, status).retry_after == 1.0
    assert kube.error_from_response(503, b"").reason == "ServiceUnavailable"


# --- one request's bookkeeping ----------------------------------------------------------
@pytest.fixture
def retries_seen() -> Iterator[list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def observer(verb: str, reason: str) -> None:
        seen.append((verb, reason))

    kube.add_retry_observer(observer)
    yield seen
    kube.remove_retry_observer(observer)


def test_a_conflict_after_an_attempt_of_unknown_fate_says_so(
    retries_seen: list[tuple[str, str]],
) -> None:
    body = {"metadata": {"name": "r1"}}
    attempts = kube.Attempts(_seeded(base_delay=0.01), "create", "POST", FLOWRUNS, body)
    assert attempts.delay_after(kube.KubeError(503, "ServiceUnavailable", "busy")) is not None
    exists = kube.AlreadyExists(409, "AlreadyExists", 'flowruns "r1" already exists')
    assert attempts.delay_after(exists) is None
    assert exists.after_uncertain_attempt
    assert retries_seen == [("create", "ServiceUnavailable")]


def test_a_conflict_after_only_429s_is_not_in_doubt(
    retries_seen: list[tuple[str, str]],
) -> None:
    body = {"metadata": {"name": "r1"}}
    attempts = kube.Attempts(_seeded(base_delay=0.01), "create", "POST", FLOWRUNS, body)
    throttled = kube.KubeError(429, "TooManyRequests", "later", retry_after=0.01)
    assert attempts.delay_after(throttled) is not None
    exists = kube.AlreadyExists(409, "AlreadyExists", 'flowruns "r1" already exists')
    assert attempts.delay_after(exists) is None
    assert not exists.after_uncertain_attempt
    assert retries_seen == [("create", "TooManyRequests")]


def test_a_generate_name_create_gives_up_on_a_5xx_at_once(
    retries_seen: list[tuple[str, str]],
) -> None:
    body = {"metadata": {"generateName": "nightly-"}}
    attempts = kube.Attempts(_seeded(), "create", "POST", FLOWRUNS, body)
    assert attempts.delay_after(kube.KubeError(500, "InternalError", "etcd")) is None
    assert attempts.delay_after(ConnectionResetError(104, "reset")) is None
    assert attempts.retries == 0
    assert retries_seen == []
