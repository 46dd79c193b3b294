"""FlowRun trackers' doorbells: a run's end wakes only the runs still waiting for a slot."""

from __future__ import annotations

from headwater_operator.flowruns.reconciler import Wakeups

NS = "default"


def _wakeups(holding: list[str], waiting: list[str]) -> Wakeups:
    wakeups = Wakeups()
    for name in holding + waiting:
        wakeups.register((NS, name))
        wakeups.join_deployment((NS, name), "nightly")
        wakeups.waiting((NS, name), name in waiting)
    wakeups.register((NS, "other"))
    wakeups.join_deployment((NS, "other"), "hourly")
    wakeups.waiting((NS, "other"), True)
    return wakeups


def _rung(wakeups: Wakeups, names: list[str]) -> list[str]:
    return [name for name in names if wakeups.register((NS, name)).is_set()]


def test_a_run_that_held_a_slot_wakes_the_waiting_runs_of_its_deployment_only() -> None:
    wakeups = _wakeups(holding=["a", "b"], waiting=["queued-1", "queued-2"])
    wakeups.unregister((NS, "a"))
    # Not "b" (it holds a slot: another run's end changes nothing for it), not the other
    # Deployment's waiting run.
    assert _rung(wakeups, ["b", "queued-1", "queued-2", "other"]) == ["queued-1", "queued-2"]


def test_a_waiting_run_that_goes_away_frees_no_slot() -> None:
    wakeups = _wakeups(holding=["a"], waiting=["queued-1", "queued-2"])
    wakeups.unregister((NS, "queued-1"))
    assert _rung(wakeups, ["a", "queued-2"]) == []


def test_a_run_admitted_since_is_no_longer_woken() -> None:
    wakeups = _wakeups(holding=["a"], waiting=["queued-1", "queued-2"])
    wakeups.waiting((NS, "queued-1"), False)  # its step created a pod: Pending
    wakeups.unregister((NS, "a"))
    assert _rung(wakeups, ["queued-1", "queued-2"]) == ["queued-2"]


def test_a_deployment_change_still_wakes_every_run() -> None:
    wakeups = _wakeups(holding=["a"], waiting=["queued-1"])
    wakeups.wake_deployment(NS, "nightly")
    assert _rung(wakeups, ["a", "queued-1", "other"]) == ["a", "queued-1"]
