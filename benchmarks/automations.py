"""1,000 runs in a minute with 10 Automations: delivery latency after the transition, and
lost or duplicate deliveries.

Run from the repository root::

    .venv/bin/python benchmarks/automations.py               # 1,000 runs in 60 s
    .venv/bin/python benchmarks/automations.py --fanout      # every Automation sees every run
    .venv/bin/python benchmarks/automations.py --runs 300 --rate 10

Set-up (:mod:`blackbox`, as ``soak.py``): the emulated API server in a child process that
also plays the kubelet (each flow-run pod runs 0.5–1.5 s; 20 % fail) and creates the
FlowRuns, ``--rate`` a second, spread over 10 Deployments; the operator, ``python -m
headwater_operator`` with every controller, in a process of its own; a local HTTP
receiver in this process that timestamps each arrival. Ten Automations, each on
``runPhase: [Completed, Failed, Crashed]``, notify through a ``CustomWebhook`` block whose
JSON carries the run's name and the idempotency key. Without ``--fanout`` Automation *i*
selects Deployment *i* (one delivery per run); with it, each selects every run (ten).

Figures:

* latency: the receiver's arrival time minus the instant the emulator stored the run's
  terminal phase (both ``time.time()`` on this machine); p50 / p99 / max; target
  p99 ≤ 2 s;
* lost: finished runs (per selecting Automation) the receiver had not got when the run
  ended (all runs finished and delivered, or ``--settle`` seconds after the last run was
  fed); duplicates:
  arrivals beyond the first per (Automation, run), and whether they carried the first
  one's idempotency key;
* the operator's and the emulator process's CPU seconds over the window.

The markdown table goes to stdout, everything to ``benchmarks/results/automations-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    percentile,
)

RESULTS = HERE / "results"
NAMESPACE = "automations"
AUTOMATIONS = 10
TARGET_P99_SECONDS = 2.0


class Receiver:
    """A local webhook receiver: (arrival time, automation, run, idempotency key)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, str, str]] = []
        lock = threading.Lock()
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                now = time.time()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    arrivals.append((now, body["automation"], body["run"],
                                     self.headers.get("Idempotency-Key", "")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def objects(url: str, fanout: bool) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [namespace_body(NAMESPACE), flow_body("work")]
    docs += [deployment_body(f"d{i}", "work", history={
        "successfulRunsLimit": 50, "failedRunsLimit": 50}) for i in range(AUTOMATIONS)]
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook-block"},
                 "data": {"url": base64.b64encode(url.encode()).decode()}})
    docs.append({"apiVersion": "headwater.dev/v1alpha1", "kind": "Block",
                 "metadata": {"name": "hook"}, "spec": {
                     "type": "headwater.blocks.notifications:CustomWebhook",
                     "data": {"json_body": {"automation": "{{ subject }}", "run": "{{ body }}"},
                              "timeout_seconds": 5},
                     "secretRefs": {"url": {"name": "hook-block", "key": "url"}}}})
    for i in range(AUTOMATIONS):
        selector = {} if fanout else {"deployments": [f"d{i}"]}
        docs.append({"apiVersion": "headwater.dev/v1alpha1", "kind": "Automation",
                     "metadata": {"name": f"a{i}"}, "spec": {
                         "trigger": {"runPhase": {"phases": ["Completed", "Failed", "Crashed"],
                                                  "selector": selector}},
                         "actions": [{"notify": {"blockRef": {"name": "hook"},
                                                 "subject": f"a{i}",
                                                 "body": "{{ run.name }}"}}]}})
    return docs


