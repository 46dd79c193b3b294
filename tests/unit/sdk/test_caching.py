"""Persisted results and cache policies: hits, misses, expiration, locks, processes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from headwater import (
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
    flow,
    results,
    task,
)
from headwater.cache_policies import CompoundCachePolicy, Inputs, hash_inputs
from headwater.engine import LAST_RUN_TREE


def _states() -> list[str]:
    return [tr.state.name for tr in LAST_RUN_TREE[0].task_runs]


def test_inputs_policy_hits_cache_across_flow_runs() -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def compute(x: int) -> int:
        calls.append(x)
        return x * 10

    @flow
    def f(x: int) -> int:
        return compute(x)

    assert f(1) == 10
    assert f(1) == 10
    assert _states() == ["Cached"]
    assert f(2) == 20
    assert calls == [1, 2]


def test_default_policy_does_not_persist_without_opt_in() -> None:
    calls: list[int] = []

    @task
    def plain(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def f() -> None:
        plain(1)

    f()
    f()
    assert calls == [1, 1]


def test_persist_result_with_default_policy_caches_within_one_run_only() -> None:
    calls: list[int] = []

    @task(persist_result=True)
    def keyed(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def f() -> None:
        keyed(1)
        keyed(1)

    f()
    f()
    assert calls == [1, 1]  # RUN_ID is part of DEFAULT: one compute per flow run


def test_no_cache_never_hits() -> None:
    calls: list[int] = []

    @task(cache_policy=NO_CACHE, persist_result=True)
    def fresh() -> int:
        calls.append(1)
        return 1

    fresh()
    fresh()
    assert len(calls) == 2


def test_inputs_minus_parameter_ignores_it() -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS - "client")
    def fetch(day: str, client: Any) -> str:
        calls.append(1)
        return day

    fetch("d1", threading.Lock())
    fetch("d1", threading.Lock())
    assert len(calls) == 1


def test_unhashable_input_error_names_parameter_and_fix() -> None:
    @task(cache_policy=INPUTS)
    def fetch(client: Any) -> None:
        pass

    state = fetch(threading.Lock(), return_state=True)
    assert state.is_crashed() or state.is_failed()
    assert "parameter 'client'" in (state.message or "")
    assert "INPUTS - 'client'" in (state.message or "")


def test_task_source_policy_changes_with_code() -> None:
    def make(body: int) -> Any:
        namespace: dict[str, Any] = {}
        exec(f"def compute():\n    return {body}\n", namespace)
        return task(namespace["compute"], cache_policy=TASK_SOURCE)

    assert make(1)() == 1
    assert make(2)() == 2  # different source: no stale hit


def test_flow_parameters_policy() -> None:
    calls: list[int] = []

    @task(cache_policy=FLOW_PARAMETERS)
    def per_window() -> int:
        calls.append(1)
        return len(calls)

    @flow
    def f(window: str) -> int:
        return per_window()

    assert f("a") == 1
    assert f("a") == 1
    assert f("b") == 2


def test_run_id_policy_scopes_to_one_run() -> None:
    calls: list[int] = []

    @task(cache_policy=RUN_ID)
    def once_per_run() -> None:
        calls.append(1)

    @flow
    def f() -> None:
        once_per_run()
        once_per_run()

    f()
    f()
    assert len(calls) == 2


def test_policies_combine_with_plus() -> None:
    combined = INPUTS + TASK_SOURCE + RUN_ID
    assert isinstance(combined, CompoundCachePolicy)
    assert len(combined.policies) == 3
    narrowed = combined - "x"
    assert isinstance(narrowed, CompoundCachePolicy)
    assert narrowed.policies[0] == Inputs(frozenset({"x"}))


def test_cache_key_fn_is_used() -> None:
    calls: list[int] = []

    @task(cache_key_fn=lambda ctx, params: f"by-day-{params['day']}")
    def load(day: str, attempt: int) -> str:
        calls.append(attempt)
        return day

    load("d", 1)
    load("d", 2)
    assert calls == [1]


def test_cache_expiration_uses_injected_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(results, "now", lambda: clock[0])
    calls: list[int] = []

    @task(cache_policy=INPUTS, cache_expiration=dt.timedelta(minutes=5))
    def expiring(x: int) -> int:
        calls.append(x)
        return x

    expiring(1)
    clock[0] += 299
    expiring(1)
    assert calls == [1]
    clock[0] += 2
    expiring(1)
    assert calls == [1, 1]


def test_refresh_cache_recomputes_and_overwrites() -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def value(x: int) -> int:
        calls.append(x)
        return len(calls)

    assert value(1) == 1
    assert value.with_options(refresh_cache=True)(1) == 2
    assert value(1) == 2


def test_failed_runs_are_not_cached() -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def sometimes(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return x

    assert sometimes(1, return_state=True).is_failed()
    assert sometimes(1) == 1
    assert len(calls) == 2


def test_json_serializer_writes_readable_records(headwater_home: Path) -> None:
    @task(cache_policy=INPUTS, result_serializer="json")
    def as_json(day: dt.date) -> dict[str, Any]:
        return {"day": day, "rows": 3}

    as_json(dt.date(2024, 1, 1))
    files = list((headwater_home / "results").iterdir())
    header, payload = files[0].read_bytes().split(b"\n", 1)
    assert json.loads(header)["serializer"] == "json"
    assert json.loads(payload) == {"day": "2024-01-01", "rows": 3}


def test_unknown_serializer_is_explained() -> None:
    with pytest.raises(ValueError, match="unknown result_serializer 'yaml'"):
        results.get_serializer("yaml")


def test_concurrent_identical_tasks_compute_once() -> None:
    calls: list[int] = []
    calls_lock = threading.Lock()
    proceed = threading.Event()

    @task(cache_policy=INPUTS)
    def expensive(x: int) -> int:
        with calls_lock:
            calls.append(x)
        proceed.wait(0.2)
        return x

    @flow
    def f() -> list[str]:
        futures = [expensive.submit(7) for _ in range(4)]
        proceed.set()
        for future in futures:
            future.wait()
        return sorted(fu.state.name for fu in futures)

    assert f() == ["Cached", "Cached", "Cached", "Completed"]
    assert calls == [7]


def test_hash_inputs_is_stable_and_order_independent() -> None:
    assert hash_inputs({"a": 1, "b": [1, 2]}) == hash_inputs({"b": [1, 2], "a": 1})
    assert hash_inputs({"a": 1}) != hash_inputs({"a": 2})


def test_fsspec_memory_storage_works() -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS, result_storage="memory://hw-test-cache")
    def remote(x: int) -> int:
        calls.append(x)
        return x

    remote(3)
    remote(3)
    assert calls == [3]


_CHILD = textwrap.dedent(
    """
    import sys
    from headwater import INPUTS, flow, task
    from headwater.engine import LAST_RUN_TREE

    @task(cache_policy=INPUTS)
    def slow_square(x: int) -> int:
        print("COMPUTED", flush=True)
        return x * x

    @flow
    def f(x: int) -> int:
        return slow_square(x)

    print("RESULT", f(int(sys.argv[1])), LAST_RUN_TREE[0].task_runs[0].state.name)
    """
)


def test_cache_hit_across_two_processes(tmp_path: Path, headwater_home: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env_home = {"HEADWATER_HOME": str(headwater_home), "PATH": "/usr/bin:/bin"}
    outputs = [
        subprocess.run([sys.executable, str(script), "6"], capture_output=True, text=True,
                       env=env_home, check=True, timeout=60).stdout
        for _ in range(2)
    ]
    assert "COMPUTED" in outputs[0]
    assert "RESULT 36 Completed" in outputs[0]
    assert "COMPUTED" not in outputs[1]
    assert "RESULT 36 Cached" in outputs[1]


_LOCKING_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from headwater import INPUTS, task

    @task(cache_policy=INPUTS)
    def build(x: int) -> int:
        with open(sys.argv[1], "a") as log:
            log.write("computed\\n")
        time.sleep(0.3)
        return x

    Path(sys.argv[2]).write_text("ready")
    while not Path(sys.argv[3]).exists():
        time.sleep(0.01)
    print(build(1, return_state=True).name)
    """
)


