"""Prefect-style flow files (``flows/``) run on Headwater with only the import changed.

Each file is written as a Prefect 3 user writes it, importing from ``headwater`` where
Prefect code imports from ``prefect``; each test runs it and checks what that user sees:
the return value, the final state, the artifacts and records written, the hooks fired.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from headwater import engine, runstore
from headwater.exceptions import FailedRun, ParameterTypeError
from headwater.states import State

FLOWS = Path(__file__).parent / "flows"
Load = Callable[[str], ModuleType]

# The module paths a file may import, each the `headwater` twin of a Prefect 3 module, and
# the names Prefect 3 exports from its top-level package (prefect/__init__.py).
PREFECT_MODULES = frozenset({
    "artifacts", "cache_policies", "client.schemas", "client.schemas.objects", "context",
    "exceptions", "flows", "futures", "logging", "runtime", "runtime.deployment",
    "runtime.flow_run", "runtime.task_run", "schedules", "states", "task_runners", "tasks",
    "testing.utilities", "utilities.annotations", "transactions", "concurrency.sync",
    "concurrency.asyncio",
})
PREFECT_TOP_LEVEL = frozenset({
    "allow_failure", "flow", "Flow", "get_run_logger", "State", "tags", "task", "Task",
    "unmapped", "runtime",
})


def last_record() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The last root run's record and log lines, read as `headwater logs` reads them."""
    recorder = engine.LAST_RUN_TREE[0].recorder
    assert recorder is not None
    url = recorder.location.url
    return runstore.read_record(url), list(runstore.iter_log_lines(url))


def task_states() -> list[str]:
    return [t.state.name for t in engine.LAST_RUN_TREE[0].task_runs]


def test_every_file_imports_only_what_prefect_3_has_under_the_same_name() -> None:
    files = sorted(FLOWS.glob("*.py"))
    assert len(files) >= 20
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[
                    0] in ("headwater", "prefect"):
                assert node.module.startswith("headwater"), f"{path.name}: {node.module}"
                sub = node.module.removeprefix("headwater").lstrip(".")
                if sub:
                    assert sub in PREFECT_MODULES, f"{path.name}: prefect.{sub} differs"
                else:
                    names = {alias.name for alias in node.names}
                    assert names <= PREFECT_TOP_LEVEL, f"{path.name}: {names - PREFECT_TOP_LEVEL}"


# --- the APIs of issue #14 ----------------------------------------------------------------------


def test_hooks_annotated_with_generic_states(load: Load) -> None:
    module = load("state_annotations")
    hints = typing.get_type_hints(module.flow_done)
    assert hints["state"] == State[Any]
    returned = module.audit([1, 2, 3])
    assert isinstance(returned, State)  # the flow returned a task's state: handed back
    assert returned.result() == 3
    with pytest.raises(ValueError, match="no rows to audit"):
        module.audit([])
    assert module.events == ["task count_rows -> 3", "flow audit Completed",
                             "flow audit failed: Flow run encountered an exception: "
                             "ValueError: no rows to audit"]


def test_a_list_of_states_with_a_failure_fails_the_flow_and_is_returned(load: Load) -> None:
    module = load("return_states")
    returned = module.quality_gate([3, -1])
    assert [s.name for s in returned] == ["Completed", "Failed"]
    assert str(returned[1].result(raise_on_failure=False)) == "negative values found"
    state = module.quality_gate([3, -1], return_state=True)
    assert (state.name, state.message) == ("Failed", "1/2 states failed.")
    assert module.quality_gate([1], return_state=True).message == "All states completed."


def test_returned_futures_become_states(load: Load) -> None:
    module = load("return_futures")
    assert [s.result() for s in module.squares([1, 2, 3])] == [1, 4, 9]
    returned = module.squares([2, 13])  # one failed: still returned, not raised
    assert [s.name for s in returned] == ["Completed", "Failed"]
    assert module.squares([2, 13], return_state=True).is_failed()


