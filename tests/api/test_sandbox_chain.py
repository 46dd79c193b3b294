"""The chain in ``headwater dev`` with real flow code: backfills and failures.

A backfill of ingest's Schedule (the real ``headwater backfill`` command against the
sandbox's API server) makes one transform and one dashboards run per window, each once.

examples/chain (ingest → transform → dashboards, each run after the previous one's
Completed run) plus an Automation on ingest's failures that notifies a local webhook
receiver through a ``CustomWebhook`` Block. One ingest run is given a window the flow
cannot parse, so its real pod fails: no transform or dashboards run is created, and the
receiver gets one notification whose body carries the run's name, its phase and the end of
its log as the SDK wrote it to the run store (``run.logs``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater_dev import sandbox as sb

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def received() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook receiver: its URL, and the JSON bodies it was sent."""
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            bodies.append({"body": json.loads(raw), "key": self.headers.get("Idempotency-Key")})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()
    server.server_close()


def _manifests(folder: Path, url: str) -> Path:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chain-alerts-block"},
         "data": {"url": base64.b64encode(url.encode()).decode()}},
        {"apiVersion": "headwater.dev/v1alpha1", "kind": "Block",
         "metadata": {"name": "chain-alerts"},
         "spec": {"type": "headwater.blocks.notifications:CustomWebhook",
                  "data": {"json_body": {"subject": "{{ subject }}", "text": "{{ body }}"}},
                  "secretRefs": {"url": {"name": "chain-alerts-block", "key": "url"}}}},
        {"apiVersion": "headwater.dev/v1alpha1", "kind": "Automation",
         "metadata": {"name": "chain-ingest-failed"},
         "spec": {"trigger": {"runPhase": {"phases": ["Failed", "Crashed"],
                                           "selector": {"deployments": ["chain-ingest"]}}},
                  "actions": [{"notify": {
                      "blockRef": {"name": "chain-alerts"},
                      "subject": "{{ run.deployment }} run {{ run.name }} {{ run.phase }}",
                      "body": "{{ run.parameters.end_date }}\n{{ run.logs }}"}}]}},
        {"apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
         "metadata": {"name": "chain-ingest-broken"},
         "spec": {"deploymentRef": {"name": "chain-ingest"}, "trigger": "manual",
                  "parameters": {"start_date": "2024-02-01", "end_date": "not-a-date"}}},
    ]
    path = folder / "alerts.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


async def test_a_failed_upstream_stops_the_chain_and_notifies(
        tmp_path: Path, received: tuple[str, list[dict[str, Any]]]) -> None:
    url, bodies = received
    extra = _manifests(tmp_path, url)
    options = sb.SandboxOptions(
        manifests=[REPO / "examples" / "chain", extra], workdir=REPO,
        state_dir=tmp_path / "state", out=io.StringIO(), refresh_seconds=0.2,
        until_complete=True, duration=90)
    result = await sb.Sandbox(options).run()
    phases = {run["metadata"]["name"]: (run.get("status") or {}).get("phase")
              for run in result.runs}
    assert phases["chain-ingest-broken"] == "Failed", phases
    # The example's own ingest run (a good window) goes down the whole chain…
    by_deployment: dict[str, list[str]] = {}
    for run in result.runs:
        by_deployment.setdefault(run["spec"]["deploymentRef"]["name"], []).append(
            run["metadata"]["name"])
    assert len(by_deployment["chain-transform"]) == 1, phases
    assert len(by_deployment["chain-dashboards"]) == 1, phases
    # …and the broken one triggers nothing downstream.
    for run in result.runs:
        provenance = (run["metadata"].get("annotations") or {}).get(
            "headwater.dev/triggered-by-runs", "")
        assert "chain-ingest-broken" not in provenance, run["metadata"]
    # One notification, for the broken run only, with the end of its log.
    assert len(bodies) == 1, bodies
    body = bodies[0]["body"]
    assert body["subject"] == "chain-ingest run chain-ingest-broken Failed"
    first, _, logs = body["text"].partition("\n")
    assert first == "not-a-date"
    assert "end_date" in logs, logs
    assert str(bodies[0]["key"]).startswith("hw-")
    assert url not in json.dumps(result.runs)


BACKFILL_WINDOWS = [("2024-03-01", "2024-03-02"), ("2024-03-02", "2024-03-03"),
                    ("2024-03-03", "2024-03-04")]


def _windows(runs: list[dict[str, Any]], deployment: str) -> list[tuple[str, str]]:
    return sorted((run["spec"]["parameters"]["start_date"], run["spec"]["parameters"]["end_date"])
                  for run in runs if run["spec"]["deploymentRef"]["name"] == deployment
                  and (run.get("status") or {}).get("phase") == "Completed")


async def test_a_backfill_of_the_upstream_runs_each_downstream_window_once(
        tmp_path: Path) -> None:
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text(yaml.safe_dump({
        "apiVersion": "headwater.dev/v1alpha1", "kind": "Schedule",
        "metadata": {"name": "chain-ingest-daily"},
        "spec": {"deploymentRef": {"name": "chain-ingest"}, "cron": "0 0 * * *",
                 "suspend": True, "timezone": "UTC",
                 "windowParameters": {"start": "start_date", "end": "end_date",
                                      "format": "Date"}}}))
    options = sb.SandboxOptions(
        manifests=[REPO / "examples" / "chain", schedule], workdir=REPO,
        state_dir=tmp_path / "state", out=io.StringIO(), refresh_seconds=0.2, duration=120)
    sandbox = sb.Sandbox(options)
    stop = asyncio.Event()
    session = asyncio.create_task(sandbox.run(stop))
    try:
        deadline = time.monotonic() + 60
        while not (sandbox.kubeconfig_path.exists() and sandbox.emulator is not None
                   and sandbox.emulator.object("schedules", "chain-ingest-daily", "default")):
            assert time.monotonic() < deadline, options.out.getvalue()
            assert not session.done(), options.out.getvalue()
            await asyncio.sleep(0.2)
        backfill = [sys.executable, "-m", "headwater", "backfill", "chain-ingest-daily",
                    "--start", "2024-03-02", "--end", "2024-03-05",
                    "--kubeconfig", str(sandbox.kubeconfig_path), "-n", "default"]
        done = await asyncio.to_thread(subprocess.run, backfill, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 90
        while True:
            runs = sandbox.emulator.objects("flowruns", "default")
            dashboards = _windows(runs, "chain-dashboards")
            if all(window in dashboards for window in BACKFILL_WINDOWS):
                break
            assert time.monotonic() < deadline, (dashboards, options.out.getvalue()[-3000:])
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)  # anything a replay would add has time to show
        runs = sandbox.emulator.objects("flowruns", "default")
    finally:
        stop.set()
        await session
    for deployment in ("chain-ingest", "chain-transform", "chain-dashboards"):
        windows = _windows(runs, deployment)
        for window in BACKFILL_WINDOWS:
            assert windows.count(window) == 1, (deployment, windows)
    # The example's own ad-hoc run (2024-01-01 .. 01-03) went down the chain too, once.
    assert len([run for run in runs if run["spec"]["deploymentRef"]["name"]
                == "chain-dashboards"]) == len(BACKFILL_WINDOWS) + 1
