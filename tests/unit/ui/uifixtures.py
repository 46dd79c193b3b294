"""Builders the UI's unit tests share: FlowRuns, records on disk, a client on the app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from headwater_operator import kube
from headwater_operator.ui.app import UiOptions, create_app
from headwater_operator.ui.auth import Access, Mode
from headwater_operator.ui.state import UiState

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def flowrun(name: str, *, namespace: str = "default", deployment: str = "nightly",
            phase: str = "Completed", minutes_ago: int = 10, trigger: str = "schedule",
            **status: Any) -> dict[str, Any]:
    when = NOW - timedelta(minutes=minutes_ago)
    body: dict[str, Any] = {"phase": phase, "scheduledTime": stamp(when),
                            "startTime": stamp(when + timedelta(seconds=5)), "attempts": 1}
    body.update(status)
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                         "creationTimestamp": stamp(when)},
            "spec": {"deploymentRef": {"name": deployment}, "trigger": trigger,
                     "parameters": {"day": "2026-03-01"}},
            "status": body}


def deployment(name: str, *, namespace: str = "default", flow: str = "etl",
               tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"flowRef": {"name": flow}, "tags": list(tags)}}


def write_record(root: Path, namespace: str, name: str, attempt: int, *,
                 record: Mapping[str, Any], lines: Sequence[Mapping[str, Any]] = ()) -> str:
    """Write an attempt's record and log lines in the run store layout; its URL."""
    directory = root / "flowruns" / "v1" / namespace / name / str(attempt)
    (directory / "logs").mkdir(parents=True)
    (directory / "record.json").write_text(json.dumps(record))
    (directory / "logs" / "000000.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines))
    return str(directory)


def state_history(start: datetime, seconds: float, final: str = "COMPLETED"
                  ) -> list[dict[str, str]]:
    return [{"type": "PENDING", "name": "Pending", "time": stamp(start)},
            {"type": "RUNNING", "name": "Running", "time": stamp(start)},
            {"type": final, "name": final.capitalize(),
             "time": (start + timedelta(seconds=seconds)).isoformat()}]


def task_run(ident: str, name: str, *, key: str | None = None, upstream: tuple[str, ...] = (),
             final: str = "COMPLETED", offset: float = 0, **extra: Any) -> dict[str, Any]:
    start = NOW - timedelta(minutes=5) + timedelta(seconds=offset)
    body = {"id": ident, "name": name, "taskKey": key or name.split("-", maxsplit=1)[0],
            "state": {"type": final, "name": final.capitalize()},
            "stateHistory": state_history(start, 2, final),
            "attempts": [{"number": 1, "state": final.capitalize()}],
            "upstream": list(upstream), "waitFor": [], "cacheHit": False}
    body.update(extra)
    return body


class FakeKube(kube.Kube):
    """A client that records writes and answers pod logs from a dict (404 otherwise)."""

    def __init__(self, pod_logs: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.patches: list[tuple[str, str, Any, str | None]] = []
        self.pod_logs = dict(pod_logs or {})

    async def patch(self, resource: kube.Resource, name: str, patch: Any, *,
                    namespace: str | None = None, **_: Any) -> kube.JsonObject:
        self.patches.append((resource.plural, name, patch, namespace))
        return {}

    async def read_pod_log(self, name: str, *, namespace: str, container: str | None = None,
                           **_: Any) -> str:
        if name not in self.pod_logs:
            raise kube.NotFound(404, "NotFound", f'pods "{name}" not found')
        return self.pod_logs[name]


@asynccontextmanager
async def ui_client(state: UiState, *, mode: Mode = "local",
                    reader: kube.Kube | None = None,
                    options: UiOptions | None = None) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(options or UiOptions(), state=state, access=Access(mode, reader),
                     now=lambda: NOW)
    async with TestClient(TestServer(app)) as client:
        yield client


def fill(state: UiState, *objects: tuple[str, Mapping[str, Any]]) -> UiState:
    for kind, obj in objects:
        state.apply(kind, "ADDED", dict(obj))
    return state
