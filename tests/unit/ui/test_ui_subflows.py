"""A subflow run's page, ``/runs/<ns>/<name>/subflows/<id>``, and the links both ways
between it, its parent flow run, the task run that called it and its own subflows."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import isolated_home
from headwater import flow, get_run_logger, task
from headwater.artifacts import create_markdown_artifact
from headwater_operator.cli.store import RecordRef, read_record
from headwater_operator.ui.state import UiState
from headwater_operator.ui.subflows import flow_run_part, flow_run_path
from uifixtures import NOW, deployment, fill, flowrun, stamp, task_run, ui_client, write_record

headwater_home = isolated_home.headwater_home  # autouse: the SDK test's own store

RUN = "/runs/default/nightly-1"
HOSTILE = '<script>alert("x")</script>'


def _flow_run(ident: str, name: str, parent: str, caller: str, *subflows: dict[str, Any],
              **extra: Any) -> dict[str, Any]:
    body = {"id": ident, "name": name, "flow": name.split("-", maxsplit=1)[0],
            "parentFlowRunId": parent, "parentTaskRunId": caller, "state": "Completed",
            "parameters": {"n": ident},
            "stateHistory": [{"type": "COMPLETED", "name": "Completed", "time": stamp(NOW)}],
            "startTime": stamp(NOW), "endTime": stamp(NOW), "subflowRuns": list(subflows)}
    body.update(extra)
    return body


def nested_record() -> dict[str, Any]:
    """root fr-0 → fr-1 (called by t-c1) → fr-2 (t-c2) → fr-3 (t-c3), and fr-1b beside
    fr-1; each flow run has a task run of its own (t-0 … t-3), an artifact and a line."""
    fr3 = _flow_run("fr-3", "inner-3", "fr-2", "t-c3")
    fr2 = _flow_run("fr-2", "middle-2", "fr-1", "t-c2", fr3)
    fr1 = _flow_run("fr-1", "outer-1", "fr-0", "t-c1", fr2, tags=["sub"])
    fr1b = _flow_run("fr-1b", "other-1b", "fr-0", "t-c1b")
    task_runs = [
        task_run("t-0", "root-work"),
        task_run("t-1", "outer-work", flowRunId="fr-1", offset=1),
        task_run("t-2", "middle-work", flowRunId="fr-2", offset=2, upstream=("t-1",)),
        task_run("t-3", "inner-work", flowRunId="fr-3", offset=3),
        task_run("t-c3", "inner-call", flowRunId="fr-2", subflowRunId="fr-3", offset=3),
        task_run("t-c2", "middle-call", flowRunId="fr-1", subflowRunId="fr-2", offset=2),
        task_run("t-c1", "outer-call", subflowRunId="fr-1", offset=1),
        task_run("t-c1b", "other-call", subflowRunId="fr-1b", offset=4),
    ]
    return {
        "schemaVersion": "headwater.dev/run-record/v1", "namespace": "default",
        "flowRunName": "nightly-1", "attempt": 1, "complete": True, "updatedAt": stamp(NOW),
        "flowRun": {"id": "fr-0", "name": "root-0", "flow": "etl", "state": "Completed",
                    "subflowRuns": [fr1, fr1b]},
        "taskRuns": task_runs,
        "artifacts": [{"id": f"a{n}", "key": f"art-{n}", "type": "markdown",
                       "data": f"# artifact {n}", "flowRunId": f"fr-{n}",
                       "taskRunId": f"t-{n}", "created": stamp(NOW)} for n in range(4)],
        "assets": [{"key": f"s3://lake/{n}", "version": "v1", "upstream": [],
                    "skipped": False, "flowRunId": f"fr-{n}"} for n in range(4)],
    }


def nested_lines() -> list[dict[str, Any]]:
    lines = [{"time": stamp(NOW), "level": "INFO", "logger": "headwater.flow_runs",
              "flowRunId": f"fr-{n}", "message": f"flow line {n}"} for n in range(4)]
    lines += [{"time": stamp(NOW), "level": "WARNING", "logger": "headwater.task_runs",
               "flowRunId": "fr-2", "taskRunId": "t-2", "taskRunName": "middle-work",
               "message": "middle warns"},
              {"time": stamp(NOW), "level": "INFO", "logger": "somewhere",
               "message": "a line of no flow run"}]
    return lines


def _state(tmp_path: Path, record: dict[str, Any] | None = None,
           lines: list[dict[str, Any]] | None = None, **status: Any) -> UiState:
    url = write_record(tmp_path, "default", "nightly-1", 1, record=record or nested_record(),
                       lines=nested_lines() if lines is None else lines)
    run = flowrun("nightly-1", runRecords=[{"attempt": 1, "url": url, "written": True}],
                  **status)
    return fill(UiState(), ("Deployment", deployment("nightly")), ("FlowRun", run))


def sub(ident: str) -> str:
    return f"{RUN}/subflows/{ident}?attempt=1"


def hrefs(page: str, testid: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(
        rf'<a href="([^"]*)" data-testid="{testid}"', page)]


# --- the record's part ---------------------------------------------------------------------

def test_a_flow_runs_part_is_its_own_and_its_subflows_task_runs_artifacts_and_assets(
        ) -> None:
    record = nested_record()
    path = flow_run_path(record, "fr-2")
    assert path is not None
    assert [f["id"] for f in path] == ["fr-0", "fr-1", "fr-2"]
    part = flow_run_part(record, path[-1])
    assert part["flowRun"]["id"] == "fr-2"
    # Its own task runs and those of fr-3 under it; not the task run that called it
    # (t-c2 is fr-1's), nor its parent's or the root's.
    assert [t["id"] for t in part["taskRuns"]] == ["t-2", "t-3", "t-c3"]
    assert [a["key"] for a in part["artifacts"]] == ["art-2", "art-3"]
    assert [m["key"] for m in part["assets"]] == ["s3://lake/2", "s3://lake/3"]
    assert flow_run_path(record, "fr-9") is None
    assert flow_run_path(record, "fr-0") == [record["flowRun"]]


# --- the run's page links to every subflow run --------------------------------------------

async def test_the_run_page_links_each_subflow_its_parent_and_its_calling_task_run(
        tmp_path: Path) -> None:
    async with ui_client(_state(tmp_path)) as client:
        page = await (await client.get(RUN)).text()
    rows = re.findall(r'<tr data-testid="subflow-row">(.*?)</tr>', page)
    assert len(rows) == 4  # nested three deep, and one beside
    assert hrefs(page, "subflow-link") == [sub("fr-1"), sub("fr-2"), sub("fr-3"),
                                           sub("fr-1b")]
    middle = html.unescape(rows[1])
    assert f'<a href="{sub("fr-1")}">outer-1</a>' in middle  # its parent's page
    assert f'<a href="{sub("fr-1")}&task=t-c2">middle-call</a>' in middle  # its caller
    first = html.unescape(rows[0])
    assert f'<a href="{RUN}?attempt=1">root-0</a>' in first  # the root: the run's page
    assert f'<a href="{RUN}?attempt=1&task=t-c1">outer-call</a>' in first


async def test_a_task_run_that_calls_a_subflow_links_to_it_from_its_detail(
        tmp_path: Path) -> None:
    async with ui_client(_state(tmp_path)) as client:
        caller = await (await client.get(f"/api{RUN}/taskruns/t-c1?attempt=1")).text()
        nested = await (await client.get(f"/api{RUN}/taskruns/t-3?attempt=1")).text()
        own = await (await client.get(f"/api{RUN}/taskruns/t-0?attempt=1")).text()
    assert hrefs(caller, "task-subflow-link") == [sub("fr-1")]
    assert ">outer-1</a>" in caller
    # A task run of a subflow, listed on the run's page, links to its flow run's page.
    assert hrefs(nested, "task-flow-run-link") == [sub("fr-3")]
    assert "task-flow-run-link" not in own
    assert "task-subflow-link" not in own


# --- a subflow run's page --------------------------------------------------------------------

async def test_a_subflow_page_shows_its_state_parameters_and_links_up_and_down(
        tmp_path: Path) -> None:
    async with ui_client(_state(tmp_path)) as client:
        response = await client.get(sub("fr-1"))
        page = await response.text()
    assert response.status == 200
    assert 'data-page="subflow"' in page
    assert 'data-namespace="default" data-name="nightly-1"' in page  # live: the root's
    assert 'data-live="subflow-status"' in page
    assert 'data-testid="subflow-state">Completed' in page
    assert "&#34;n&#34;: &#34;fr-1&#34;" in page  # its own parameters
    assert page.count('data-testid="subflow-state-row"') == 1
    assert hrefs(page, "breadcrumb") == [f"{RUN}?attempt=1"]
    assert hrefs(page, "subflow-parent") == [f"{RUN}?attempt=1"]  # the root run's page
    assert hrefs(page, "subflow-caller") == [f"{RUN}?attempt=1&task=t-c1"]
    # Its own subflows (two deep under it), linked; not the one beside it.
    assert hrefs(page, "subflow-link") == [sub("fr-2"), sub("fr-3")]
    assert "other-1b" not in page
    # Its record's part: task runs (and the JSON the list reads), timeline, artifacts.
    assert f'data-src="/api{RUN}/subflows/fr-1/taskruns"' in page
    assert f'data-src="/api{RUN}/subflows/fr-1/logs"' in page
    assert 'aria-label="Timeline of 5 task runs"' in page
    assert re.findall(r"<h1>(artifact \d)</h1>", page) == [
        "artifact 1", "artifact 2", "artifact 3"]
    assert 'href="/assets?key=s3%3A//lake/0"' not in page
    assert 'href="/assets?key=s3%3A//lake/1"' in page
    # One attempt's record holds it: no attempt tabs, one attempt in the log viewer, and
    # no Events (they are about the FlowRun) nor Cancel.
    assert 'data-testid="attempt-link"' not in page
    assert re.findall(r'<option value="(\d+)"[^>]*>\d+</option>', page) == ["1"]
    assert 'data-testid="event-row"' not in page
    assert "<h2>Events</h2>" not in page


async def test_a_subflow_three_deep_has_breadcrumbs_and_its_parent_subflow_page(
        tmp_path: Path) -> None:
    async with ui_client(_state(tmp_path)) as client:
        page = await (await client.get(sub("fr-3"))).text()
    crumbs = re.search(r'data-testid="breadcrumbs">(.*?)</nav>', page, re.S)
    assert crumbs is not None
    assert re.findall(r">([^<>]+)</(?:a|li)>", crumbs.group(1)) == [
        "nightly-1", "outer-1", "middle-2", "inner-3"]
    assert hrefs(page, "breadcrumb") == [f"{RUN}?attempt=1", sub("fr-1"), sub("fr-2")]
    assert hrefs(page, "subflow-parent") == [sub("fr-2")]
    assert hrefs(page, "subflow-caller") == [f"{sub('fr-2')}&task=t-c3"]
    assert "3 levels down" in page
    assert 'data-testid="subflow-row"' not in page  # no subflows of its own


async def test_a_subflows_task_runs_are_listed_searched_and_detailed_as_on_the_run_page(
        tmp_path: Path) -> None:
    api = f"/api{RUN}/subflows/fr-2/taskruns"
    async with ui_client(_state(tmp_path)) as client:
        every = await (await client.get(f"{api}?attempt=1")).json()
        found = await (await client.get(f"{api}?attempt=1&q=inner*")).json()
        detail = await (await client.get(f"{api}/t-c3?attempt=1")).text()
        foreign = await client.get(f"{api}/t-0?attempt=1")
    assert [(t["label"], t["depth"]) for t in every["taskRuns"]] == [
        ("middle-work", 0), ("inner-call → inner-3", 0), ("inner-work", 1)]
    assert (every["total"], every["matched"]) == (3, 3)
    assert [t["label"] for t in found["taskRuns"]] == ["inner-call → inner-3", "inner-work"]
    assert hrefs(detail, "task-subflow-link") == [sub("fr-3")]
    assert foreign.status == 404  # the root's task run is not this page's


async def test_a_subflows_logs_are_its_flow_runs_lines_and_say_what_is_left_out(
        tmp_path: Path) -> None:
    api = f"/api{RUN}/subflows/fr-2/logs"
    async with ui_client(_state(tmp_path, phase="Running")) as client:
        every = await (await client.get(f"{api}?attempt=1")).json()
        warnings = await (await client.get(f"{api}?attempt=1&level=WARNING")).json()
    texts = [line["text"] for line in every["lines"]]
    assert [t.split(" - ", 1)[1] for t in texts] == ["flow line 2", "flow line 3",
                                                     "middle warns"]
    assert "Flow run 'middle-2' - flow line 2" in texts[0]
    assert every["source"] == "store"
    assert every["running"] is True
    assert "3 of the attempt's 6 lines" in every["note"]
    assert "1 line(s) carry no flow-run id" in every["note"]
    assert [line["level"] for line in warnings["lines"]] == ["WARNING"]


# --- what is not there ------------------------------------------------------------------------

async def test_a_subflow_id_the_record_does_not_hold_is_a_404_page_naming_it(
        tmp_path: Path) -> None:
    async with ui_client(_state(tmp_path)) as client:
        response = await client.get(f"{RUN}/subflows/fr-9?attempt=1")
        page = await response.text()
        tasks = await client.get(f"/api{RUN}/subflows/fr-9/taskruns?attempt=1")
        tasks_error = (await tasks.json())["error"]
        logs = await client.get(f"/api{RUN}/subflows/fr-9/logs?attempt=1")
        root = await client.get(f"{RUN}/subflows/fr-0?attempt=1", allow_redirects=False)
        attempt = await client.get(f"{RUN}/subflows/fr-1?attempt=2")
        attempt_page = html.unescape(await attempt.text())
    assert response.status == 404
    message = html.unescape(re.search(r'data-testid="error-message">(.*?)</p>', page,
                                      re.S).group(1))  # type: ignore[union-attr]
    assert "attempt 1 of FlowRun default/nightly-1" in message
    assert "no subflow run with id 'fr-9'" in message
    assert "it has 4 subflow run(s)" in message
    assert hrefs(page, "error-link") == [RUN]
    assert tasks.status == 404
    assert "'fr-9'" in tasks_error
    assert logs.status == 404
    # The root flow run's id is the run's own page.
    assert root.status == 303
    assert root.headers["Location"] == f"{RUN}?attempt=1"
    # An attempt without a record says so.
    assert attempt.status == 404
    assert "has no run record for attempt 2" in attempt_page


async def test_a_run_without_a_record_has_no_subflow_pages(tmp_path: Path) -> None:
    state = fill(UiState(), ("FlowRun", flowrun("nightly-1")))
    async with ui_client(state) as client:
        response = await client.get(f"{RUN}/subflows/fr-1")
        page = await response.text()
    assert response.status == 404
    assert "no run record" in html.unescape(page)


async def test_hostile_names_and_ids_are_escaped_and_their_links_encoded(
        tmp_path: Path) -> None:
    weird = 'x/"><img src=x onerror=alert(1)>?&'
    record = nested_record()
    fr1 = record["flowRun"]["subflowRuns"][0]
    fr1["id"], fr1["name"] = weird, HOSTILE
    fr1["subflowRuns"][0]["parentFlowRunId"] = weird
    fr1["parameters"] = {"x": HOSTILE}
    for t in record["taskRuns"]:
        if t.get("flowRunId") == "fr-1":
            t["flowRunId"] = weird
        if t.get("subflowRunId") == "fr-1":
            t["subflowRunId"], t["name"] = weird, HOSTILE
    encoded = f"{RUN}/subflows/{quote(weird, safe='')}?attempt=1"
    async with ui_client(_state(tmp_path, record=record)) as client:
        root = await (await client.get(RUN)).text()
        response = await client.get(encoded)
        page = await response.text()
        child = await (await client.get(sub("fr-2"))).text()
        detail = await (await client.get(f"/api{RUN}/taskruns/t-c1?attempt=1")).text()
    for text in (root, page, child, detail):
        assert "<script>" not in text
        assert "<img" not in text
    assert "&lt;script&gt;" in root
    assert "&lt;script&gt;" in page
    assert hrefs(root, "subflow-link")[0] == encoded
    assert response.status == 200
    assert hrefs(child, "subflow-parent") == [encoded]
    assert hrefs(child, "breadcrumb")[1] == encoded
    assert hrefs(detail, "task-subflow-link") == [encoded]
    assert f'data-src="/api{RUN}/subflows/{quote(weird, safe="")}/taskruns"' in page


# --- a record the SDK wrote ---------------------------------------------------------------------

@task(task_run_name="work-{level}")
def _work(level: str) -> str:
    get_run_logger().info("working at %s", level)
    create_markdown_artifact(f"# {level}", key=f"work-{level}")
    return level


@flow(name="c", flow_run_name="c-run")
def _c() -> str:
    return _work("c")


@flow(name="b", flow_run_name="b-run")
def _b() -> str:
    return _work("b") + _c()


@flow(name="a", flow_run_name="a-run")
def _a() -> str:
    return _work("a") + _b()


@flow(name="root", flow_run_name="root-run")
def _root() -> str:
    return _work("root") + _a()


def _run_root(store: Path) -> tuple[str, dict[str, Any]]:
    """Run ``_root`` with the run store at ``store``: its attempt's URL and record."""
    assert _root() == "rootabc"
    [attempt] = store.glob("flowruns/v1/_local/*/1")
    return str(attempt), read_record(RecordRef(1, str(attempt), True))


