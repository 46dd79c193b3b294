"""Run records (issue #12): what the SDK writes to the run store for every root flow run.

Each test runs real flows and reads the record back through :mod:`headwater.runstore`,
the same reader the CLI uses, and holds it to the checked-in JSON Schema.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from headwater import engine, flow, runrecord, runstore, tags, task
from headwater.artifacts import create_markdown_artifact, create_table_artifact
from headwater.assets import add_asset_metadata, materialize
from headwater.logging import get_run_logger
from headwater.secrets import Secret
from headwater.summary import build_summary

SCHEMA = json.loads(resources.files("headwater").joinpath(
    "data/run-record.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
LINE_SCHEMA = {**SCHEMA["$defs"]["logLine"], "$defs": SCHEMA["$defs"]}


def last_location() -> runstore.Location:
    recorder = engine.LAST_RUN_TREE[0].recorder
    assert recorder is not None, "the run wrote no record"
    location: runstore.Location = recorder.location
    return location


def read_last() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The last root run's record (held to the schema) and its log lines."""
    url = last_location().url
    record = runstore.read_record(url)
    VALIDATOR.validate(record)
    lines = list(runstore.iter_log_lines(url))
    for line in lines:
        jsonschema.validate(line, LINE_SCHEMA)
    return record, lines


def by_name(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The root flow run's task runs by name (names are unique within one flow run)."""
    return {t["name"]: t for t in record["taskRuns"] if "flowRunId" not in t}


# --- one flow with every part of a record ----------------------------------------------------

attempts_seen: list[int] = []


@task(retries=2)
def flaky(x: int) -> list[int]:
    attempts_seen.append(x)
    if len(attempts_seen) == 1:
        raise ValueError("the source was not ready")
    return [x, x + 1]


@task(persist_result=True, cache_key_fn=lambda ctx, params: f"double-{params['x']}")
def double(x: int) -> int:
    return 2 * x


@task
def combine(values: list[int], extra: int) -> dict[str, Any]:
    get_run_logger().info("combining %d values", len(values))
    return {"values": values, "extra": extra}


@materialize("file://lake/marts/combined")
def publish(data: dict[str, Any]) -> dict[str, Any]:
    add_asset_metadata("file://lake/marts/combined", {"rows": len(data["values"])})
    return data


@task
def square(x: int) -> int:
    return x * x


@flow
def child(x: int) -> int:
    get_run_logger().info("child flow for %d", x)
    return double(x)


@flow(log_prints=True)
def parent(n: int = 3) -> list[int]:
    values = flaky(n)
    first = double.submit(n)
    mixed = combine(values, 7, wait_for=[first])
    publish(mixed)
    child(n)
    create_markdown_artifact("# Report\n\nAll good.", key="report")
    create_table_artifact([{"day": "mon", "rows": 3}, {"day": "tue", "rows": 5}], key="rows")
    print("printed from the flow")
    with tags("squares"):
        futures = square.map([1, 2, 3])
    return [f.result() for f in futures]


def test_record_holds_task_runs_attempts_cache_subflow_artifacts_assets_and_logs() -> None:
    attempts_seen.clear()
    assert parent(3) == [1, 4, 9]
    record, lines = read_last()
    runs = by_name(record)

    assert record["complete"] is True
    assert record["namespace"] == runstore.LOCAL_NAMESPACE
    assert record["flowRunName"] == record["flowRun"]["id"]
    assert record["flowRun"]["flow"] == "parent"
    assert record["flowRun"]["parameters"] == {"n": 3}
    assert record["flowRun"]["state"] == "Completed"

    retried = runs["flaky-0"]
    assert [a["state"] for a in retried["attempts"]] == ["Failed", "Completed"]
    error = retried["attempts"][0]["error"]
    assert error["type"] == "ValueError"
    assert error["message"] == "the source was not ready"
    assert 'raise ValueError("the source was not ready")' in error["traceback"]
    assert "engine.py" not in error["traceback"]  # it starts at the user's code
    assert "error" not in retried["attempts"][1]

    # the subflow's call of double(3) hits the cache the parent's call filled
    child_run = record["flowRun"]["subflowRuns"][0]
    cached = [t for t in record["taskRuns"] if t.get("flowRunId") == child_run["id"]]
    assert [(t["name"], t["state"], t["cacheHit"]) for t in cached] == [
        ("double-0", "Cached", True)]
    assert runs["double-0"]["cacheHit"] is False  # the parent's own run computed it
    assert runs["double-0"]["resultLocation"].endswith("/results/double-3")
    assert cached[0]["attempts"] == []

    # dependencies: a result passed in, and wait_for
    assert runs["combine-0"]["upstream"] == [retried["id"]]
    assert runs["combine-0"]["waitFor"] == [runs["double-0"]["id"]]
    assert runs["publish-0"]["upstream"] == [runs["combine-0"]["id"]]

    # the subflow, nested, and the task run that stands for its call
    call = runs["child-0"]
    assert call["subflowRunId"] == child_run["id"]
    assert child_run["parentTaskRunId"] == call["id"]
    assert child_run["parentFlowRunId"] == record["flowRun"]["id"]

    squares = [runs[f"square-{i}"] for i in range(3)]
    assert [s["mapIndex"] for s in squares] == [0, 1, 2]
    assert all(s["tags"] == ["squares"] for s in squares)

    artifacts = {a["key"]: a for a in record["artifacts"]}
    assert artifacts["report"]["data"] == "# Report\n\nAll good."
    assert artifacts["rows"]["data"][1] == {"day": "tue", "rows": 5}

    [asset] = record["assets"]
    assert asset["key"] == "file://lake/marts/combined"
    assert asset["metadata"] == {"rows": 2}
    assert asset["taskRunId"] == runs["publish-0"]["id"]

    messages = [(line.get("taskRunName"), line["message"]) for line in lines]
    assert ("combine-0", "combining 2 values") in messages
    assert (None, "printed from the flow") in messages
    assert any(line["message"] == "child flow for 3" and line["flowRunId"] == child_run["id"]
               for line in lines)
    assert record["logs"]["lines"] == len(lines)
    assert build_summary(engine.LAST_RUN_TREE[0])["recordWritten"] is True


# --- incremental flushes ------------------------------------------------------------------------

gate = threading.Event()
started = threading.Event()


@task
def wait_at_gate() -> int:
    started.set()
    assert gate.wait(30), "the test never opened the gate"
    return 1


@flow
def gated() -> int:
    get_run_logger().info("before the gate")
    return wait_at_gate()


def test_a_running_run_can_be_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runrecord, "FLUSH_INTERVAL", 0.05)
    gate.clear()
    started.clear()
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(gated()))
    runner.start()
    try:
        assert started.wait(30)
        location = last_location()
        seen: dict[str, Any] = {}
        for _ in range(600):  # the flusher writes within a few intervals
            try:
                seen = runstore.read_record(location.url)
            except runstore.RecordNotFound:
                seen = {}
            if seen.get("taskRuns"):
                break
            threading.Event().wait(0.05)
        VALIDATOR.validate(seen)
        assert seen["complete"] is False
        assert [(t["name"], t["state"]) for t in seen["taskRuns"]] == [
            ("wait_at_gate-0", "Running")]
        assert seen["taskRuns"][0]["attempts"][0] == {
            "number": 1, "state": "Running",
            "startTime": seen["taskRuns"][0]["attempts"][0]["startTime"]}
        assert [line["message"] for line in runstore.iter_log_lines(location.url)][:2] == [
            "Beginning flow run " + repr(seen["flowRun"]["name"]) + " for flow 'gated'",
            "before the gate"]
    finally:
        gate.set()
        runner.join(30)
    assert result == [1]
    final = runstore.read_record(location.url)
    assert final["complete"] is True
    assert final["taskRuns"][0]["state"] == "Completed"


