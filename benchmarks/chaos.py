"""Random SIGKILLs of the operator while work flows, then a verdict: nothing lost, nothing twice.

Run from the repository root::

    .venv/bin/python benchmarks/chaos.py                  # 100 kills (~15 min)
    .venv/bin/python benchmarks/chaos.py --quick           # 10 kills, a smaller workload
    .venv/bin/python benchmarks/chaos.py --kills 30 --seed 7

``tests/api/test_chaos.py`` runs this very harness (:func:`run_chaos`) with 10 kills. It
imports this file rather than a module of the operator's package: the harness is a test
of the operator from outside, it ships nowhere, and keeping it here keeps one copy that
both the benchmark and the test run.

Set-up (:mod:`blackbox`): the emulated API server in a child process, with a scripted
kubelet that moves each flow-run pod Pending → Running → Succeeded, or Failed for a
seeded fraction of attempts (the Deployments retry them), after short seeded delays; and
the operator, ``python -m headwater_operator --leader-elect``, as ``--replicas``
subprocesses (:func:`blackbox.operator_command` builds each one's command line).

Workload: Schedules ticking every few seconds with catch-up ``All`` (so the ticks
missed while the operator is down must be created when it returns), ad-hoc FlowRuns
arriving at random, attempts failing and retrying, and a Deployment ``limited`` with
``concurrency.limit`` 1 that queues runs (from Schedules and ad-hoc). History pruning is
on (20 finished runs kept per Deployment), so runs are deleted while the operator dies.

Chaos: ``--kills`` times, a replica is SIGKILLed: mostly the leader, a few seconds after
it began to lead (``/readyz`` says ``ok (leader)``), sometimes one chosen at random while
it is still starting; it is restarted at once or after a few seconds. Every restart is a
new identity, so work resumes only once the killed leader's Lease expired (about 8 s:
:data:`blackbox.LEADER_ELECTION`), on a standby or on the restarted process, and the
Schedules must then catch up.

Verdict, after the last kill: the operator runs until the window closes, every Schedule
has handled its ticks up to the window's end, the Schedules are suspended and every run
has finished (bounded waits). Then, from what the emulator recorded as it stored
objects — never from the operator:

* **lost ticks**: a tick of a Schedule after its creation and up to the window's end
  with no FlowRun;
* **duplicate runs**: a FlowRun created again under a name that existed, or two FlowRuns
  for one tick;
* **duplicate pods**: a pod created again for one run attempt, or a pod for an attempt
  that should not exist (after an attempt that did not fail, or beyond the retries);
* **stuck runs**: a run not terminal at the end (or deleted before it was);
* **concurrency violations**: an instant at which the kubelet had more pods of
  ``limited`` running than its limit (from its own Running and terminal reports).

Each must be 0; the exit status is 1 otherwise. Also reported, not judged: **wrong
outcomes** (a run whose final phase does not follow from its attempts: Completed
without a succeeded last attempt, Failed with retries left, any other terminal phase).
The markdown table goes to stdout, everything to ``benchmarks/results/chaos-<UTC>.json``,
and the ledger (every run and pod the emulator recorded, with times and outcomes) to
``chaos-<UTC>-ledger.json`` beside it; the operators' logs to ``chaos-<UTC>-logs/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported by tests/api/test_chaos.py
    sys.path.insert(0, str(HERE))

from blackbox import (  # noqa: E402 - after the path set-up above
    TERMINAL_RUN_PHASES,
    ClusterConfig,
    ClusterProcess,
    FeedPlan,
    KubeletScript,
    LedgerSnapshot,
    OperatorFleet,
    PodRecord,
    deployment_body,
    flow_body,
    namespace_body,
    wait_until,
)

RESULTS = HERE / "results"
NAMESPACE = "chaos"
STEADY, LIMITED = "steady", "limited"
ANCHOR = datetime(2024, 1, 1, tzinfo=UTC)
FIGURES = ("lost_ticks", "duplicate_runs", "duplicate_pods", "stuck_runs",
           "concurrency_violations")


@dataclass(frozen=True)
class Workload:
    """What flows while the operator is killed."""

    schedules: int = 22
    """Schedules of the unlimited Deployment ``steady``, every 3–8 s."""
    limited_schedules: int = 3
    """Schedules of ``limited`` (concurrency limit ``limit``), every ``limited_interval``:
    with the ad-hoc runs it gets, its one slot is busy about half the time (more with the
    operator down a third of the time), so runs queue, and catch-up ticks (older queue
    keys) arrive while a run holds the slot."""
    limited_interval: int = 20
    limit: int = 1
    adhoc_rate: float = 0.4
    """Ad-hoc FlowRuns per second (Poisson), 1 in 8 to ``limited``."""
    fail_fraction: float = 0.2
    retries: int = 2
    retry_delay_seconds: int = 1
    history: int = 20
    """Finished runs of each outcome kept per Deployment (pruning is on)."""

    def intervals(self) -> list[tuple[str, str, int]]:
        """``(schedule, deployment, interval seconds)`` of every Schedule."""
        rng = random.Random("intervals")
        steady = [(f"s{i:02d}", STEADY, rng.randint(3, 8)) for i in range(self.schedules)]
        limited = [(f"q{i:02d}", LIMITED, self.limited_interval)
                   for i in range(self.limited_schedules)]
        return steady + limited


QUICK = Workload(schedules=8, adhoc_rate=0.3)


@dataclass(frozen=True)
class Chaos:
    """When to kill and when to restart."""

    kills: int = 100
    seed: int = 1
    replicas: int = 1
    early_fraction: float = 0.15
    """Kills while the replica starts (0.2–1.5 s after it was spawned, ready or not)."""
    uptime: tuple[float, float] = (0.5, 8.0)
    """Seconds after ``/readyz`` answered before the other kills."""
    immediate_fraction: float = 0.5
    """Restarts at once; the others after ``downtime`` seconds."""
    downtime: tuple[float, float] = (1.0, 6.0)
    ready_timeout: float = 60.0
    window_tail: float = 5.0
    """Seconds the operator runs undisturbed after the last restart before the window closes."""
    catchup_timeout: float = 60.0
    stall_timeout: float = 60.0
    """The wait for every run to finish ends, unsettled, when no run or pod has finished
    for this long (a queue still draining is not stuck) ..."""
    settle_timeout: float = 900.0
    """... or after this long in all."""


@dataclass
class KillRecord:
    """One kill: when (seconds since the chaos began), whom, and how it came back."""

    at: float
    replica: int
    early: bool
    uptime: float
    down: float
    was_ready: bool
    """Non-early kills: a leader was found (False: none led within ``ready_timeout``)."""


@dataclass
class Timeline:
    """Instants (wall clock) that bound the measurement."""

    began: float = 0.0
    chaos_ended: float = 0.0
    window_end: float = 0.0
    caught_up: bool = False
    settled: bool = False
    finished: float = 0.0
    kills: list[KillRecord] = field(default_factory=list)


# --- the objects ---------------------------------------------------------------------------
def schedule_body(name: str, deployment: str, interval: int) -> dict[str, Any]:
    anchor = ANCHOR + timedelta(seconds=sum(map(ord, name)) % interval)
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "Schedule",
            "metadata": {"name": name},
            "spec": {"deploymentRef": {"name": deployment}, "interval": f"{interval}s",
                     "anchorTime": anchor.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "catchup": {"policy": "All"}}}


def objects(workload: Workload) -> list[dict[str, Any]]:
    """Namespace, Flow, the two Deployments and the Schedules."""
    common = {"retries": workload.retries,
              "retryDelaySeconds": workload.retry_delay_seconds,
              "history": {"successfulRunsLimit": workload.history,
                          "failedRunsLimit": workload.history}}
    return [namespace_body(NAMESPACE), flow_body("work"),
            deployment_body(STEADY, "work", **common),
            deployment_body(LIMITED, "work", **common, concurrency={
                "limit": workload.limit, "collisionStrategy": "Enqueue"}),
            *(schedule_body(name, deployment, interval)
              for name, deployment, interval in workload.intervals())]


# --- the verdict (pure) ------------------------------------------------------------------------
def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def expected_ticks(schedules: Iterable[Mapping[str, Any]], window_end: float
                   ) -> set[tuple[str, int]]:
    """Every ``(schedule, tick)`` with ``created < tick <= window_end``.

    Computed here from the interval and anchor, not by the operator's scheduling code:
    ``tick = anchor + k × interval``.
    """
    expected: set[tuple[str, int]] = set()
    for obj in schedules:
        spec, meta = obj["spec"], obj["metadata"]
        interval = int(str(spec["interval"]).removesuffix("s"))
        anchor = int(_parse(spec["anchorTime"]).timestamp())
        created = int(_parse(meta["creationTimestamp"]).timestamp())
        first = anchor + ((created - anchor) // interval + 1) * interval
        expected.update((meta["name"], tick)
                        for tick in range(first, int(window_end) + 1, interval))
    return expected


def unexpected_attempts(snapshot: LedgerSnapshot, retries: int) -> list[str]:
    """Pods for an attempt that should not exist: beyond ``retries + 1``, or after an
    attempt that did not fail (or has no pod)."""
    outcomes: dict[tuple[str, int], str | None] = {
        (pod.run, pod.attempt): pod.outcome for pod in snapshot.pods.values()}
    def should_exist(pod: PodRecord) -> bool:
        if not 1 <= pod.attempt <= retries + 1:
            return False
        return pod.attempt == 1 or outcomes.get((pod.run, pod.attempt - 1)) == "Failed"

    return sorted(pod.name for pod in snapshot.pods.values() if not should_exist(pod))


def wrong_outcomes(snapshot: LedgerSnapshot, retries: int) -> list[str]:
    """Terminal runs whose phase does not follow from their attempts' outcomes."""
    last: dict[str, tuple[int, str | None]] = {}
    for pod in snapshot.pods.values():
        if pod.attempt > last.get(pod.run, (0, None))[0]:
            last[pod.run] = (pod.attempt, pod.outcome)
    wrong = []
    for run in snapshot.runs.values():
        attempt, outcome = last.get(run.name, (0, None))
        if run.phase == "Completed":
            ok = outcome == "Succeeded"
        elif run.phase == "Failed":
            ok = outcome == "Failed" and attempt == retries + 1
        else:
            ok = run.phase not in TERMINAL_RUN_PHASES  # counted as stuck instead
        if not ok:
            wrong.append(f"{run.name}: {run.phase} after attempt {attempt} {outcome}")
    return sorted(wrong)


