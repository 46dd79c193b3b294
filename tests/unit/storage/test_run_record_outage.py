"""A run store that does not answer never holds up a run (issue #12).

An S3 endpoint that accepts connections and never replies holds one s3fs call for tens of
seconds to minutes (docs/run-store.md, "Keep failures short"). The recorder calls the
store only from its own thread and waits for the final record at most
``FINAL_FLUSH_TIMEOUT``: the flow completes with its result, and the summary says the
record was not written.
"""

from __future__ import annotations

import pytest
from headwater import engine, flow, get_run_logger, runrecord, task
from headwater.summary import build_summary
from s3_server import BrokenEndpoint, S3Store


@task
def add(x: int, y: int) -> int:
    return x + y


@flow
def adds(n: int) -> int:
    get_run_logger().info("adding")
    return add(n, 1)


@pytest.mark.parametrize("broken_endpoint", ["silent"], indirect=True)
def test_a_store_that_never_answers_does_not_hold_up_the_run(
        s3: S3Store, broken_endpoint: BrokenEndpoint, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(runrecord, "FINAL_FLUSH_TIMEOUT", 1.0)
    monkeypatch.setenv("HEADWATER_RUN_STORE", s3.root)
    state = adds(41, return_state=True)
    assert state.is_completed()
    assert state.result() == 42
    tree = engine.LAST_RUN_TREE[0]
    assert tree.record_written is False
    assert build_summary(tree)["recordWritten"] is False
    assert broken_endpoint.connections, "the recorder never tried the store"
    err = capsys.readouterr().err
    assert "the final flush did not finish within 1 s" in err
    assert s3.root in err
