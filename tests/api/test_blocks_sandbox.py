"""Blocks end to end in the sandbox (issue #14, "Must show"): a custom block nesting a
credentials block, saved from the CLI, mounted into a flow-run pod and loaded there by
real flow code (``tests/api/flows/k8s_blocks.py``, run by the process kubelet).

The run is created first and waits (``BlockNotFound``) until the CLI has made the
blocks; then the operator mounts them, the flow loads the block and its secret through
``Block.load`` and a Variable through ``Variable.get``, and checks both. The password
must appear nowhere but the Secret and the pod's mount: the test looks for it in every
object the API server holds (Secrets aside), the Events, the pod's log, the run summary
in the FlowRun's status, the operator's log and the run store.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from headwater_dev import sandbox as sb
from headwater_dev.harness import wait_for

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "wh-pw-5d1f0b7e93"
MANIFESTS = f"""
apiVersion: headwater.dev/v1alpha1
kind: Flow
metadata: {{name: warehouse-check}}
spec:
  image: ignored.example/flows:1
  entrypoint: tests/api/flows/k8s_blocks.py:warehouse_check
---
apiVersion: headwater.dev/v1alpha1
kind: Deployment
metadata: {{name: warehouse-check}}
spec:
  flowRef: {{name: warehouse-check}}
  blocks: [warehouse]
  variables: [big_order_threshold]
---
apiVersion: headwater.dev/v1alpha1
kind: FlowRun
metadata: {{name: check}}
spec:
  deploymentRef: {{name: warehouse-check}}
  parameters:
    password_sha256: {hashlib.sha256(PASSWORD.encode()).hexdigest()}
    threshold: 100
"""
PLURALS = ("blocks", "variables", "flows", "deployments", "flowruns", "pods", "events")


def _cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    from headwater.cli import build_parser
    from headwater_operator.cli.common import Io

    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args([*argv, "-n", "default"])
    args.io = Io(out=out, err=err, now=lambda: datetime.now(UTC))
    saved, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        code = args.func(args)
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


async def cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    result = await asyncio.to_thread(_cli, *argv, stdin=stdin)
    assert result[0] == 0, result
    return result


def _phase(emulator: Any) -> tuple[str | None, str | None]:
    status = (emulator.object("flowruns", "check") or {}).get("status") or {}
    return status.get("phase"), status.get("reason")


async def test_a_block_saved_from_the_cli_is_mounted_and_loaded_by_the_flow(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="headwater_operator")
    manifest = tmp_path / "warehouse.yaml"
    manifest.write_text(MANIFESTS, encoding="utf-8")
    options = sb.SandboxOptions(manifests=[manifest], workdir=REPO,
                                state_dir=tmp_path / "state", out=io.StringIO(),
                                refresh_seconds=0.1, duration=120)
    sandbox = sb.Sandbox(options)
    stop = asyncio.Event()
    session = asyncio.create_task(sandbox.run(stop))
    try:
        await wait_for(lambda: sandbox.emulator is not None
                       and _phase(sandbox.emulator)[1] == "BlockNotFound", timeout=30,
                       message="the run waiting for its block")
        emulator = sandbox.emulator
        assert emulator.objects("pods", "default") == []
        await cli("variable", "set", "big_order_threshold", "100")
        await cli("block", "create", "wh-creds", "--type", "k8s_blocks:Credentials",
                  "--field", "user=etl", "--secret", "password", stdin=f"{PASSWORD}\n")
        await cli("block", "create", "warehouse", "--type", "k8s_blocks:Warehouse",
                  "--field", f"database={tmp_path / 'wh.db'}",
                  "--block", "credentials=wh-creds")
        await wait_for(lambda: _phase(emulator)[0] in ("Completed", "Failed", "Crashed"),
                       timeout=60, message="the run ending")
        phase, reason = _phase(emulator)
        run = emulator.object("flowruns", "check")
        pod_log = emulator.pod_log("default", "check-1")
        assert (phase, reason) == ("Completed", "Completed"), (run["status"], pod_log)
        objects = json.dumps([emulator.objects(plural, "default") for plural in PLURALS])
        secret = emulator.object("secrets", "wh-creds-block")
    finally:
        stop.set()
        result = await session

    # The flow logged the password it loaded: masked.
    assert "connecting to" in pod_log
    assert "as etl with password" in pod_log
    # Only the Secret holds it, and the file the kubelet mounted for the pod (0440, as
    # the flow saw it), which the kubelet tore down with the pod's volumes.
    assert set(secret["data"]) == {"password"}
    assert "secret file password has mode 440" in pod_log
    volumes = tmp_path / "state" / "pods" / "default" / "check-1" / "volumes"
    assert not volumes.exists()
    assert PASSWORD not in objects
    assert PASSWORD not in pod_log
    assert PASSWORD not in json.dumps(result.runs)  # status: the run summary, messages
    logged = "\n".join(record.getMessage() for phase in ("setup", "call")
                       for record in caplog.get_records(phase))
    assert PASSWORD not in logged
    home = tmp_path / "state" / "home"
    written = [path for path in home.rglob("*") if path.is_file()]
    assert written, "the run store under the sandbox's home holds the run's record"
    assert not [path for path in written if PASSWORD.encode() in path.read_bytes()]
