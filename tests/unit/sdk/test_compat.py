"""Prefect-compatibility details: ``tags()``, annotations (``quote``), run-only API errors,
``runtime`` attributes, ``cache_result_in_memory``, timed-out sync tasks, and concurrent
flow-level timeouts."""

from __future__ import annotations

import contextvars
import shutil
import threading
from pathlib import Path
from typing import Any

import headwater
import pytest
from headwater import NO_CACHE, flow, get_run_context, get_run_logger, runtime, tags, task
from headwater.engine import LAST_RUN_TREE
from headwater.exceptions import MissingContextError, MissingResult
from headwater.futures import TaskFuture
from headwater.states import PersistedResult, State

# --- tags() ---------------------------------------------------------------------------------


@task(tags=["own"])
def tagged() -> list[str]:
    return list(runtime.task_run.tags)


def test_tags_context_applies_to_task_and_flow_runs_created_inside() -> None:
    @flow
    def main() -> tuple[list[str], list[str]]:
        inside = tagged.submit().result()
        return runtime.flow_run.tags, inside

    with tags("nightly", "finance"), tags("eu") as current:
        assert current == {"nightly", "finance", "eu"}
        flow_tags, task_tags = main()
    assert flow_tags == ["eu", "finance", "nightly"]
    assert task_tags == ["eu", "finance", "nightly", "own"]
    main()  # after the block only the task's own tags remain
    assert LAST_RUN_TREE[0].task_runs[0].tags == {"own"}
    assert LAST_RUN_TREE[0].root.tags == frozenset()


def test_tags_inside_a_flow_apply_only_within_the_block() -> None:
    @flow
    def main() -> None:
        with tags("backfill"):
            tagged()
        tagged()

    main()
    assert [set(tr.tags) for tr in LAST_RUN_TREE[0].task_runs] == [{"own", "backfill"},
                                                                   {"own"}]


# --- annotations ----------------------------------------------------------------------------


def test_annotations_importable_from_prefect_path() -> None:
    from headwater.utilities import annotations

    assert annotations.unmapped is headwater.unmapped
    assert annotations.allow_failure is headwater.allow_failure
    assert annotations.quote is headwater.quote


def test_quote_passes_the_value_without_resolving_futures() -> None:
    from headwater.utilities.annotations import quote

    @task
    def source() -> int:
        return 1

    @task
    def inspect_arg(value: Any) -> str:
        return type(value).__name__

    @flow
    def main() -> tuple[str, str]:
        future = source.submit()
        return inspect_arg(quote(future)), inspect_arg(future)

    assert main() == ("TaskFuture", "int")


def test_quoted_iterable_is_not_mapped_over() -> None:
    from headwater.utilities.annotations import quote

    @task
    def pair(x: int, ys: list[int]) -> int:
        return x + len(ys)

    @flow
    def main() -> list[int]:
        return pair.map([1, 2], quote([7, 8, 9])).result()

    assert main() == [4, 5]


# --- run-only API outside a run ----------------------------------------------------------------


def test_run_only_api_outside_a_run_raises_missing_context_error() -> None:
    with pytest.raises(MissingContextError, match="inside a function decorated with @flow"):
        get_run_logger()
    with pytest.raises(MissingContextError, match="only inside a @flow or @task"):
        get_run_context()
    assert issubclass(MissingContextError, RuntimeError)  # older `except RuntimeError` works


# --- runtime ----------------------------------------------------------------------------------


def test_runtime_parent_and_root_ids_and_version() -> None:
    @flow(version="2024.1")
    def child() -> dict[str, Any]:
        return {"parent": runtime.flow_run.parent_flow_run_id,
                "root": runtime.flow_run.root_flow_run_id,
                "version": runtime.flow_run.flow_version}

    @flow
    def parent() -> dict[str, Any]:
        return {"own": child(), "parent": runtime.flow_run.parent_flow_run_id}

    info = parent()
    root_id = LAST_RUN_TREE[0].root.id
    assert info == {"own": {"parent": root_id, "root": root_id, "version": "2024.1"},
                    "parent": None}
    assert runtime.flow_run.tags == []
    assert runtime.task_run.tags == []
    with pytest.raises(AttributeError, match="available: id, name"):
        _ = runtime.flow_run.no_such_attribute


# --- cache_result_in_memory ---------------------------------------------------------------------


def test_cache_result_in_memory_false_keeps_only_a_reference(headwater_home: Path) -> None:
    calls: list[int] = []

    @task(cache_key_fn=lambda ctx, args: f"big-{args['n']}", cache_result_in_memory=False)
    def big(n: int) -> list[int]:
        calls.append(n)
        return list(range(n))

    futures: list[TaskFuture[list[int]]] = []

    @flow
    def main() -> list[int]:
        futures.extend([big.submit(3), big.submit(3)])
        return futures[1].result()

    assert main() == [0, 1, 2]
    assert calls == [3]
    for future in futures:  # neither the computed nor the cached state holds the value
        assert type(future.state._data) is PersistedResult
    assert futures[0].result() == [0, 1, 2]  # loaded from storage again
    shutil.rmtree(headwater_home / "results")
    with pytest.raises(MissingResult, match="cache_result_in_memory=False"):
        futures[0].result()


