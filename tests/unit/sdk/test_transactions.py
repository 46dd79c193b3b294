"""Transactions: staged task runs commit together or roll back together, idempotency
keys in result storage, nesting, commit modes, and what the run record says."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from headwater import INPUTS, flow, task
from headwater.engine import LAST_RUN_TREE
from headwater.transactions import (
    CommitMode,
    IsolationLevel,
    Transaction,
    get_transaction,
    transaction,
)
from test_runrecord import read_last

events: list[str] = []


@pytest.fixture(autouse=True)
def _fresh_events() -> None:
    events.clear()


@task
def write(name: str) -> str:
    events.append(f"write {name}")
    return name


@write.on_rollback
def undo_write(txn: Transaction) -> None:
    assert txn.task_run is not None
    events.append(f"undo {txn.task_run.parameters or ''}{txn.get('table', '-')}")


@write.on_commit
def confirm_write(txn: Transaction) -> None:
    events.append(f"commit {txn.get('table', '-')}")


@task
def check(ok: bool) -> None:
    if not ok:
        raise ValueError("quality check failed")


def test_a_failed_task_rolls_back_every_staged_task_newest_first() -> None:
    @flow
    def pipeline(ok: bool) -> None:
        with transaction() as txn:
            txn.set("table", "sales")
            write("a")
            write("b")
            check(ok)

    with pytest.raises(ValueError, match="quality check failed"):
        pipeline(False)
    # Hooks see values set on the enclosing transaction; no commit hook ran.
    assert events == ["write a", "write b", "undo sales", "undo sales"]
    record, _ = read_last()
    [txn] = record["transactions"]
    assert txn["state"] == "ROLLED_BACK"
    names = {t["id"]: t["name"] for t in record["taskRuns"]}
    assert [names[i] for i in txn["taskRunIds"]] == ["write-0", "write-1"]


def test_rollback_hooks_run_in_reverse_completion_order() -> None:
    order: list[str] = []

    @task
    def step(n: int) -> int:
        return n

    @step.on_rollback
    def undo(txn: Transaction) -> None:
        assert txn.task_run is not None
        order.append(txn.task_run.name)

    @flow
    def pipeline() -> None:
        with transaction():
            step(1)
            step(2)
            step(3)
            raise RuntimeError("block failed")

    with pytest.raises(RuntimeError, match=r"block failed|stop"):
        pipeline()
    assert order == ["step-2", "step-1", "step-0"]


def test_success_commits_every_staged_task_and_runs_commit_hooks() -> None:
    @flow
    def pipeline() -> str:
        with transaction() as txn:
            txn.set("table", "orders")
            write("a")
            assert events == ["write a"]  # staged: the commit waits for the block's end
            check(True)
        return "done"

    assert pipeline() == "done"
    assert events == ["write a", "commit orders"]
    record, _ = read_last()
    assert record["transactions"][0]["state"] == "COMMITTED"


def test_result_records_are_written_on_commit_and_never_after_a_rollback(
        headwater_home: Path) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def load(day: int) -> int:
        calls.append(day)
        return day * 10

    @flow
    def pipeline(day: int, ok: bool) -> int:
        with transaction():
            value = load(day)
            check(ok)
        return value

    with pytest.raises(ValueError, match="quality check failed"):
        pipeline(1, False)
    assert not list((headwater_home / "results").glob("*"))  # rolled back: nothing kept
    assert pipeline(1, True) == 10
    assert calls == [1, 1]  # the rolled-back result was not a cache entry
    assert pipeline(1, True) == 10
    assert calls == [1, 1]  # the committed one is
    assert [t.state.name for t in LAST_RUN_TREE[0].task_runs] == ["Cached", "Completed"]


def test_a_committed_key_makes_a_rerun_see_is_committed(headwater_home: Path) -> None:
    seen: list[bool] = []

    @flow
    def pipeline() -> str:
        with transaction(key="download-2026-12-07") as txn:
            seen.append(txn.is_committed())
            if txn.is_committed():
                return "skipped"
            write("data")
        return "ran"

    assert pipeline() == "ran"
    assert (headwater_home / "results" / "download-2026-12-07").is_file()
    assert pipeline() == "skipped"
    assert seen == [False, True]
    assert events == ["write data", "commit -"]


def test_overwrite_ignores_a_committed_key() -> None:
    with transaction(key="k") as first:
        pass
    assert first.is_committed()
    with transaction(key="k") as again:
        assert again.is_committed()
    with transaction(key="k", overwrite=True) as fresh:
        assert not fresh.is_committed()
    assert fresh.is_committed()


def test_work_staged_in_an_already_committed_transaction_is_neither_committed_nor_undone(
        ) -> None:
    @flow
    def pipeline(ok: bool) -> None:
        with transaction(key="once"):
            write("a")
            check(ok)

    pipeline(True)
    events.clear()
    with pytest.raises(ValueError, match="quality check failed"):
        pipeline(False)  # the key is committed: its block's work is not undone
    assert events == ["write a"]


def test_a_rolled_back_nested_transaction_rolls_back_its_parent() -> None:
    @flow
    def pipeline() -> None:
        with transaction() as outer:
            outer.set("table", "outer")
            write("a")
            with transaction() as inner:
                inner.set("table", "inner")
                write("b")
                check(False)

    with pytest.raises(ValueError, match="quality check failed"):
        pipeline()
    assert events == ["write a", "write b", "undo inner", "undo outer"]
    record, _ = read_last()
    [outer] = record["transactions"]
    assert outer["state"] == "ROLLED_BACK"
    assert outer["transactions"][0]["state"] == "ROLLED_BACK"


def test_nested_lazy_commits_with_the_outermost_and_eager_at_once() -> None:
    @flow
    def pipeline() -> None:
        with transaction():
            with transaction() as lazy:
                write("a")
            assert not lazy.is_committed()  # the outermost transaction commits it
            assert events == ["write a"]
            with transaction(commit_mode=CommitMode.EAGER):
                write("b")
            assert events == ["write a", "write b", "commit -"]
        assert events == ["write a", "write b", "commit -", "commit -"]

    pipeline()


def test_commit_mode_off_rolls_back_when_the_outermost_block_ends() -> None:
    @flow
    def pipeline() -> None:
        with transaction(commit_mode=CommitMode.OFF) as txn:
            write("a")
        assert txn.is_rolled_back()

    pipeline()
    assert events == ["write a", "undo -"]


def test_a_task_that_fails_then_succeeds_on_retry_does_not_roll_back() -> None:
    attempts: list[int] = []

    @task(retries=1)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("transient")
        return "ok"

    @flow
    def pipeline() -> None:
        with transaction() as txn:
            write("a")
            flaky()
        assert txn.is_committed()

    pipeline()
    assert events == ["write a", "commit -"]


def test_a_failed_submitted_task_rolls_back_the_transaction_it_was_submitted_in() -> None:
    @flow
    def pipeline() -> None:
        with transaction() as txn:
            write.submit("a").wait()
            state = check.submit(False).wait()
            del state
            assert txn.is_rolled_back()

    pipeline()
    assert events == ["write a", "undo -"]


def test_a_failing_rollback_hook_does_not_stop_the_others() -> None:
    @task
    def step(n: int) -> int:
        return n

    @step.on_rollback
    def undo(txn: Transaction) -> None:
        assert txn.task_run is not None
        if txn.task_run.name == "step-1":
            raise OSError("undo failed")
        events.append(f"undone {txn.task_run.name}")

    @flow
    def pipeline() -> None:
        with transaction():
            step(0)
            step(1)
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match=r"block failed|stop"):
        pipeline()
    assert events == ["undone step-0"]


def test_a_failing_commit_hook_rolls_back() -> None:
    @task
    def step() -> int:
        return 1

    @step.on_commit
    def broken(txn: Transaction) -> None:
        raise OSError("cannot confirm")

    @step.on_rollback
    def undo(txn: Transaction) -> None:
        events.append("undone")

    @flow
    def pipeline() -> Transaction:
        with transaction() as txn:
            step()
        return txn

    txn = pipeline()
    assert events == ["undone"]
    assert txn.children[0].is_rolled_back()


def test_outside_a_transaction_commit_hooks_run_on_completion_but_not_on_a_cache_hit() -> None:
    @task(cache_policy=INPUTS)
    def fetch(x: int) -> int:
        return x

    @fetch.on_commit
    def committed(txn: Transaction) -> None:
        events.append(f"commit {txn.key is not None}")

    @fetch.on_rollback
    def rolled_back(txn: Transaction) -> None:
        events.append("undo")

    @flow
    def pipeline() -> int:
        return fetch(7)

    assert pipeline() == 7
    assert pipeline() == 7
    # The hook's transaction carries the cache key; the second call was a cache hit
    # (committed earlier: no hook); rollback hooks never run outside a transaction.
    assert events == ["commit True"]
    assert [t.state.name for t in LAST_RUN_TREE[0].task_runs] == ["Cached"]


def test_get_transaction_and_values() -> None:
    assert get_transaction() is None
    with transaction() as outer:
        outer.set("items", [1])
        with transaction() as inner:
            assert get_transaction() is inner
            value = inner.get("items")
            value.append(2)  # a copy: set() changes the stored value
            assert inner.get("items") == [1]
            assert inner.get("missing", None) is None
            with pytest.raises(ValueError, match="'missing' was never set"):
                inner.get("missing")
    assert get_transaction() is None


def test_a_transaction_is_entered_once_and_keys_must_be_strings() -> None:
    txn = transaction()
    with txn:
        pass
    with pytest.raises(RuntimeError, match="entered once"):
        txn.__enter__()
    with pytest.raises(ValueError, match="non-empty string"):
        transaction(key="")
    with pytest.raises(ValueError, match=r"commit_mode must be one of CommitMode.EAGER"):
        transaction(commit_mode="sometimes")  # type: ignore[arg-type]
    assert transaction(commit_mode="eager").commit_mode is CommitMode.EAGER  # type: ignore[arg-type]


def test_serializable_transactions_with_one_key_run_one_after_the_other(
        headwater_home: Path) -> None:
    entered = threading.Event()
    release = threading.Event()
    seen: list[tuple[str, bool]] = []

    def first() -> None:
        with transaction(key="race", isolation_level=IsolationLevel.SERIALIZABLE) as txn:
            seen.append(("first", txn.is_committed()))
            entered.set()
            release.wait()

    def second() -> None:
        entered.wait()
        with transaction(key="race", isolation_level=IsolationLevel.SERIALIZABLE) as txn:
            seen.append(("second", txn.is_committed()))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    entered.wait()
    release.set()
    for thread in threads:
        thread.join()
    # The second waited for the first's lock, so it saw the first's commit.
    assert seen == [("first", False), ("second", True)]


def test_async_tasks_join_a_transaction_in_an_async_flow() -> None:
    @task
    async def awrite(name: str) -> str:
        events.append(f"awrite {name}")
        return name

    @awrite.on_rollback
    async def aundo(txn: Transaction) -> None:
        events.append("aundo")

    @flow
    async def pipeline() -> None:
        with transaction():
            await awrite("a")
            check(False)

    with pytest.raises(ValueError, match="quality check failed"):
        asyncio.run(pipeline())
    assert events == ["awrite a", "aundo"]


def test_atransaction_is_the_async_with_form() -> None:
    from headwater.transactions import atransaction

    async def main() -> Any:
        async with atransaction(key="async-key") as txn:
            assert get_transaction() is txn
        return txn

    txn = asyncio.run(main())
    assert txn.is_committed()
