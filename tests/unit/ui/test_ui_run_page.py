"""``/runs/<ns>/<name>``: the run's status, its record, task runs, logs and Cancel (and the
Flow page's ``source``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from headwater_operator.ui.app import UiOptions
from headwater_operator.ui.state import UiState
from uifixtures import (
    NOW,
    FakeKube,
    deployment,
    fill,
    flowrun,
    stamp,
    task_run,
    ui_client,
    write_record,
)

HOSTILE = ("# Report\n<script>alert('x')</script>\n<img src=x onerror=alert(1)>\n"
           "[click](javascript:alert(1)) [safe](https://example.com/r)\n\n"
           "| a | b |\n|---|---|\n| 1 | 2 |\n")


def _record(name: str, task_runs: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    record = {
        "schemaVersion": "headwater.dev/run-record/v1", "namespace": "default",
        "flowRunName": name, "attempt": 1, "complete": True, "updatedAt": stamp(NOW),
        "flowRun": {"id": "fr-1", "name": "cheerful-otter", "flow": "etl",
                    "state": {"type": "COMPLETED", "name": "Completed"},
                    "subflowRuns": [{"id": "fr-2", "name": "sub-otter", "flow": "child",
                                     "parentFlowRunId": "fr-1", "parentTaskRunId": "t-sub",
                                     "state": {"type": "COMPLETED", "name": "Completed"}}]},
        "taskRuns": task_runs,
        "artifacts": [
            {"id": "a1", "key": "report", "type": "markdown", "data": HOSTILE,
             "taskRunId": "t-1", "created": stamp(NOW)},
            {"id": "a2", "key": "rows", "type": "table", "data": [{"day": "<b>1</b>", "n": 3}],
             "created": stamp(NOW)},
            {"id": "a3", "key": "bad-link", "type": "link",
             "data": {"link": "javascript:alert(1)", "link_text": "evil"},
             "created": stamp(NOW)}],
        "assets": [{"key": "s3://lake/orders", "version": "v7", "upstream": ["s3://raw"],
                    "time": stamp(NOW)}],
    }
    record.update(extra)
    return record


def _setup(tmp_path: Path, phase: str = "Completed") -> tuple[UiState, str]:
    task_runs = [
        task_run("t-1", "extract-0"),
        task_run("t-2", "transform-0", upstream=("t-1",), offset=3, cacheHit=True,
                 cacheKey="k1"),
        task_run("t-3", "load_orders-0", upstream=("t-2",), offset=6, final="FAILED",
                 attempts=[{"number": 1, "state": "Failed", "error": {
                     "type": "ValueError", "message": "bad <row>",
                     "traceback": "Traceback (most recent call last):\n  boom"}}]),
        task_run("t-sub", "child-0", offset=8, subflowRunId="fr-2"),
        task_run("t-4", "inner-0", offset=9, flowRunId="fr-2"),
    ]
    lines = [
        {"time": stamp(NOW), "level": "INFO", "flowRunId": "fr-1", "message": "starting"},
        {"time": stamp(NOW), "level": "DEBUG", "taskRunName": "extract-0",
         "message": "fetched 3 rows"},
        {"time": stamp(NOW), "level": "ERROR", "taskRunName": "load_orders-0",
         "message": "bad row", "exception": "Traceback ...\nValueError: bad row"},
    ]
    url = write_record(tmp_path, "default", "nightly-1", 1, lines=lines,
                       record=_record("nightly-1", task_runs))
    run = flowrun("nightly-1", phase=phase, reason="TaskRunsFailed" if phase == "Failed"
                  else None, message="1 task run failed: see the logs",
                  runRecords=[{"attempt": 1, "url": url, "written": True}],
                  assets=[{"key": "s3://lake/orders", "version": "v7"}])
    event = {"metadata": {"name": "nightly-1.1", "namespace": "default"},
             "involvedObject": {"kind": "FlowRun", "name": "nightly-1"},
             "type": "Warning", "reason": "RunFailed", "message": "the run failed",
             "lastTimestamp": stamp(NOW)}
    state = fill(UiState(), ("Deployment", deployment("nightly")), ("FlowRun", run),
                 ("Event", event))
    return state, url


async def test_the_run_page_shows_status_record_artifacts_assets_subflows_and_events(
        tmp_path: Path) -> None:
    state, url = _setup(tmp_path, phase="Failed")
    async with ui_client(state) as client:
        response = await client.get("/runs/default/nightly-1")
        page = await response.text()
    assert response.status == 200
    assert 'data-testid="run-phase">Failed' in page
    assert "TaskRunsFailed" in page
    assert "1 task run failed: see the logs" in page
    assert "&#34;day&#34;: &#34;2026-03-01&#34;" in page  # parameters, escaped JSON
    assert url in page
    assert page.count('data-testid="artifact"') == 3
    assert 'data-testid="subflow-row"' in page
    assert "sub-otter" in page
    assert ">child-0<" in page  # the subflow's calling task run
    assert "s3://lake/orders" in page
    assert 'data-testid="event-row"' in page
    assert "RunFailed" in page
    assert 'aria-label="Timeline of 5 task runs"' in page
    assert 'aria-label="Task dependency graph"' in page
    assert 'data-testid="task-search"' in page
    assert 'data-testid="cancel"' not in page  # the run has ended
    assert 'data-testid="run-source"' not in page  # its code is in the image


async def test_the_run_page_names_the_commit_a_run_from_git_ran() -> None:
    commit = "0c1f" * 10
    source = {"url": "https://github.com/acme/flows.git", "ref": "main", "commit": commit,
              "path": "etl"}
    state = fill(UiState(), ("Deployment", deployment("nightly")),
                 ("FlowRun", flowrun("nightly-2", phase="Completed", source=source)))
    async with ui_client(state) as client:
        page = await (await client.get("/runs/default/nightly-2")).text()
    [shown] = re.findall(r'data-testid="run-source">(.*?)</dd>', page)
    assert shown == (f"<code>https://github.com/acme/flows.git</code> @ <code>{commit}</code> "
                     "(main), path <code>etl</code>")


async def test_a_hostile_artifact_renders_inert(tmp_path: Path) -> None:
    state, _ = _setup(tmp_path)
    async with ui_client(state) as client:
        page = await (await client.get("/runs/default/nightly-1")).text()
    artifacts = "".join(re.findall(r'<article class="artifact".*?</article>', page, re.S))
    assert "<script" not in artifacts
    assert "&lt;script&gt;" in artifacts
    assert "<img" not in artifacts
    assert "onerror=alert(1)&gt;" in artifacts  # shown as text, not an attribute
    assert "javascript:" not in "".join(re.findall(r'href="([^"]*)"', artifacts))
    assert '<a rel="nofollow noopener noreferrer" href="https://example.com/r">safe</a>' \
        in artifacts
    assert "<th>a</th>" in artifacts  # markdown tables are HTML tables
    assert "<td>&lt;b&gt;1&lt;/b&gt;</td>" in artifacts  # a table artifact's cells
    assert "<span>evil (javascript:alert(1))</span>" in artifacts


async def test_task_runs_json_searches_by_name_and_details_one(tmp_path: Path) -> None:
    state, _ = _setup(tmp_path)
    async with ui_client(state) as client:
        everything = await (await client.get("/api/runs/default/nightly-1/taskruns")).json()
        found = await (await client.get(
            "/api/runs/default/nightly-1/taskruns?q=LOAD")).json()
        globbed = await (await client.get(
            "/api/runs/default/nightly-1/taskruns?q=*-0&attempt=1")).json()
        detail = await (await client.get(
            "/api/runs/default/nightly-1/taskruns/t-3")).text()
        missing = await client.get("/api/runs/default/nightly-1/taskruns/nope")
        wrong_attempt = await client.get("/api/runs/default/nightly-1/taskruns?attempt=2")
        wrong_answer = await wrong_attempt.json()
    assert [row["label"] for row in everything["taskRuns"]] == [
        "extract-0", "transform-0", "load_orders-0", "child-0 → sub-otter", "inner-0"]
    assert [row["depth"] for row in everything["taskRuns"]] == [0, 0, 0, 0, 1]
    assert everything["taskRuns"][1]["cacheHit"] is True
    assert found == {"taskRuns": [everything["taskRuns"][2]], "total": 5, "matched": 1}
    assert globbed["matched"] == 5
    assert 'data-testid="task-error"' in detail
    assert "ValueError: bad &lt;row&gt;" in detail
    assert "Traceback (most recent call last)" in detail
    assert "transform-0" in detail  # upstream, by name
    assert missing.status == 404
    assert wrong_attempt.status == 404
    assert "no run record for attempt 2" in wrong_answer["error"]


async def test_logs_come_from_the_store_once_the_pod_is_gone_filtered_by_level(
        tmp_path: Path) -> None:
    state, url = _setup(tmp_path)
    async with ui_client(state, reader=FakeKube()) as client:
        everything = await (await client.get("/api/runs/default/nightly-1/logs")).json()
        errors = await (await client.get(
            "/api/runs/default/nightly-1/logs?level=ERROR&attempt=1")).json()
        bad = await client.get("/api/runs/default/nightly-1/logs?attempt=3")
    assert everything["source"] == "store"
    assert everything["note"] == (f"Pod nightly-1-1 no longer exists; from the run store at "
                                  f"{url}.")
    assert [line["level"] for line in everything["lines"]] == ["INFO", "DEBUG", "ERROR"]
    assert everything["lines"][0]["text"].endswith("Flow run 'cheerful-otter' - starting")
    assert everything["running"] is False
    assert [line["text"].splitlines()[0][-8:] for line in errors["lines"]] == [" bad row"]
    assert "ValueError: bad row" in errors["lines"][0]["text"]
    assert bad.status == 400


class _Unreachable(FakeKube):
    """A client whose pod-log read fails in transport (refused or timed out)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    async def read_pod_log(self, name: str, *, namespace: str, container: str | None = None,
                           **_: Any) -> str:
        raise self.error


