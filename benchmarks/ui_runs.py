"""How long ``/runs`` takes with 10,000 FlowRuns (issue #13: at most 300 ms server time).

Fills the UI's stores with N synthetic FlowRuns (20 Deployments, every phase, one a
minute), then times the ``/runs`` handler through aiohttp's test server: one warm-up
request (it builds the run index once; later requests reuse it for unchanged runs),
then ``--repeat`` requests of each query, and prints the median and the worst: once
with nothing changing (a page reload or the next page reuses the selection), once with
a FlowRun changing before every request (the selection is computed again). The
time is the request's, measured by the client on the same loop, so it includes
routing, the middlewares and rendering: an upper bound of the server's own time.

    .venv/bin/python benchmarks/ui_runs.py [--runs 10000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from headwater_operator.ui import runs
from headwater_operator.ui.app import UiOptions, create_app
from headwater_operator.ui.auth import Access
from headwater_operator.ui.state import UiState

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
QUERIES = ("/runs", "/runs?page=50", "/runs?phase=Failed", "/runs?q=run-01",
           "/runs?deployment=d3&since=2026-02-28")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def synthetic_run(index: int) -> dict[str, Any]:
    when = NOW - timedelta(minutes=index)
    phase = runs.PHASES[index % len(runs.PHASES)]
    return {"metadata": {"name": f"run-{index:05d}", "namespace": "default",
                         "uid": f"u{index}", "creationTimestamp": _stamp(when)},
            "spec": {"deploymentRef": {"name": f"d{index % 20}"}, "trigger": "schedule"},
            "status": {"phase": phase, "scheduledTime": _stamp(when),
                       "startTime": _stamp(when + timedelta(seconds=3)),
                       "durationSeconds": 42.0, "attempts": 1}}


async def measure(count: int, repeat: int) -> None:
    state = UiState()
    for index in range(count):
        state.apply("FlowRun", "ADDED", synthetic_run(index))
    for index in range(20):
        state.apply("Deployment", "ADDED", {"metadata": {"name": f"d{index}",
                                                         "namespace": "default"},
                                            "spec": {"flowRef": {"name": "etl"},
                                                     "tags": ["team"]}})
    app = create_app(UiOptions(), state=state, access=Access("local", None),
                     now=lambda: NOW)
    async with TestClient(TestServer(app)) as client:
        started = time.perf_counter()
        await (await client.get("/runs")).text()
        print(f"first request (builds the run index): "
              f"{(time.perf_counter() - started) * 1000:.0f} ms")
        for changing in (False, True):
            print("a FlowRun changes before every request (the watch is busy):" if changing
                  else "nothing changes between requests (cached selection):")
            for query in QUERIES:
                samples = []
                for sample in range(repeat):
                    if changing:  # invalidates the selection; the index redoes one run
                        state.apply("FlowRun", "MODIFIED", synthetic_run(sample))
                    started = time.perf_counter()
                    response = await client.get(query)
                    await response.text()
                    samples.append(time.perf_counter() - started)
                    assert response.status == 200, query
                print(f"  {query:40} median {statistics.median(samples) * 1000:6.1f} ms   "
                      f"max {max(samples) * 1000:6.1f} ms   ({repeat} requests, "
                      f"{count} runs)")
    print(f"load average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(measure(args.runs, args.repeat))


if __name__ == "__main__":
    main()
