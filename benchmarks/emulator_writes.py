"""The emulator's CPU per write of a top-of-the-hour burst: FlowRun creates, Schedule status
patches, run completions.

Run from the repository root::

    .venv/bin/python benchmarks/emulator_writes.py               # 3 rounds of 2,000 each
    .venv/bin/python benchmarks/emulator_writes.py --runs 500 --rounds 1
    .venv/bin/python benchmarks/emulator_writes.py --profile /tmp/emulator.prof  # cProfile

``scheduling.py --burst 5000`` measures the burst end to end, but on two cores its lag is
as much the emulated API server's CPU as the operator's, and wall-clock figures move with
whatever else the machine runs. This measures the emulator's side alone, in CPU time,
which load does not inflate: the emulator runs in a child process of its own (as in
``scheduling.py``: :class:`scheduling.EmulatorProcess`, seeded with the same namespace,
Flow, Deployment and Schedules), with ``--watchers`` open FlowRun watches (the operator's
informer; ``scheduling.py``'s recorder subscribes in process, as here), and this process
sends, 16 at a time as the operator's client does (``kube.MAX_CONCURRENT_REQUESTS``),
through the operator's own client (``headwater_operator.kube``):

* ``create flowruns``: the FlowRun a Schedule's tick creates
  (:func:`~headwater_operator.scheduling.runs.build_flow_run`);
* ``patch schedules/status``: the status write that follows a tick (last and next tick,
  fingerprint, the active run, conditions);
* ``complete`` (in process, as ``scheduling.py``'s ``--complete-after`` does): a merge
  patch of the run's status to ``Completed``.

Each figure is the emulator process's CPU seconds (``/proc``) over the phase divided by
the writes: ms per write, best and worst of ``--rounds``. The JSON goes to
``benchmarks/results/emulator-writes-<UTC>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from blackbox import cpu_seconds
from headwater_operator import kube
from headwater_operator.scheduling import parse_schedule_expression
from headwater_operator.scheduling.runs import build_flow_run
from scheduling import NAMESPACE, RESULTS, EmulatorProcess

CONCURRENCY = kube.MAX_CONCURRENT_REQUESTS


def status_patch(tick: datetime, run: str) -> dict[str, Any]:
    """What the Schedule controller writes after a tick (``controllers/schedules._finish``)."""
    stamp = tick.strftime("%Y-%m-%dT%H:%M:%SZ")
    following = (tick + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"status": {
        "lastScheduleTime": stamp, "nextScheduleTime": following,
        "scheduleFingerprint": "0123456789abcdef", "expression": "cron '* * * * *' in UTC",
        "missedTicks": 0, "observedGeneration": 1,
        "active": [{"name": run, "scheduledTime": stamp}],
        "conditions": [
            {"type": "Invalid", "status": "False", "reason": "Valid",
             "message": "the schedule expression is valid", "lastTransitionTime": stamp},
            {"type": "Ready", "status": "True", "reason": "RunCreated",
             "message": f"created {run}; next tick {following}", "lastTransitionTime": stamp},
        ],
    }}


async def watch(client: kube.Kube, stop: asyncio.Event) -> int:
    """Read the FlowRun watch until ``stop``; returns the events seen."""
    seen = 0
    with_stop = asyncio.ensure_future(stop.wait())
    try:
        async for _ in client.watch(kube.FLOWRUNS, namespace=NAMESPACE,
                                    resource_version=None, timeout_seconds=3600):
            seen += 1
            if stop.is_set():
                break
    finally:
        with_stop.cancel()
    return seen


async def in_batches(count: int, send: Any) -> None:
    """``send(i)`` for i in range(count), ``CONCURRENCY`` in flight."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> None:
        async with gate:
            await send(index)

    await asyncio.gather(*(one(index) for index in range(count)))


async def round_(emulator: EmulatorProcess, runs: int, watchers: int, tick: datetime
                 ) -> dict[str, float]:
    """One round: ``runs`` creates, ``runs`` status patches, ``runs`` completions."""
    client = kube.Kube()
    stop = asyncio.Event()
    watches = [asyncio.ensure_future(watch(client, stop)) for _ in range(watchers)]
    await asyncio.sleep(0.5)  # the watches are open
    expr = parse_schedule_expression(cron="* * * * *")
    deployment = await client.get(kube.DEPLOYMENTS, "bench", namespace=NAMESPACE)
    schedules = [{"metadata": {"name": f"s{index:04d}", "namespace": NAMESPACE},
                  "spec": {"deploymentRef": {"name": "bench"}}} for index in range(runs)]
    names = [f"s{index:04d}-{int(tick.timestamp())}" for index in range(runs)]
    figures: dict[str, float] = {}

    async def create(index: int) -> None:
        await client.create(kube.FLOWRUNS, build_flow_run(schedules[index], deployment,
                                                          expr, tick), namespace=NAMESPACE)

    async def patch(index: int) -> None:
        await client.patch_status(kube.SCHEDULES, f"s{index:04d}",
                                  status_patch(tick, names[index]), namespace=NAMESPACE)

    for phase, send in (("create flowruns", create), ("patch schedules/status", patch)):
        before, began = cpu_seconds(emulator.pid), time.perf_counter()
        await in_batches(runs, send)
        figures[f"{phase} ms"] = 1000 * (cpu_seconds(emulator.pid) - before) / runs
        figures[f"{phase} wall s"] = time.perf_counter() - began
    before = cpu_seconds(emulator.pid)
    emulator.ask("complete_runs", names)
    figures["complete ms"] = 1000 * (cpu_seconds(emulator.pid) - before) / runs
    stop.set()
    for task in watches:
        task.cancel()
    await asyncio.gather(*watches, return_exceptions=True)
    await kube.aclose_transports()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="writes of each kind per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--watchers", type=int, default=1,
                        help="FlowRun watches open over HTTP (the operator's informer)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the emulator's thread over the rounds; stats to PATH")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    emulator = EmulatorProcess(complete_after=0.0, gc_freeze=True, mode="schedules")
    rounds: list[dict[str, float]] = []
    try:
        emulator.ask("seed", args.runs, 60, "* * * * *")
        kube.configure(emulator.kubeconfig_path)
        if args.profile:
            emulator.ask("profile_start")
        tick = datetime(2030, 1, 1, tzinfo=UTC)
        for index in range(args.rounds):
            rounds.append(asyncio.run(round_(emulator, args.runs, args.watchers,
                                             tick + timedelta(minutes=index))))
            print(f"round {index + 1}: " + ", ".join(
                f"{k} {v:.3f}" for k, v in rounds[-1].items()), file=sys.stderr)
        if args.profile:
            emulator.ask("profile_stop", str(args.profile))
    finally:
        emulator.close()
    summary = {key: [round(min(r[key] for r in rounds), 3), round(max(r[key] for r in rounds), 3)]
               for key in rounds[0]}
    result = {"runs_per_round": args.runs, "rounds": rounds, "best_worst": summary,
              "watchers": args.watchers,
              "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                              "command": " ".join(sys.argv), "load_average": os.getloadavg(),
                              "when": datetime.now(UTC).isoformat(timespec="seconds")}}
    print("| emulator CPU per write | best | worst |\n|---|---|---|")
    for key, (best, worst) in summary.items():
        print(f"| {key} | {best} | {worst} |")
    RESULTS.mkdir(exist_ok=True)
    path = args.json or RESULTS / f"emulator-writes-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