def test_identical_tasks_in_two_processes_compute_once(tmp_path: Path,
                                                       headwater_home: Path) -> None:
    script = tmp_path / "locking.py"
    script.write_text(_LOCKING_CHILD)
    log, go = tmp_path / "computed.log", tmp_path / "go"
    env = {"HEADWATER_HOME": str(headwater_home), "PATH": "/usr/bin:/bin"}
    readies = [tmp_path / f"ready-{i}" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, str(script), str(log), str(ready), str(go)],
                              env=env, stdout=subprocess.PIPE, text=True) for ready in readies]
    try:
        while not all(r.exists() for r in readies):  # both imported: start them together
            assert all(p.poll() is None for p in procs)
            time.sleep(0.01)
        go.write_text("go")
        states = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert log.read_text().count("computed") == 1
    assert states == ["Cached", "Completed"]


# --- result_storage_key (Prefect's @task(result_storage_key=...)) ----------------------------


def test_result_storage_key_is_filled_from_parameters_and_answers_later_runs(
        headwater_home: Path) -> None:
    calls: list[int] = []

    @task(result_storage_key="reports/{parameters[day]}-{parameters[n]}.pickle")
    def report(day: str, n: int = 1) -> str:
        calls.append(n)
        return f"{day}:{n}"

    @flow
    def main(day: str) -> list[str]:
        return [report(day), report(day, 2)]

    assert main("2026-12-07") == ["2026-12-07:1", "2026-12-07:2"]
    stored = headwater_home / "results" / "reports"
    assert sorted(p.name for p in stored.iterdir()) == ["2026-12-07-1.pickle",
                                                         "2026-12-07-2.pickle"]
    assert LAST_RUN_TREE[0].task_runs[0].result_location == str(
        stored / "2026-12-07-1.pickle")
    assert main("2026-12-07") == ["2026-12-07:1", "2026-12-07:2"]
    assert _states() == ["Cached", "Cached"]  # the key is also where later runs look
    assert calls == [1, 2]