def test_cache_result_in_memory_false_without_cache_key_persists_per_run() -> None:
    @task(persist_result=True, cache_policy=NO_CACHE, cache_result_in_memory=False)
    def value() -> dict[str, int]:
        return {"a": 1}

    @flow
    def main() -> tuple[Any, dict[str, int]]:
        future = value.submit()
        future.wait()
        return future.state._data, future.result()

    ref, result = main()
    assert isinstance(ref, PersistedResult)
    assert ref.key.startswith("task-runs/")
    assert result == {"a": 1}


def test_cache_result_in_memory_default_keeps_value() -> None:
    @task(cache_key_fn=lambda ctx, args: "kept")
    def value() -> int:
        return 5

    @flow
    def main() -> State:
        state: State = value(return_state=True)
        return state

    returned = main()  # a flow returning a task's state gives that state back (Prefect 3)
    assert isinstance(returned, State)
    assert returned.data == 5


# --- timed-out sync tasks ---------------------------------------------------------------------


def _timeout_helpers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "headwater-timeout"}


def test_timed_out_sync_task_does_not_hold_up_the_flow() -> None:
    """The blocked call keeps its thread, but the flow finishes and the task is TimedOut."""
    release = threading.Event()
    resumed: list[str] = []
    before = _timeout_helpers()

    @task(timeout_seconds=0.05)
    def blocks() -> None:
        release.wait()  # a blocking call: a timeout cannot interrupt it
        resumed.append("code after the blocking call ran")

    @flow
    def main() -> list[str]:
        submitted = blocks.submit()
        direct = blocks(return_state=True)
        submitted.wait()
        return [submitted.state.name, direct.name]

    try:
        assert main() == ["TimedOut", "TimedOut"]
        assert LAST_RUN_TREE[0].root.state.name == "Completed"
        helpers = _timeout_helpers() - before
        assert len(helpers) == 2
        assert all(t.is_alive() for t in helpers)  # still blocked: the flow did not wait
    finally:
        release.set()
    for helper in helpers:
        helper.join(10)
        assert not helper.is_alive()
    # When the blocking call returned, the injected timeout stopped the task's code.
    assert resumed == []


# --- concurrent flow-level timeouts -------------------------------------------------------------


def test_concurrent_subflow_timeouts_in_threads() -> None:
    release = threading.Event()
    both_timed_out = threading.Barrier(3, timeout=30)

    def note_timeout(fl: Any, run: Any, state: State) -> None:
        both_timed_out.wait()

    @flow(timeout_seconds=0.05, on_failure=[note_timeout])
    def short(label: str) -> None:
        release.wait(30)

    @flow(timeout_seconds=30)
    def long() -> str:
        both_timed_out.wait()  # finishes only after both short subflows timed out
        return "done"

    @flow
    def parent() -> dict[str, State]:
        results: dict[str, State] = {}

        def run(key: str, fn: Any, *args: Any) -> None:
            results[key] = fn(*args, return_state=True)

        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(run, key, fn, *args))
            for key, fn, args in (("a", short, ("a",)), ("b", short, ("b",)),
                                  ("long", long, ()))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        return results

    try:
        results = parent()
    finally:
        release.set()
    assert {k: s.name for k, s in results.items()} == {"a": "TimedOut", "b": "TimedOut",
                                                       "long": "Completed"}
    assert results["long"].data == "done"
    runs = {r.parameters.get("label"): r for r in LAST_RUN_TREE[0].flow_runs[1:]}
    for label in ("a", "b"):  # each timeout is reported by its own run
        assert results[label].message == (
            f"Flow run {runs[label].name!r} exceeded timeout of 0.05s")


# --- runtime modules as in Prefect 3 ---------------------------------------------------------


def test_runtime_modules_list_their_attributes_and_import_by_name() -> None:
    from headwater.runtime import deployment, flow_run, task_run

    for module in (flow_run, task_run, deployment):
        assert dir(module) == sorted(module.__all__)
        for name in module.__all__:
            getattr(module, name)  # every listed attribute is readable outside a run
    assert {"api_url", "ui_url", "job_variables", "parent_deployment_id"} <= set(
        flow_run.__all__)
    assert sorted(deployment.__all__) == ["flow_run_id", "id", "name", "parameters", "version"]
    from headwater.runtime.flow_run import name as imported  # Prefect's `from ... import`

    assert imported is None


