"""``headwater dev``: the sandbox runs real flow code through the real operator.

The session tests start :class:`Sandbox` programmatically (its own emulator, the real
operator, the process kubelet) and assert what a developer sees: the FlowRun's phase and
the run summary the SDK really produced, the local process that ran, its log, /metrics,
and that cancelling or a deadline stops the process with SIGTERM. The pure helpers
(command, environment, termination message, completion rule, table) are tested directly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater.contract import (
    ENV_HOME,
    ENV_SUMMARY_PATH,
    EXIT_CANCELLED,
    LABEL_SCHEDULE,
)
from headwater_dev import process_kubelet as pk
from headwater_dev import sandbox as sb
from headwater_dev.harness import wait_for
from headwater_operator import kube
from headwater_operator.triggering import triggered_run_name

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


# --- sessions ---------------------------------------------------------------------------
def _options(tmp_path: Path, manifests: list[Path], **kwargs: Any) -> sb.SandboxOptions:
    return sb.SandboxOptions(manifests=manifests, workdir=REPO, state_dir=tmp_path / "state",
                             out=io.StringIO(), refresh_seconds=0.1, **kwargs)


def _run_of(result: sb.SandboxResult, prefix: str, *, scheduled: bool) -> dict[str, Any]:
    matches = [r for r in result.runs if r["metadata"]["name"].startswith(prefix)
               and (LABEL_SCHEDULE in (r["metadata"].get("labels") or {})) == scheduled]
    assert len(matches) >= 1, [r["metadata"]["name"] for r in result.runs]
    return matches[0]


async def test_quickstart_runs_real_flow_code_to_completion(tmp_path: Path) -> None:
    options = _options(tmp_path, [REPO / "examples" / "quickstart"], until_complete=True,
                       duration=25)
    result = await sb.Sandbox(options).run()

    assert result.reason == "every run is done"
    assert result.exit_code == 0
    manual = _run_of(result, "hello-", scheduled=False)
    status = manual["status"]
    assert (status["phase"], status["reason"], status["attempts"]) == ("Completed",
                                                                       "Completed", 1)
    # The counts come from the SDK's real summary: hello runs exactly one task, greet.
    assert status["taskRuns"] == {"Completed": 1}
    pod = f"default/{status['podName']}"
    process = result.kubelet.processes[tuple(pod.split("/"))]  # type: ignore[index]
    assert process.pid is not None
    assert process.argv[:4] == [sys.executable, "-m", "headwater", "execute"]
    assert process.exit_code == 0
    assert process.signals == []
    assert "Hello, Ada!" in result.pod_logs[pod]
    # The 10-second interval Schedule fired within the session, with its parameters.
    fired = _run_of(result, "hello-every-10s-", scheduled=True)
    assert fired["status"]["phase"] == "Completed"
    assert "Hello, schedule!" in result.pod_logs[f"default/{fired['status']['podName']}"]
    # /metrics (scraped over HTTP before shutdown) counts both completed hello runs.
    line = next(line for line in result.metrics_text.splitlines() if line.startswith(
        'headwater_runs_total{deployment="hello",namespace="default",phase="Completed"}'))
    assert float(line.split()[-1]) >= 2
    output = options.out.getvalue()  # type: ignore[attr-defined]
    assert "DEVELOPMENT sandbox" in output
    assert "IGNORED" in output
    assert f"export KUBECONFIG={tmp_path / 'state' / 'kubeconfig'}" in output
    assert not (tmp_path / "state" / "kubeconfig").exists(), "stale kubeconfig left behind"


SLEEPY = """
apiVersion: headwater.dev/v1alpha1
kind: Flow
metadata: {name: sleepy}
spec:
  image: ignored.example/sleepy:1
  entrypoint: examples/flows/sleepy.py:sleepy
---
apiVersion: headwater.dev/v1alpha1
kind: Deployment
metadata: {name: sleepy}
spec:
  flowRef: {name: sleepy}
  cancelGracePeriodSeconds: 20
---
apiVersion: headwater.dev/v1alpha1
kind: FlowRun
metadata: {name: nap}
spec:
  deploymentRef: {name: sleepy}
  parameters: {seconds: 60}
