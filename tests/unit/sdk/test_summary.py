"""The run summary: contents, reasons, exit codes and the 4096-byte limit."""

from __future__ import annotations

import json

from headwater import contract, flow, task
from headwater.context import FlowRun, RunTree, TaskRun
from headwater.engine import LAST_RUN_TREE
from headwater.states import Cancelled, Completed, Crashed, Failed, TimedOut
from headwater.summary import build_summary, exit_code, fit_summary, summary_reason


def _tree(n_tasks: int = 0, n_assets: int = 0, n_artifacts: int = 0,
          message: str = "done") -> RunTree:
    root = FlowRun("run-1", "calm-otter", "etl", {}, Completed(message))
    tree = RunTree(root)
    for i in range(n_tasks):
        tree.task_runs.append(TaskRun(f"t{i}", f"t-{i}", "t", "run-1",
                                      Completed() if i % 2 else Failed(), frozenset()))
    for i in range(n_assets):
        tree.assets.append({"key": f"s3://bucket/a-very-long-asset-name-{i:04d}",
                            "version": f"{i:016x}",
                            "upstream": [f"s3://bucket/upstream-{j}" for j in range(3)]})
    tree.artifacts.extend(f"artifact-key-number-{i}" for i in range(n_artifacts))
    return tree


def test_summary_has_contract_fields() -> None:
    summary = build_summary(_tree(n_tasks=4, n_assets=1, n_artifacts=1))
    assert summary["state"] == "Completed"
    assert summary["reason"] == "Completed"
    assert summary["taskRuns"] == {"Completed": 2, "Failed": 2}
    assert summary["assets"][0]["upstream"] == [f"s3://bucket/upstream-{j}" for j in range(3)]
    assert summary["artifacts"] == ["artifact-key-number-0"]
    decoded = contract.decode_summary(fit_summary(summary))
    assert decoded["flowRunId"] == "run-1"


def test_small_summary_is_not_truncated() -> None:
    encoded = fit_summary(build_summary(_tree(n_tasks=3)))
    assert "truncated" not in json.loads(encoded)


def test_large_summary_drops_artifacts_first() -> None:
    summary = build_summary(_tree(n_assets=5, n_artifacts=400))
    encoded = fit_summary(summary)
    decoded = json.loads(encoded)
    assert len(encoded.encode()) <= contract.SUMMARY_MAX_BYTES
    assert decoded["truncated"] is True
    assert len(decoded["assets"]) == 5
    assert decoded["assets"][0]["upstream"]
    assert 0 < len(decoded.get("artifacts", [])) < 400


def test_huge_summary_keeps_state_reason_and_fits() -> None:
    summary = build_summary(_tree(n_tasks=10, n_assets=500, n_artifacts=500,
                                  message="x" * 20_000))
    encoded = fit_summary(summary)
    decoded = contract.decode_summary(encoded)
    assert len(encoded.encode()) <= contract.SUMMARY_MAX_BYTES
    assert decoded["state"] == "Completed"
    assert decoded["reason"] == "Completed"
    assert decoded["message"].startswith("x")
    assert decoded.get("truncated") is True


def test_multibyte_message_is_measured_in_bytes() -> None:
    encoded = fit_summary(build_summary(_tree(message="é" * 5000)), max_bytes=1000)
    assert len(encoded.encode()) <= 1000


def test_reasons_and_exit_codes() -> None:
    assert (summary_reason(Completed()), exit_code(Completed())) == ("Completed", 0)
    assert (summary_reason(Failed("x")), exit_code(Failed("x"))) == ("FlowRunFailed", 1)
    assert (summary_reason(TimedOut("x")), exit_code(TimedOut("x"))) == ("FlowRunTimedOut", 1)
    assert exit_code(Crashed("x")) == contract.EXIT_CRASHED
    assert exit_code(Cancelled("SIGTERM")) == contract.EXIT_CANCELLED
    assert summary_reason(Cancelled("stopped by SIGTERM")) == "TerminationSignal"


def test_invalid_parameters_reason() -> None:
    @flow
    def f(n: int) -> None:
        pass

    state = f(n="not-a-number", return_state=True)
    assert build_summary(LAST_RUN_TREE[0], state)["reason"] == "InvalidParameters"


def test_summary_counts_include_subflow_tasks() -> None:
    @task
    def t() -> None:
        pass

    @flow
    def child() -> None:
        t()

    @flow
    def parent() -> None:
        t()
        child()

    parent()
    assert build_summary(LAST_RUN_TREE[0])["taskRuns"] == {"Completed": 2}
