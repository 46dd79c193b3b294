"""The run store end to end (issue #12): real flows, the real operator, the CLI.

* In the sandbox (``headwater dev``), the assets example's runs keep their records under
  the state directory, and ``headwater describe run`` shows the three task runs and the
  lineage of what they materialized.
* With a real S3-compatible server (moto's server mode, started by the tests), a run
  with three tasks, a retry, a cache hit, a subflow, two artifacts and an asset has all
  of it in its record, which holds to the JSON Schema. After its pod is deleted,
  ``headwater logs`` still prints every line, and ``describe run --task`` finds a task.
* When the store is down, the flow still completes and the summary says the record was
  not written.

The CLI is synchronous and the emulator and operator share the test's event loop, so
each command runs in a worker thread, as in ``test_cli_end_to_end.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
from headwater import runstore
from headwater.cli import build_parser
from headwater_dev import process_kubelet as pk
from headwater_dev import sandbox as sb
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.harness import OperatorHarness, wait_for
from headwater_operator import kube as kube_module
from headwater_operator.cli.common import Io
from orders_pipeline import create_orders_run
from s3_server import S3Store

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "sdk/src/headwater/data/run-record.schema.json").read_text())
TERMINAL = ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut")


def invoke(*argv: str) -> tuple[int, str, str]:
    """Run ``headwater <argv>`` in this thread: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(list(argv))
    args.io = Io(out=out, err=err, now=lambda: datetime.now(UTC))
    code = args.func(args)
    return code, out.getvalue(), err.getvalue()


def _completed(sandbox: sb.Sandbox, prefix: str, count: int) -> list[dict[str, Any]]:
    runs = [r for r in sandbox.emulator.objects("flowruns", "default")
            if r["metadata"]["name"].startswith(prefix)]
    done = [r for r in runs if (r.get("status") or {}).get("phase") in TERMINAL]
    return done if len(done) >= count else []


async def test_sandbox_describe_run_shows_the_assets_examples_task_runs_and_lineage(
        tmp_path: Path) -> None:
    options = sb.SandboxOptions(manifests=[REPO / "examples" / "assets"], workdir=REPO,
                                state_dir=tmp_path / "state", out=io.StringIO(),
                                refresh_seconds=0.1, until_complete=False, duration=90)
    sandbox = sb.Sandbox(options)
    stop = asyncio.Event()
    session = asyncio.create_task(sandbox.run(stop))
    try:
        await wait_for(lambda: sandbox.kubelet is not None, timeout=30)
        await wait_for(lambda: bool(_completed(sandbox, "asset-pipeline-", 2)), timeout=60,
                       message="both asset-pipeline runs finished")
        runs = sorted(_completed(sandbox, "asset-pipeline-", 2),
                      key=lambda r: r["status"]["startTime"])
        assert [r["status"]["phase"] for r in runs] == ["Completed", "Completed"]
        first = runs[0]
        [entry] = first["status"]["runRecords"]
        home = tmp_path / "state" / "home"
        assert entry["url"] == f"{home}/flowruns/v1/default/{first['metadata']['name']}/1"
        assert entry["written"] is True
        kubeconfig = str(sandbox.kubeconfig_path)

        code, out, err = await asyncio.to_thread(
            invoke, "describe", "run", first["metadata"]["name"], "--kubeconfig", kubeconfig)
        assert code == 0, err
        for task_run in ("extract_orders-0", "process_orders-0", "build_analytics-0"):
            assert task_run in out, out
        for asset in first["status"]["assets"]:  # each asset with what it came from
            row = next(line for line in out.splitlines() if line.strip().startswith(
                asset["key"]))
            for key in asset["upstream"]:
                assert key in row, row
        code, lineage, err = await asyncio.to_thread(
            invoke, "lineage", first["status"]["assets"][-1]["key"],
            "--kubeconfig", kubeconfig)
        assert code == 0, err
        upstream = first["status"]["assets"][-1]["upstream"]
        assert upstream
        for key in upstream:
            assert key in lineage, lineage
        code, as_json, err = await asyncio.to_thread(
            invoke, "describe", "run", first["metadata"]["name"], "--kubeconfig", kubeconfig,
            "-o", "json")
        assert code == 0, err
        record = json.loads(as_json)["record"]
        assert sorted(t["name"] for t in record["taskRuns"]) == [
            "build_analytics-0", "extract_orders-0", "process_orders-0"]
        assert {a["key"]: a["upstream"] for a in record["assets"]} == {
            a["key"]: a["upstream"] for a in first["status"]["assets"]}
    finally:
        stop.set()
        await session


# --- a real S3-compatible store ----------------------------------------------------------------


