"""The chaos verdict (``benchmarks/chaos.py``) counts each kind of wrong it claims to.

A harness whose figures cannot leave 0 proves nothing, so each figure is fed a ledger
with exactly one defect of its kind. The scripted kubelet's concurrency watch is checked
against a real emulator store.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

import chaos  # benchmarks/ is not a package: found through sys.path
from blackbox import (
    KubeletScript,
    Ledger,
    LedgerSnapshot,
    PodRecord,
    RunRecord,
    ScriptedKubelet,
    Violation,
)

CREATED = 1_700_000_001  # 2023-11-14T22:13:21Z


def schedule(name: str = "s", interval: int = 5, anchor: str = "2024-01-01T00:00:00Z",
             created: str = "2023-11-14T22:13:21Z") -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"interval": f"{interval}s", "anchorTime": anchor}}


def clean() -> LedgerSnapshot:
    """Ticks 1_700_000_005 and …010 of ``s``, each run once; one ad-hoc run retried once."""
    runs = {f"s-{t}": RunRecord(f"s-{t}", "steady", "s", t, t + 0.1, phase="Completed")
            for t in (1_700_000_005, 1_700_000_010)}
    runs["adhoc-1"] = RunRecord("adhoc-1", "limited", None, None, 1.0, phase="Completed")
    pods = {f"{name}-1": PodRecord(f"{name}-1", name, 1, "steady", 1.0, outcome="Succeeded")
            for name in runs if name.startswith("s-")}
    pods["adhoc-1-1"] = PodRecord("adhoc-1-1", "adhoc-1", 1, "limited", 1.0, outcome="Failed")
    pods["adhoc-1-2"] = PodRecord("adhoc-1-2", "adhoc-1", 2, "limited", 2.0,
                                  outcome="Succeeded")
    return LedgerSnapshot(runs=runs, pods=pods, violations=[], max_running={"limited": 1})


def judge(snapshot: LedgerSnapshot) -> dict[str, Any]:
    return chaos.verdict(snapshot, [schedule()], window_end=1_700_000_012.5, retries=2)


def test_expected_ticks_are_after_creation_and_up_to_the_window_end() -> None:
    # Anchor 2024-01-01T00:00:00Z is a multiple of 5 s; creation at …001 (second resolution).
    ticks = chaos.expected_ticks([schedule()], 1_700_000_015.0)
    assert sorted(ticks) == [("s", 1_700_000_005), ("s", 1_700_000_010), ("s", 1_700_000_015)]
    on_a_tick = schedule(created="2023-11-14T22:13:25Z")  # created at …005: not due
    assert sorted(chaos.expected_ticks([on_a_tick], 1_700_000_010.0)) == [
        ("s", 1_700_000_010)]


def test_a_clean_ledger_passes() -> None:
    result = judge(clean())
    assert {name: result[name] for name in chaos.FIGURES} == dict.fromkeys(chaos.FIGURES, 0)
    assert result["wrong_outcomes"] == 0
    assert chaos.passed(result)


def test_each_defect_is_counted_under_its_own_figure() -> None:
    cases: dict[str, Any] = {}

    lost = clean()
    del lost.runs["s-1700000010"]
    cases["lost_ticks"] = lost

    recreated = clean()
    recreated.runs["s-1700000005"].creates = 2
    cases["duplicate_runs"] = recreated

    two_names = clean()
    two_names.runs["other"] = RunRecord("other", "steady", "s", 1_700_000_005, 1.0,
                                        phase="Completed")
    cases["duplicate_runs "] = two_names

    pod_twice = clean()
    pod_twice.pods["adhoc-1-1"].creates = 2
    cases["duplicate_pods"] = pod_twice

    retry_after_success = clean()
    retry_after_success.pods["s-1700000005-2"] = PodRecord(
        "s-1700000005-2", "s-1700000005", 2, "steady", 3.0, outcome="Succeeded")
    cases["duplicate_pods "] = retry_after_success

    beyond_retries = clean()
    for attempt in (2, 3):
        beyond_retries.pods[f"adhoc-1-{attempt}"].outcome = "Failed"
        beyond_retries.pods[f"adhoc-1-{attempt + 1}"] = PodRecord(
            f"adhoc-1-{attempt + 1}", "adhoc-1", attempt + 1, "limited", 4.0,
            outcome="Succeeded")
    cases["duplicate_pods  "] = beyond_retries  # attempt 4 with retries 2

    stuck = clean()
    stuck.runs["adhoc-1"].phase = "AwaitingConcurrencySlot"
    cases["stuck_runs"] = stuck

    overlap = clean()
    overlap.violations.append(Violation(5.0, "limited", 1, ["a-1", "b-1"]))
    cases["concurrency_violations"] = overlap

    for figure, snapshot in cases.items():
        result = judge(snapshot)
        counted = {name: result[name] for name in chaos.FIGURES if result[name]}
        assert counted == {figure.strip(): 1}, figure
        assert not chaos.passed(result)


def test_wrong_outcomes_are_reported() -> None:
    completed_after_failure = clean()
    completed_after_failure.pods["adhoc-1-2"].outcome = "Failed"
    assert judge(completed_after_failure)["wrong_outcomes"] == 1

    failed_with_retries_left = clean()
    failed_with_retries_left.runs["adhoc-1"].phase = "Failed"
    failed_with_retries_left.pods["adhoc-1-2"].outcome = "Failed"
    assert judge(failed_with_retries_left)["wrong_outcomes"] == 1


def test_the_kubelet_script_is_the_same_for_the_same_seed_and_pod() -> None:
    script = KubeletScript(seed=3, fail_fraction=0.5)
    assert script.plan("r-1") == script.plan("r-1")
    assert KubeletScript(seed=4, fail_fraction=0.5).plan("r-1") != script.plan("r-1")
    fails = sum(script.plan(f"r{i}-1")[3] for i in range(1000))
    assert 400 < fails < 600


# --- the kubelet's concurrency watch, against a real emulator store ----------------------
@pytest.fixture
def store() -> Any:
    from headwater_dev.emulator import Emulator

    emulator = Emulator(crds=[])
    emulator.store.create(emulator.store.resource("", "v1", "namespaces"), None,
                          {"metadata": {"name": "default"}})
    return emulator.store


def pod(store: Any, name: str, deployment: str) -> None:
    store.create(store.resource("", "v1", "pods"), "default", {
        "metadata": {"name": name, "labels": {
            "app.kubernetes.io/managed-by": "headwater",
            "headwater.dev/deployment": deployment,
            "headwater.dev/flow-run": name.rsplit("-", 1)[0], "headwater.dev/attempt": "1"}},
        "spec": {"containers": [{"name": "flow", "image": "example/flow:1"}]}})


def test_the_kubelet_records_more_running_pods_than_the_limit(store: Any) -> None:
    kubelet = ScriptedKubelet(store, "default", KubeletScript(limits={"limited": 1}),
                              Ledger())
    for name, deployment in (("a-1", "limited"), ("b-1", "limited"), ("c-1", "steady")):
        pod(store, name, deployment)
    kubelet._run("a-1", "limited")
    kubelet._run("c-1", "steady")
    kubelet._finish("a-1", "limited", fails=False)
    kubelet._run("b-1", "limited")
    assert kubelet.violations == []  # one after the other: within the limit

    pod(store, "d-1", "limited")
    kubelet._run("d-1", "limited")
    assert [(v.deployment, v.limit, v.running) for v in kubelet.violations] == [
        ("limited", 1, ["b-1", "d-1"])]
    assert kubelet.max_running == {"limited": 2, "steady": 1}
    phases = {p["metadata"]["name"]: p["status"]["phase"]
              for p in store.list_objects(store.resource("", "v1", "pods"), "default")[0]}
    assert phases == {"a-1": "Succeeded", "b-1": "Running", "c-1": "Running",
                      "d-1": "Running"}