def verdict(snapshot: LedgerSnapshot, schedules: list[Mapping[str, Any]], window_end: float,
            retries: int) -> dict[str, Any]:
    """The five figures (each must be 0), the informational ones and examples of each."""
    expected = expected_ticks(schedules, window_end)
    by_tick: dict[tuple[str, int], list[str]] = {}
    for run in snapshot.runs.values():
        if run.schedule is not None and run.tick is not None:
            by_tick.setdefault((run.schedule, run.tick), []).append(run.name)
    lost = sorted(key for key in expected if key not in by_tick)
    recreated_runs = sorted(r.name for r in snapshot.runs.values() if r.creates > 1)
    two_for_a_tick = sorted(names for names in by_tick.values() if len(names) > 1)
    recreated_pods = sorted(p.name for p in snapshot.pods.values() if p.creates > 1)
    extra_pods = unexpected_attempts(snapshot, retries)
    stuck = sorted(f"{r.name}: {r.phase}" + (" (deleted)" if r.deleted else "")
                   for r in snapshot.runs.values() if r.phase not in TERMINAL_RUN_PHASES)
    wrong = wrong_outcomes(snapshot, retries)
    pods = list(snapshot.pods.values())
    runs = list(snapshot.runs.values())
    return {
        "lost_ticks": len(lost),
        "duplicate_runs": sum(r.creates - 1 for r in runs)
        + sum(len(n) - 1 for n in two_for_a_tick),
        "duplicate_pods": sum(p.creates - 1 for p in pods) + len(extra_pods),
        "stuck_runs": len(stuck),
        "concurrency_violations": len(snapshot.violations),
        "wrong_outcomes": len(wrong),
        "examples": {
            "lost_ticks": [f"{s}-{t}" for s, t in lost[:10]],
            "recreated_runs": recreated_runs[:10],
            "runs_for_one_tick": two_for_a_tick[:10],
            "recreated_pods": recreated_pods[:10],
            "unexpected_attempts": extra_pods[:10],
            "stuck_runs": stuck[:10],
            "concurrency_violations": [
                {"at": datetime.fromtimestamp(v.at, UTC).isoformat(timespec="milliseconds"),
                 "deployment": v.deployment, "limit": v.limit, "running": v.running}
                for v in snapshot.violations[:10]],
            "wrong_outcomes": wrong[:10],
        },
        "ticks_expected": len(expected),
        "runs": len(runs),
        "scheduled_runs": sum(1 for r in runs if r.schedule is not None),
        "adhoc_runs": sum(1 for r in runs if r.schedule is None),
        "final_phases": dict(Counter(str(r.phase) for r in runs).most_common()),
        "pods": len(pods),
        "failed_attempts": sum(1 for p in pods if p.outcome == "Failed"),
        "retry_pods": sum(1 for p in pods if p.attempt > 1),
        "runs_deleted_by_history": sum(1 for r in runs if r.deleted is not None),
        "max_running": snapshot.max_running,
    }