async def _finished(emulator: BackgroundEmulator, namespace: str, run: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        obj = emulator.object("flowruns", run, namespace) or {}
        return obj if (obj.get("status") or {}).get("phase") in TERMINAL else None
    finished: dict[str, Any] = await wait_for(done, timeout=90, message=f"FlowRun {run} ended")
    return finished


def _log_lines(text: str) -> list[str]:
    """The run-logger lines of a pod's output, from the level on (times are local)."""
    return [line.split(" | ", 1)[1] for line in text.splitlines()
            if line[:2].isdigit() and " | " in line]


async def test_a_record_in_s3_holds_the_whole_run_and_outlives_its_pod(  # noqa: PLR0917
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
        operator: OperatorHarness, s3: S3Store, tmp_path: Path) -> None:
    runtime = pk.LocalRuntime(workdir=REPO, state_dir=tmp_path / "kubelet")
    kubelet = pk.ProcessKubelet(emulator.url, runtime, log_sink=emulator.append_log)
    kubelet_task = asyncio.create_task(kubelet.run())
    try:
        await create_orders_run(kube, namespace, "orders-1", {"runStore": {"url": s3.root}})
        run = await _finished(emulator, namespace, "orders-1")
        assert run["status"]["phase"] == "Completed", run["status"]
        [entry] = run["status"]["runRecords"]
        assert entry == {"attempt": 1, "url": runstore.attempt_url(
            s3.root, namespace, "orders-1", 1), "written": True}

        record = runstore.read_record(entry["url"])
        jsonschema.Draft202012Validator(
            SCHEMA, format_checker=jsonschema.FormatChecker()).validate(record)
        assert record["complete"] is True
        assert (record["namespace"], record["flowRunName"]) == (namespace, "orders-1")
        root = {t["name"]: t for t in record["taskRuns"] if "flowRunId" not in t}
        assert sorted(root) == ["extract-0", "load-0", "report-0", "transform-0"]
        assert [a["state"] for a in root["extract-0"]["attempts"]] == ["Failed", "Completed"]
        error = root["extract-0"]["attempts"][0]["error"]
        assert error["type"] == "ConnectionError"
        assert "orders for 2026-12-01 are not exported yet" in error["traceback"]
        assert root["transform-0"]["upstream"] == [root["extract-0"]["id"]]
        assert root["load-0"]["upstream"] == [root["transform-0"]["id"]]
        [subflow] = record["flowRun"]["subflowRuns"]
        assert subflow["flow"] == "report"
        assert subflow["parentTaskRunId"] == root["report-0"]["id"]
        [hit] = [t for t in record["taskRuns"] if t.get("flowRunId") == subflow["id"]]
        assert (hit["name"], hit["state"], hit["cacheHit"]) == ("transform-0", "Cached", True)
        assert sorted(a["key"] for a in record["artifacts"]) == [
            "daily-totals", "orders-summary"]
        [asset] = record["assets"]
        assert asset["key"] == "s3://lake/marts/daily-orders"
        assert asset["metadata"] == {"total": 60}
        # records and logs are in the bucket, seen by botocore, not only by fsspec
        keys = s3.object_keys()
        assert f"flowruns/v1/{namespace}/orders-1/1/record.json" in keys
        assert f"flowruns/v1/{namespace}/orders-1/1/logs/000000.jsonl" in keys

        pod_output = emulator.pod_log(namespace, "orders-1-1")
        expected = _log_lines(pod_output)
        assert any("extracted 3 orders" in line for line in expected), pod_output
        await kube.delete(kube_module.PODS, "orders-1-1", namespace=namespace)
        await wait_for(lambda: emulator.object("pods", "orders-1-1", namespace) is None,
                       timeout=30, message="pod orders-1-1 deleted")

        code, out, err = await asyncio.to_thread(invoke, "logs", "orders-1", "-n", namespace)
        assert code == 0, err
        printed = _log_lines(out)
        missing = [line for line in expected if line not in printed]
        assert not missing, (missing, out)
        assert "pipeline done for 2026-12-01" in out  # a print, through log_prints

        code, out, err = await asyncio.to_thread(
            invoke, "describe", "run", "orders-1", "-n", namespace, "--task", "extract*")
        assert code == 0, err
        table = out.split("Task run list:", 1)[1]
        assert "extract-0" in table
        assert "load-0" not in table
        assert "transform-0" not in table
    finally:
        kubelet.stop()
        await kubelet_task


async def test_a_store_outage_completes_the_run_and_the_summary_says_not_written(  # noqa: PLR0917
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
        operator: OperatorHarness, s3: S3Store, tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: the store is down
    runtime = pk.LocalRuntime(workdir=REPO, state_dir=tmp_path / "kubelet")
    kubelet = pk.ProcessKubelet(emulator.url, runtime, log_sink=emulator.append_log)
    kubelet_task = asyncio.create_task(kubelet.run())
    try:
        await create_orders_run(kube, namespace, "orders-2", {
            "runStore": {"url": s3.root},
            "runTemplate": {"env": [
                {"name": "AWS_ENDPOINT_URL", "value": f"http://127.0.0.1:{port}"},
                {"name": "AWS_MAX_ATTEMPTS", "value": "1"}]},
        })
        run = await _finished(emulator, namespace, "orders-2")
        assert run["status"]["phase"] == "Completed", run["status"]
        assert run["status"]["taskRuns"] == {"Cached": 1, "Completed": 3}
        [entry] = run["status"]["runRecords"]
        assert entry["written"] is False
        pod = emulator.object("pods", "orders-2-1", namespace)
        [container] = pod["status"]["containerStatuses"]
        summary = json.loads(container["state"]["terminated"]["message"])
        assert summary["state"] == "Completed"
        assert summary["recordWritten"] is False
        def warned() -> list[dict[str, Any]]:
            return [e for e in emulator.objects("events", namespace)
                    if e["involvedObject"]["name"] == "orders-2"
                    and e["reason"] == "RunRecordNotWritten"]
        [event] = await wait_for(warned, timeout=15, message="a RunRecordNotWritten Event")
        assert event["type"] == "Warning"
        assert entry["url"] in event["message"]
        assert "could not be written" in emulator.pod_log(namespace, "orders-2-1")
        assert s3.object_keys() == []
    finally:
        kubelet.stop()
        await kubelet_task