"""


async def _session_with(tmp_path: Path, manifest: str,
                        during: Callable[[sb.Sandbox], Awaitable[None]]) -> sb.SandboxResult:
    path = tmp_path / "sleepy.yaml"
    path.write_text(manifest, encoding="utf-8")
    sandbox = sb.Sandbox(_options(tmp_path, [path], until_complete=True, duration=25))
    session = asyncio.create_task(sandbox.run())
    try:
        await wait_for(lambda: sandbox.kubelet is not None, timeout=15)
        await during(sandbox)
    finally:
        result = await session
    return result


async def _running(sandbox: sb.Sandbox, run: str) -> None:
    def started() -> bool:
        obj = sandbox.emulator.object("flowruns", run) or {}
        return (obj.get("status") or {}).get("phase") == "Running"
    await wait_for(started, timeout=15, message=f"FlowRun {run} Running")
    assert sandbox.kubelet is not None
    # The engine logs the flow's first print once it is inside the task: SIGTERM now
    # lands in the flow, not in interpreter start-up.
    await wait_for(lambda: "sleeping" in sandbox.emulator.pod_log("default", f"{run}-1"),
                   timeout=15)


async def test_cancel_mid_run_sends_sigterm_and_ends_cancelled(tmp_path: Path) -> None:
    async def cancel(sandbox: sb.Sandbox) -> None:
        await _running(sandbox, "nap")
        await kube.get_client().patch(kube.FLOWRUNS, "nap", {"spec": {"cancel": True}},
                                      namespace="default")

    result = await _session_with(tmp_path, SLEEPY, cancel)

    run = next(r for r in result.runs if r["metadata"]["name"] == "nap")
    assert (run["status"]["phase"], run["status"]["reason"]) == ("Cancelled", "Cancelled")
    process = result.kubelet.processes[("default", "nap-1")]
    assert process.signals == ["SIGTERM"], "the grace period was enough: no SIGKILL"
    assert process.exit_code == EXIT_CANCELLED
    assert result.exit_code == 0, "a cancelled run is not a failure"


async def test_active_deadline_stops_the_process_and_fails_the_run(tmp_path: Path) -> None:
    manifest = SLEEPY.replace("parameters: {seconds: 60}",
                              "parameters: {seconds: 60}\n  timeoutSeconds: 1")

    async def nothing(sandbox: sb.Sandbox) -> None:
        return None

    result = await _session_with(tmp_path, manifest, nothing)

    run = next(r for r in result.runs if r["metadata"]["name"] == "nap")
    assert (run["status"]["phase"], run["status"]["reason"]) == ("Failed", "TimedOut")
    process = result.kubelet.processes[("default", "nap-1")]
    assert process.deadline_exceeded
    assert process.signals == ["SIGTERM"]
    assert result.exit_code == 1, "a failed run makes `headwater dev` exit non-zero"


async def test_parameters_the_flow_does_not_take_fail_once_and_are_not_retried(
    tmp_path: Path,
) -> None:
    # No parametersSchema on the Flow, so only the engine can check the parameters.
    manifest = (SLEEPY.replace("parameters: {seconds: 60}", "parameters: {secs: 1}")
                .replace("cancelGracePeriodSeconds: 20", "retries: 2\n  retryDelaySeconds: 1"))

    async def nothing(sandbox: sb.Sandbox) -> None:
        return None

    result = await _session_with(tmp_path, manifest, nothing)

    run = next(r for r in result.runs if r["metadata"]["name"] == "nap")
    status = run["status"]
    assert (status["phase"], status["reason"], status["attempts"]) == (
        "Failed", "InvalidParameters", 1)
    assert "unknown parameter 'secs'" in status["message"]
    assert list(result.kubelet.processes) == [("default", "nap-1")], "retried: a 2nd pod"


# --- `headwater dev` as a process: signals ----------------------------------------------
def _children(pid: int) -> dict[int, int]:
    """``{child pid: parent pid}`` from /proc (Linux)."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def _descendants(pid: int) -> set[int]:
    parents = _children(pid)
    seen: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - seen
        seen |= frontier
    return seen


