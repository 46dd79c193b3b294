"""What headwater-dbt costs on top of dbt: a generated N-model DuckDB project, `dbt build`
plain (dbtRunner) vs the same build through DbtCoreRunner in a flow, in one process.

    python benchmarks/dbt_overhead.py                 # 200 models, 5 paired rounds
    python benchmarks/dbt_overhead.py --models 200 --rounds 7 --threads 4

Both sides run in this process with dbt already imported, so the difference is what the
integration adds: the event callback, the task runs, the manifest read, the assets and
artifact, the run record. Rounds alternate the order of the pair (plain first, then
Headwater first) to cancel drift; the figure is the median of the per-round ratios, for
wall-clock and for CPU time (``time.process_time``: all threads). Run it on a quiet
machine and say the load (`uptime`) beside the figures.

The project: ``--models`` models in layers of 20; a model of the first layer selects
1,000 generated rows, every other one joins two models of the layer before (so the DAG
is wide and deep, like a real project), every tenth model has a not_null test;
materialized as tables in one DuckDB file.

``--control`` runs plain against plain (an A/A comparison, same alternation): its median
ratios are the noise floor of the machine at that moment, the yardstick for the real
comparison's. The integration's own code is also timed in CPU (``time.thread_time``,
on the thread it runs on): each node's report on dbt's worker threads, the manifest load
when dbt writes it, the end-of-run report; the few other events' dispatch (~0.5 us each,
~8,500 per build here) is not wrapped, as the wrapper would cost more than it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def generate(root: Path, models: int) -> Path:
    """Write the project; returns its folder."""
    project = root / "bench"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0'\nconfig-version: 2\nprofile: bench\n"
        "models:\n  bench:\n    +materialized: table\n")
    (project / "profiles.yml").write_text(
        "bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: '{project / 'bench.duckdb'}'\n      threads: 4\n")
    width = 20
    tests = ["version: 2", "models:"]
    for i in range(models):
        layer, slot = divmod(i, width)
        if layer == 0:
            sql = f"select range as id, range % 7 as k, {i} as src from range(1000)"
        else:
            a = (layer - 1) * width + slot
            b = (layer - 1) * width + (slot + 7) % width
            sql = (f"select x.id, (x.k + y.k) % 7 as k, {i} as src "
                   f"from {{{{ ref('m{a:03d}') }}}} x join {{{{ ref('m{b:03d}') }}}} y "
                   "using (id)")
        (project / "models" / f"m{i:03d}.sql").write_text(sql + "\n")
        if i % 10 == 0:
            tests += [f"  - name: m{i:03d}", "    columns:", "      - name: id",
                      "        data_tests: [not_null]"]
    (project / "models" / "schema.yml").write_text("\n".join(tests) + "\n")
    return project


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--control", action="store_true",
                        help="plain against plain (A/A): the noise floor")
    args = parser.parse_args()

    os.environ.setdefault("HEADWATER_LOG_LEVEL", "WARNING")  # not 200 assets per summary
    from dbt.cli.main import dbtRunner
    from headwater import flow
    from headwater_dbt import DbtCoreRunner

    with tempfile.TemporaryDirectory(prefix="hw-dbt-bench-") as tmp:
        os.environ["HEADWATER_HOME"] = str(Path(tmp) / "hw-home")  # the run records
        project = generate(Path(tmp), args.models)
        common = ["--project-dir", str(project), "--profiles-dir", str(project),
                  "--threads", str(args.threads), "--quiet"]
        runner = DbtCoreRunner(project, profiles_dir=project, threads=args.threads,
                               extra_args=["--quiet"])

        def plain() -> int:
            result = dbtRunner().invoke(["build", *common])
            assert result.success, result.exception
            return len(result.result.results)  # type: ignore[union-attr]

        @flow(name="dbt-overhead")
        def through_headwater() -> int:
            return len(runner.build().results)

        # The integration's own code, timed where it runs: each node's report and the
        # manifest load (dbt's threads, inside its callback) and the end-of-run report
        # (manifest and run_results read, assets, artifact), in wall and in CPU time.
        from headwater_dbt import core, report

        inside = {"callback": 0.0, "finish": 0.0, "callback cpu": 0.0, "finish cpu": 0.0}

        def timing(cls: type, name: str, bucket: str) -> None:
            original = getattr(cls, name, None)
            if original is None:  # an older headwater-dbt (before/after comparisons)
                return

            def timed_method(*a: object, **k: object) -> object:
                start, cpu = time.perf_counter(), time.thread_time()
                try:
                    return original(*a, **k)
                finally:
                    inside[bucket] += time.perf_counter() - start
                    inside[f"{bucket} cpu"] += time.thread_time() - cpu
            setattr(cls, name, timed_method)

        timing(core._EventHandler, "_report", "callback")
        timing(core._EventHandler, "_load_manifest", "callback")
        timing(report.DbtReporter, "finish", "finish")

        def timed(fn: object) -> tuple[float, float, int]:
            wall, cpu = time.perf_counter(), time.process_time()
            nodes = fn()  # type: ignore[operator]
            return time.perf_counter() - wall, time.process_time() - cpu, nodes

        print(f"project: {args.models} models; warm-up (one build each, not counted)",
              file=sys.stderr)
        timed(plain)
        timed(through_headwater)
        rows = []
        inside.update(dict.fromkeys(inside, 0.0))
        other = plain if args.control else through_headwater
        label = "plain again" if args.control else "headwater"
        for n in range(args.rounds):
            order = [("plain", plain), ("headwater", other)]
            if n % 2:
                order.reverse()
            got = {name: timed(fn) for name, fn in order}
            rows.append(got)
            p, h = got["plain"], got["headwater"]
            print(f"round {n + 1}: plain {p[0]:.2f} s wall {p[1]:.2f} s cpu ({p[2]} nodes) | "
                  f"{label} {h[0]:.2f} s wall {h[1]:.2f} s cpu ({h[2]} nodes) | "
                  f"ratio wall {h[0] / p[0]:.3f} cpu {h[1] / p[1]:.3f}")
        wall = statistics.median(r["headwater"][0] / r["plain"][0] for r in rows)
        cpu = statistics.median(r["headwater"][1] / r["plain"][1] for r in rows)
        what = "plain/plain (control)" if args.control else "headwater/plain"
        print(f"median ratio {what} over {args.rounds} rounds: wall {wall:.3f} "
              f"({(wall - 1) * 100:+.1f} %), cpu {cpu:.3f} ({(cpu - 1) * 100:+.1f} %)")
        built = sum(r["headwater"][0] for r in rows)
        built_cpu = sum(r["headwater"][1] for r in rows)
        own = inside["callback"] + inside["finish"]
        own_cpu = inside["callback cpu"] + inside["finish cpu"]
        if not args.control:
            print(f"inside headwater-dbt over the {args.rounds} Headwater builds ({built:.1f} s "
                  f"wall, {built_cpu:.1f} s CPU): callback {inside['callback']:.2f} s wall "
                  f"{inside['callback cpu']:.2f} s CPU, end-of-run report "
                  f"{inside['finish']:.2f} s wall {inside['finish cpu']:.2f} s CPU "
                  f"({own / built:.1%} of the builds' wall time, {own_cpu / built_cpu:.1%} "
                  "of their CPU time)")
        print(f"load: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
