"""Deployment run counts are written at most once per window; Ready changes at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from headwater_operator import kube
from headwater_operator.handlers import deployments
from headwater_operator.handlers.deployments import (
    DeploymentFacts,
    DeploymentState,
    Indexes,
    coalesce_delay,
    write_status,
)
from headwater_operator.readiness import RunFacts

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
KEY = ("default", "nightly")
FLOW = {"image": "example/flow:1", "entrypoint": "flows/hello.py:hello"}


@pytest.fixture(autouse=True)
def _no_kopf_events(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ready Events are posted through kopf, which only works inside a running operator.
    monkeypatch.setattr(deployments, "announce_ready_change", lambda *_: None)


class RecordingClient:
    """Stands in for the Kubernetes client: records status patches."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch_status(self, resource: Any, name: str, patch: dict[str, Any],
                           *, namespace: str) -> dict[str, Any]:
        self.patches.append(patch["status"])
        return {}


class Scene:
    def __init__(self) -> None:
        self.client = RecordingClient()
        self.now = 100.0
        self.runs: list[RunFacts] = []
        self.spec: dict[str, Any] = {"flowRef": {"name": "hello"}}
        self.state = DeploymentState(clock=lambda: NOW, client=self.client,  # type: ignore[arg-type]
                                     monotonic=lambda: self.now)

    async def write(self) -> None:
        """What the handler does on an event: evaluate against the current indexes."""
        facts = DeploymentFacts(uid="u1", generation=1, spec=self.spec, status={})
        self.state.indexes = Indexes(
            deployments_by_name={KEY: [facts]},
            flows_by_name={("default", "hello"): [FLOW]},
            flowruns_by_deployment={KEY: self.runs},
        )
        await write_status(self.state, KEY)

    def run(self, name: str, phase: str) -> None:
        self.runs[:] = [r for r in self.runs if r.name != name]
        self.runs.append(RunFacts(name=name, phase=phase, created=f"2024-05-01T12:00:0{name[-1]}Z"))


def test_the_first_write_after_a_quiet_window_goes_out_at_once() -> None:
    assert coalesce_delay(None, 100.0, 1.0) == 0.0
    assert coalesce_delay(98.5, 100.0, 1.0) == 0.0
    assert coalesce_delay(99.75, 100.0, 1.0) == 0.75  # the rest of the window


async def test_run_counts_within_a_window_are_held_and_flushed_with_the_latest() -> None:
    scene = Scene()
    await scene.write()  # Ready + counts: written at once
    assert len(scene.client.patches) == 1

    scene.now += 0.2
    scene.run("r1", "Pending")
    await scene.write()
    scene.run("r1", "Running")
    await scene.write()
    assert len(scene.client.patches) == 1  # held back
    assert KEY in scene.state.flushes  # one flush pending, not one per change

    scene.state.flushes.pop(KEY).cancel()
    scene.now += 0.8  # the window is over: the flush writes what is true now
    scene.run("r1", "Completed")
    await scene.write()
    assert len(scene.client.patches) == 2
    assert scene.client.patches[-1]["lastRun"] == {"name": "r1", "phase": "Completed"}
    assert scene.state.written[KEY][1]["activeRuns"] == 0


async def test_a_ready_change_is_written_at_once_even_inside_the_window() -> None:
    scene = Scene()
    await scene.write()
    scene.now += 0.1
    scene.run("r1", "Running")
    scene.spec = {"flowRef": {"name": "missing"}}  # Ready turns False: users must see it
    await scene.write()
    assert len(scene.client.patches) == 2
    assert scene.client.patches[-1]["activeRuns"] == 1  # the counts ride along
    assert KEY not in scene.state.flushes


class RefusingClient(RecordingClient):
    """The API server answers every status patch with ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def patch_status(self, resource: Any, name: str, patch: dict[str, Any],
                           *, namespace: str) -> dict[str, Any]:
        self.patches.append(patch["status"])
        raise self.error


@pytest.mark.parametrize(("error", "retried"), [
    (kube.Invalid(422, "Invalid", 'Deployment.headwater.dev "nightly" is invalid: '
                                  "status.activeRuns: Invalid value: -1"), False),
    (kube.KubeError(503, "ServiceUnavailable", "etcd is unavailable"), True),
])
async def test_a_refused_status_is_announced_not_retried_but_an_outage_is_retried(
        monkeypatch: pytest.MonkeyPatch, error: Exception, retried: bool) -> None:
    scene = Scene()
    scene.client = RefusingClient(error)
    scene.state.client = scene.client  # type: ignore[assignment]
    announced: list[str] = []
    monkeypatch.setattr(deployments, "announce_status_rejected",
                        lambda state, key, message: announced.append(message))
    scene.state.indexes = Indexes(
        deployments_by_name={KEY: [DeploymentFacts(uid="u1", generation=1, spec=scene.spec,
                                                   status={})]},
        flows_by_name={("default", "hello"): [FLOW]}, flowruns_by_deployment={KEY: []})
    await deployments.evaluate(scene.state, KEY, prune=False)
    assert len(scene.client.patches) == 1
    assert (KEY in scene.state.wakeups) is retried
    assert announced == ([] if retried else [error.message])  # type: ignore[attr-defined]
    scene.state.close()
