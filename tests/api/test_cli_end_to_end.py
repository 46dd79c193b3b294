"""The CLI end to end: real commands against the emulated API, the real operator, a kubelet.

The CLI is synchronous, and the emulator and operator share the test's event loop, so
each command runs in a worker thread (``asyncio.to_thread``) while the test drives pods
from the loop. Commands are parsed by the SDK's ``headwater`` parser, which finds them
through the ``headwater.commands`` entry point exactly as the console script does.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater.cli import build_parser
from headwater_dev.emulator import BackgroundEmulator as Emulator
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet, default_summary
from headwater_operator import kube as kube_module
from headwater_operator.cli.common import Io

TIMEOUT = 15.0
POLL = ["--poll-interval", "0.05"]
SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": 1},
                   "start_date": {"type": "string"}, "end_date": {"type": "string"}},
    "required": ["n"],
}


@dataclass
class Result:
    """What one CLI invocation returned and printed."""

    code: int
    out: str
    err: str


def invoke(*argv: str) -> Result:
    """Run ``headwater <argv>`` in this thread, capturing stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(list(argv))
    args.io = Io(out=out, err=err, now=lambda: datetime.now(UTC))
    code = args.func(args)
    return Result(code, out.getvalue(), err.getvalue())


async def cli(*argv: str) -> Result:
    """Run a command without blocking the loop that serves the emulator and operator."""
    return await asyncio.to_thread(invoke, *argv)


@pytest.fixture
async def etl(kube: kube_module.Kube, namespace: str) -> None:
    """Flow ``etl`` (n ≥ 1 required, default via Deployment) and Deployment ``nightly``."""
    await kube.create(kube_module.FLOWS, {"metadata": {"name": "etl"}, "spec": {
        "image": "ghcr.io/acme/etl:1", "entrypoint": "etl.flows:ingest",
        "parametersSchema": SCHEMA}}, namespace=namespace)
    await kube.create(kube_module.DEPLOYMENTS, {"metadata": {"name": "nightly"}, "spec": {
        "flowRef": {"name": "etl"}, "parameters": {"n": 2}}}, namespace=namespace)


def runs(emulator: Emulator) -> list[dict[str, Any]]:
    return emulator.objects("flowruns", "default")


async def drive_pod(kubelet: Kubelet, name: str, outcome: str, log: str = "") -> None:
    pod = await kubelet.wait_for_pod(name, TIMEOUT)
    await kubelet.schedule(pod)
    await kubelet.run(pod)
    if log:
        kubelet.write_log(pod, log)
    if outcome == "Completed":
        await kubelet.succeed(pod, default_summary("Completed"))
    else:
        await kubelet.fail(pod, 1, default_summary("Failed", message="ValueError: bad row"))


async def only_run_name(emulator: Emulator,
                        wait_for: Callable[..., Awaitable[Any]]) -> str:
    await wait_for(lambda: len(runs(emulator)) == 1, timeout=TIMEOUT)
    return str(runs(emulator)[0]["metadata"]["name"])


async def test_run_wait_completed_exits_0_and_records_cli_trigger(
    etl: None, operator: OperatorHarness, kubelet: Kubelet, emulator: Emulator,
    wait_for: Callable[..., Awaitable[Any]],
) -> None:
    command = asyncio.create_task(cli("run", "nightly", "-p", "n=5", "--wait", *POLL))
    name = await only_run_name(emulator, wait_for)
    await drive_pod(kubelet, f"{name}-1", "Completed")
    result = await asyncio.wait_for(command, TIMEOUT)
    assert result.code == 0, result.err
    assert f"flowrun/{name} created" in result.out
    assert f"flowrun/{name} Completed" in result.out
    run = emulator.object("flowruns", name)
    assert run is not None
    assert name.startswith("nightly-")
    assert run["spec"]["parameters"] == {"n": 5}
    assert run["spec"]["trigger"] == "cli"
    assert run["metadata"]["annotations"]["headwater.dev/trigger"] == "cli"


async def test_run_wait_failed_exits_1_with_reason(
    etl: None, operator: OperatorHarness, kubelet: Kubelet, emulator: Emulator,
    wait_for: Callable[..., Awaitable[Any]],
) -> None:
    command = asyncio.create_task(cli("run", "nightly", "--name", "bad", "--wait", *POLL))
    await drive_pod(kubelet, "bad-1", "Failed")
    result = await asyncio.wait_for(command, TIMEOUT)
    assert result.code == 1
    assert "flowrun/bad Failed" in result.err
    assert "ValueError: bad row" in result.err


