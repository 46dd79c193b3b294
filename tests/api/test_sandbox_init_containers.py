"""The sandbox's process kubelet runs init containers and volumes as a kubelet does.

Pods are created directly in the emulator (no operator), with the label the kubelet
watches, and real commands (this interpreter with ``-c``):

* init containers run in order, each to exit 0 before the next, and share an
  ``emptyDir`` with the app container, whose mount path is translated in ``env``;
* under ``restartPolicy: Never`` a failing init container fails the pod: the app
  container never starts and waits in ``PodInitializing``; ``Initialized=False`` names
  the init container (kubernetes pkg/kubelet/kubelet_pods.go ``getPhase``,
  pkg/kubelet/status/generate.go ``GeneratePodInitializedCondition``);
* under ``restartPolicy: OnFailure`` it is restarted after the back-off, its failure in
  ``lastState`` and ``restartCount`` 1;
* a ``secret`` volume holds the Secret's keys, and only the container that mounts it
  sees them.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from headwater import contract
from headwater_dev import process_kubelet as pk
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.harness import wait_for
from headwater_operator import kube as kube_module

REPO = Path(__file__).resolve().parents[2]
SHARED = "/var/run/shared"
SECRETS = kube_module.Resource("", "v1", "secrets", kind="Secret")


@pytest.fixture
async def process_kubelet(emulator: BackgroundEmulator,
                          tmp_path: Path) -> AsyncIterator[pk.ProcessKubelet]:
    runtime = pk.LocalRuntime(workdir=REPO, state_dir=tmp_path / "kubelet")
    running = pk.ProcessKubelet(emulator.url, runtime, log_sink=emulator.append_log)
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        running.stop()
        await task


def python(name: str, code: str, *, mounts: list[dict[str, Any]] | None = None,
           env: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "image": "example/tools:1", "command": [sys.executable, "-c", code],
            "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
            "volumeMounts": mounts or []}


def pod(name: str, init: list[dict[str, Any]], main: dict[str, Any], *,
        restart_policy: str = "Never",
        volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {
                contract.LABEL_MANAGED_BY: contract.MANAGED_BY_VALUE}},
            "spec": {"restartPolicy": restart_policy, "initContainers": init,
                     "containers": [main],
                     "volumes": volumes or [{"name": "shared", "emptyDir": {}}]}}


MOUNT = [{"name": "shared", "mountPath": SHARED}]
APPEND = ("import os, pathlib; p = pathlib.Path(os.environ['OUT']); "
          "p.write_text(p.read_text() + '{word} ' if p.exists() else '{word} ')")


async def ended(emulator: BackgroundEmulator, namespace: str, name: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found = emulator.object("pods", name, namespace) or {}
        return found if (found.get("status") or {}).get("phase") in ("Succeeded",
                                                                     "Failed") else None
    result: dict[str, Any] = await wait_for(done, timeout=60, message=f"pod {name} ended")
    return result


async def test_init_containers_run_in_order_and_share_an_empty_dir(
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
        process_kubelet: pk.ProcessKubelet) -> None:
    out = {"OUT": f"{SHARED}/trace"}
    await kube.create(kube_module.PODS, pod("ordered", [
        python("first", APPEND.format(word="first"), mounts=MOUNT, env=out),
        python("second", APPEND.format(word="second"), mounts=MOUNT, env=out)],
        python("app", "import os; print('trace:', open(os.environ['OUT']).read())",
               mounts=MOUNT, env=out)), namespace=namespace)
    done = await ended(emulator, namespace, "ordered")

    assert done["status"]["phase"] == "Succeeded"
    assert "trace: first second" in emulator.pod_log(namespace, "ordered")
    statuses = done["status"]["initContainerStatuses"]
    assert [(s["name"], s["state"]["terminated"]["exitCode"], s["ready"])
            for s in statuses] == [("first", 0, True), ("second", 0, True)]


async def test_a_failed_init_container_fails_a_never_restart_pod(
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
        process_kubelet: pk.ProcessKubelet) -> None:
    await kube.create(kube_module.PODS, pod("broken", [
        python("fails", "import sys; print('no luck'); sys.exit(3)"),
        python("never", "print('second init ran')")],
        python("app", "print('app ran')")), namespace=namespace)
    done = await ended(emulator, namespace, "broken")

    status = done["status"]
    assert status["phase"] == "Failed"
    first, second = status["initContainerStatuses"]
    assert (first["state"]["terminated"]["exitCode"], first["state"]["terminated"]["reason"]) \
        == (3, "Error")
    assert second["state"] == {"waiting": {"reason": "PodInitializing"}}
    [app] = status["containerStatuses"]
    assert app["state"] == {"waiting": {"reason": "PodInitializing"}}
    initialized = next(c for c in status["conditions"] if c["type"] == "Initialized")
    assert (initialized["status"], initialized["reason"], initialized["message"]) == (
        "False", "ContainersNotInitialized", "containers with incomplete status: [fails never]")
    log = emulator.pod_log(namespace, "broken")
    assert "no luck" in log
    assert "second init ran" not in log
    assert "app ran" not in log


async def test_an_on_failure_pod_restarts_its_init_container_after_the_back_off(
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
        process_kubelet: pk.ProcessKubelet) -> None:
    flaky = ("import os, pathlib, sys; p = pathlib.Path(os.environ['MARK']); "
             "done = p.exists(); p.write_text('x'); sys.exit(0 if done else 1)")
    await kube.create(kube_module.PODS, pod("flaky", [
        python("flaky", flaky, mounts=MOUNT, env={"MARK": f"{SHARED}/tried"})],
        python("app", "print('app ran')"), restart_policy="OnFailure"), namespace=namespace)

    def backing_off() -> dict[str, Any] | None:
        found = emulator.object("pods", "flaky", namespace) or {}
        [init] = (found.get("status") or {}).get("initContainerStatuses") or [{}]
        return init if "waiting" in (init.get("state") or {}) and init.get(
            "restartCount") == 1 else None
    waiting = await wait_for(backing_off, timeout=30, message="CrashLoopBackOff")
    assert waiting["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert waiting["lastState"]["terminated"]["exitCode"] == 1
    assert (emulator.object("pods", "flaky", namespace) or {})["status"]["phase"] == "Pending"
    done = await ended(emulator, namespace, "flaky")
    assert done["status"]["phase"] == "Succeeded"
    [init] = done["status"]["initContainerStatuses"]
    assert (init["restartCount"], init["state"]["terminated"]["exitCode"]) == (1, 0)
    assert "app ran" in emulator.pod_log(namespace, "flaky")


async def test_a_secret_volume_is_seen_only_by_the_container_that_mounts_it(
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
        process_kubelet: pk.ProcessKubelet) -> None:
    await kube.create(SECRETS, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo"},
        "data": {"password": base64.b64encode(b"tok-123").decode()}}, namespace=namespace)
    read = ("import os, pathlib; d = pathlib.Path(os.environ['CREDS']); "
            "print('sees', sorted(p.name for p in d.iterdir()) if d.exists() else 'nothing', "
            "len((d / 'password').read_text()) if (d / 'password').exists() else 0)")
    creds = {"CREDS": "/var/run/creds"}
    volumes = [{"name": "creds", "secret": {"secretName": "repo"}}]
    await kube.create(kube_module.PODS, pod("secretive", [
        python("fetch", read, env=creds,
               mounts=[{"name": "creds", "mountPath": "/var/run/creds", "readOnly": True}])],
        python("app", read, env=creds), volumes=volumes), namespace=namespace)
    done = await ended(emulator, namespace, "secretive")

    assert done["status"]["phase"] == "Succeeded"
    log = emulator.pod_log(namespace, "secretive")
    assert "sees ['password'] 7" in log  # the init container read the 7-byte value
    assert "sees nothing 0" in log  # the app container has no such mount