def bench(runs: int, rate: float, fanout: bool, log_dir: Path, settle: float
          ) -> dict[str, Any]:
    receiver = Receiver()
    script = KubeletScript(seed=1, run_for=(0.5, 1.5), fail_fraction=0.2)
    with ClusterProcess(ClusterConfig(NAMESPACE, script)) as cluster:
        cluster.ask("apply", objects(receiver.url, fanout))
        fleet = OperatorFleet(cluster.kubeconfig_path, NAMESPACE, 1, log_dir)
        try:
            fleet.start_all()
            deadline = time.time() + 120
            while not fleet.ready(0):
                if time.time() > deadline:
                    raise TimeoutError("the operator was not ready within 120 s")
                time.sleep(0.5)
            time.sleep(2.0)
            cpu0, start = cpu_seconds(fleet.pid(0)), time.time()
            emulator0 = cpu_seconds(cluster.pid)
            cluster.ask("start_feed", FeedPlan(
                rate=rate, deployments=[(f"d{i}", 1.0) for i in range(AUTOMATIONS)],
                count=runs))
            expected_per_run = AUTOMATIONS if fanout else 1
            end = start + runs / rate + settle
            while time.time() < end:
                time.sleep(1.0)
                unfinished, _ = cluster.ask("unfinished")
                fed = cluster.ask("fed")
                if fed >= runs and unfinished == 0 and \
                        len(receiver.arrivals) >= runs * expected_per_run:
                    time.sleep(3.0)  # late duplicates, if any
                    break
            cpu = cpu_seconds(fleet.pid(0)) - cpu0
            emulator_cpu = cpu_seconds(cluster.pid) - emulator0
            window = time.time() - start
        finally:
            fleet.stop_all()
        snapshot: LedgerSnapshot = cluster.ask("snapshot")
    receiver.server.shutdown()
    result = figures(snapshot, list(receiver.arrivals), runs=runs, rate=rate, fanout=fanout,
                     cpu=cpu, window=window)
    result["emulator_cpu_s"] = round(emulator_cpu, 2)
    return result


def figures(snapshot: LedgerSnapshot, arrivals: list[tuple[float, str, str, str]], *,
            runs: int, rate: float, fanout: bool, cpu: float, window: float
            ) -> dict[str, Any]:
    ended = {name: record for name, record in snapshot.runs.items()
             if record.ended is not None and record.phase in TERMINAL_RUN_PHASES}
    first: dict[tuple[str, str], tuple[float, str]] = {}
    repeats: Counter[str] = Counter()
    for at, automation, run, key in sorted(arrivals):
        if (automation, run) in first:
            repeats["same key" if first[(automation, run)][1] == key else "other key"] += 1
        else:
            first[(automation, run)] = (at, key)
    expected = {(f"a{i}", name) for name, record in ended.items() for i in range(AUTOMATIONS)
                if fanout or record.deployment == f"d{i}"}
    latencies = sorted(first[pair][0] - (ended[pair[1]].ended or 0.0)
                       for pair in expected if pair in first)
    return {
        "runs": runs, "rate": rate, "fanout": fanout, "finished_runs": len(ended),
        "phases": dict(Counter(record.phase for record in ended.values())),
        "expected_deliveries": len(expected), "arrivals": len(arrivals),
        "lost": len(expected - set(first)), "unexpected": len(set(first) - expected),
        "duplicates": dict(repeats),
        "latency_p50_s": percentile(latencies, 0.5) if latencies else None,
        "latency_p99_s": percentile(latencies, 0.99) if latencies else None,
        "latency_max_s": latencies[-1] if latencies else None,
        "operator_cpu_s": round(cpu, 2), "window_s": round(window, 1),
    }


def table(result: dict[str, Any]) -> str:
    def s(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f} s"

    ok = (result["latency_p99_s"] or 99) <= TARGET_P99_SECONDS
    return "\n".join([
        "| figure | value |", "|---|---|",
        f"| runs finished / fed | {result['finished_runs']} / {result['runs']} at "
        f"{result['rate']:g}/s ({result['phases']}) |",
        f"| deliveries expected / arrivals | {result['expected_deliveries']} / "
        f"{result['arrivals']} ({'10 per run' if result['fanout'] else '1 per run'}) |",
        f"| latency p50 / p99 / max | {s(result['latency_p50_s'])} / "
        f"{s(result['latency_p99_s'])} / {s(result['latency_max_s'])} "
        f"({'ok' if ok else 'over'} target p99 ≤ {TARGET_P99_SECONDS:g} s) |",
        f"| lost / duplicates | {result['lost']} / {result['duplicates'] or 0} |",
        f"| CPU over the window: operator / emulator+kubelet | {result['operator_cpu_s']} s"
        f" / {result.get('emulator_cpu_s')} s in {result['window_s']} s |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000 / 60)
    parser.add_argument("--fanout", action="store_true",
                        help="every Automation selects every run (10 deliveries a run)")
    parser.add_argument("--settle", type=float, default=60.0)
    args = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = RESULTS / f"automations-{stamp}"
    result = bench(args.runs, args.rate, args.fanout, log_dir, args.settle)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"automations-{stamp}.json").write_text(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
