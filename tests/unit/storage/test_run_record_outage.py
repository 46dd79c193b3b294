"""A run store that does not answer never holds up a run (issue #12).

An S3 endpoint that accepts connections and never replies holds one s3fs call for tens of
seconds to minutes (docs/run-store.md, "Keep failures short"). The recorder calls the
store only from its own thread and waits for the final record at most
``FINAL_FLUSH_TIMEOUT``: the flow completes with its result, and the summary says the
record was not written.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from headwater import engine, flow, get_run_logger, runrecord, task
from headwater.summary import build_summary
from s3_server import S3Store, clear_fsspec_caches


class _SilentServer:
    """Accepts TCP connections and never answers (a hung load balancer, say)."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self._socket.settimeout(0.1)
        self.port = self._socket.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections.append(conn)  # held open, never read, never answered

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.connections:
            conn.close()
        self._socket.close()


@pytest.fixture
def silent_endpoint(s3: S3Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[_SilentServer]:
    server = _SilentServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.port}")
    clear_fsspec_caches()
    yield server
    server.close()


@task
def add(x: int, y: int) -> int:
    return x + y


@flow
def adds(n: int) -> int:
    get_run_logger().info("adding")
    return add(n, 1)


def test_a_store_that_never_answers_does_not_hold_up_the_run(
        s3: S3Store, silent_endpoint: _SilentServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(runrecord, "FINAL_FLUSH_TIMEOUT", 1.0)
    monkeypatch.setenv("HEADWATER_RUN_STORE", s3.root)
    state = adds(41, return_state=True)
    assert state.is_completed()
    assert state.result() == 42
    tree = engine.LAST_RUN_TREE[0]
    assert tree.record_written is False
    assert build_summary(tree)["recordWritten"] is False
    assert silent_endpoint.connections, "the recorder never tried the store"
    err = capsys.readouterr().err
    assert "the final flush did not finish within 1 s" in err
    assert s3.root in err