@pytest.mark.parametrize("error", [ConnectionRefusedError(111, "Connection refused"),
                                   TimeoutError()], ids=["refused", "timeout"])
async def test_logs_fall_back_to_the_store_when_the_pod_log_cannot_be_reached(
        tmp_path: Path, error: BaseException) -> None:
    state, url = _setup(tmp_path)
    async with ui_client(state, reader=_Unreachable(
            aiohttp.ClientConnectionError(str(error)) if isinstance(error, OSError)
            else error)) as client:
        answer = await client.get("/api/runs/default/nightly-1/logs")
        body = await answer.json()
    assert answer.status == 200
    assert body["source"] == "store"
    assert body["note"].startswith("Could not reach the API server for pod nightly-1-1's log (")
    assert body["note"].endswith(f"from the run store at {url}.")
    assert [line["level"] for line in body["lines"]] == ["INFO", "DEBUG", "ERROR"]


async def test_logs_come_from_the_pod_while_it_exists(tmp_path: Path) -> None:
    state, _ = _setup(tmp_path, phase="Running")
    output = ("12:00:00.000 | INFO    | Flow run 'x' - hello\n"
              "12:00:01.000 | ERROR   | Task run 'y' - failed\nTraceback ...\n"
              "12:00:02.000 | DEBUG   | Task run 'y' - detail\n")
    async with ui_client(state, reader=FakeKube({"nightly-1-1": output})) as client:
        answer = await (await client.get(
            "/api/runs/default/nightly-1/logs?level=INFO")).json()
    assert answer["source"] == "pod"
    assert answer["running"] is True
    assert [(line["level"], line["text"]) for line in answer["lines"]] == [
        ("INFO", "12:00:00.000 | INFO    | Flow run 'x' - hello"),
        ("ERROR", "12:00:01.000 | ERROR   | Task run 'y' - failed"),
        ("ERROR", "Traceback ...")]