def test_runtime_deployment_reads_the_pod_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.runtime import deployment

    assert (deployment.id, deployment.name, deployment.parameters) == (None, None, {})
    monkeypatch.setenv("HEADWATER_DEPLOYMENT_ID", "uid-nightly")
    monkeypatch.setenv("HEADWATER_DEPLOYMENT_NAME", "nightly")
    monkeypatch.setenv("HEADWATER_DEPLOYMENT_VERSION", "3")
    monkeypatch.setenv("HEADWATER_FLOW_RUN_ID", "uid-run")
    monkeypatch.setenv("HEADWATER_PARAMETERS", '{"day": "2026-12-07"}')
    assert (deployment.id, deployment.name, deployment.version, deployment.flow_run_id) == (
        "uid-nightly", "nightly", "3", "uid-run")
    assert deployment.parameters == {"day": "2026-12-07"}


def test_runtime_flow_run_urls_and_parent_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_NAMESPACE", "data")
    monkeypatch.setenv("HEADWATER_FLOW_RUN_NAME", "ingest-x")
    monkeypatch.setenv("HEADWATER_UI_URL", "https://hw.example/")
    monkeypatch.setenv("HEADWATER_DEPLOYMENT_ID", "uid-nightly")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")

    @flow
    def child() -> dict[str, Any]:
        return {"parent_deployment": runtime.flow_run.parent_deployment_id,
                "task_ui": probe_urls()}

    @flow
    def parent() -> dict[str, Any]:
        return {"own": runtime.flow_run.parent_deployment_id, "child": child(),
                "api": runtime.flow_run.api_url, "ui": runtime.flow_run.ui_url,
                "jobs": runtime.flow_run.job_variables}

    info = parent()
    assert info["own"] is None  # a top-level run has no parent
    assert info["child"]["parent_deployment"] == "uid-nightly"
    assert info["api"] == ("https://10.96.0.1/apis/headwater.dev/v1alpha1/namespaces/data/"
                           "flowruns/ingest-x")
    assert info["ui"] == "https://hw.example/runs/data/ingest-x"
    assert info["child"]["task_ui"] == ("https://hw.example/runs/data/ingest-x", None)
    assert info["jobs"] == {}


@task
def probe_urls() -> tuple[str | None, str | None]:
    return runtime.task_run.ui_url, runtime.task_run.api_url


def test_runtime_values_are_overridden_by_environment_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER__RUNTIME__FLOW_RUN__NAME", "pinned")
    monkeypatch.setenv("HEADWATER__RUNTIME__FLOW_RUN__RUN_COUNT", "4")
    monkeypatch.setenv("HEADWATER__RUNTIME__FLOW_RUN__SCHEDULED_START_TIME",
                       "2026-12-07T06:00:00Z")
    monkeypatch.setenv("HEADWATER__RUNTIME__FLOW_RUN__TAGS", '["a", "b"]')
    monkeypatch.setenv("PREFECT__RUNTIME__TASK_RUN__NAME", "from-prefect-name")
    monkeypatch.setenv("HEADWATER__RUNTIME__DEPLOYMENT__NAME", "nightly")
    monkeypatch.setenv("HEADWATER__RUNTIME__DEPLOYMENT__CUSTOM", "anything")

    @flow
    def f() -> dict[str, Any]:
        return {"name": runtime.flow_run.name, "count": runtime.flow_run.run_count,
                "at": runtime.flow_run.scheduled_start_time, "tags": runtime.flow_run.tags,
                "task": named_task()}

    info = f()
    assert info["name"] == "pinned"
    assert info["count"] == 4
    assert info["at"].isoformat() == "2026-12-07T06:00:00+00:00"
    assert info["tags"] == ["a", "b"]
    assert info["task"] == "from-prefect-name"  # Prefect's variable names work too
    assert runtime.deployment.name == "nightly"
    assert runtime.deployment.custom == "anything"  # unknown names: the raw text

    monkeypatch.setenv("HEADWATER__RUNTIME__FLOW_RUN__RUN_COUNT", "many")
    with pytest.raises(ValueError, match="HEADWATER__RUNTIME__FLOW_RUN__RUN_COUNT='many' "
                                         "is not an integer"):
        _ = runtime.flow_run.run_count


@task
def named_task() -> str | None:
    return runtime.task_run.name


def test_the_api_url_brackets_ipv6_hosts_and_names_non_default_ports() -> None:
    from headwater import contract

    assert contract.run_api_url("fd00::1", "6443", "ns", "run-a") == (
        "https://[fd00::1]:6443/apis/headwater.dev/v1alpha1/namespaces/ns/flowruns/run-a")
    assert contract.run_api_url(None, "443", "ns", "run-a") is None  # off a cluster
    assert contract.run_api_url("10.0.0.1", "443", "ns", None) is None  # not a FlowRun