def _alive(pid: int) -> bool:
    # A zombie has ended (nothing runs); only a process in any other state is left over.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize(("first", "second", "code"), [
    (signal.SIGINT, None, 130),  # one Ctrl-C, sent to the process group as a terminal does
    (signal.SIGTERM, signal.SIGINT, 143),  # `kill PID`, then an impatient Ctrl-C
])
def test_headwater_dev_stops_with_its_flow_processes_on_one_signal(
    tmp_path: Path, first: signal.Signals, second: signal.Signals | None, code: int,
) -> None:
    # kopf used to replace the sandbox's signal handlers when the operator started: a
    # Ctrl-C stopped only the operator, the sandbox went on, and a second one logged an
    # InvalidStateError traceback. SIGTERM did not stop it at all.
    manifest = tmp_path / "sleepy.yaml"
    manifest.write_text(SLEEPY, encoding="utf-8")
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "headwater", "dev", "-f", str(manifest), "--state-dir",
             str(tmp_path / "state"), "--metrics-port", "-1"],
            cwd=REPO, stdout=stdout, stderr=stderr, start_new_session=True)
    flows: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while not ("phase=Running" in out.read_text() and (flows := _descendants(process.pid))):
            assert process.poll() is None, err.read_text()[-3000:]
            assert time.monotonic() < deadline, out.read_text()[-3000:]
            time.sleep(0.2)
        assert all(_alive(pid) for pid in flows)
        stopped_at = time.monotonic()
        if first == signal.SIGINT:
            os.killpg(process.pid, first)
        else:
            process.send_signal(first)
        if second is not None:
            time.sleep(0.3)
            process.send_signal(second)
        returncode = process.wait(timeout=30)
        took = time.monotonic() - stopped_at
    finally:
        for pid in (process.pid, *flows):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()
    errors = err.read_text()
    assert returncode == code, errors[-3000:]
    assert took < 10, f"took {took:.1f}s to stop"
    assert "Traceback" not in errors
    assert "InvalidStateError" not in errors
    assert not [pid for pid in flows if _alive(pid)], "flow processes left running"
    assert f"sandbox stopped: stopped by {first.name}; exit code {code}" in out.read_text()


# --- the process kubelet's pure parts ---------------------------------------------------
def test_headwater_command_runs_with_the_sandbox_python() -> None:
    container = {"name": "flow", "command": ["headwater", "execute"], "args": ["-v"]}
    assert pk.container_command(container, "/py") == ["/py", "-m", "headwater", "execute",
                                                      "-v"]
    assert pk.container_command({"command": ["sh", "-c", "true"]}, "/py") == [
        "sh", "-c", "true"]
    with pytest.raises(ValueError, match=r"Flow\.spec\.command"):
        pk.container_command({"name": "flow", "image": "x"}, "/py")


def test_environment_points_paths_at_the_sandbox(tmp_path: Path) -> None:
    runtime = pk.LocalRuntime(workdir=Path("/repo"), state_dir=tmp_path,
                              base_env={"PATH": "/bin", "KUBECONFIG": "/k",
                                        "PYTHONPATH": "/extra"})
    container = {"env": [
        {"name": "HEADWATER_PARAMETERS", "value": '{"a": 1}'},
        {"name": ENV_SUMMARY_PATH, "value": "/dev/termination-log"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
    ]}
    env, warnings = pk.container_env(container, runtime, "default", "run-1")
    assert env["HEADWATER_PARAMETERS"] == '{"a": 1}'
    assert env[ENV_SUMMARY_PATH] == str(tmp_path / "pods" / "default" / "run-1"
                                        / "termination-log")
    assert env[ENV_HOME] == str(tmp_path / "home")
    assert env["PYTHONPATH"].split(":") == ["/repo", "/extra"]
    assert "KUBECONFIG" not in env
    assert "DB_PASSWORD" not in env
    assert len(warnings) == 1
    assert "DB_PASSWORD uses valueFrom" in warnings[0]


def test_secret_volumes_are_mounted_with_their_modes_and_env_paths_follow() -> None:
    projected = {"name": "headwater-blocks", "projected": {"defaultMode": 0o440, "sources": [
        {"secret": {"name": "creds", "items": [{"key": "pw", "path": "wh/password"},
                                               {"key": "tok", "path": "wh/token",
                                                "mode": 0o400}]}},
        {"secret": {"name": "all-keys", "optional": True}}]}}
    assert pk.secret_files(projected) == [
        pk.SecretFile("creds", "pw", "wh/password", 0o440),
        pk.SecretFile("creds", "tok", "wh/token", 0o400),
        pk.SecretFile("all-keys", None, "", 0o440, optional=True)]
    plain = {"name": "s", "secret": {"secretName": "db"}}
    assert pk.secret_files(plain) == [pk.SecretFile("db", None, "", 0o644)]
    # Anything else is not mounted by the sandbox (a note says so).
    assert pk.secret_files({"name": "e", "emptyDir": {}}) is None
    assert pk.secret_files({"name": "p", "projected": {"sources": [
        {"configMap": {"name": "c"}}]}}) is None
    host = Path("/state/pods/default/r-1/volumes/headwater-blocks")
    env = {"HEADWATER_BLOCKS_DIR": "/var/run/headwater/blocks",
           "FILE": "/var/run/headwater/blocks/wh/password",
           "OTHER": "/var/run/headwater/blocksx", "PATH": "/bin"}
    assert pk.mapped_env(env, {"/var/run/headwater/blocks": host}) == {
        "HEADWATER_BLOCKS_DIR": str(host), "FILE": f"{host}/wh/password",
        "OTHER": "/var/run/headwater/blocksx", "PATH": "/bin"}


def test_termination_message_falls_back_to_logs_only_on_error() -> None:
    assert pk.termination_message('{"state":"Completed"}', 0, "log") == '{"state":"Completed"}'
    assert pk.termination_message("", 1, "Traceback: boom") == "Traceback: boom"
    assert pk.termination_message("", 0, "log") is None
    assert pk.tail("x\n" * 200, lines=3) == "x\nx\nx\n"
    assert len(pk.tail("é" * 3000, limit=2048).encode()) <= 2048


def test_grace_period_and_exit_codes() -> None:
    assert pk.grace_seconds({"metadata": {"deletionGracePeriodSeconds": 7}}) == 7
    assert pk.grace_seconds({"metadata": {}, "spec": {"terminationGracePeriodSeconds": 3}}) == 3
    assert pk.grace_seconds({}) == 30
    assert pk.exit_code_of(-9) == 137
    assert pk.exit_code_of(-15) == 143
    assert pk.exit_code_of(EXIT_CANCELLED) == EXIT_CANCELLED


def test_deadline_status_is_what_the_operator_reads_as_timed_out() -> None:
    status = pk.final_status(NOW, NOW - timedelta(seconds=5), 3, '{"state":"Cancelled"}',
                             container="flow", image="img", deadline_exceeded=True)
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["message"]) == (3, '{"state":"Cancelled"}')