# --- a store outage ---------------------------------------------------------------------------


@task
def fine() -> str:
    return "ok"


@flow
def unbothered() -> str:
    get_run_logger().info("working")
    return fine()


def test_a_store_outage_never_fails_the_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    monkeypatch.setenv("HEADWATER_RUN_STORE", str(blocker / "store"))
    state = unbothered(return_state=True)
    assert state.is_completed()
    assert state.result() == "ok"
    tree = engine.LAST_RUN_TREE[0]
    assert tree.record_written is False
    summary = build_summary(tree)
    assert summary["state"] == "Completed"
    assert summary["recordWritten"] is False
    warnings = [line for line in capsys.readouterr().err.splitlines()
                if "run record could not be written" in line]
    assert len(warnings) == 1, warnings  # once, not at every flush
    assert str(blocker / "store") in warnings[0]


def test_records_can_be_turned_off(monkeypatch: pytest.MonkeyPatch,
                                   headwater_home: Path) -> None:
    monkeypatch.setenv("HEADWATER_RUN_STORE", "off")
    assert unbothered() == "ok"
    tree = engine.LAST_RUN_TREE[0]
    assert tree.recorder is None
    assert "recordWritten" not in build_summary(tree)
    assert not (headwater_home / runstore.LAYOUT).exists()


# --- secrets ---------------------------------------------------------------------------------

SECRET = "hunter2-very-secret"


@task
def leaky(token: str) -> None:
    get_run_logger().info("connecting with %s", token)
    raise PermissionError(f"login refused for password {token}")


@flow
def uses_secret(token: str) -> None:
    create_markdown_artifact(f"token was {token}", key="leak")
    leaky(token)


def test_secret_values_never_reach_the_record_or_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_SECRET_DB", SECRET)
    value = Secret.load("db").get()
    state = uses_secret(value, return_state=True)
    assert state.is_failed()
    url = last_location().url
    storage_root = Path(url)
    written = "".join(p.read_text() for p in storage_root.rglob("*") if p.is_file())
    assert "connecting with" in written
    assert "login refused" in written
    assert SECRET not in written
    record, _ = read_last()
    assert record["flowRun"]["parameters"] == {"token": "********"}


