"""Waiting for a run and following its logs across attempts, with a scripted API."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from headwater_operator import kube
from headwater_operator.cli.common import Io
from headwater_operator.cli.follow import (
    Watcher,
    exit_code_for,
    final_line,
    log_stream_complete,
)


class ScriptedApi:
    """Answers GETs of one FlowRun from a script of statuses; serves pod logs.

    Every pod has the ``flow`` container and an injected ``istio-proxy`` sidecar, so,
    like a real API server, a log request that names no container is refused.
    ``unbound`` pods are not on a node yet: their log stream is empty (``204``) once,
    and a GET shows them Pending.
    """

    def __init__(self, statuses: list[dict[str, Any]], logs: dict[str, list[str]],
                 not_started: set[str] | None = None, unbound: set[str] | None = None,
                 ) -> None:
        self.statuses = statuses
        self.logs = logs
        self.not_started = not_started or set()
        self.unbound = unbound or set()
        self.gets = 0
        self.pod_gets: list[str] = []

    def get(self, resource: kube.Resource, name: str, *, namespace: str) -> dict[str, Any]:
        if resource == kube.PODS:
            self.pod_gets.append(name)
            if name not in self.logs:
                raise kube.NotFound(404, "NotFound", f'pods "{name}" not found')
            return {"metadata": {"name": name}, "status": {"phase": "Pending"}}
        status = self.statuses[min(self.gets, len(self.statuses) - 1)]
        self.gets += 1
        return {"metadata": {"name": name, "namespace": namespace}, "status": status}

    def follow_pod_log(self, name: str, *, namespace: str,
                       container: str | None = None) -> Iterator[str]:
        if container is None:
            raise kube.KubeError(400, "BadRequest", f"a container name must be specified "
                                 f"for pod {name}, choose one of: [flow istio-proxy]")
        assert container == "flow"
        if name in self.unbound:
            self.unbound.discard(name)
            return
        if name in self.not_started:
            self.not_started.discard(name)
            raise kube.KubeError(400, "BadRequest", f'container "flow" in pod "{name}" is '
                                 "waiting to start: ContainerCreating")
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


def test_follow_names_the_flow_container_so_a_sidecar_does_not_hide_the_logs() -> None:
    # Before, no container was named: with a sidecar every request was a 400, which
    # the watcher took for "not started yet" until the timeout, showing nothing.
    api = ScriptedApi([{"phase": "Running", "attempts": 1},
                       {"phase": "Completed", "attempts": 1}], {"r-1": ["flow output\n"]})
    w, out, _, _ = watcher(api, timeout=5.0)
    assert w.follow_logs() is not None
    assert out.getvalue() == "flow output\n"


def test_an_empty_stream_of_a_pod_not_on_a_node_yet_is_followed_again() -> None:
    api = ScriptedApi([{"phase": "Pending", "attempts": 1},
                       {"phase": "Running", "attempts": 1},
                       {"phase": "Completed", "attempts": 1}],
                      {"r-1": ["late but shown\n"]}, unbound={"r-1"})
    w, out, _, _ = watcher(api)
    assert w.follow_logs() is not None
    assert out.getvalue() == "late but shown\n"
    assert api.pod_gets == ["r-1"]  # one look at the pod, after the empty stream


def test_a_log_stream_is_complete_once_it_showed_output_or_the_pod_finished() -> None:
    assert log_stream_complete(True, {"status": {"phase": "Running"}})
    assert log_stream_complete(False, None)
    assert log_stream_complete(False, {"status": {"phase": "Succeeded"}})
    assert log_stream_complete(False, {"status": {"phase": "Failed"}})
    assert not log_stream_complete(False, {"status": {"phase": "Pending"}})
    assert not log_stream_complete(False, {"status": {"phase": "Running"}})