# --- the sandbox's pure parts -------------------------------------------------------------
def _run(name: str, phase: str | None, schedule: str | None = None,
         **status: Any) -> dict[str, Any]:
    labels = {LABEL_SCHEDULE: schedule} if schedule else {}
    return {"metadata": {"name": name, "namespace": "default", "labels": labels,
                         "creationTimestamp": "2026-03-02T05:00:00Z"},
            "spec": {"deploymentRef": {"name": "d"}},
            "status": {"phase": phase, **status} if phase else {}}


def _schedule(name: str, *, ready: bool = True, next_tick: str | None = None,
              suspend: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if next_tick or not ready:
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    if next_tick:
        status["nextScheduleTime"] = next_tick
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"suspend": suspend}, "status": status}


def test_until_complete_waits_for_runs_and_for_schedules_due_in_time() -> None:
    due_by = NOW + timedelta(minutes=5)
    soon = _schedule("every-10s", next_tick="2026-03-02T06:00:10Z")
    daily = _schedule("daily", next_tick="2026-03-03T06:00:00Z")
    done = _run("a", "Completed")
    assert not sb.is_complete([_run("a", "Running")], [], due_by)
    assert not sb.is_complete([done], [soon], due_by), "a tick is due before the cap"
    assert sb.is_complete([done, _run("s", "Completed", schedule="every-10s")], [soon, daily],
                          due_by)
    assert not sb.is_complete([done], [_schedule("unprocessed")], due_by)
    assert sb.is_complete([done], [_schedule("bad", ready=False),
                                   _schedule("off", suspend=True)], due_by)
    assert not sb.is_complete([done, _run("s", "Pending", schedule="every-10s")], [soon],
                              due_by)


def test_until_complete_waits_for_the_runs_triggers_call_for() -> None:
    due_by = NOW + timedelta(minutes=5)
    downstream = {"metadata": {"name": "after-d", "namespace": "default", "uid": "u",
                               "generation": 1, "creationTimestamp": "2026-03-02T04:00:00Z"},
                  "spec": {"triggers": [{"afterDeployment": {"name": "d"}}]}}
    upstream = _run("a", "Completed", endTime="2026-03-02T05:00:05Z")
    upstream["metadata"]["uid"] = "uid-a"
    # The upstream run ended; its downstream run is not there yet: not complete.
    assert not sb.is_complete([upstream], [], due_by, [downstream])
    created = {"metadata": {"name": triggered_run_name("after-d", "afterDeployment/d",
                                                       ["uid-a"]), "namespace": "default"},
               "spec": {"deploymentRef": {"name": "after-d"}},
               "status": {"phase": "Completed"}}
    assert sb.is_complete([upstream, created], [], due_by, [downstream])
    failed = _run("a", "Failed", endTime="2026-03-02T05:00:05Z")
    assert sb.is_complete([failed], [], due_by, [downstream])  # the chain stops there