# --- the run ------------------------------------------------------------------------------------
def _kill_once(fleet: OperatorFleet, chaos: Chaos, rng: random.Random, began: float,
               log: Callable[[str], None]) -> KillRecord:
    early = rng.random() < chaos.early_fraction
    if early:
        victim = rng.randrange(len(fleet.replicas))
        uptime = rng.uniform(0.2, 1.5)
        started = fleet.replicas[victim].started
        time.sleep(max(0.0, started + uptime - time.monotonic()))
        was_ready = fleet.ready(victim)
    else:
        # The leader is the replica doing the work: kill it while it works. (With one
        # replica, a restart leads once its predecessor's Lease expired.)
        leader = fleet.wait_leader(chaos.ready_timeout)
        victim = leader if leader is not None else rng.randrange(len(fleet.replicas))
        was_ready = leader is not None
        uptime = rng.uniform(*chaos.uptime)
        time.sleep(uptime)
    down = 0.0 if rng.random() < chaos.immediate_fraction else rng.uniform(*chaos.downtime)
    at = time.time() - began
    fleet.kill(victim)
    time.sleep(down)
    fleet.start(victim)
    log(f"kill at {at:6.1f} s: replica {victim} ({'starting' if early else 'up'} "
        f"{uptime:.1f} s), back after {down:.1f} s")
    return KillRecord(round(at, 2), victim, early, round(uptime, 2), round(down, 2),
                      was_ready)