def test_runtime_flow_run_and_task_run(load: Load) -> None:
    info = load("runtime_context").report("2026-12-07")
    assert info["flow_run"] == "report-2026-12-07"
    assert info["flow"] == "report"
    assert info["task_run"] == "describe-2026-12-07"
    assert info["task"] == "describe"
    assert info["parameters"] == {"day": "2026-12-07"}
    assert info["task_parameters"] == {"label": "2026-12-07"}
    assert info["run_count"] == 1
    assert {"api_url", "ui_url", "job_variables", "parent_deployment_id"} <= set(
        info["listed"])


def test_runtime_deployment_from_the_pod_environment_and_overrides(
        load: Load, monkeypatch: pytest.MonkeyPatch) -> None:
    module = load("deployment_runtime")
    assert module.load() == {"deployment": None, "id": None, "version": None,
                             "flow_run_id": None, "target": "dev"}
    for name, value in {"HEADWATER_DEPLOYMENT_NAME": "orders-nightly",
                        "HEADWATER_DEPLOYMENT_ID": "uid-dep", "HEADWATER_DEPLOYMENT_VERSION": "2",
                        "HEADWATER_FLOW_RUN_ID": "uid-run",
                        "HEADWATER_PARAMETERS": '{"target": "prod"}'}.items():
        monkeypatch.setenv(name, value)
    assert module.load() == {"deployment": "orders-nightly", "id": "uid-dep", "version": "2",
                             "flow_run_id": "uid-run", "target": "prod"}
    monkeypatch.setenv("HEADWATER__RUNTIME__DEPLOYMENT__NAME", "pinned-in-test")
    assert module.load()["deployment"] == "pinned-in-test"


def test_prefect_test_harness_keeps_runs_out_of_the_usual_home(load: Load,
                                                                headwater_home: Path) -> None:
    module = load("harnessed")
    module.test_totals()  # the user's own test, run as pytest would
    assert os.environ["HEADWATER_HOME"] == str(headwater_home)
    assert not (headwater_home / "results").exists()  # everything went to the harness's


def test_result_storage_key_names_the_stored_result(load: Load, headwater_home: Path) -> None:
    module = load("storage_key")
    assert module.daily("2026-12-07") == {"day": "2026-12-07", "rows": 42}
    assert (headwater_home / "results" / "daily" / "2026-12-07-summary.pickle").is_file()
    assert module.daily("2026-12-07") == {"day": "2026-12-07", "rows": 42}
    assert task_states() == ["Cached"]
    assert module.calls == ["2026-12-07"]


def test_progress_artifact_updates_land_in_the_run_record(load: Load) -> None:
    assert load("progress_artifacts").backfill(4) == 4
    record, _ = last_record()
    (progress,) = record["artifacts"]
    assert (progress["key"], progress["type"], progress["data"]) == ("load-progress",
                                                                     "progress", 100.0)


def test_image_artifact_lands_in_the_run_record(load: Load, headwater_home: Path) -> None:
    load("image_artifacts").weekly_chart()
    record, _ = last_record()
    image = next(a for a in record["artifacts"] if a["type"] == "image")
    assert image["data"] == "https://example.com/charts/orders-week-49.png"
    assert image["description"] == "Orders per day"
    root = engine.LAST_RUN_TREE[0].root.id
    assert (headwater_home / "artifacts" / root / "orders-chart.json").is_file()


def _subprocess_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env["HEADWATER_HOME"] = str(home)
    return env