async def test_a_run_without_a_record_says_why(tmp_path: Path) -> None:
    state = fill(UiState(), ("FlowRun", flowrun("bare-1", phase="Running")))
    async with ui_client(state) as client:
        page = await (await client.get("/runs/default/bare-1")).text()
        unknown = await client.get("/runs/default/nope")
    assert 'data-testid="record-missing"' in page
    assert "no run record" in page
    assert "set Deployment.spec.runStore.url" in page
    assert unknown.status == 404


async def _csrf(client: Any, path: str) -> str:
    page = await (await client.get(path)).text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


async def test_cancel_needs_the_csrf_token_and_origin_and_patches_spec_cancel(
        tmp_path: Path) -> None:
    state, _ = _setup(tmp_path, phase="Running")
    writer = FakeKube()
    async with ui_client(state, reader=writer) as client:
        token = await _csrf(client, "/runs/default/nightly-1")
        origin = f"http://{client.host}:{client.port}"
        no_token = await client.post("/runs/default/nightly-1/cancel", data={},
                                     headers={"Origin": origin}, allow_redirects=False)
        wrong = await client.post("/runs/default/nightly-1/cancel",
                                  data={"csrf_token": "x" + token},
                                  headers={"Origin": origin}, allow_redirects=False)
        foreign = await client.post("/runs/default/nightly-1/cancel",
                                    data={"csrf_token": token},
                                    headers={"Origin": "https://evil.example"},
                                    allow_redirects=False)
        assert writer.patches == []
        done = await client.post("/runs/default/nightly-1/cancel",
                                 data={"csrf_token": token}, headers={"Origin": origin},
                                 allow_redirects=False)
        by_header = await client.post("/runs/default/nightly-1/cancel",
                                      headers={"Origin": origin, "X-CSRF-Token": token},
                                      allow_redirects=False)
    assert [no_token.status, wrong.status, foreign.status] == [403, 403, 403]
    assert done.status == 303
    assert done.headers["Location"] == "/runs/default/nightly-1"
    assert by_header.status == 303
    assert writer.patches == [("flowruns", "nightly-1", {"spec": {"cancel": True}},
                               "default")] * 2