def _caught_up(cluster: ClusterProcess, window_end: float) -> bool:
    """Whether every Schedule's ``status.lastScheduleTime`` reached its last tick due."""
    for obj in cluster.ask("schedules"):
        due = expected_ticks([obj], window_end)
        last = (obj.get("status") or {}).get("lastScheduleTime")
        if due and (not last or _parse(last).timestamp() < max(t for _, t in due)):
            return False
    return True


def wait_while_progressing(cluster: ClusterProcess, chaos: Chaos) -> bool:
    """Until no run or pod is unfinished (True), or nothing finished for
    ``chaos.stall_timeout`` seconds, or ``chaos.settle_timeout`` passed (False)."""
    deadline = time.monotonic() + chaos.settle_timeout
    last, changed = None, time.monotonic()
    while True:
        unfinished = cluster.ask("unfinished")
        if unfinished == (0, 0):
            return True
        now = time.monotonic()
        if unfinished != last:
            last, changed = unfinished, now
        if now - changed > chaos.stall_timeout or now > deadline:
            return False
        time.sleep(0.5)


def run_chaos(workload: Workload, chaos: Chaos, log_dir: Path,
              log: Callable[[str], None] = lambda line: print(line, file=sys.stderr)
              ) -> dict[str, Any]:
    """Set up, kill ``chaos.kills`` times, settle, and return the verdict and the record."""
    rng = random.Random(chaos.seed)
    script = KubeletScript(seed=chaos.seed, fail_fraction=workload.fail_fraction,
                           limits={LIMITED: workload.limit})
    timeline = Timeline()
    with ClusterProcess(ClusterConfig(NAMESPACE, script)) as cluster:
        cluster.ask("apply", objects(workload))
        fleet = OperatorFleet(cluster.kubeconfig_path, NAMESPACE, chaos.replicas, log_dir)
        try:
            timeline.began = time.time()
            fleet.start_all()
            cluster.ask("start_feed", FeedPlan(
                rate=workload.adhoc_rate, deployments=[(STEADY, 7.0), (LIMITED, 1.0)],
                poisson=True, seed=chaos.seed))
            for _ in range(chaos.kills):
                timeline.kills.append(_kill_once(fleet, chaos, rng, timeline.began, log))
            for replica in fleet.replicas:
                fleet.wait_ready(replica.index, chaos.ready_timeout)
            fleet.wait_leader(chaos.ready_timeout)
            timeline.chaos_ended = time.time()
            time.sleep(chaos.window_tail)
            timeline.window_end = time.time()
            log("chaos over: waiting for the Schedules to catch up, then for every run")
            cluster.ask("stop_feed")
            timeline.caught_up = wait_until(
                lambda: _caught_up(cluster, timeline.window_end), chaos.catchup_timeout)
            cluster.ask("suspend_schedules")
            timeline.settled = wait_while_progressing(cluster, chaos)
            timeline.finished = time.time()
            alive = [fleet.alive(replica.index) for replica in fleet.replicas]
        finally:
            fleet.stop_all()
        snapshot: LedgerSnapshot = cluster.ask("snapshot")
        schedules = cluster.ask("schedules")
    result = verdict(snapshot, schedules, timeline.window_end, workload.retries)
    result.update({
        "workload": asdict(workload), "chaos": asdict(chaos),
        "kills": len(timeline.kills),
        "early_kills": sum(1 for k in timeline.kills if k.early),
        "immediate_restarts": sum(1 for k in timeline.kills if k.down == 0.0),
        "chaos_seconds": round(timeline.chaos_ended - timeline.began, 1),
        "window_seconds": round(timeline.window_end - timeline.began, 1),
        "settle_seconds": round(timeline.finished - timeline.window_end, 1),
        "caught_up": timeline.caught_up, "settled": timeline.settled,
        "operators_alive_at_end": alive,
        "kill_log": [asdict(k) for k in timeline.kills],
        "ledger": {"runs": [asdict(r) for r in snapshot.runs.values()],
                   "pods": [asdict(p) for p in snapshot.pods.values()],
                   "violations": [asdict(v) for v in snapshot.violations]},
    })
    return result


