"""The web UI over the emulator, with the operator and a real run (issue #13).

A flow with a retried task, a cached task, a subflow, artifacts and an asset runs
through the process kubelet with a run store on disk; ``create_app`` watches the
emulator (no state handed in), so ``/runs`` lists the FlowRun from its informers, the
run's page shows the record's parts, the task-run JSON comes from the store, and the
logs are read from the store once the pod is gone.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from headwater_dev import process_kubelet as pk
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.harness import OperatorHarness, wait_for
from headwater_operator import kube as kube_module
from headwater_operator.ui.app import UiOptions, create_app
from orders_pipeline import create_orders_run

REPO = Path(__file__).resolve().parents[2]
TERMINAL = ("Completed", "Failed", "Crashed", "Cancelled")


async def test_the_ui_lists_a_real_run_and_shows_its_record_and_logs(
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
        operator: OperatorHarness, tmp_path: Path) -> None:
    runtime = pk.LocalRuntime(workdir=REPO, state_dir=tmp_path / "kubelet")
    kubelet = pk.ProcessKubelet(emulator.url, runtime, log_sink=emulator.append_log)
    kubelet_task = asyncio.create_task(kubelet.run())
    app = create_app(UiOptions(namespaces=[namespace]))
    try:
        async with TestClient(TestServer(app)) as client:
            await create_orders_run(kube, namespace, "orders-ui-1", {
                "tags": ["finance"], "runStore": {"url": str(tmp_path / "store")}})

            def finished() -> dict[str, Any] | None:
                obj = emulator.object("flowruns", "orders-ui-1", namespace) or {}
                return obj if (obj.get("status") or {}).get("phase") in TERMINAL else None

            run = await wait_for(finished, timeout=90, message="FlowRun orders-ui-1 ended")
            assert run["status"]["phase"] == "Completed", run["status"]

            async def page(path: str) -> str:
                response = await client.get(path)
                assert response.status == 200, path
                return await response.text()

            # the UI's watch delivers the final status (no polling of the API server)
            async def listed() -> bool:
                text = await page("/runs?deployment=orders")
                return 'data-phase="Completed"' in text and ">orders-ui-1<" in text

            for _ in range(100):
                if await listed():
                    break
                await asyncio.sleep(0.1)
            listing = await page("/runs?deployment=orders&tag=finance")
            assert re.findall(r'data-testid="run-link">([^<]+)<', listing) == ["orders-ui-1"]
            assert ">orders<" in listing  # the flow, through the Deployment

            detail = await page(f"/runs/{namespace}/orders-ui-1")
            assert "Completed" in detail
            assert "orders-summary" in detail  # an artifact, rendered
            assert "s3://lake/marts/daily-orders" in detail
            assert 'data-testid="subflow-row"' in detail
            assert 'aria-label="Timeline of ' in detail

            tasks = await (await client.get(
                f"/api/runs/{namespace}/orders-ui-1/taskruns")).json()
            labels = [row["label"] for row in tasks["taskRuns"]]
            assert labels[:3] == ["extract-0", "transform-0", "load-0"], labels
            assert any(label.startswith("report-0 → ") for label in labels), labels
            extract = tasks["taskRuns"][0]
            assert extract["attempts"] == 2
            found = await (await client.get(
                f"/api/runs/{namespace}/orders-ui-1/taskruns?q=transf")).json()
            assert [row["label"] for row in found["taskRuns"]] == ["transform-0"] * 2
            assert [row["cacheHit"] for row in found["taskRuns"]] == [False, True]
            task_detail = await page(
                f"/api/runs/{namespace}/orders-ui-1/taskruns/{extract['id']}")
            assert "orders for 2026-12-01 are not exported yet" in task_detail

            await kube.delete(kube_module.PODS, "orders-ui-1-1", namespace=namespace)
            await wait_for(lambda: emulator.object("pods", "orders-ui-1-1", namespace) is None,
                           timeout=30, message="pod orders-ui-1-1 deleted")
            logs = await (await client.get(
                f"/api/runs/{namespace}/orders-ui-1/logs?level=INFO")).json()
            assert logs["source"] == "store", logs["note"]
            assert any("extracted 3 orders" in line["text"] for line in logs["lines"])
            assert all(line["level"] != "DEBUG" for line in logs["lines"])
    finally:
        kubelet.stop()
        await kubelet_task
