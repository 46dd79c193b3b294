"""10,000 runs through the whole lifecycle at 50 runs/s: memory, CPU per run, run → pod latency.

Run from the repository root::

    .venv/bin/python benchmarks/soak.py                    # 10,000 runs at 50/s (~4 min)
    .venv/bin/python benchmarks/soak.py --quick            # 1,000 runs at 50/s
    .venv/bin/python benchmarks/soak.py --runs 3000 --rate 20

Set-up (:mod:`blackbox`): the emulated API server in a child process, which also plays
the kubelet (each flow-run pod is bound, reported Running, and exits 0 with a run summary
0.5–1.5 s later) and the client (ad-hoc FlowRuns of one Deployment, created exactly every
``1/--rate`` seconds); the operator, ``python -m headwater_operator``, in a process of its
own. The Deployment keeps 20 finished runs (``spec.history``), so the operator deletes the
older ones and nothing in the cluster grows with the number of runs but the Events the
operator posts (a real API server expires those after an hour). Nothing fails here: this
measures the steady state, ``chaos.py`` the failures.

Figures, over the window from the first run created to the last run finished:

* the operator's RSS (``VmRSS``), sampled every second while runs arrive: median of the
  first and of the last quarter of the samples (flat means about equal), and the max;
  target ≤ 150 MB;
* the operator's CPU seconds over the window / runs; target ≤ 2 ms per run; and the same
  until its deferred work (pruning, Events) has drained: two quiet seconds without an API
  request and no more FlowRuns than the history keeps (a loaded machine defers part of
  each run's cost past the window); and the share of it that was system time (the
  kernel's, e.g. loopback TCP; ``stime`` against ``utime``);
* FlowRun → Pod: when the emulator stored a run's first pod minus when it stored the run
  (both recorded by the emulator at the write); p50 / p99 / max; target p99 ≤ 1 s;
* the operator's API requests per run, by verb and resource, until drained (every HTTP
  request the emulator serves is the operator's: the kubelet and the feed write to its
  store);
* runs not finished (not terminal when the bounded wait ended): must be 0;
* objects left in the emulator at the end, and the emulator's CPU (a test artifact).

The markdown table goes to stdout, everything to ``benchmarks/results/soak-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from blackbox import (  # noqa: E402 - after the path set-up above
    TERMINAL_RUN_PHASES,
    ClusterConfig,
    ClusterProcess,
    FeedPlan,
    KubeletScript,
    LedgerSnapshot,
    OperatorFleet,
    cpu_seconds,
    deployment_body,
    flow_body,
    namespace_body,
    peak_rss_mb,
    percentile,
)

RESULTS = HERE / "results"
NAMESPACE = "soak"
DEPLOYMENT = "soak"
HISTORY = 20
TARGET_RSS_MB = 150.0
TARGET_CPU_MS_PER_RUN = 2.0
TARGET_POD_P99_SECONDS = 1.0


@dataclass
class Sample:
    """One second of the soak, as the driver saw it."""

    at: float
    rss_mb: float
    operator_cpu: float
    operator_system_cpu: float
    emulator_cpu: float
    created: int
    unfinished_runs: int


def objects() -> list[dict[str, Any]]:
    return [namespace_body(NAMESPACE), flow_body("work"), deployment_body(
        DEPLOYMENT, "work", history={"successfulRunsLimit": HISTORY,
                                     "failedRunsLimit": HISTORY})]


def system_cpu_seconds(pid: int) -> float:
    """System CPU time of a process (``stime``, Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def sample(cluster: ClusterProcess, fleet: OperatorFleet) -> Sample:
    runs, _ = cluster.ask("unfinished")
    return Sample(time.time(), peak_rss_mb(fleet.pid(0), "VmRSS"), cpu_seconds(fleet.pid(0)),
                  system_cpu_seconds(fleet.pid(0)), cpu_seconds(cluster.pid),
                  cluster.ask("fed"), runs)


def soak(runs: int, rate: float, log_dir: Path, settle_timeout: float) -> dict[str, Any]:
    """Feed ``runs`` at ``rate``, wait for all to finish, and return the figures."""
    script = KubeletScript(seed=1, run_for=(0.5, 1.5))
    samples: list[Sample] = []
    with ClusterProcess(ClusterConfig(NAMESPACE, script)) as cluster:
        cluster.ask("apply", objects())
        fleet = OperatorFleet(cluster.kubeconfig_path, NAMESPACE, 1, log_dir)
        try:
            fleet.start_all()
            if not fleet.wait_ready(0, 120.0):
                raise TimeoutError("the operator was not ready within 120 s")
            time.sleep(2.0)  # start-up work done: the idle figure
            idle_rss = peak_rss_mb(fleet.pid(0), "VmRSS")
            start = sample(cluster, fleet)
            mark: int = cluster.ask("request_mark")
            cluster.ask("start_feed", FeedPlan(rate=rate, deployments=[(DEPLOYMENT, 1.0)],
                                               count=runs))
            deadline = time.time() + runs / rate + settle_timeout
            while time.time() < deadline:
                time.sleep(1.0)
                samples.append(sample(cluster, fleet))
                if samples[-1].created >= runs and samples[-1].unfinished_runs == 0:
                    break
            peak = peak_rss_mb(fleet.pid(0))
            drained = drain(cluster, fleet, deadline)
            requests: dict[str, int] = cluster.ask("requests_since", mark)
        finally:
            fleet.stop_all()
        snapshot: LedgerSnapshot = cluster.ask("snapshot")
        counts: dict[str, int] = cluster.ask("counts")
    return figures(snapshot, samples, runs=runs, rate=rate, start=start, idle_rss=idle_rss,
                   peak=peak, counts=counts, requests=requests, drained=drained)


def drain(cluster: ClusterProcess, fleet: OperatorFleet, deadline: float) -> Sample | None:
    """Wait (until ``deadline``) for the operator's deferred work to end: history pruning
    down to the kept runs and Events posted, seen as two quiet seconds without a request.

    On a loaded machine that work lags the runs: the CPU per run measured only until the
    last run finished then leaves part of each run's cost out. Returns the sample at the
    end of the drain (None if the deadline came first).
    """
    last: int = cluster.ask("request_mark")
    quiet = 0
    while time.time() < deadline:
        time.sleep(1.0)
        now: int = cluster.ask("request_mark")
        flowruns = cluster.ask("counts").get("flowruns", 0)
        quiet = quiet + 1 if now - last <= 2 else 0  # the Lease renewal, every 2 s
        last = now
        if quiet >= 2 and flowruns <= HISTORY:
            return sample(cluster, fleet)
    return None


def figures(snapshot: LedgerSnapshot, samples: list[Sample], *, runs: int, rate: float,
            start: Sample, idle_rss: float, peak: float, counts: Mapping[str, int],
            requests: Mapping[str, int] | None = None, drained: Sample | None = None
            ) -> dict[str, Any]:
    """The soak's figures from the ledger and the samples (pure)."""
    end = samples[-1]
    window = end.at - start.at
    feeding = [s for s in samples if s.created < runs] or samples
    quarter = max(1, len(feeding) // 4)
    first_pod: dict[str, float] = {}
    for pod in snapshot.pods.values():
        if pod.attempt == 1:
            first_pod[pod.run] = pod.created
    latencies = [first_pod[r.name] - r.created for r in snapshot.runs.values()
                 if r.name in first_pod]
    first_created = min((r.created for r in snapshot.runs.values()), default=0.0)
    slowest = sorted(((first_pod[r.name] - r.created, r.created - first_created, r.name)
                      for r in snapshot.runs.values() if r.name in first_pod),
                     reverse=True)[:10]
    durations = [r.ended - r.created for r in snapshot.runs.values() if r.ended is not None]
    unfinished = sorted(r.name for r in snapshot.runs.values()
                        if r.phase not in TERMINAL_RUN_PHASES)
    operator_cpu = end.operator_cpu - start.operator_cpu
    recorded = max(1, len(snapshot.runs))
    requests = dict(requests or {})
    return {
        "runs": runs, "rate_per_second": rate, "runs_recorded": len(snapshot.runs),
        "window_seconds": round(window, 1),
        "rss_idle_mb": round(idle_rss, 1),
        "rss_first_quarter_median_mb": round(statistics.median(
            s.rss_mb for s in feeding[:quarter]), 1),
        "rss_last_quarter_median_mb": round(statistics.median(
            s.rss_mb for s in feeding[-quarter:]), 1),
        "rss_max_mb": round(max(s.rss_mb for s in samples), 1),
        "rss_peak_vmhwm_mb": round(peak, 1),
        "operator_cpu_seconds": round(operator_cpu, 2),
        "operator_cpu_ms_per_run": round(1000 * operator_cpu / max(1, len(snapshot.runs)), 3),
        "operator_cpu_ms_per_run_drained": None if drained is None else round(
            1000 * (drained.operator_cpu - start.operator_cpu) / recorded, 3),
        "drain_seconds": None if drained is None else round(drained.at - end.at, 1),
        "operator_cpu_percent_of_one_core": round(100 * operator_cpu / window, 1),
        "operator_system_cpu_percent": round(
            100 * (end.operator_system_cpu - start.operator_system_cpu) / operator_cpu, 1)
        if operator_cpu > 0 else None,
        "emulator_cpu_percent_of_one_core": round(
            100 * (end.emulator_cpu - start.emulator_cpu) / window, 1),
        "run_to_pod_p50_seconds": percentile(latencies, 0.50) if latencies else None,
        "run_to_pod_p99_seconds": percentile(latencies, 0.99) if latencies else None,
        "run_to_pod_max_seconds": max(latencies) if latencies else None,
        "runs_without_pod": len(snapshot.runs) - len(latencies),
        "run_to_pod_slowest": [{"run": name, "created_after_first_seconds": round(at, 3),
                                "run_to_pod_seconds": round(latency, 3)}
                               for latency, at, name in slowest],
        "run_to_terminal_p50_seconds": percentile(durations, 0.50) if durations else None,
        "run_to_terminal_p99_seconds": percentile(durations, 0.99) if durations else None,
        "runs_not_finished": len(unfinished), "unfinished_examples": unfinished[:10],
        "runs_deleted_by_history": sum(1 for r in snapshot.runs.values()
                                       if r.deleted is not None),
        "objects_left": {k: counts.get(k, 0) for k in ("flowruns", "pods", "events")},
        "operator_requests_per_run": round(sum(requests.values()) / recorded, 2),
        "operator_requests_per_run_by_verb": {
            key: round(n / recorded, 2) for key, n in sorted(requests.items())},
        "rss_samples": [(round(s.at - start.at, 1), round(s.rss_mb, 1)) for s in samples],
    }


def table(result: Mapping[str, Any]) -> str:
    """The markdown table of one soak."""
    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 1000:.0f} ms"

    def ok(good: bool) -> str:
        return "✅" if good else "❌"

    p99 = result["run_to_pod_p99_seconds"]
    cpu = result["operator_cpu_ms_per_run"]
    rss_max = result["rss_max_mb"]
    left = result["objects_left"]
    rows = [
        ("runs × rate", f"{result['runs']} at {result['rate_per_second']}/s", ""),
        ("window (first run created → last finished)", f"{result['window_seconds']} s", ""),
        ("operator RSS: idle; median first / last quarter; max",
         f"{result['rss_idle_mb']}; {result['rss_first_quarter_median_mb']} / "
         f"{result['rss_last_quarter_median_mb']}; {rss_max} MB",
         f"flat, ≤ {TARGET_RSS_MB:.0f} MB {ok(rss_max <= TARGET_RSS_MB)}"),
        ("operator CPU per run", f"{cpu} ms ({result['operator_cpu_percent_of_one_core']} % "
         f"of a core; {result['operator_system_cpu_percent']} % of it system time)",
         f"≤ {TARGET_CPU_MS_PER_RUN:g} ms {ok(cpu <= TARGET_CPU_MS_PER_RUN)}"),
        ("… including the pruning and Events still pending then (drain)",
         "n/a (not drained)" if result["operator_cpu_ms_per_run_drained"] is None else
         f"{result['operator_cpu_ms_per_run_drained']} ms (drain "
         f"{result['drain_seconds']} s)", ""),
        ("FlowRun → Pod p50 / p99 / max",
         f"{ms(result['run_to_pod_p50_seconds'])} / {ms(p99)} / "
         f"{ms(result['run_to_pod_max_seconds'])}",
         f"p99 ≤ 1 s {ok(p99 is not None and p99 <= TARGET_POD_P99_SECONDS)}"),
        ("FlowRun → Completed p50 / p99 (pods run 0.5–1.5 s)",
         f"{ms(result['run_to_terminal_p50_seconds'])} / "
         f"{ms(result['run_to_terminal_p99_seconds'])}", ""),
        ("runs not finished", str(result["runs_not_finished"]),
         f"0 {ok(result['runs_not_finished'] == 0)}"),
        ("runs deleted by history", str(result["runs_deleted_by_history"]), ""),
        ("operator API requests per run", f"{result['operator_requests_per_run']} (" + ", ".join(
            f"{key} {n}" for key, n in result["operator_requests_per_run_by_verb"].items())
         + ")", ""),
        ("left in the emulator: FlowRuns / pods / Events",
         f"{left['flowruns']} / {left['pods']} / {left['events']}", ""),
        ("emulator CPU (test artifact)",
         f"{result['emulator_cpu_percent_of_one_core']} % of a core", ""),
    ]
    lines = ["| measure | Headwater | target |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {target} |" for name, value, target in rows]
    return "\n".join(lines)


def main() -> None:
    """Parse flags, run, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="default 10,000 (--quick 1,000)")
    parser.add_argument("--rate", type=float, default=50.0, help="runs created per second")
    parser.add_argument("--quick", action="store_true", help="1,000 runs")
    parser.add_argument("--settle-timeout", type=float, default=120.0,
                        help="seconds after the last run was created for all to finish")
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON")
    args = parser.parse_args()
    runs = args.runs if args.runs is not None else 1000 if args.quick else 10_000
    stamp = datetime.now(UTC)
    log_dir = RESULTS / f"soak-{stamp:%Y%m%dT%H%M%S}-logs"
    load_before = os.getloadavg()
    result = soak(runs, args.rate, log_dir, args.settle_timeout)
    result["environment"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                             "command": " ".join(sys.argv), "operator_log": str(log_dir),
                             "when": stamp.isoformat(timespec="seconds"),
                             "load_average_before_after": [load_before[0],
                                                           os.getloadavg()[0]]}
    print(table(result))
    RESULTS.mkdir(exist_ok=True)
    path = args.json or RESULTS / f"soak-{stamp:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