def passed(result: Mapping[str, Any]) -> bool:
    """All five figures are 0."""
    return all(result[name] == 0 for name in FIGURES)


def table(result: Mapping[str, Any]) -> str:
    """The markdown table of one run."""
    def mark(name: str) -> str:
        return "0 " + ("✅" if result[name] == 0 else "❌")

    rows = [
        ("kills (while starting; restarted at once)",
         f"{result['kills']} ({result['early_kills']}; {result['immediate_restarts']})", ""),
        ("operator replicas", str(result["chaos"]["replicas"]), ""),
        ("chaos / window / settling", f"{result['chaos_seconds']} s / "
         f"{result['window_seconds']} s / {result['settle_seconds']} s", ""),
        ("runs (scheduled + ad-hoc)", f"{result['runs']} ({result['scheduled_runs']} + "
         f"{result['adhoc_runs']})", ""),
        ("pods (failed attempts; retry pods)",
         f"{result['pods']} ({result['failed_attempts']}; {result['retry_pods']})", ""),
        ("final phases", ", ".join(f"{k} {v}" for k, v in result["final_phases"].items()), ""),
        ("runs pruned by history", str(result["runs_deleted_by_history"]), ""),
        ("most pods running at once",
         ", ".join(f"{k} {v}" for k, v in sorted(result["max_running"].items())), ""),
        ("ticks expected in the window", str(result["ticks_expected"]), ""),
        ("**lost ticks**", str(result["lost_ticks"]), mark("lost_ticks")),
        ("**duplicate runs**", str(result["duplicate_runs"]), mark("duplicate_runs")),
        ("**duplicate pods**", str(result["duplicate_pods"]), mark("duplicate_pods")),
        ("**stuck runs**", str(result["stuck_runs"]), mark("stuck_runs")),
        (f"**concurrency violations** (limit {result['workload']['limit']})",
         str(result["concurrency_violations"]), mark("concurrency_violations")),
        ("wrong outcomes (reported, not judged)", str(result["wrong_outcomes"]), ""),
    ]
    lines = ["| measure | Headwater | must be |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {target} |" for name, value, target in rows]
    examples = {k: v for k, v in result["examples"].items() if v}
    if examples:
        lines += ["", "Examples:", "```", json.dumps(examples, indent=1), "```"]
    if not (result["caught_up"] and result["settled"]):
        lines += ["", f"Waits that timed out: caught up {result['caught_up']}, "
                      f"settled {result['settled']}."]
    return "\n".join(lines)


