"""Flow and Deployment status against the emulated API: Ready, Paused, counts, lastRun."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from headwater_dev.emulator import BackgroundEmulator as Emulator
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet
from headwater_operator import kube as kube_module

WaitFor = Callable[..., Awaitable[Any]]
ApiWrites = Any  # tests/api/conftest.py:ApiWrites (conftest is not importable)

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}}


def flow(name: str = "hello", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"image": "example/flow:1", "entrypoint": "flows/hello.py:hello",
                 "parametersSchema": SCHEMA, **spec},
    }


def deployment(name: str = "nightly", flow_name: str = "hello", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"flowRef": {"name": flow_name}, **spec},
    }


def flowrun(name: str, deployment_name: str = "nightly") -> dict[str, Any]:
    return {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
        "metadata": {"name": name},
        "spec": {"deploymentRef": {"name": deployment_name}},
    }


def condition(emulator: Emulator, plural: str, name: str, type_: str = "Ready") -> dict[str, Any]:
    obj = emulator.object(plural, name) or {}
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def status(emulator: Emulator, plural: str, name: str) -> dict[str, Any]:
    return dict((emulator.object(plural, name) or {}).get("status") or {})


async def test_valid_flow_becomes_ready_with_observed_generation(
    *, operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator, namespace: str,
    wait_for: WaitFor, api_writes: ApiWrites,
) -> None:
    await kube.create(kube_module.FLOWS, flow(), namespace=namespace)

    await wait_for(lambda: condition(emulator, "flows", "hello").get("reason") == "Valid")

    ready = condition(emulator, "flows", "hello")
    assert ready["status"] == "True"
    assert ready["observedGeneration"] == 1
    assert status(emulator, "flows", "hello")["observedGeneration"] == 1
    # Status-only: kopf wrote no annotations or finalizers on the user's Flow.
    meta = (emulator.object("flows", "hello") or {})["metadata"]
    assert not meta.get("finalizers")
    assert not any(k.startswith("headwater.dev/") for k in meta.get("annotations") or {})
    assert api_writes.count(resource="flows") == 1  # the create; nothing but status after


async def test_invalid_parameters_schema_is_reported_and_clears_when_fixed(
    *, operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator, namespace: str,
    wait_for: WaitFor,
) -> None:
    bad = {"type": "object", "properties": {"n": {"type": "integr"}}}
    await kube.create(kube_module.FLOWS, flow(parametersSchema=bad), namespace=namespace)

    await wait_for(
        lambda: condition(emulator, "flows", "hello").get("reason") == "InvalidParametersSchema"
    )
    ready = condition(emulator, "flows", "hello")
    assert ready["status"] == "False"
    assert "spec.parametersSchema" in ready["message"]
    assert "properties/n/type" in ready["message"]

    await kube.patch(kube_module.FLOWS, "hello", {"spec": {"parametersSchema": SCHEMA}},
                     namespace=namespace)

    await wait_for(lambda: condition(emulator, "flows", "hello").get("status") == "True")
    assert status(emulator, "flows", "hello")["observedGeneration"] == 2
    # Events are posted from kopf's queue, possibly a moment after the status write.
    await wait_for(lambda: {
        e.get("reason") for e in emulator.objects("events", namespace)
        if (e.get("involvedObject") or {}).get("kind") == "Flow"
    } == {"InvalidParametersSchema", "Valid"})


async def test_invalid_entrypoint_is_reported(
    *, operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator, namespace: str,
    wait_for: WaitFor,
) -> None:
    # The model's regex is looser than the check (a dotted name must be a module path).
    await kube.create(kube_module.FLOWS, flow(entrypoint="my-pkg.flows:run"), namespace=namespace)

    await wait_for(
        lambda: condition(emulator, "flows", "hello").get("reason") == "InvalidEntrypoint"
    )
    message = condition(emulator, "flows", "hello")["message"]
    assert "spec.entrypoint" in message
    assert "neither a dotted module path nor a .py file path" in message


async def test_deployment_follows_its_flow_appearing_breaking_and_disappearing(
    *, operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator, namespace: str,
    wait_for: WaitFor,
) -> None:
    await kube.create(kube_module.DEPLOYMENTS, deployment(), namespace=namespace)
    await wait_for(
        lambda: condition(emulator, "deployments", "nightly").get("reason") == "FlowNotFound"
    )
    assert "spec.flowRef.name" in condition(emulator, "deployments", "nightly")["message"]

    await kube.create(kube_module.FLOWS, flow(), namespace=namespace)
    await wait_for(lambda: condition(emulator, "deployments", "nightly").get("reason") == "Valid")
    assert condition(emulator, "deployments", "nightly")["status"] == "True"

    await kube.patch(kube_module.FLOWS, "hello", {"spec": {"parametersSchema": {"type": 3}}},
                     namespace=namespace)
    await wait_for(
        lambda: condition(emulator, "deployments", "nightly").get("reason") == "FlowNotReady"
    )
    assert "InvalidParametersSchema" in condition(emulator, "deployments", "nightly")["message"]

    await kube.delete(kube_module.FLOWS, "hello", namespace=namespace)
    await wait_for(
        lambda: condition(emulator, "deployments", "nightly").get("reason") == "FlowNotFound"
    )


async def test_deployment_parameters_are_checked_against_the_flow_schema(
    *, operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator, namespace: str,
    wait_for: WaitFor,
) -> None:
    await kube.create(kube_module.FLOWS, flow(), namespace=namespace)
    await kube.create(kube_module.DEPLOYMENTS, deployment(parameters={"n": "three"}),
                      namespace=namespace)

    await wait_for(
        lambda: condition(emulator, "deployments", "nightly").get("reason") == "InvalidParameters"
    )
    assert "spec.parameters.n" in condition(emulator, "deployments", "nightly")["message"]


async def test_paused_deployment_is_ready_and_says_it_is_paused(
    *, operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator, namespace: str,
    wait_for: WaitFor,
) -> None:
    await kube.create(kube_module.FLOWS, flow(), namespace=namespace)
    await kube.create(kube_module.DEPLOYMENTS, deployment(paused=True), namespace=namespace)

    await wait_for(
        lambda: condition(emulator, "deployments", "nightly", "Paused").get("status") == "True"
    )
    await wait_for(lambda: condition(emulator, "deployments", "nightly").get("status") == "True")

    await kube.patch(kube_module.DEPLOYMENTS, "nightly", {"spec": {"paused": False}},
                     namespace=namespace)
    await wait_for(
        lambda: condition(emulator, "deployments", "nightly", "Paused").get("status") == "False"
    )
    assert status(emulator, "deployments", "nightly")["observedGeneration"] == 2


async def test_deployment_counts_active_and_queued_runs_and_shows_the_last_run(
    *, operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator, namespace: str,
    kubelet: Kubelet, wait_for: WaitFor,
) -> None:
    await kube.create(kube_module.FLOWS, flow(), namespace=namespace)
    await kube.create(
        kube_module.DEPLOYMENTS,
        deployment(concurrency={"limit": 1, "collisionStrategy": "Enqueue"}),
        namespace=namespace,
    )
    await kube.create(kube_module.FLOWRUNS, flowrun("first"), namespace=namespace)
    pod = await kubelet.wait_for_pod("first-1", timeout=10)
    await kube.create(kube_module.FLOWRUNS, flowrun("second"), namespace=namespace)

    def counts() -> tuple[Any, Any]:
        current = status(emulator, "deployments", "nightly")
        return current.get("activeRuns"), current.get("queuedRuns")

    await wait_for(lambda: counts() == (1, 1))
    await wait_for(
        lambda: (status(emulator, "deployments", "nightly").get("lastRun") or {}).get("name")
        == "second"
    )

    await kubelet.run(pod)
    await kubelet.succeed(pod)
    second = await kubelet.wait_for_pod("second-1", timeout=10)
    await wait_for(lambda: counts() == (1, 0))
    await kubelet.run(second)
    await kubelet.succeed(second)

    await wait_for(lambda: counts() == (0, 0))
    await wait_for(
        lambda: (status(emulator, "deployments", "nightly").get("lastRun") or {}).get("phase")
        == "Completed"
    )
    last = status(emulator, "deployments", "nightly")["lastRun"]
    assert last["name"] == "second"
    assert "endTime" in last
