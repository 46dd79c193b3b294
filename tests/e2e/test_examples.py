"""The examples on a real cluster: runs complete, a Schedule fires, cancel works, /metrics.

Opt-in (``HEADWATER_E2E=1``); ``scripts/e2e-kind.sh`` builds the images, installs the
chart on kind and runs these. The same scenarios run on every commit against the
in-process emulator (``tests/api``); here they prove the images, the chart's RBAC and a
real kubelet agree with it.
"""

from __future__ import annotations

import os
from typing import Any

from .headwater_e2e import (
    Kubectl,
    apply_docs,
    completion_docs,
    interval_schedule_docs,
    unique,
    wait_until,
)

TERMINAL = {"Completed", "Failed", "Crashed", "Cancelled"}


def _phase(kubectl: Kubectl, name: str) -> str:
    run = kubectl.json("get", "flowruns.headwater.dev", name)
    return str((run.get("status") or {}).get("phase") or "")


def _status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    status: dict[str, Any] = kubectl.json("get", "flowruns.headwater.dev", name).get(
        "status") or {}
    return status


def test_examples_run_to_completion(kubectl: Kubectl, flow_image: str,
                                    timeout: float) -> None:
    created = apply_docs(kubectl, completion_docs(flow_image))
    assert len(created) == 4, created  # hello, ingest window, two asset runs

    def all_done() -> list[str] | None:
        phases = [_phase(kubectl, name) for name in created]
        return phases if all(p in TERMINAL for p in phases) else None

    phases = wait_until(all_done, timeout, "every example FlowRun reaching a final phase")
    assert phases == ["Completed"] * len(created), dict(zip(created, phases, strict=True))
    hello = _status(kubectl, created[0])
    assert hello["taskRuns"] == {"Completed": 1}
    assets = _status(kubectl, created[2])["assets"]
    lineage = {a["key"]: a["upstream"] for a in assets}
    assert lineage["warehouse://analytics/daily_revenue"] == [
        "file://headwater-examples/processed/orders"]


def test_interval_schedule_fires(kubectl: Kubectl, flow_image: str, timeout: float) -> None:
    docs = interval_schedule_docs(flow_image, unique("e2e"))
    deployment_name, schedule_name = (d["metadata"]["name"] for d in docs[1:])
    apply_docs(kubectl, docs)

    def fired() -> list[str]:
        return [r["metadata"]["name"] for r in kubectl.runs()
                if (r["metadata"].get("labels") or {}).get("headwater.dev/schedule")
                == schedule_name and (r.get("status") or {}).get("phase") == "Completed"]

    try:
        assert wait_until(fired, min(timeout, 120), f"a Completed run of Schedule {schedule_name}")
        status = kubectl.json("get", "schedules.headwater.dev", schedule_name)["status"]
        assert status["nextScheduleTime"]
    finally:
        # It would fire forever; the Deployment goes with it (its runs are garbage).
        kubectl("delete", "schedules.headwater.dev", schedule_name, "--wait=false",
                check=False)
        kubectl("delete", "deployments.headwater.dev", deployment_name, "--wait=false",
                check=False)


def test_cancel_a_running_run(kubectl: Kubectl, flow_image: str, timeout: float) -> None:
    name = unique("nap")
    apply_docs(kubectl, [
        {"apiVersion": "headwater.dev/v1alpha1", "kind": "Flow", "metadata": {"name": "sleepy"},
         "spec": {"image": flow_image, "imagePullPolicy": "IfNotPresent",
                  "entrypoint": "examples/flows/sleepy.py:sleepy"}},
        {"apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
         "metadata": {"name": "sleepy"},
         "spec": {"flowRef": {"name": "sleepy"}, "cancelGracePeriodSeconds": 20}},
        {"apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun", "metadata": {"name": name},
         "spec": {"deploymentRef": {"name": "sleepy"}, "parameters": {"seconds": 600}}},
    ])
    wait_until(lambda: _phase(kubectl, name) == "Running", timeout, f"FlowRun {name} Running")
    kubectl("patch", "flowruns.headwater.dev", name, "--type", "merge",
            "-p", '{"spec":{"cancel":true}}')
    wait_until(lambda: _phase(kubectl, name) in TERMINAL, 90, f"FlowRun {name} ending")
    status = _status(kubectl, name)
    assert (status["phase"], status["reason"]) == ("Cancelled", "Cancelled"), status


def test_operator_metrics_count_the_runs(kubectl: Kubectl) -> None:
    namespace = os.environ.get("HEADWATER_E2E_OPERATOR_NAMESPACE", "headwater-system")
    services = kubectl.json("get", "services", "-n", namespace, namespaced=False)["items"]
    service = next(s["metadata"]["name"] for s in services
                   if any(p.get("name") == "metrics" for p in s["spec"].get("ports") or ()))
    # Through the API server's service proxy: no port-forward process to manage.
    text = kubectl("get", "--raw",
                   f"/api/v1/namespaces/{namespace}/services/{service}:metrics/proxy/metrics",
                   namespaced=False)
    completed = [line for line in text.splitlines()
                 if line.startswith("headwater_runs_total{") and 'phase="Completed"' in line
                 and f'namespace="{kubectl.namespace}"' in line]
    assert completed, "no headwater_runs_total{phase=Completed} series for the test namespace"
    assert sum(float(line.split()[-1]) for line in completed) >= 4
    assert "headwater_kubernetes_api_requests_total" in text
