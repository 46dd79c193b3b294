"""Waiting for a run and following its logs across attempts, with a scripted API."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from headwater_operator import kube
from headwater_operator.cli.common import Io
from headwater_operator.cli.follow import Watcher, exit_code_for, final_line


class ScriptedApi:
    """Answers GETs of one FlowRun from a script of statuses; serves pod logs."""

    def __init__(self, statuses: list[dict[str, Any]], logs: dict[str, list[str]],
                 not_started: set[str] | None = None) -> None:
        self.statuses = statuses
        self.logs = logs
        self.not_started = not_started or set()
        self.gets = 0

    def get(self, resource: kube.Resource, name: str, *, namespace: str) -> dict[str, Any]:
        status = self.statuses[min(self.gets, len(self.statuses) - 1)]
        self.gets += 1
        return {"metadata": {"name": name, "namespace": namespace}, "status": status}

    def follow_pod_log(self, name: str, *, namespace: str) -> Iterator[str]:
        if name in self.not_started:
            self.not_started.discard(name)
            raise kube.KubeError(400, "BadRequest", "container is waiting to start")
        if name not in self.logs:
            raise kube.NotFound(404, "NotFound", f'pods "{name}" not found')
        yield from self.logs[name]


def watcher(api: ScriptedApi, timeout: float | None = None) -> tuple[Watcher, io.StringIO,
                                                                      io.StringIO, list[float]]:
    out, err = io.StringIO(), io.StringIO()
    sleeps: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    w = Watcher(api, "default", "r", Io(out, err, lambda: datetime.now(UTC)),  # type: ignore[arg-type]
                poll_seconds=0.5, timeout_seconds=timeout, sleep=sleep,
                monotonic=lambda: clock[0])
    return w, out, err, sleeps


def test_wait_polls_until_a_terminal_phase() -> None:
    api = ScriptedApi([{}, {"phase": "Pending"}, {"phase": "Running"},
                       {"phase": "Completed", "reason": "Completed", "message": "ok"}], {})
    w, _, _, sleeps = watcher(api)
    final = w.wait()
    assert final is not None
    assert final_line(final) == "flowrun/r Completed (Completed): ok"
    assert exit_code_for(final) == 0
    assert sleeps == [0.5, 0.5, 0.5]


def test_wait_gives_up_at_the_timeout() -> None:
    api = ScriptedApi([{"phase": "Running"}], {})
    w, _, _, sleeps = watcher(api, timeout=2.0)
    assert w.wait() is None
    assert sum(sleeps) == 2.0
    assert exit_code_for(None) == 1


def test_failed_and_crashed_runs_exit_1() -> None:
    for phase in ("Failed", "Crashed", "Cancelled"):
        assert exit_code_for({"metadata": {"name": "r"}, "status": {"phase": phase}}) == 1


def test_follow_streams_each_attempt_in_order_then_returns_the_final_run() -> None:
    api = ScriptedApi(
        [{"phase": "Pending", "attempts": 1},
         {"phase": "Running", "attempts": 1},
         {"phase": "AwaitingRetry", "attempts": 1},
         {"phase": "Running", "attempts": 2},
         {"phase": "Completed", "attempts": 2}],
        {"r-1": ["one\n", "two\n"], "r-2": ["three\n"]},
        not_started={"r-1"})
    w, out, err, _ = watcher(api)
    final = w.follow_logs()
    assert final is not None
    assert final["status"]["phase"] == "Completed"
    assert out.getvalue() == "one\ntwo\nthree\n"
    assert err.getvalue() == ("==> attempt 1 (pod r-1) <==\n"
                              "==> attempt 2 (pod r-2) <==\n")


def test_follow_skips_a_deleted_pod_of_an_earlier_attempt() -> None:
    api = ScriptedApi([{"phase": "Failed", "attempts": 2}], {"r-2": ["last\n"]})
    w, out, err, _ = watcher(api)
    final = w.follow_logs()
    assert final is not None
    assert out.getvalue() == "last\n"
    assert "pod r-1 of attempt 1 no longer exists" in err.getvalue()


def test_follow_from_a_later_attempt() -> None:
    api = ScriptedApi([{"phase": "Completed", "attempts": 2}],
                      {"r-1": ["first\n"], "r-2": ["second\n"]})
    w, out, _, _ = watcher(api)
    w.follow_logs(first_attempt=2)
    assert out.getvalue() == "second\n"
