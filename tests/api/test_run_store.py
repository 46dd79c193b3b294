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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from headwater.cli import build_parser
from headwater_dev import sandbox as sb
from headwater_dev.harness import wait_for
from headwater_operator.cli.common import Io

REPO = Path(__file__).resolve().parents[2]


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
    done = [r for r in runs if (r.get("status") or {}).get("phase") in (
        "Completed", "Failed", "Crashed", "Cancelled", "TimedOut")]
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
        print(out)
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
