"""The run summary survives the kubelet cutting it: what decides the phase comes first.

The kubelet keeps the *first* 12288 // containers bytes of a termination message
(kubernetes pkg/kubelet/status/status_manager.go ``normalizeStatus``), so with four or
more containers a full 4 KiB summary loses its end.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from headwater import contract
from headwater.cli import summary_text
from headwater.summary import fit_summary


def big_summary(state: str = "Completed") -> contract.RunSummary:
    summary: Any = {
        "version": contract.SUMMARY_VERSION, "state": state, "reason": state,
        "message": f"the flow run finished: {state}", "flowRunId": "uid-1",
        "startTime": "2026-03-01T12:00:00Z", "endTime": "2026-03-01T12:05:00Z",
        "taskRuns": {"Completed": 250, "Failed": 3},
        "assets": [{"key": f"s3://lake/orders/part-{i:04d}", "version": f"v{i}",
                    "upstream": [f"s3://lake/raw/part-{i:04d}"]} for i in range(60)],
        "artifacts": [f"report-{i}" for i in range(40)],
    }
    return summary  # type: ignore[no-any-return]


def test_the_fields_that_decide_the_phase_are_written_first() -> None:
    text = contract.encode_summary(big_summary())
    assert text.startswith('{"version":1,"state":"Completed","reason":"Completed",'
                           '"message":"the flow run finished: Completed","taskRuns":')
    assert text.index('"assets"') > text.index('"artifacts"') > text.index('"taskRuns"')
    assert json.loads(text) == json.loads(contract.encode_summary(
        dict(reversed(list(big_summary().items())))))  # type: ignore[arg-type]


@pytest.mark.parametrize("containers", [4, 5, 6, 12])
def test_a_full_summary_cut_by_the_kubelet_still_says_how_the_run_ended(
        containers: int) -> None:
    text = fit_summary(big_summary("Failed"))  # 4096 bytes: what the engine used to write
    assert len(text) > contract.termination_message_cap(containers)
    cut = text.encode()[:contract.POD_TERMINATION_MESSAGE_MAX_BYTES // containers].decode()
    with pytest.raises(ValueError, match="not JSON"):
        contract.decode_summary(cut)
    summary = contract.decode_cut_summary(cut)
    assert (summary["state"], summary["reason"]) == ("Failed", "Failed")
    assert summary["message"] == "the flow run finished: Failed"
    assert summary["truncated"] is True
    assert summary["taskRuns"] == {"Completed": 250, "Failed": 3}


def test_a_message_cut_in_the_middle_keeps_its_beginning() -> None:
    text = contract.encode_summary({"version": 1, "state": "Failed", "reason": "FlowRunFailed",
                                    "message": "ZeroDivisionError: caf\u00e9 " * 20})
    cut = text[:text.index("caf") + 6]  # inside the \u00e9 escape
    summary = contract.decode_cut_summary(cut)
    assert summary["message"] == "ZeroDivisionError: caf..."


@pytest.mark.parametrize(("cut_at", "missing"), [(10, "state"), (40, "reason")])
def test_a_summary_cut_before_its_state_or_reason_is_refused(cut_at: int,
                                                             missing: str) -> None:
    text = contract.encode_summary(big_summary())
    with pytest.raises(ValueError, match=f"cut before its field '{missing}'"):
        contract.decode_cut_summary(text[:cut_at])


def test_a_number_running_up_to_the_cut_is_dropped() -> None:
    text = '{"version":1,"state":"Completed","reason":"Completed","message":"m","count":12'
    summary: Any = contract.decode_cut_summary(text[:-1])
    assert "count" not in summary


@pytest.mark.parametrize(("value", "budget"), [
    (None, 4096), ("2048", 2048), ("9000", 4096), ("12", 128), ("lots", 4096)])
def test_the_engine_keeps_to_the_budget_the_operator_gives(
        monkeypatch: pytest.MonkeyPatch, value: str | None, budget: int) -> None:
    if value is None:
        monkeypatch.delenv(contract.ENV_SUMMARY_MAX_BYTES, raising=False)
    else:
        monkeypatch.setenv(contract.ENV_SUMMARY_MAX_BYTES, value)
    text = summary_text(big_summary())
    assert len(text.encode()) <= budget
    assert contract.decode_summary(text)["state"] == "Completed"