def test_result_storage_key_can_use_the_run_and_with_options(headwater_home: Path) -> None:
    @task
    def value() -> int:
        return 3

    @flow(flow_run_name="nightly-{x}")
    def main(x: int) -> int:
        return value.with_options(result_storage_key="{flow_run.name}/{task_run.task_name}")()

    assert main(5) == 3
    assert (headwater_home / "results" / "nightly-5" / "value").is_file()


def test_result_storage_key_with_no_cache_is_written_but_never_read(headwater_home: Path) -> None:
    calls: list[int] = []

    @task(result_storage_key="latest", cache_policy=NO_CACHE)
    def latest(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def main(x: int) -> int:
        return latest(x)

    assert (main(1), main(2)) == (1, 2)
    assert calls == [1, 2]
    assert results.ResultStore(results.resolve_storage(None),
                               results.get_serializer(None)).read("latest") == (True, 2)


@pytest.mark.parametrize(("template", "problem"), [
    ("{parameters[missing]}", "cannot be filled (KeyError: 'missing')"),
    ("../{parameters[x]}", "not a relative path inside result storage"),
    ("/abs/{parameters[x]}", "not a relative path inside result storage"),
])
def test_a_bad_result_storage_key_fails_the_task_and_says_why(template: str,
                                                               problem: str) -> None:
    @task(result_storage_key=template)
    def value(x: int) -> int:
        return x

    @flow
    def main() -> int:
        return value(1)

    state = main(return_state=True)
    assert state.is_failed()
    task_state = LAST_RUN_TREE[0].task_runs[0].state
    assert task_state.name == "Failed"
    assert f"task 'value': result_storage_key {template!r}" in (task_state.message or "")
    assert problem in (task_state.message or "")
    with pytest.raises(ValueError, match="result_storage_key must be a non-empty string"):
        task(result_storage_key="")(lambda: 1)