async def test_invalid_parameter_is_rejected_before_anything_is_created(
    etl: None, operator: OperatorHarness, emulator: Emulator,
) -> None:
    result = await cli("run", "nightly", "-p", "n=0")
    assert result.code == 2
    assert "parameter 'n'" in result.err
    assert "nothing was created" in result.err
    result = await cli("run", "nightly", "-p", 'n="three"')
    assert result.code == 2
    assert runs(emulator) == []


async def test_run_of_missing_deployment_names_it_and_exits_1(emulator: Emulator) -> None:
    result = await cli("run", "nope")
    assert result.code == 1
    assert "Deployment default/nope not found" in result.err
    assert "headwater get deployments" in result.err


async def test_run_follow_streams_logs_of_every_attempt(
    kube: kube_module.Kube, operator: OperatorHarness, kubelet: Kubelet, namespace: str,
) -> None:
    await kube.create(kube_module.FLOWS, {"metadata": {"name": "etl"}, "spec": {
        "image": "ghcr.io/acme/etl:1", "entrypoint": "etl.flows:ingest", "retries": 1}},
        namespace=namespace)
    await kube.create(kube_module.DEPLOYMENTS, {"metadata": {"name": "nightly"}, "spec": {
        "flowRef": {"name": "etl"}, "retryOn": ["Failed"]}}, namespace=namespace)
    command = asyncio.create_task(cli("run", "nightly", "--name", "flaky", "--follow", *POLL))
    await drive_pod(kubelet, "flaky-1", "Failed", log="attempt one says hello\n")
    await drive_pod(kubelet, "flaky-2", "Completed", log="attempt two succeeded\n")
    result = await asyncio.wait_for(command, TIMEOUT)
    assert result.code == 0, result.err
    assert "attempt one says hello\n" in result.out
    assert "attempt two succeeded\n" in result.out
    assert result.out.index("attempt one") < result.out.index("attempt two")
    assert "==> attempt 2 (pod flaky-2) <==" in result.err

    logs = await cli("logs", "flaky")
    assert logs.code == 0
    assert logs.out == "attempt one says hello\nattempt two succeeded\n"
    second = await cli("logs", "flaky", "--attempt", "2")
    assert second.out == "attempt two succeeded\n"
    out_of_range = await cli("logs", "flaky", "--attempt", "3")
    assert out_of_range.code == 2
    assert "between 1 and 2" in out_of_range.err


