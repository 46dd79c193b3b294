"""The real-cluster e2e tests cannot prune each other's runs (issue #10 item 2).

tests/e2e needs a cluster, so its design is checked here. The flake: the run-to-
completion test applied the quickstart with its 10-second interval Schedule, whose runs
went to the same one-at-a-time Deployment ``hello`` and, past ``successfulRunsLimit:
5``, had history pruning delete the ad-hoc run the test was polling. Now no Schedule
shares a Deployment with a run a test waits for.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

from chartkit import REPO_ROOT


def _e2e_helpers() -> ModuleType:
    # tests/e2e is a package of its own (opt-in); load its helper module by path.
    spec = importlib.util.spec_from_file_location(
        "headwater_e2e_helpers", REPO_ROOT / "tests" / "e2e" / "headwater_e2e.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


E2E = _e2e_helpers()
IMAGE = "headwater/examples:e2e"


def _deployments_of_runs(docs: list[dict[str, Any]]) -> set[str]:
    return {d["spec"]["deploymentRef"]["name"] for d in docs if d["kind"] == "FlowRun"}


def test_the_runs_a_test_waits_for_share_no_deployment_with_a_schedule() -> None:
    polled = E2E.completion_docs(IMAGE)
    assert _deployments_of_runs(polled) >= {"hello"}
    scheduled_targets = {d["spec"]["deploymentRef"]["name"] for d in polled
                         if d["kind"] == "Schedule"}
    assert scheduled_targets == set()


def test_the_schedule_test_fires_into_a_deployment_of_its_own() -> None:
    first = E2E.interval_schedule_docs(IMAGE, "a1")
    second = E2E.interval_schedule_docs(IMAGE, "b2")
    kinds = [d["kind"] for d in first]
    assert kinds == ["Flow", "Deployment", "Schedule"]
    _, deployment, schedule = first
    assert schedule["spec"]["deploymentRef"]["name"] == deployment["metadata"]["name"]
    assert schedule["spec"]["interval"] == "10s"  # the example's, unchanged
    example_deployments = {d["metadata"]["name"] for d in E2E.completion_docs(IMAGE)
                           if d["kind"] == "Deployment"}
    assert deployment["metadata"]["name"] not in example_deployments
    # Unique per run of the suite, so a rerun in a kept namespace starts afresh.
    assert second[1]["metadata"]["name"] != deployment["metadata"]["name"]
    assert second[2]["metadata"]["name"] != schedule["metadata"]["name"]
