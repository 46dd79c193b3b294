"""A run of 10,000 task runs stays usable in the UI (issue #13).

The record is the SDK's own: a flow of 10,000 tasks runs in this process and writes it
to a local run store. The run's page must not carry 10,000 task rows (the list is
virtualized: rows come from the JSON endpoint, a window at a time), the timeline and the
graph are aggregated per task key, and search finds one task run among them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from headwater import engine, flow, task
from uifixtures import flowrun, ui_client

TASKS = 10_000


@task
def step(x: int) -> int:
    return x + 1


@task
def audit(x: int) -> int:
    return x


@flow
def big(n: int) -> int:
    x = 0
    for _ in range(n):
        x = step(x)
    return audit(x)


async def test_a_run_of_10000_task_runs_is_aggregated_virtualized_and_searchable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater_operator.ui.state import UiState

    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEADWATER_RUN_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("HEADWATER_NAMESPACE", "default")
    monkeypatch.setenv("HEADWATER_FLOW_RUN_NAME", "big-1")
    assert big(TASKS) == TASKS
    recorder = engine.LAST_RUN_TREE[0].recorder
    assert recorder is not None
    assert recorder.written is True
    state = UiState()
    state.apply("FlowRun", "ADDED", flowrun(
        "big-1", runRecords=[{"attempt": 1, "url": recorder.location.url, "written": True}]))
    async with ui_client(state) as client:
        page = await client.get("/runs/default/big-1")
        html = await page.text()
        everything = await (await client.get("/api/runs/default/big-1/taskruns")).json()
        found = await (await client.get(
            "/api/runs/default/big-1/taskruns?q=step-9999")).json()
    assert page.status == 200
    assert len(re.findall(r'data-testid="task-row"', html)) < 100  # rows come from JSON
    assert f"Timeline of {TASKS + 1} task runs, one lane per task key" in html
    assert "Task dependency graph, one node per task key" in html
    assert everything["total"] == TASKS + 1
    assert found["matched"] == 1
    assert found["taskRuns"][0]["label"] == "step-9999"
    # The page stays small: no per-task markup for 10,000 task runs.
    assert len(html) < 500_000, len(html)