async def test_the_pages_of_a_record_the_sdk_wrote_three_deep(headwater_home: Path) -> None:
    attempt, record = _run_root(headwater_home)
    a = record["flowRun"]["subflowRuns"][0]
    b = a["subflowRuns"][0]
    c = b["subflowRuns"][0]
    run = flowrun("nightly-1", runRecords=[{"attempt": 1, "url": attempt}])
    state = fill(UiState(), ("FlowRun", run))
    async with ui_client(state) as client:
        root = await (await client.get(RUN)).text()
        page = await (await client.get(sub(b["id"]))).text()
        tasks = await (await client.get(f"/api{RUN}/subflows/{b['id']}/taskruns")).json()
        logs = await (await client.get(f"/api{RUN}/subflows/{c['id']}/logs")).json()
        caller = await (await client.get(
            f"/api{RUN}/subflows/{a['id']}/taskruns/{b['parentTaskRunId']}")).text()
    assert hrefs(root, "subflow-link") == [sub(a["id"]), sub(b["id"]), sub(c["id"])]
    assert hrefs(page, "breadcrumb") == [f"{RUN}?attempt=1", sub(a["id"])]
    assert hrefs(page, "subflow-parent") == [sub(a["id"])]
    assert hrefs(page, "subflow-caller") == [f"{sub(a['id'])}&task={b['parentTaskRunId']}"]
    assert hrefs(page, "subflow-link") == [sub(c["id"])]
    assert re.findall(r"<h1>(\w+)</h1>", page) == ["b", "c"]  # its artifacts, and c's
    assert [t["label"].split(" ")[0] for t in tasks["taskRuns"]] == ["work-b", "c-0", "work-c"]
    assert [line["text"].split(" - ", 1)[1] for line in logs["lines"]] == [
        "Beginning flow run 'c-run' for flow 'c'", "working at c",
        "Finished in state Completed()"]
    assert hrefs(caller, "task-subflow-link") == [sub(b["id"])]


def test_a_timeline_of_one_task_run_says_so_in_the_singular() -> None:
    from headwater_operator.ui import runs

    record = {"flowRun": {"id": "f", "subflowRuns": []},
              "taskRuns": [{"id": "t", "flowRunId": "f", "name": "only-0", "taskKey": "only",
                            "stateHistory": []}]}
    label = str(runs.timeline(record, datetime.now(UTC)))
    assert "<title>Timeline of 1 task run: " in label
