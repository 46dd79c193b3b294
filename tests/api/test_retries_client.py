"""Headwater's Kubernetes client against an emulator that fails on purpose.

The client (``Kube``, and ``BlockingKube``, the CLI's facade over it) retries what
``kube.RetryPolicy`` says — 429 for any request; 5xx and lost connections only for
requests safe to send twice — and give up on the rest at once. The emulator's fault plan
(``headwater_dev/faults.py``) plays the busy or restarting API server; its request log shows
what actually reached the server.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from headwater_dev import faults
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.faults import FaultPlan
from headwater_operator import kube as k
from headwater_operator import metrics, runner

NS = "default"
FAST = k.RetryPolicy(base_delay=0.01, max_delay=0.05, random=random.Random(1).random)
"""Quick retries: the tests need not wait out real backoffs (one test does)."""


@pytest.fixture
def plan(emulator: BackgroundEmulator) -> FaultPlan:
    return emulator.install_faults(FaultPlan(seed=3))


@pytest.fixture
def fast(emulator: BackgroundEmulator) -> k.Kube:
    return k.Kube(retry=FAST)


@pytest.fixture
def retries() -> Iterator[list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def observer(verb: str, reason: str) -> None:
        seen.append((verb, reason))

    k.add_retry_observer(observer)
    yield seen
    k.remove_retry_observer(observer)


def _configmap(name: str = "", generate_name: str = "") -> dict[str, Any]:
    meta = {"name": name} if name else {"generateName": generate_name}
    return {"metadata": meta, "data": {"k": "v"}}


CONFIGMAPS = k.Resource("", "v1", "configmaps", kind="ConfigMap")


def _codes(emulator: BackgroundEmulator, verb: str) -> list[int]:
    return [r.code for r in emulator.requests.records
            if r.verb == verb and r.resource == "configmaps"]


# --- the async client -------------------------------------------------------------------
async def test_a_read_is_retried_through_5xx_and_lost_connections(
    emulator: BackgroundEmulator, plan: FaultPlan, fast: k.Kube,
    retries: list[tuple[str, str]],
) -> None:
    await fast.create(CONFIGMAPS, _configmap("c1"), namespace=NS)
    plan.add(faults.service_unavailable(), verb="get")
    plan.add(faults.internal_error(), verb="get")
    plan.add(faults.Reset(), verb="get")
    plan.add(faults.gateway_timeout(), verb="get")
    got = await fast.get(CONFIGMAPS, "c1", namespace=NS)
    assert got["data"] == {"k": "v"}
    assert _codes(emulator, "get") == [503, 500, 0, 504, 200]
    assert retries == [("get", "ServiceUnavailable"), ("get", "InternalError"),
                       ("get", "ConnectionFailed"), ("get", "Timeout")]


async def test_a_429_waits_at_least_what_retry_after_asks(
    emulator: BackgroundEmulator, plan: FaultPlan, retries: list[tuple[str, str]],
) -> None:
    plan.add(faults.throttled(retry_after=1), verb="list")
    client = k.Kube(retry=k.RetryPolicy(base_delay=0.01))
    started = time.monotonic()
    assert await client.list(CONFIGMAPS, namespace=NS) == []
    assert time.monotonic() - started >= 1.0
    assert _codes(emulator, "list") == [429, 200]
    assert retries == [("list", "TooManyRequests")]


async def test_a_named_create_whose_answer_was_lost_meets_itself(
    emulator: BackgroundEmulator, plan: FaultPlan, fast: k.Kube,
) -> None:
    plan.add(faults.Reset(after_serving=True), verb="create")
    with pytest.raises(k.AlreadyExists) as caught:
        await fast.create(CONFIGMAPS, _configmap("c1"), namespace=NS)
    assert caught.value.after_uncertain_attempt
    assert _codes(emulator, "create") == [0, 409]
    assert len(emulator.objects("configmaps", NS)) == 1


async def test_a_named_create_is_retried_through_a_5xx(
    emulator: BackgroundEmulator, plan: FaultPlan, fast: k.Kube,
) -> None:
    plan.add(faults.internal_error(), verb="create", times=2)
    await fast.create(CONFIGMAPS, _configmap("c1"), namespace=NS)
    assert _codes(emulator, "create") == [500, 500, 201]


@pytest.mark.parametrize("fault", [faults.internal_error(), faults.service_unavailable(),
                                   faults.Reset(), faults.Reset(after_serving=True)])
async def test_a_generate_name_create_is_never_repeated_after_a_5xx_or_a_lost_connection(
    emulator: BackgroundEmulator, plan: FaultPlan, fast: k.Kube, fault: faults.Fault,
    retries: list[tuple[str, str]],
) -> None:
    plan.add(fault, verb="create")
    with pytest.raises((k.KubeError, OSError)):
        await fast.create(CONFIGMAPS, _configmap(generate_name="c-"), namespace=NS)
    assert len(_codes(emulator, "create")) == 1
    assert retries == []
    # The one attempt made at most one object (after_serving: it did, the answer was lost).
    assert len(emulator.objects("configmaps", NS)) == int(fault == faults.Reset(True))


async def test_a_generate_name_create_is_retried_on_429_which_applies_nothing(
    emulator: BackgroundEmulator, plan: FaultPlan, fast: k.Kube,
) -> None:
    plan.add(faults.too_many_requests(), verb="create")
    created = await fast.create(CONFIGMAPS, _configmap(generate_name="c-"), namespace=NS)
    assert created["metadata"]["name"].startswith("c-")
    assert _codes(emulator, "create") == [429, 201]
    assert len(emulator.objects("configmaps", NS)) == 1


async def test_a_patch_is_retried_only_with_a_precondition(
    emulator: BackgroundEmulator, plan: FaultPlan, fast: k.Kube,
) -> None:
    made = await fast.create(CONFIGMAPS, _configmap("c1"), namespace=NS)
    plan.add(faults.internal_error(), verb="patch", times=None)
    with pytest.raises(k.KubeError) as caught:
        await fast.patch(CONFIGMAPS, "c1", {"data": {"k": "2"}}, namespace=NS)
    assert caught.value.status == 500
    assert _codes(emulator, "patch") == [500]
    plan.rules.clear()
    plan.add(faults.internal_error(), verb="patch", times=2)
    version = made["metadata"]["resourceVersion"]
    patched = await fast.patch(CONFIGMAPS, "c1", {
        "metadata": {"resourceVersion": version}, "data": {"k": "3"}}, namespace=NS)
    assert patched["data"] == {"k": "3"}
    await fast.patch(CONFIGMAPS, "c1", [
        k.jp_test("/metadata/resourceVersion", patched["metadata"]["resourceVersion"]),
        k.jp_replace("/data/k", "4")], namespace=NS)
    assert _codes(emulator, "patch") == [500, 500, 500, 200, 200]


async def test_a_conditional_patch_whose_answer_was_lost_fails_its_precondition(
    emulator: BackgroundEmulator, plan: FaultPlan, fast: k.Kube,
) -> None:
    made = await fast.create(CONFIGMAPS, _configmap("c1"), namespace=NS)
    plan.add(faults.Reset(after_serving=True), verb="patch")
    with pytest.raises(k.Conflict) as caught:
        await fast.patch(CONFIGMAPS, "c1", {"metadata": {
            "resourceVersion": made["metadata"]["resourceVersion"]}, "data": {"k": "2"}},
            namespace=NS)
    assert caught.value.after_uncertain_attempt
    stored = emulator.object("configmaps", "c1")
    assert stored is not None
    assert stored["data"] == {"k": "2"}  # applied exactly once


async def test_a_delete_is_retried_only_with_a_precondition(
    emulator: BackgroundEmulator, plan: FaultPlan, fast: k.Kube,
) -> None:
    first = await fast.create(CONFIGMAPS, _configmap("c1"), namespace=NS)
    await fast.create(CONFIGMAPS, _configmap("c2"), namespace=NS)
    plan.add(faults.service_unavailable(), verb="delete", times=None)
    with pytest.raises(k.KubeError):
        await fast.delete(CONFIGMAPS, "c2", namespace=NS)
    assert _codes(emulator, "delete") == [503]
    plan.rules.clear()
    plan.add(faults.service_unavailable(), verb="delete", times=1)
    await fast.delete(CONFIGMAPS, "c1", namespace=NS,
                      resource_version=first["metadata"]["resourceVersion"])
    assert _codes(emulator, "delete") == [503, 503, 200]
    assert emulator.object("configmaps", "c1") is None


@pytest.mark.parametrize("verb", ["delete", "update"])
async def test_nothing_beneath_the_policy_resends_an_unsafe_request(
    emulator: BackgroundEmulator, plan: FaultPlan, fast: k.Kube, verb: str,
) -> None:
    # aiohttp on its own resends a DELETE or PUT once after a lost connection (both
    # idempotent in HTTP); without a precondition neither is safe here.
    await fast.create(CONFIGMAPS, _configmap("c1"), namespace=NS)
    plan.add(faults.Reset(after_serving=True), verb=verb)
    send = (fast.delete(CONFIGMAPS, "c1", namespace=NS) if verb == "delete" else
            fast.replace(CONFIGMAPS, {**_configmap("c1"), "data": {"k": "2"}}, namespace=NS))
    with pytest.raises(OSError, match="reset by peer"):
        await send
    assert len(_codes(emulator, verb)) == 1


async def test_a_watch_is_retried_until_its_stream_starts(
    emulator: BackgroundEmulator, plan: FaultPlan, fast: k.Kube,
) -> None:
    await fast.create(CONFIGMAPS, _configmap("c1"), namespace=NS)
    plan.add(faults.too_many_requests(), verb="watch")
    plan.add(faults.Reset(), verb="watch")
    events = [(kind, obj["metadata"]["name"]) async for kind, obj in fast.watch(
        CONFIGMAPS, namespace=NS, timeout_seconds=1)]
    assert events == [("ADDED", "c1")]
    assert _codes(emulator, "watch") == [429, 0, 200]


async def test_giving_up_raises_the_last_failure_within_the_budget(
    emulator: BackgroundEmulator, plan: FaultPlan,
) -> None:
    plan.add(faults.internal_error(), verb="get", times=None)
    client = k.Kube(retry=k.RetryPolicy(max_attempts=4, base_delay=0.01))
    with pytest.raises(k.KubeError, match="Internal error occurred"):
        await client.get(CONFIGMAPS, "c1", namespace=NS)
    assert _codes(emulator, "get") == [500] * 4


async def test_retries_are_counted_in_the_metrics(
    emulator: BackgroundEmulator, plan: FaultPlan, fast: k.Kube,
) -> None:
    runner.attach_metrics()
    try:
        def count(reason: str) -> float:
            return metrics.REGISTRY.get_sample_value(
                "headwater_kubernetes_api_retries_total",
                {"verb": "list", "reason": reason}) or 0.0

        before = count("ServiceUnavailable"), count("TooManyRequests")
        plan.add(faults.service_unavailable(), verb="list")
        plan.add(faults.throttled(), verb="list")
        await fast.list(CONFIGMAPS, namespace=NS)
        assert (count("ServiceUnavailable"), count("TooManyRequests")) == (
            before[0] + 1, before[1] + 1)
    finally:
        k.remove_request_observer(metrics.observe_api_request)
        k.remove_retry_observer(metrics.observe_api_retry)


# --- the blocking facade (the CLI's) -----------------------------------------------------
def test_the_blocking_client_retries_reads_and_named_creates(
    emulator: BackgroundEmulator, plan: FaultPlan, retries: list[tuple[str, str]],
) -> None:
    plan.add(faults.internal_error(), verb="create")
    plan.add(faults.Reset(), verb="get")
    plan.add(faults.throttled(), verb="get")
    with k.BlockingKube(retry=FAST) as client:
        client.create(CONFIGMAPS, _configmap("c1"), namespace=NS)
        assert client.get(CONFIGMAPS, "c1", namespace=NS)["data"] == {"k": "v"}
    assert _codes(emulator, "create") == [500, 201]
    assert _codes(emulator, "get") == [0, 429, 200]
    assert retries == [("create", "InternalError"), ("get", "ConnectionFailed"),
                       ("get", "TooManyRequests")]


def test_the_blocking_client_never_repeats_a_generate_name_create_after_a_5xx(
    emulator: BackgroundEmulator, plan: FaultPlan,
) -> None:
    plan.add(faults.service_unavailable(), verb="create")
    with k.BlockingKube(retry=FAST) as client, pytest.raises(k.KubeError) as caught:
        client.create(CONFIGMAPS, _configmap(generate_name="c-"), namespace=NS)
    assert (caught.value.status, caught.value.message) == (503, "apiserver is shutting down")
    assert _codes(emulator, "create") == [503]
    assert emulator.objects("configmaps", NS) == []


def test_nothing_beneath_the_policy_retries_the_blocking_clients_reads(
    emulator: BackgroundEmulator, plan: FaultPlan,
) -> None:
    # aiohttp resends a GET once by itself after a lost connection; under our 4 attempts
    # that would send 8 requests (the old urllib3 stack's own 3 retries would send 16).
    plan.add(faults.Reset(), verb="get", times=None)
    policy = k.RetryPolicy(max_attempts=4, base_delay=0.01)
    with k.BlockingKube(retry=policy) as client, pytest.raises(OSError, match="reset by peer"):
        client.get(CONFIGMAPS, "c1", namespace=NS)
    assert _codes(emulator, "get") == [0] * 4