# --- logs in segments -------------------------------------------------------------------------


@flow
def chatty(n: int) -> int:
    logger = get_run_logger()
    for i in range(n):
        logger.info("line %04d", i)
    return n


def test_logs_roll_over_into_segments_read_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runrecord, "SEGMENT_BYTES", 2000)
    chatty(120)
    record, lines = read_last()
    assert len(record["logs"]["segments"]) > 3
    numbered = [line["message"] for line in lines if line["message"].startswith("line ")]
    assert numbered == [f"line {i:04d}" for i in range(120)]


# --- in a flow-run pod ------------------------------------------------------------------------


def test_headwater_execute_writes_the_record_where_the_operator_says(tmp_path: Path) -> None:
    (tmp_path / "podflow.py").write_text(textwrap.dedent("""
        from headwater import flow, task

        @task
        def one() -> int:
            return 1

        @flow
        def pod_flow(x: int) -> int:
            return one() + x
    """))
    store = tmp_path / "store"
    summary_path = tmp_path / "summary.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update({
        "HEADWATER_HOME": str(tmp_path / "home"),
        "HEADWATER_RUN_STORE": str(store),
        "HEADWATER_NAMESPACE": "team-a",
        "HEADWATER_FLOW_RUN_NAME": "nightly-x7k2p",
        "HEADWATER_ATTEMPT": "2",
        "HEADWATER_PARAMETERS": json.dumps({"x": 41}),
    })
    done = subprocess.run(
        [sys.executable, "-m", "headwater", "execute", "--entrypoint",
         f"{tmp_path / 'podflow.py'}:pod_flow", "--summary-path", str(summary_path)],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["recordWritten"] is True
    url = runstore.attempt_url(str(store), "team-a", "nightly-x7k2p", 2)
    record = runstore.read_record(url)
    VALIDATOR.validate(record)
    assert (record["namespace"], record["flowRunName"], record["attempt"]) == (
        "team-a", "nightly-x7k2p", 2)
    assert [t["name"] for t in record["taskRuns"]] == ["one-0"]
    runstore.delete_flowrun(str(store), "team-a", "nightly-x7k2p")
    with pytest.raises(runstore.RecordNotFound):
        runstore.read_record(url)


def test_runtime_ui_url_is_the_flowruns_page(monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.runtime import flow_run

    monkeypatch.delenv("HEADWATER_UI_URL", raising=False)
    assert flow_run.ui_url is None
    monkeypatch.setenv("HEADWATER_UI_URL", "https://ui.example.com")
    monkeypatch.setenv("HEADWATER_NAMESPACE", "team-a")
    monkeypatch.setenv("HEADWATER_FLOW_RUN_NAME", "nightly-x7k2p")
    assert flow_run.ui_url == "https://ui.example.com/runs/team-a/nightly-x7k2p"


# --- progress and image artifacts -------------------------------------------------------------


def test_progress_updates_and_images_reach_the_record_and_the_artifact_files() -> None:
    from headwater import create_image_artifact, create_progress_artifact, update_progress_artifact
    from headwater.artifacts import read_artifact

    @task
    def load(batches: int) -> str:
        progress = create_progress_artifact(0.0, key="load-progress", description="loading")
        for done in range(1, batches + 1):
            update_progress_artifact(progress, 100 * done / batches)
        update_progress_artifact(progress, 100, description="loaded")
        return progress

    @flow
    def main() -> str:
        create_image_artifact("https://example.invalid/chart.png", key="chart",
                              description="rows per day")
        return load(4)

    progress_id = main()
    # Two creations and five updates: each one makes the next flush rewrite the record.
    assert engine.LAST_RUN_TREE[0].artifact_revision == 7
    record, _ = read_last()  # the schema admits both kinds
    artifacts = {a["key"]: a for a in record["artifacts"]}
    assert artifacts["load-progress"]["type"] == "progress"
    assert artifacts["load-progress"]["data"] == 100.0  # the latest update, not the first
    assert artifacts["load-progress"]["description"] == "loaded"
    assert artifacts["load-progress"]["id"] == progress_id
    assert artifacts["chart"] == {**artifacts["chart"], "type": "image",
                                  "data": "https://example.invalid/chart.png"}
    stored = read_artifact(str(engine.LAST_RUN_TREE[0].result_storage or
                               os.environ["HEADWATER_HOME"]),
                           engine.LAST_RUN_TREE[0].root.id, "load-progress")
    assert (stored["data"], stored["description"]) == (100.0, "loaded")


def test_progress_must_be_a_percentage_and_updates_need_a_known_id() -> None:
    from headwater import create_progress_artifact, update_progress_artifact

    with pytest.raises(ValueError, match="progress must be a number from 0 to 100"):
        create_progress_artifact(150)
    with pytest.raises(ValueError, match="no progress artifact 'nope' was created"):
        update_progress_artifact("nope", 10)