def main() -> int:
    """Parse flags, run, print the table, write the JSON; 1 unless all five figures are 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=None, help="SIGKILLs (default 100; "
                        "--quick 10)")
    parser.add_argument("--seed", type=int, default=1, help="seeds kills, failures, arrivals")
    parser.add_argument("--quick", action="store_true",
                        help="10 kills and a smaller workload (what the api test runs)")
    parser.add_argument("--replicas", type=int, default=1,
                        help="operator processes, each with --leader-elect; a kill takes "
                        "the leader (or, while replicas start, any one)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON")
    args = parser.parse_args()
    workload = QUICK if args.quick else Workload()
    chaos = Chaos(kills=args.kills if args.kills is not None else 10 if args.quick else 100,
                  seed=args.seed, replicas=args.replicas)
    stamp = datetime.now(UTC)
    log_dir = RESULTS / f"chaos-{stamp:%Y%m%dT%H%M%S}-logs"
    result = run_chaos(workload, chaos, log_dir)
    result["environment"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                             "command": " ".join(sys.argv), "operator_logs": str(log_dir),
                             "when": stamp.isoformat(timespec="seconds"),
                             "load_average": os.getloadavg()}
    print(table(result))
    RESULTS.mkdir(exist_ok=True)
    path = args.json or RESULTS / f"chaos-{stamp:%Y%m%dT%H%M%S}.json"
    ledger = path.with_name(path.stem + "-ledger.json")
    ledger.write_text(json.dumps(result.pop("ledger")) + "\n", encoding="utf-8")
    result["environment"]["ledger"] = str(ledger)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {path} and {ledger.name}", file=sys.stderr)
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