async def test_logs_read_the_flow_container_next_to_an_injected_sidecar(
    etl: None, operator: OperatorHarness, kubelet: Kubelet, emulator: Emulator,
) -> None:
    # A service mesh's mutating webhook adds a container to every pod it admits: the
    # API server then refuses a log request that names no container (400), and the CLI
    # showed nothing at all. It must ask for the flow container by name.
    def inject_sidecar(verb: str, spec: Any, path: Any, body: Any) -> None:
        # The webhook's rule matches pods, not their subresources (pods/binding).
        if verb == "create" and spec.plural == "pods" and path.subresource is None:
            body["spec"]["containers"].append(
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0"})

    emulator.emulator.admission_hooks.append(inject_sidecar)
    command = asyncio.create_task(cli("run", "nightly", "--name", "meshed", "--follow",
                                      "--timeout", "10", *POLL))
    await drive_pod(kubelet, "meshed-1", "Completed", log="inside the mesh\n")
    result = await asyncio.wait_for(command, TIMEOUT)
    assert emulator.object("pods", "meshed-1")["spec"]["containers"][1]["name"] == (
        "istio-proxy")
    assert result.code == 0, result.err
    assert "inside the mesh\n" in result.out, result.out
    logs = await cli("logs", "meshed")
    assert (logs.code, logs.out) == (0, "inside the mesh\n"), logs.err


async def test_describe_schedule_shows_policies_next_fires_and_conditions(  # noqa: PLR0917
    etl: None, kube: kube_module.Kube, operator: OperatorHarness, emulator: Emulator,
    namespace: str, wait_for: Callable[..., Awaitable[Any]],
) -> None:
    await kube.create(kube_module.SCHEDULES, {"metadata": {"name": "daily"}, "spec": {
        "deploymentRef": {"name": "nightly"}, "cron": "30 2 * * *",
        "timezone": "America/New_York", "concurrencyPolicy": "Forbid",
        "catchup": {"policy": "All", "maxRuns": 5}}}, namespace=namespace)
    await wait_for(lambda: ((emulator.object("schedules", "daily") or {}).get("status") or {})
                   .get("nextScheduleTime"), timeout=TIMEOUT)

    described = await cli("describe", "schedule", "daily")
    assert described.code == 0, described.err
    text = described.out
    assert "Deployment:     nightly" in text
    assert "Expression:     30 2 * * *" in text
    assert "Timezone:       America/New_York" in text
    assert "Concurrency:    Forbid" in text
    assert "Catch-up:       All, at most 5 runs" in text
    fires = text.split("Next fires:\n", 1)[1].splitlines()[1:4]
    assert [line.split()[2].rsplit("-", 1)[0] for line in fires] == ["daily"] * 3
    assert all("T02:30:00-0" in line for line in fires), fires  # 02:30 local, EST or EDT
    assert "Ready" in text.split("Conditions:\n", 1)[1]

    data = json.loads((await cli("describe", "schedule", "daily", "-o", "json")).out)
    assert data["schedule"]["metadata"]["name"] == "daily"
    assert len(data["nextFireTimes"]) == 3
    assert data["nextFireTimes"][0]["utc"] == data["schedule"]["status"]["nextScheduleTime"]
    missing = await cli("describe", "schedule", "ghost")
    assert missing.code == 1
    assert "Schedule default/ghost not found" in missing.err


async def test_backfill_twice_creates_runs_once_with_scheduler_names(
    etl: None, kube: kube_module.Kube, operator: OperatorHarness, emulator: Emulator,
    namespace: str,
) -> None:
    await kube.create(kube_module.SCHEDULES, {"metadata": {"name": "daily"}, "spec": {
        "deploymentRef": {"name": "nightly"}, "cron": "0 0 * * *",
        "timezone": "Europe/Berlin",
        "windowParameters": {"start": "start_date", "end": "end_date", "format": "Date"}}},
        namespace=namespace)
    window = ("--start", "2026-03-01", "--end", "2026-03-04")
    dry = await cli("backfill", "daily", *window, "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.out.count("would create") == 3
    assert not [r for r in runs(emulator) if r["spec"].get("trigger") == "backfill"]

    first = await cli("backfill", "daily", *window)
    assert first.code == 0, first.err
    assert "created 3, already existed 0" in first.out
    second = await cli("backfill", "daily", *window)
    assert second.code == 0, second.err
    assert "created 0, already existed 3" in second.out

    backfilled = sorted((r for r in runs(emulator) if r["spec"].get("trigger") == "backfill"),
                        key=lambda r: r["metadata"]["name"])
    # Midnight in Berlin (UTC+1 in March) on 1, 2 and 3 March; [start, end) excludes the 4th.
    ticks = [datetime(2026, 2, 28, 23, tzinfo=UTC), datetime(2026, 3, 1, 23, tzinfo=UTC),
             datetime(2026, 3, 2, 23, tzinfo=UTC)]
    assert [r["metadata"]["name"] for r in backfilled] == [
        f"daily-{int(t.timestamp())}" for t in ticks]
    first_run = backfilled[0]
    assert first_run["spec"]["parameters"] == {"start_date": "2026-02-28",
                                               "end_date": "2026-03-01"}
    assert first_run["metadata"]["labels"]["headwater.dev/schedule"] == "daily"
    assert first_run["metadata"]["annotations"]["headwater.dev/trigger"] == "backfill"

    again = await cli("backfill", "daily", *window, "--dry-run", "-o", "json")
    assert [row["exists"] for row in json.loads(again.out)] == [True, True, True]


async def test_backfill_refuses_a_large_window_without_max_runs(
    etl: None, kube: kube_module.Kube, emulator: Emulator, namespace: str,
) -> None:
    await kube.create(kube_module.SCHEDULES, {"metadata": {"name": "often"}, "spec": {
        "deploymentRef": {"name": "nightly"}, "interval": "1h"}}, namespace=namespace)
    window = ("--start", "2026-01-01T00:00:00Z", "--end", "2026-01-06T00:00:00Z")
    refused = await cli("backfill", "often", *window)
    assert refused.code == 2
    assert "--max-runs" in refused.err
    assert runs(emulator) == []
    allowed = await cli("backfill", "often", *window, "--max-runs", "120")
    assert allowed.code == 0, allowed.err
    assert "created 120, already existed 0" in allowed.out


async def test_get_describe_and_cancel(
    etl: None, operator: OperatorHarness, kubelet: Kubelet, emulator: Emulator,
    wait_for: Callable[..., Awaitable[Any]],
) -> None:
    done = asyncio.create_task(cli("run", "nightly", "--name", "done", "--wait", *POLL))
    await drive_pod(kubelet, "done-1", "Completed")
    assert (await asyncio.wait_for(done, TIMEOUT)).code == 0
    assert (await cli("run", "nightly", "--name", "busy")).code == 0
    pod = await kubelet.wait_for_pod("busy-1", TIMEOUT)
    await kubelet.schedule(pod)
    await kubelet.run(pod)
    await wait_for(lambda: ((emulator.object("flowruns", "busy") or {}).get("status") or {})
                   .get("phase") == "Running", timeout=TIMEOUT)

    table = await cli("get", "runs")
    assert table.code == 0
    lines = table.out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "PHASE", "REASON"]
    phases = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert phases == {"busy": "Running", "done": "Completed"}
    listed = json.loads((await cli("get", "runs", "--deployment", "nightly", "-o", "json")).out)
    assert listed["kind"] == "List"
    assert sorted(item["metadata"]["name"] for item in listed["items"]) == ["busy", "done"]
    assert json.loads((await cli("get", "runs", "--deployment", "other", "-o",
                                 "json")).out)["items"] == []
    one = yaml.safe_load((await cli("get", "deployments", "nightly", "-o", "yaml")).out)
    assert one["spec"]["flowRef"] == {"name": "etl"}
    missing = await cli("get", "runs", "ghost")
    assert missing.code == 1
    assert "FlowRun default/ghost not found" in missing.err

    described = await cli("describe", "run", "done")
    assert described.code == 0
    assert "Phase:          Completed" in described.out
    assert "Attempts:       1" in described.out
    assert "Events:\n" in described.out
    assert "Completed" in described.out.split("Events:\n", 1)[1]

    cancelled = await cli("cancel", "busy")
    assert cancelled.code == 0
    assert "cancellation requested" in cancelled.out
    await wait_for(lambda: ((emulator.object("flowruns", "busy") or {}).get("status") or {})
                   .get("phase") in ("Cancelling", "Cancelled"), timeout=TIMEOUT)
    assert (emulator.object("flowruns", "busy") or {})["spec"]["cancel"] is True
    ended = await cli("cancel", "done")
    assert ended.code == 0
    assert "already ended (Completed)" in ended.err


# --- as a process -----------------------------------------------------------------------
async def test_ctrl_c_stops_a_log_follow_at_once(
    etl: None, operator: OperatorHarness, kubelet: Kubelet, tmp_path: Path,
) -> None:
    # The CLI waits for the API server in its main thread while the request runs on the
    # client's loop thread: Ctrl-C must still reach the wait and stop the follow.
    assert (await cli("run", "nightly", "--name", "endless")).code == 0
    pod = await kubelet.wait_for_pod("endless-1", TIMEOUT)
    await kubelet.run(pod)
    kubelet.write_log(pod, "still going\n")
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "headwater", "logs", "endless", "-f", *POLL,
            stdout=stdout, stderr=stderr, start_new_session=True)
    try:
        deadline = time.monotonic() + 60  # the interpreter starting and importing
        while "still going" not in out.read_text():
            assert process.returncode is None, err.read_text()
            assert time.monotonic() < deadline, err.read_text()
            await asyncio.sleep(0.1)
        interrupted_at = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)  # to the process group, as a terminal does
        code = await asyncio.wait_for(process.wait(), 30)
        took = time.monotonic() - interrupted_at
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
    errors = err.read_text()
    assert code == 130, errors
    assert errors.endswith("headwater logs: interrupted\n"), errors
    assert "Traceback" not in errors
    assert took < 5, f"took {took:.1f}s to stop"