def test_failed_and_crashed_runs_fail_the_session_but_cancelled_ones_do_not() -> None:
    runs = [_run("ok", "Completed"), _run("f", "Failed"), _run("c", "Crashed"),
            _run("x", "Cancelled")]
    assert sb.failed_runs(runs) == ["f", "c"]


def test_table_rows_and_non_tty_change_lines() -> None:
    running = _run("r", "Running", attempts=1, startTime="2026-03-02T05:59:30Z",
                   scheduledTime="2026-03-02T05:59:29Z")
    assert sb.run_row(running, NOW) == ("r", "d", "Running", "1", "2026-03-02 05:59:29",
                                        "30s", "-")
    out = io.StringIO()
    table = sb.RunTable(out, tty=False)
    table.update([running], NOW)
    table.update([running], NOW)  # unchanged: nothing more is printed
    done = _run("r", "Completed", attempts=1, durationSeconds=42, reason="Completed")
    table.update([done], NOW)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "phase=Running" in lines[0]
    assert "phase=Completed" in lines[1]
    assert "duration=42s" in lines[1]


def test_manifests_load_in_dependency_order_and_skip_kustomization(tmp_path: Path) -> None:
    manifests = sb.load_manifests([REPO / "examples" / "quickstart"], "default")
    kinds = [m.kind for m in manifests]
    assert kinds == sorted(kinds, key=sb.APPLY_ORDER.__getitem__)
    assert {"Flow", "Deployment", "Schedule", "FlowRun"} <= set(kinds)
    assert all(m.doc["metadata"]["namespace"] == "default" for m in manifests)


def test_an_invalid_manifest_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: headwater.dev/v1alpha1\nkind: Flow\nmetadata: {name: f}\n"
                   "spec: {entrypoint: 'a.b:c'}\n", encoding="utf-8")
    with pytest.raises(sb.SandboxError, match=r"bad\.yaml#0 \(Flow\): .*image"):
        sb.load_manifests([bad], "default")
    with pytest.raises(sb.SandboxError, match="no such file"):
        sb.load_manifests([tmp_path / "missing"], "default")


def test_command_line_defaults_to_the_examples_of_the_checkout(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    sb.add_arguments(parser)
    options = sb.options_from_args(parser.parse_args(["--until-complete"]),
                                   cwd=REPO / "examples")
    assert options.workdir == REPO
    assert options.manifests == [REPO / d for d in sb.DEFAULT_EXAMPLES]
    assert options.cap_seconds == sb.DEFAULT_UNTIL_COMPLETE_CAP
    assert options.state_dir == REPO / ".headwater" / "dev"
    with pytest.raises(sb.SandboxError, match="--duration"):
        sb.options_from_args(parser.parse_args(["--duration", "0"]), cwd=REPO)


def test_the_ui_is_on_until_ctrl_c_and_off_for_a_scripted_session() -> None:
    parser = argparse.ArgumentParser()
    sb.add_arguments(parser)

    def ui(*argv: str) -> tuple[bool, int]:
        options = sb.options_from_args(parser.parse_args(list(argv)), cwd=REPO)
        return options.ui, options.ui_port

    assert ui() == (True, 0)  # the README's first command: runs until Ctrl-C, with the UI
    assert ui("--until-complete") == (False, 0)
    assert ui("--until-complete", "--ui") == (True, 0)
    assert ui("--no-ui") == (False, 0)
    assert ui("--ui-port", "8091") == (True, 8091)


# --- examples stay in sync with their flows ----------------------------------------------
@pytest.mark.parametrize(("manifest", "entrypoint"), [
    ("examples/pipeline/flow.yaml", "examples/flows/ingest.py:ingest"),
    ("examples/assets/flow.yaml", "examples/flows/assets.py:asset_pipeline"),
    *((f"examples/chain/flows.yaml#{index}", f"examples/flows/chain.py:{name}")
      for index, name in enumerate(("ingest", "transform", "dashboards"))),
])
def test_flow_manifest_schema_is_what_headwater_schema_prints(manifest: str,
                                                              entrypoint: str) -> None:
    printed = subprocess.run([sys.executable, "-m", "headwater", "schema", entrypoint],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
    path, _, index = manifest.partition("#")
    flow = list(yaml.safe_load_all((REPO / path).read_text(encoding="utf-8")))[int(index or 0)]
    assert flow["spec"]["entrypoint"] == entrypoint
    assert flow["spec"]["parametersSchema"] == json.loads(printed), (
        f"regenerate with: headwater schema {entrypoint}")