def test_a_file_written_for_serve_runs_as_a_pod_entrypoint(headwater_home: Path,
                                                          tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    env = _subprocess_env(headwater_home)
    done = subprocess.run(
        [sys.executable, "-m", "headwater", "execute", "--entrypoint",
         f"{FLOWS / 'scheduled_serve.py'}:refresh", "--param", "source=customers",
         "--summary-path", str(summary)],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(summary.read_text())["state"] == "Completed"
    assert "refreshed customers: 9" in done.stdout
    # Its schedules becoming manifests: tests/compat/test_prefect_deploy.py.


# --- everyday Prefect code -------------------------------------------------------------------


def test_retries_with_exponential_backoff(load: Load, sleeps: list[float]) -> None:
    module = load("retries")
    assert module.sync_orders() == {"endpoint": "/orders", "status": 200}
    assert module.attempts == [1, 2, 3]
    assert engine.LAST_RUN_TREE[0].task_runs[0].run_count == 3
    assert len(sleeps) == 2  # 2 s then 4 s, each with up to 50 % jitter
    assert 1.0 <= sleeps[0] <= 3.0
    assert 2.0 <= sleeps[1] <= 6.0


def test_caching_on_inputs_with_expiration(load: Load) -> None:
    module = load("caching")
    assert module.convert({"EUR": 10, "GBP": 5}) == 17.15
    assert module.convert({"EUR": 10, "GBP": 5}) == 17.15
    assert task_states() == ["Cached", "Cached"]
    assert module.lookups == ["EUR", "GBP"]


def test_composed_cache_policies(load: Load) -> None:
    module = load("cache_policies")
    assert module.segment([1, 2, 1]) == [10, 5, 10]
    assert module.runs == [1, 2]


def test_map_with_unmapped(load: Load) -> None:
    assert load("mapping").word_counts(["the cat sat", "a dog ran far"]) == [2, 3]


def test_submit_wait_for_and_as_completed(load: Load) -> None:
    module = load("submit_futures")
    assert module.pipeline(["orders", "users"]) == {"done": 2, "not_done": 0, "rows": 11}
    assert module.order[0] == "schema"  # every load waited for the schema


def test_subflows(load: Load) -> None:
    assert load("subflows").global_sales(["eu", "us"]) == {"eu": 7, "us": 18}
    names = [run.name for run in engine.LAST_RUN_TREE[0].flow_runs[1:]]
    assert names == ["sales-eu", "sales-us"]


def test_run_logger_and_log_prints(load: Load) -> None:
    assert load("logging_flow").etl() == 10
    _, lines = last_record()
    messages = {line["message"]: line["level"] for line in lines}
    assert messages["source is slow today"] == "WARNING"
    assert messages["transforming 5 rows"] == "INFO"
    assert messages["loaded 10 rows"] == "INFO"  # print() became a log line


def test_failure_and_completion_hooks(load: Load) -> None:
    module = load("hooks")
    assert module.ratio(1, 2) == 0.5
    with pytest.raises(ZeroDivisionError):
        module.ratio(1, 0)
    assert module.notifications == [
        "done ratio", "task divide-0 failed",
        "ALERT ratio-0: Flow run encountered an exception: ZeroDivisionError: division by zero"]


def test_markdown_table_and_link_artifacts(load: Load) -> None:
    load("markdown_table_artifacts").orders_report()
    record, _ = last_record()
    by_key = {a["key"]: a for a in record["artifacts"]}
    assert set(by_key) == {"orders-dashboard", "orders-table", "orders-report"}
    assert by_key["orders-report"]["data"] == "# Orders\n\n**2** orders, total 42"
    assert by_key["orders-table"]["data"][1] == {"id": 2, "amount": 12}
    assert engine.LAST_RUN_TREE[0].artifacts == ["orders-dashboard", "orders-table",
                                                  "orders-report"]


def test_pydantic_model_parameters(load: Load) -> None:
    module = load("pydantic_params")
    window = {"start": "2026-12-01", "end": "2026-12-07"}
    assert module.ingest({"table": "orders", "window": window}) == {
        "table": "orders", "days": 6, "batch": 100, "dry_run": False}
    with pytest.raises(ParameterTypeError, match="batch_size"):
        module.ingest({"table": "orders", "batch_size": 0, "window": window})


def test_async_flow_with_gathered_async_tasks(load: Load) -> None:
    assert asyncio.run(load("async_flow").crawl()) == [0, 1, 2, 10, 11, 12, 20, 21, 22]


def test_task_timeout_handled_by_the_flow(load: Load) -> None:
    assert load("timeouts").dashboard(1.0) == {"data": "stale", "state": "TimedOut"}


def test_tags_from_decorators_and_context(load: Load) -> None:
    from headwater import tags

    module = load("tags")
    with tags("nightly", "backfill"):
        info = module.publish()
    assert info == {"flow": ["backfill", "nightly"],
                    "task": ["backfill", "finance", "nightly", "warehouse"]}


def test_templated_run_names(load: Load) -> None:
    assert load("run_names").load_chunk(7) == {"flow_run": "chunk-7",
                                               "task_run": "load-events-7"}


def test_allow_failure_and_quote(load: Load) -> None:
    module = load("allow_failure_quote")
    assert module.careful([1, 2, 3]) == {"cleanup": "cleaned", "size": 3}
    assert module.cleaned == ["RuntimeError"]  # cleanup got the upstream's exception
    assert engine.LAST_RUN_TREE[0].root.state.is_completed()


def test_thread_pool_task_runner_limits_concurrency(load: Load) -> None:
    module = load("task_runner")
    assert module.download_all(6) == [0, 1, 2, 3, 4, 5]
    assert 1 <= module.counts["peak"] <= 2


def test_inspecting_states_and_returning_manual_ones(load: Load) -> None:
    module = load("state_inspection")
    assert module.triage([{"id": 1}, {"name": "x"}, {"id": 3}]) == {
        "valid": [{"id": 1}, {"id": 3}], "errors": ["KeyError('id')"]}
    with pytest.raises(FailedRun, match="2 of 3 records are invalid"):
        module.triage([{"a": 1}, {"b": 2}, {"id": 3}])


def test_a_failed_quality_check_rolls_back_the_write(load: Load, tmp_path: Path) -> None:
    module = load("transactions")
    target = tmp_path / "side-effect.txt"
    with pytest.raises(ValueError, match="Not enough data!"):
        module.pipeline(filename=str(target), contents="hello world")
    assert not target.exists()  # the rollback hook deleted it
    assert module.log == ["rollback"]
    assert module.pipeline(filename=str(target), contents="line 1\nline 2\n") == "written"
    assert target.read_text() == "line 1\nline 2\n"
    assert module.log == ["rollback", "commit"]
    record, _ = last_record()
    assert [t["state"] for t in record["transactions"]] == ["COMMITTED"]


def test_a_keyed_transaction_runs_once(load: Load) -> None:
    module = load("transactions")
    assert module.daily_download("2026-12-07") == "downloaded"
    assert module.daily_download("2026-12-08") == "downloaded"
    assert module.daily_download("2026-12-07") == "skipped"
    assert module.log == ["download 2026-12-07", "download 2026-12-08"]
    _, lines = last_record()
    assert any("Already downloaded" in line["message"] for line in lines)


def test_concurrency_and_rate_limits_declared_in_the_environment(
        load: Load, monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.concurrency import limits, read_limit

    monkeypatch.setenv("HEADWATER_CONCURRENCY_LIMITS", json.dumps(
        {"database": 1, "rate-limited-api": {"limit": 100, "slot_decay_per_second": 10}}))
    limits.REGISTRY.clear()
    try:
        module = load("concurrency_limits")
        assert module.concurrency_flow(batch_size=4) == [0, 2, 4, 6]
        assert asyncio.run(module.async_flow(3)) == [0, 10, 20]
        api, database = read_limit("rate-limited-api"), read_limit("database")
        assert api is not None
        assert database is not None
        assert api.active_slots > 0  # rate-limit slots decay; they are not given back
        assert database.active_slots == 0
    finally:
        limits.REGISTRY.clear()


def test_undeclared_limits_are_skipped_with_a_warning(load: Load,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.concurrency import limits

    monkeypatch.delenv("HEADWATER_CONCURRENCY_LIMITS", raising=False)
    limits.REGISTRY.clear()
    module = load("concurrency_limits")
    assert module.concurrency_flow(batch_size=2) == [0, 2]
    _, lines = last_record()
    assert any("Concurrency limits ['database'] do not exist - skipping acquisition."
               in line["message"] for line in lines)
