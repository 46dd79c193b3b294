"""``headwater deploy``'s manifests against a strict API server, and run for real.

* ``--apply`` creates the Flow, Deployment and Schedule in the emulated API server (as
  strict as kube-apiserver: CRD schemas, CEL rules); the operator takes them (the
  Schedule gets its next tick); a second ``--apply`` with another cron updates them in
  place (``configured``), keeping what the server added.
* The files ``--output-dir`` writes, given to the sandbox (``headwater dev``) with a
  FlowRun of the generated Deployment, run the flow's real code to ``Completed``.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from headwater.cli import build_parser
from headwater_dev import sandbox as sb
from headwater_dev.emulator import BackgroundEmulator as Emulator
from headwater_dev.harness import OperatorHarness
from headwater_operator.cli.common import Io

REPO = Path(__file__).resolve().parents[2]
FLOW_FILE = REPO / "tests" / "compat" / "flows" / "deployed.py"
TIMEOUT = 15.0


def deploy(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["deploy", *argv])
    args.io = Io(out=out, err=err, now=lambda: datetime.now(UTC))
    return args.func(args), out.getvalue(), err.getvalue()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with the Prefect-style flow file, as the working directory."""
    (tmp_path / "flows").mkdir()
    shutil.copy(FLOW_FILE, tmp_path / "flows" / "deployed.py")
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def test_apply_creates_then_updates_objects_the_operator_takes(
    project: Path, operator: OperatorHarness, emulator: Emulator,
    wait_for: Callable[..., Awaitable[Any]],
) -> None:
    argv = ["flows/deployed.py:sync", "--name", "nightly-sync", "--image",
            "ghcr.io/acme/warehouse:2.3", "--timezone", "America/New_York", "--apply"]
    code, out, err = await asyncio.to_thread(deploy, *argv, "--cron", "30 2 * * *")
    assert code == 0, err
    assert out.splitlines() == [
        "flow/warehouse-sync created (namespace default)",
        "deployment/nightly-sync created (namespace default)",
        "schedule/nightly-sync created (namespace default)"]
    flow = emulator.object("flows", "warehouse-sync")
    assert flow is not None
    assert flow["spec"]["entrypoint"] == "flows/deployed.py:sync"
    assert set(flow["spec"]["parametersSchema"]["properties"]) == {"table", "limit",
                                                                  "full_refresh"}
    await wait_for(lambda: (emulator.object("schedules", "nightly-sync") or {})
                   .get("status", {}).get("nextScheduleTime"), timeout=TIMEOUT)
    first_uid = emulator.object("schedules", "nightly-sync")["metadata"]["uid"]

    code, out, err = await asyncio.to_thread(deploy, *argv, "--cron", "0 4 * * *")
    assert code == 0, err
    assert out.splitlines()[2] == "schedule/nightly-sync configured (namespace default)"
    schedule = emulator.object("schedules", "nightly-sync")
    assert schedule is not None
    assert schedule["spec"]["cron"] == "0 4 * * *"
    assert schedule["metadata"]["uid"] == first_uid  # updated in place, not recreated
    # 04:00 in New York is 09:00Z in winter: the operator recomputed the next tick.
    await wait_for(lambda: str((emulator.object("schedules", "nightly-sync") or {})
                               .get("status", {}).get("nextScheduleTime", ""))
                   .endswith("T09:00:00Z"), timeout=TIMEOUT)


FLOW_RUN = """
apiVersion: headwater.dev/v1alpha1
kind: FlowRun
metadata: {name: sync-now}
spec:
  deploymentRef: {name: nightly-sync}
  parameters: {limit: 4}
"""


async def test_generated_manifests_run_the_flow_in_the_sandbox(project: Path) -> None:
    code, _, err = deploy("flows/deployed.py:sync", "--name", "nightly-sync", "--image",
                          "ghcr.io/acme/warehouse:2.3", "--cron", "0 3 * * *",
                          "--param", "table=customers", "--output-dir", "k8s")
    assert code == 0, err
    (project / "k8s" / "run.yaml").write_text(FLOW_RUN, encoding="utf-8")
    options = sb.SandboxOptions(manifests=[project / "k8s"], workdir=project,
                                state_dir=project / "state", out=io.StringIO(),
                                refresh_seconds=0.1, until_complete=True, duration=60)
    result = await sb.Sandbox(options).run()

    assert result.reason == "every run is done", options.out.getvalue()  # type: ignore[attr-defined]
    run = next(r for r in result.runs if r["metadata"]["name"] == "sync-now")
    assert run["status"]["phase"] == "Completed"
    assert run["status"]["taskRuns"] == {"Completed": 1}
    log = result.pod_logs[f"default/{run['status']['podName']}"]
    # The Deployment's parameter (table) and the run's (limit) both reached the code.
    assert "synced 4 rows of customers" in log
