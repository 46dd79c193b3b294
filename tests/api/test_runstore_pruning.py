"""The run store end to end, the operator's side (docs/run-store.md, "The operator").

Against the emulated API server, with the real operator and the scriptable kubelet: each
attempt's pod gets ``HEADWATER_RUN_STORE``; its status names where the record goes
(``runRecords``) and whether it was written; history pruning deletes a pruned FlowRun's
records in a real local directory store, and a store the operator cannot delete in is
reported on the Deployment without stopping the prune.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from headwater import contract, runstore
from headwater.results import resolve_storage
from headwater_dev.emulator import BackgroundEmulator as Emulator
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet
from headwater_operator import kube as kube_module

WaitFor = Callable[..., Awaitable[Any]]
CreateDeployment = Callable[..., Awaitable[None]]


def status_of(emulator: Emulator, name: str) -> dict[str, Any]:
    return dict((emulator.object("flowruns", name) or {}).get("status") or {})


def events_with(emulator: Emulator, namespace: str, reason: str) -> list[dict[str, Any]]:
    return [event for event in emulator.objects("events", namespace)
            if event.get("reason") == reason]


async def run_to_completion(
    *, kube: kube_module.Kube, kubelet: Kubelet, emulator: Emulator, wait_for: WaitFor,
    namespace: str, name: str, root: str, record_written: bool,
) -> None:
    """Create a FlowRun of ``nightly``; its pod writes its record as the SDK would (when
    ``record_written``) and exits with a summary that says whether it did."""
    await kube.create(kube_module.FLOWRUNS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun", "metadata": {"name": name},
        "spec": {"deploymentRef": {"name": "nightly"}},
    }, namespace=namespace)
    pod = await kubelet.wait_for_pod(f"{name}-1", timeout=10)
    (container,) = pod["spec"]["containers"]
    env = {var["name"]: var.get("value") for var in container["env"]}
    assert env[contract.ENV_RUN_STORE] == root
    url = runstore.attempt_url(root, namespace, name, 1)
    # The status write that names the pod (it comes after the pod) names the record's
    # location too.
    await wait_for(lambda: status_of(emulator, name).get("podName") == f"{name}-1")
    assert status_of(emulator, name)["runRecords"] == [{"attempt": 1, "url": url}]
    await kubelet.run(pod)
    if record_written:
        storage = resolve_storage(url)
        storage.write(runstore.RECORD_FILE,
                      b'{"schemaVersion": "headwater.dev/run-record/v1", "complete": true}')
        storage.write(runstore.segment_name(0), b'{"message": "hello"}\n')
    await kubelet.succeed(pod, {"version": contract.SUMMARY_VERSION, "state": "Completed",
                                "reason": "Completed", "message": "done",
                                "recordWritten": record_written})

    def finished() -> bool:
        run = emulator.object("flowruns", name)
        return run is None or (run.get("status") or {}).get("phase") == "Completed"

    await wait_for(finished, timeout=10)


async def test_pruning_deletes_the_pruned_runs_records_and_keeps_the_others(
    *, hello_deployment: CreateDeployment, operator: OperatorHarness,
    kube: kube_module.Kube, emulator: Emulator, namespace: str, kubelet: Kubelet,
    wait_for: WaitFor, tmp_path: Path,
) -> None:
    # The operator-wide default (--run-store; the chart's runStore.url): the Deployment
    # names no store of its own.
    root = str(tmp_path / "store")
    operator.run_store = root
    await operator.restart()
    await hello_deployment(history={"successfulRunsLimit": 1})
    flowruns = tmp_path / "store" / "flowruns" / "v1" / namespace

    await run_to_completion(kube=kube, kubelet=kubelet, emulator=emulator, wait_for=wait_for,
                            namespace=namespace, name="first", root=root, record_written=True)
    assert status_of(emulator, "first")["runRecords"] == [{
        "attempt": 1, "url": runstore.attempt_url(root, namespace, "first", 1),
        "written": True}]
    assert (flowruns / "first" / "1" / "record.json").is_file()

    await run_to_completion(kube=kube, kubelet=kubelet, emulator=emulator, wait_for=wait_for,
                            namespace=namespace, name="second", root=root, record_written=True)

    # "first" is beyond successfulRunsLimit=1: the FlowRun and its records go.
    await wait_for(lambda: emulator.object("flowruns", "first") is None, timeout=10)
    await wait_for(lambda: not (flowruns / "first").exists(), timeout=10)
    assert (flowruns / "second" / "1" / "record.json").is_file()
    assert (flowruns / "second" / "1" / "logs" / "000000.jsonl").is_file()
    assert runstore.read_record(runstore.attempt_url(root, namespace, "second", 1))[
        "complete"] is True
    assert events_with(emulator, namespace, "RunRecordsNotDeleted") == []
    assert events_with(emulator, namespace, "RunRecordNotWritten") == []


async def test_a_store_the_operator_cannot_delete_in_does_not_stop_the_prune(
    *, hello_deployment: CreateDeployment, operator: OperatorHarness,
    kube: kube_module.Kube, emulator: Emulator, namespace: str, kubelet: Kubelet,
    wait_for: WaitFor, tmp_path: Path,
) -> None:
    # A root that is a regular file: nothing can be written or deleted under it, by the
    # pods (their summaries say recordWritten: false) or by the operator.
    broken = tmp_path / "not-a-directory"
    broken.write_text("a file where the store's root should be")
    root = str(broken)
    await hello_deployment(history={"successfulRunsLimit": 1}, runStore={"url": root})

    for name in ("first", "second"):
        await run_to_completion(kube=kube, kubelet=kubelet, emulator=emulator,
                                wait_for=wait_for, namespace=namespace, name=name, root=root,
                                record_written=False)

    # The run is pruned all the same ...
    await wait_for(lambda: emulator.object("flowruns", "first") is None, timeout=10)
    # ... and the Deployment says which records are left behind, and where.
    await wait_for(lambda: events_with(emulator, namespace, "RunRecordsNotDeleted"),
                   timeout=10)
    (event,) = events_with(emulator, namespace, "RunRecordsNotDeleted")
    assert event["type"] == "Warning"
    assert event["involvedObject"]["kind"] == "Deployment"
    assert f"{root}/flowruns/v1/{namespace}/first/" in event["message"]
    # Each attempt that could not write its record is marked and said on its FlowRun.
    assert status_of(emulator, "second")["runRecords"] == [{
        "attempt": 1, "url": runstore.attempt_url(root, namespace, "second", 1),
        "written": False}]
    await wait_for(lambda: any(
        e["involvedObject"]["name"] == "second" and e["type"] == "Warning"
        for e in events_with(emulator, namespace, "RunRecordNotWritten")), timeout=10)