async def test_server_mode_offers_and_serves_no_write(tmp_path: Path) -> None:
    state, _ = _setup(tmp_path, phase="Running")
    writer = FakeKube()
    async with ui_client(state, mode="server", reader=writer) as client:
        page = await (await client.get("/runs/default/nightly-1")).text()
        token = await _csrf(client, "/login")
        refused = await client.post(
            "/runs/default/nightly-1/cancel", data={"csrf_token": token},
            headers={"Origin": f"http://{client.host}:{client.port}"}, allow_redirects=False)
        refusal = await refused.text()
    assert 'data-testid="cancel"' not in page
    assert "read-only" in page
    assert refused.status == 403
    assert "no write actions" in refusal
    assert writer.patches == []


@pytest.mark.parametrize("allowed", [(), ("https://example.com",)], ids=["default", "allowed"])
async def test_image_and_progress_artifacts_render_and_only_allowed_images_load(
        tmp_path: Path, allowed: tuple[str, ...]) -> None:
    artifacts = [
        {"id": "i1", "key": "chart", "type": "image", "description": 'rows "per" day',
         "data": "https://example.com/chart.png?a=1&b=2", "created": stamp(NOW)},
        {"id": "i2", "key": "script", "type": "image", "data": "javascript:alert(1)",
         "created": stamp(NOW)},
        {"id": "i3", "key": "quoted", "type": "image",
         "data": 'https://example.com/x.png" onerror="alert(1)', "created": stamp(NOW)},
        {"id": "i4", "key": "inline", "type": "image", "data": "data:image/svg+xml,<svg/>",
         "created": stamp(NOW)},
        {"id": "i5", "key": "elsewhere", "type": "image",
         "data": "https://tracker.example.net/pixel.gif", "created": stamp(NOW)},
        {"id": "p1", "key": "load", "type": "progress", "data": 62.5, "created": stamp(NOW)},
    ]
    url = write_record(tmp_path, "default", "pics-1", 1, lines=[],
                       record=_record("pics-1", [task_run("t-1", "extract-0")],
                                      artifacts=artifacts))
    run = flowrun("pics-1", runRecords=[{"attempt": 1, "url": url, "written": True}])
    state = fill(UiState(), ("Deployment", deployment("nightly")), ("FlowRun", run))
    async with ui_client(state, options=UiOptions(image_origins=allowed)) as client:
        response = await client.get("/runs/default/pics-1")
        page = await response.text()
    bodies = dict(re.findall(r'<article class="artifact"[^>]*>\s*<header><strong>([^<]*)'
                             r'</strong>.*?<div class="artifact-body">(.*?)</div>', page, re.S))
    policy = response.headers["Content-Security-Policy"]
    if allowed:  # the server allows example.com: its images load, and the CSP says so
        assert bodies["chart"] == ('<img src="https://example.com/chart.png?a=1&amp;b=2" '
                                   'alt="rows &#34;per&#34; day" loading="lazy" '
                                   'referrerpolicy="no-referrer">')
        assert bodies["quoted"].startswith(  # the quote is escaped: no attribute breaks out
            '<img src="https://example.com/x.png&#34; onerror=&#34;alert(1)" alt="quoted"')
        assert "img-src 'self' data: https://example.com;" in policy
    else:  # by default no page makes the browser fetch a host an artifact names
        assert not [key for key, body in bodies.items() if "<img" in body]
        assert bodies["chart"].startswith(
            '<a href="https://example.com/chart.png?a=1&amp;b=2" rel="nofollow noopener '
            'noreferrer" data-testid="image-link">Image: rows &#34;per&#34; day</a>')
        assert "img-src 'self' data:;" in policy
    # Never from an origin not allowed; never a script or data: URL.
    assert "<img" not in bodies["elsewhere"]
    assert "https://tracker.example.net/pixel.gif" in bodies["elsewhere"]
    assert bodies["script"] == "<span>javascript:alert(1)</span>"
    assert "<img" not in bodies["inline"]  # a data: URL is shown, not loaded
    assert bodies["load"] == '<progress max="100" value="62.5"></progress> <span>62.5%</span>'
    assert "script-src 'self'" in policy


async def test_the_flow_page_shows_where_its_code_comes_from() -> None:
    flow = {"apiVersion": "headwater.dev/v1alpha1", "kind": "Flow",
            "metadata": {"name": "etl", "namespace": "default", "uid": "uid-etl",
                         "creationTimestamp": stamp(NOW)},
            "spec": {"image": "ghcr.io/acme/runtime:3", "entrypoint": "ingest.py:ingest",
                     "source": {"git": {"url": "https://github.com/acme/flows.git",
                                        "ref": "v1.4.2", "path": "etl",
                                        "credentials": {"secretRef": {"name": "repo"}}}}}}
    state = fill(UiState(), ("Flow", flow))
    async with ui_client(state) as client:
        page = await (await client.get("/flows/default/etl")).text()
    [shown] = re.findall(r'data-testid="flow-source">(.*?)</dd>', page)
    assert shown == ("<code>https://github.com/acme/flows.git</code> at <code>v1.4.2</code>, "
                     'path <code>etl</code> <span class="muted">(credentials from Secret '
                     "repo)</span>")
