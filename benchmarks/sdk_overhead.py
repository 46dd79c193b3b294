"""Headwater SDK vs Prefect 3: whole-process overhead, side by side in the same run.

Every workload in ``benchmarks/workloads/`` is one Python file that runs as its own
process against either engine; only its import line differs (chosen by ``argv[1]``),
which is also the proof that moving a flow from Prefect to Headwater is an import change.

For each engine and workload the harness starts a fresh process with a fresh home
directory (``PREFECT_HOME`` / ``HEADWATER_HOME``), waits for it with ``os.wait4`` and
records wall time, CPU time (user + system, including reaped children such as Prefect's
temporary API server) and peak RSS (the largest single process of the tree). The
workload itself reports its import time and the time spent inside the outermost flow
call. Per-task / per-subflow overhead is the workload's time minus the empty-flow
baseline, divided by the number of tasks, subflows, cache hits or attempts.

Why a seeded home: each run gets its own home directory, copied from a template that
one warm-up run of the empty flow has initialised. That is what ``python my_flow.py``
sees on a laptop that has run the engine before (Prefect: a migrated SQLite database
and block registry; a first-ever Prefect run pays about 8 s more for migrations), and
it keeps the warm-up's bytecode compilation and page-cache filling out of the figures.

Prefect runs against a local API server the harness starts (``--prefect-api``); see
``benchmarks/README.md`` for the settings.

The run record (issue 12): whenever Headwater is measured, every Headwater sample is
paired, in the same round, with one of the same workload under
``HEADWATER_RUN_STORE=off``; the report then says what the record costs (per task, its
size, the final flush, the cold start) and checks the issue's four targets. The records-on
samples are the ordinary Headwater figures (records are on by default).

Usage::

    .venv/bin/python benchmarks/sdk_overhead.py            # full run, both engines
    .venv/bin/python benchmarks/sdk_overhead.py --quick    # < 60 s smoke run, Headwater
    .venv/bin/python benchmarks/sdk_overhead.py --records --repeat 15   # run records only
    .venv/bin/python benchmarks/sdk_overhead.py --profile seq_large   # where time goes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORKLOADS_DIR = BENCH_DIR / "workloads"
RESULTS_DIR = BENCH_DIR / "results"
PREFECT_VENV = BENCH_DIR / ".venv-prefect"
HEADWATER_VENV = BENCH_DIR / ".venv-headwater"
PREFECT_REQUIREMENTS = BENCH_DIR / "requirements-prefect.txt"

ENGINES = ("prefect", "headwater")
COLD_START = "cold_start"
EPHEMERAL_COLD_START = "cold_start_no_server"

# The targets for the Headwater SDK.
TARGET_TASK_RATIO = 50.0
TARGET_SUBFLOW_S = 0.005
TARGET_COLD_START_S = 0.3
TARGET_COLD_START_MB = 40.0

# The run record's targets (issue 12), judged on records on vs HEADWATER_RUN_STORE=off.
TARGET_RECORD_TASK_S = 5e-6
TARGET_RECORD_BYTES = 5_000_000
TARGET_RECORD_TASKS = 10_000
"""The record-size target is for a run of this many tasks (the ``seq_large`` workload)."""
TARGET_FINAL_FLUSH_S = 0.1
RECORD_TASK_UNITS = ("task", "cache hit")
"""Units that count task runs: the per-task target is judged on these workloads."""
RECORDS_OFF = "headwater_records_off"
"""Key of the records-off Headwater figures in the results (beside ``headwater``)."""
RECORDS_BEFORE = "headwater_before_records"
"""Key of the figures of ``--records-before``: an SDK from before run records."""

NOISE_FLOOR_S = 0.005
"""A total difference smaller than this between two processes is reported as noise."""

LogFn = Callable[[str], None]


class BenchError(RuntimeError):
    """A workload process failed, timed out or reported figures that prove it misran."""


@dataclass(frozen=True)
class Workload:
    """One workload script and the size it runs at.

    ``key`` is independent of the size so that quick and full runs line up; ``unit``
    names what the per-unit overhead is counted in (``None`` for the baseline).
    """

    key: str
    script: str
    size: int
    unit: str | None
    label: str
    warm_cache: bool = False

    @property
    def title(self) -> str:
        """Human name including the size, e.g. ``sequential tasks x 1,000``."""
        return f"{self.label} x {self.size:,}" if self.size else self.label


def build_workloads(quick: bool) -> list[Workload]:
    """Return the workloads in the order they run; ``quick`` shrinks every size 10x."""
    scale = 10 if quick else 1
    return [
        Workload(COLD_START, "empty_flow.py", 0, None, "import + empty flow (cold start)"),
        Workload("seq_small", "sequential_tasks.py", 1000 // scale, "task", "sequential tasks"),
        Workload("seq_large", "sequential_tasks.py", 10000 // scale, "task", "sequential tasks"),
        Workload("map", "map_tasks.py", 1000 // scale, "task", ".map tasks"),
        Workload("subflows", "subflows.py", 100 // scale, "subflow", "subflows"),
        Workload("cache_hits", "cache_hits.py", 1000 // scale, "cache hit", "cache hits",
                 warm_cache=True),
        Workload("retries", "retries.py", 100 // scale, "attempt",
                 "flaky tasks (3 failures + 1 success, delay 0)"),
    ]


@dataclass(frozen=True)
class Engine:
    """How to start a workload process for one orchestrator."""

    name: str
    python: Path
    home_var: str
    env: Mapping[str, str]
    version: str
    variant: str = ""
    """Distinguishes two settings of one engine measured side by side (``records off``)."""

    @property
    def tag(self) -> str:
        """The engine and its variant, as logs and error keys name it."""
        return f"{self.name} ({self.variant})" if self.variant else self.name


@dataclass
class Sample:
    """Figures from one workload process."""

    wall_s: float
    cpu_s: float
    maxrss_mb: float
    import_s: float
    flow_s: float
    units: int
    report: dict[str, Any]


@dataclass
class Summary:
    """The repeated samples of one (engine, workload) pair, reduced to their best.

    Times are the minimum over the repeats: on a shared machine other processes only
    ever add time, so the best run is the closest to the engine's own cost.
    """

    engine: str
    workload: str
    title: str
    size: int
    unit: str | None
    units: int
    wall_s: float
    wall_median_s: float
    cpu_s: float
    maxrss_mb: float
    import_s: float
    flow_s: float
    samples: list[Sample] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)


# --- engines ---------------------------------------------------------------------------


def clean_environ() -> dict[str, str]:
    """The caller's environment without anything that would steer either engine."""
    blocked = ("PREFECT_", "HEADWATER_", "BENCH_", "PYTHON")
    return {k: v for k, v in os.environ.items() if not k.startswith(blocked)}


def prefect_env() -> dict[str, str]:
    """Settings that keep Prefect local, offline and quiet without changing its engine."""
    return {
        # No PREFECT_API_URL: Prefect starts its temporary local API server per process.
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # A loaded 2-core machine can take longer than the default 20 s to start it.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",
        # SQLite waits instead of answering 503 when the busy server falls behind.
        "PREFECT_API_DATABASE_TIMEOUT": "60",
        "PREFECT_API_DATABASE_CONNECTION_TIMEOUT": "60",
        "PREFECT_API_REQUEST_TIMEOUT": "300",
        "DO_NOT_TRACK": "1",
    }


def run_checked(cmd: Sequence[str], what: str) -> str:
    """Run a setup command; raise a BenchError that says what failed and how to retry."""
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(
            f"{what} failed (exit {done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}"
        )
    return done.stdout.strip()


def distribution_version(python: Path, dist: str) -> str | None:
    """The installed version of ``dist`` in the interpreter ``python``, or None."""
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_venv(venv: Path, dist: str, install: Sequence[str], log: LogFn) -> Path:
    """Create ``venv`` and pip-install ``install`` into it unless ``dist`` is there."""
    python = venv / "bin" / "python"
    if python.exists() and distribution_version(python, dist):
        return python
    log(f"creating {venv.relative_to(REPO_DIR)} and installing {dist} (a few minutes)...")
    run_checked([sys.executable, "-m", "venv", str(venv)], f"creating {venv}")
    run_checked([str(python), "-m", "pip", "install", "-q", *install], f"installing {dist}")
    return python


def prefect_engine(log: LogFn) -> Engine:
    """Prefect 3 in its own virtual environment, installed on first use."""
    python = ensure_venv(PREFECT_VENV, "prefect", ["-r", str(PREFECT_REQUIREMENTS)], log)
    version = distribution_version(python, "prefect") or "?"
    return Engine("prefect", python, "PREFECT_HOME", prefect_env(), version)


def headwater_engine(python: Path | None, log: LogFn) -> Engine:
    """The Headwater SDK from this checkout: the repo's .venv, or a venv made for it."""
    if python is None:
        repo_python = REPO_DIR / ".venv" / "bin" / "python"
        if repo_python.exists() and distribution_version(repo_python, "headwater"):
            python = repo_python
        else:
            python = ensure_venv(HEADWATER_VENV, "headwater",
                                 ["-e", str(REPO_DIR / "sdk")], log)
    version = distribution_version(python, "headwater") or "?"
    rev = subprocess.run(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False).stdout.strip()
    env = {"HEADWATER_LOG_LEVEL": "WARNING"}
    return Engine("headwater", python, "HEADWATER_HOME", env, f"{version} ({rev or 'no git'})")


def records_off(engine: Engine) -> Engine:
    """The same Headwater with the run record off (``HEADWATER_RUN_STORE=off``)."""
    return replace(engine, env={**engine.env, "HEADWATER_RUN_STORE": "off"},
                   variant="records off")


def before_records(engine: Engine, python: Path) -> Engine:
    """Headwater as installed for ``python`` (an SDK from before run records)."""
    version = distribution_version(python, "headwater") or "?"
    return replace(engine, python=python, variant="before records", version=version)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Poll ``url`` until it answers 200; fail early if the server process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the Prefect server exited with {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise BenchError(f"the Prefect server did not answer {url} within {timeout_s:.0f} s")


@contextmanager
def prefect_server(engine: Engine, seed: Path, timeout_s: float,
                   log: LogFn) -> Iterator[str]:
    """Run a local Prefect API server; yield its API URL.

    Prefect's documented way to run flows is against a server. Without one, every
    process starts a temporary server (10-30 s here, with seconds of jitter), which
    would drown the per-task signal; the cold-start rows still measure that mode.
    The server's home is a copy of ``seed``; the first server (empty ``seed``) migrates
    its database and leaves it there, so later servers start without migrating.
    """
    port = free_port()
    first = not any(seed.iterdir())
    home = seed if first else Path(tempfile.mkdtemp(prefix="bench-prefect-server-")) / "h"
    if not first:
        shutil.copytree(seed, home, ignore=shutil.ignore_patterns("server.log"))
    env = {**clean_environ(), **engine.env, "PREFECT_HOME": str(home)}
    prefect_cli = engine.python.parent / "prefect"
    cmd = [str(prefect_cli), "server", "start", "--host", "127.0.0.1", "--port", str(port),
           "--no-ui", "--analytics-off", "--log-level", "WARNING"]
    log(f"[prefect] starting a local API server on 127.0.0.1:{port}")
    with (home / "server.log").open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_healthy(f"{api}/health", proc, timeout_s)
        yield api
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if not first:
            shutil.rmtree(home.parent, ignore_errors=True)


# --- running one process ----------------------------------------------------------------

def tail(path: Path, limit: int = 1500) -> str:
    """The last ``limit`` characters of a captured output file, for error messages."""
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return text[-limit:]


def run_workload_process(engine: Engine, workload: Workload, home: Path,
                         timeout_s: float, extra_args: Sequence[str] = ()) -> Sample:
    """Run one workload process in ``home`` and return what it cost.

    ``os.wait4`` gives the rusage of exactly this child (and the children it reaped),
    unlike ``RUSAGE_CHILDREN``, which accumulates over every process the harness waited.
    """
    out_dir = Path(tempfile.mkdtemp(prefix="bench-out-"))
    report_path = out_dir / "report.json"
    env = {**clean_environ(), **engine.env, engine.home_var: str(home),
           "BENCH_REPORT": str(report_path)}
    cmd = [str(engine.python), *extra_args, workload.script, engine.name]
    if workload.size:
        cmd.append(str(workload.size))
    with (out_dir / "stdout").open("wb") as out, (out_dir / "stderr").open("wb") as err:
        started = time.perf_counter()
        # A new session lets a timeout kill the whole tree, Prefect's server included.
        proc = subprocess.Popen(cmd, cwd=WORKLOADS_DIR, env=env, stdout=out, stderr=err,
                                start_new_session=True)
        killer = threading.Timer(timeout_s, os.killpg, (proc.pid, signal.SIGKILL))
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        if proc.returncode != 0:
            raise BenchError(
                f"{engine.name} {workload.script} exited with {proc.returncode}"
                f" (timeout {timeout_s:.0f} s?).\nstderr tail:\n{tail(out_dir / 'stderr')}"
            )
        report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return Sample(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        maxrss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        import_s=float(report["import_s"]),
        flow_s=float(report["flow_s"]),
        units=int(report.get("units", 0)),
        report=report,
    )


@contextmanager
def seeded_home(template: Path) -> Iterator[Path]:
    """A fresh home directory copied from the warmed-up template, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="bench-home-"))
    home = parent / "home"
    shutil.copytree(template, home)
    try:
        yield home
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def measure_once(engine: Engine, workload: Workload, template: Path, timeout_s: float,
                 log: LogFn) -> tuple[Sample, Sample | None]:
    """One timed sample, tried a second time if the first process fails.

    A loaded server can fail one request for good (Prefect answers 503 after its own
    client retries); one more try keeps a long run alive, and the log says so.
    """
    try:
        return measure_in_fresh_home(engine, workload, template, timeout_s)
    except BenchError as exc:
        log(f"[{engine.tag}] {workload.title}: sample failed, trying once more: "
            f"{str(exc).splitlines()[0]}")
        return measure_in_fresh_home(engine, workload, template, timeout_s)


def measure_in_fresh_home(engine: Engine, workload: Workload, template: Path,
                          timeout_s: float) -> tuple[Sample, Sample | None]:
    """One timed sample; cache workloads first fill the cache in the same home."""
    with seeded_home(template) as home:
        warm = None
        if workload.warm_cache:
            warm = run_workload_process(engine, workload, home, timeout_s)
            check_executed(engine, workload, warm, expected=workload.size)
        sample = run_workload_process(engine, workload, home, timeout_s)
        if workload.warm_cache:
            check_executed(engine, workload, sample, expected=0)
        return sample, warm


def check_executed(engine: Engine, workload: Workload, sample: Sample, expected: int) -> None:
    """Refuse figures from a cache workload whose cache did not behave as intended."""
    executed = sample.report.get("executed")
    if executed != expected:
        raise BenchError(
            f"{engine.name} {workload.script}: expected {expected} task bodies to run, "
            f"saw {executed}; the cache {'missed' if expected == 0 else 'was not empty'}, "
            "so the figure would not measure cache hits"
        )


def summarize(engine: Engine, workload: Workload, samples: list[Sample],
              warms: list[Sample]) -> Summary:
    """Best (minimum) times over the repeats; peak RSS is the maximum, it is a ceiling."""
    summary = Summary(
        engine=engine.tag, workload=workload.key, title=workload.title,
        size=workload.size, unit=workload.unit, units=samples[0].units,
        wall_s=min(s.wall_s for s in samples),
        wall_median_s=statistics.median(s.wall_s for s in samples),
        cpu_s=min(s.cpu_s for s in samples),
        maxrss_mb=max(s.maxrss_mb for s in samples),
        import_s=min(s.import_s for s in samples),
        flow_s=min(s.flow_s for s in samples),
        samples=samples,
    )
    if warms:
        summary.extra["first_run_wall_s"] = min(s.wall_s for s in warms)
        summary.extra["first_run_flow_s"] = min(s.flow_s for s in warms)
    return summary


@contextmanager
def home_template(engine: Engine, warmup: Workload, timeout_s: float,
                  log: LogFn) -> Iterator[Path]:
    """A home directory initialised by one warm-up run, to copy for every sample."""
    template = Path(tempfile.mkdtemp(prefix=f"bench-{engine.name}-template-"))
    try:
        log(f"[{engine.tag} {engine.version}] warm-up (initialises the home template)")
        run_workload_process(engine, warmup, template, timeout_s)
        yield template
    finally:
        shutil.rmtree(template, ignore_errors=True)


def measure_workloads(engine: Engine, workloads: Sequence[Workload], template: Path, *,
                      repeat: int, timeout_s: float, log: LogFn,
                      errors: dict[str, str]) -> dict[str, Summary]:
    """Sample every workload ``repeat`` times, round-robin (one engine)."""
    return measure_variants([engine], workloads, template, repeat=repeat,
                            timeout_s=timeout_s, log=log, errors=errors)[0]


def measure_variants(variants: Sequence[Engine], workloads: Sequence[Workload],
                     template: Path, *, repeat: int, timeout_s: float, log: LogFn,
                     errors: dict[str, str]) -> list[dict[str, Summary]]:
    """Sample every workload ``repeat`` times for each variant, round-robin.

    Each round runs every workload once, so a slow drift in the machine's load hits the
    baseline and the workloads alike instead of biasing their difference. With several
    variants (records on and off), each workload's samples of all variants run back to
    back in every round, in an order that rotates from round to round, so that noise hits
    them alike and the i-th samples of two variants form a pair. A workload whose sample
    fails twice is dropped for that variant and its error kept in ``errors``.
    """
    samples: list[dict[str, list[Sample]]] = [{w.key: [] for w in workloads} for _ in variants]
    warms: list[dict[str, list[Sample]]] = [{w.key: [] for w in workloads} for _ in variants]

    def failed(engine: Engine, workload: Workload) -> bool:
        return f"{engine.tag}/{workload.key}" in errors

    for i in range(repeat):
        for workload in workloads:
            shift = i % len(variants)
            for v in [*range(shift, len(variants)), *range(shift)]:
                engine = variants[v]
                if failed(engine, workload):
                    continue
                try:
                    sample, warm = measure_once(engine, workload, template, timeout_s, log)
                except BenchError as exc:
                    errors[f"{engine.tag}/{workload.key}"] = str(exc)
                    log(f"[{engine.tag}] {workload.title}: FAILED, dropped: {exc}")
                    continue
                samples[v][workload.key].append(sample)
                if warm:
                    warms[v][workload.key].append(warm)
                log(f"[{engine.tag}] {workload.title}: run {i + 1}/{repeat} "
                    f"wall {sample.wall_s:.3f} s, cpu {sample.cpu_s:.3f} s, "
                    f"flow {sample.flow_s:.3f} s, rss {sample.maxrss_mb:.0f} MB")
    return [{w.key: summarize(engine, w, samples[v][w.key], warms[v][w.key])
             for w in workloads if not failed(engine, w)}
            for v, engine in enumerate(variants)]


def measure_engine(engine: Engine, workloads: Sequence[Workload], *, repeat: int,
                   timeout_s: float, log: LogFn, errors: dict[str, str],
                   companions: Sequence[Engine] = ()) -> list[dict[str, Summary]]:
    """Warm up, then measure every workload ``repeat`` times for one engine.

    ``companions`` (other settings of the same engine) are measured interleaved with it,
    from the same home template; each is warmed up once too, in a throwaway home. The
    result holds the engine's summaries, then each companion's.
    """
    with home_template(engine, workloads[0], timeout_s, log) as template:
        for companion in companions:
            with seeded_home(template) as home:
                log(f"[{companion.tag}] warm-up")
                run_workload_process(companion, workloads[0], home, timeout_s)
        return measure_variants([engine, *companions], workloads, template, repeat=repeat,
                                timeout_s=timeout_s, log=log, errors=errors)


def measure_prefect(engine: Engine, workloads: Sequence[Workload], args: argparse.Namespace,
                    log: LogFn, errors: dict[str, str]) -> dict[str, Summary]:
    """Prefect's figures against a local API server, plus its serverless cold start.

    Each workload gets a server of its own, started from the same seeded database: a
    server still digesting the events of 10,000 task runs answers the next workload
    with timeouts and 503s. With ``--prefect-api ephemeral`` every workload runs
    without a server instead.
    """
    repeat, timeout_s = args.prefect_repeat, args.timeout
    if args.prefect_api == "ephemeral":
        return measure_engine(engine, workloads, repeat=repeat, timeout_s=timeout_s, log=log,
                              errors=errors)[0]
    results: dict[str, Summary] = {}
    server_seed = Path(tempfile.mkdtemp(prefix="bench-prefect-server-seed-"))
    # The warm-up runs without a server, so the template also serves the serverless rows.
    with home_template(engine, workloads[0], timeout_s, log) as template:
        try:
            for workload in workloads:
                with prefect_server(engine, server_seed, timeout_s, log) as api:
                    served = replace(engine, env={**engine.env, "PREFECT_API_URL": api})
                    results.update(measure_workloads(
                        served, [workload], template, repeat=repeat, timeout_s=timeout_s,
                        log=log, errors=errors))
        finally:
            shutil.rmtree(server_seed, ignore_errors=True)
        # Every server is stopped by now, so none can steal CPU from what follows.
        log("[prefect] cold start without a server (temporary API server per process)")
        alone = measure_workloads(engine, workloads[:1], template, repeat=repeat,
                                  timeout_s=timeout_s, log=log, errors=errors)
    if COLD_START in alone:
        alone[COLD_START].workload = EPHEMERAL_COLD_START
        alone[COLD_START].title = "import + empty flow without a server"
        results[EPHEMERAL_COLD_START] = alone[COLD_START]
    return results


# --- derived figures ----------------------------------------------------------------------


@dataclass(frozen=True)
class Overhead:
    """Per-unit overhead of one workload over the empty-flow baseline, in seconds."""

    process_s: float
    """(workload process wall - empty-flow process wall) / units: the issue's figure."""
    in_flow_s: float
    """(flow-call time - empty flow-call time) / units: excludes start-up noise."""
    cpu_s: float
    """(process CPU - empty-flow process CPU) / units: robust to other load, but blind
    to time spent waiting (and to a separate Prefect server's CPU)."""


def overhead(summary: Summary, baseline: Summary) -> Overhead:
    """Per-unit overhead of ``summary`` above the cold-start ``baseline``."""
    units = max(summary.units, 1)
    return Overhead(
        process_s=(summary.wall_s - baseline.wall_s) / units,
        in_flow_s=(summary.flow_s - baseline.flow_s) / units,
        cpu_s=(summary.cpu_s - baseline.cpu_s) / units,
    )


def overheads(results: Mapping[str, Summary]) -> dict[str, Overhead]:
    """Per-unit overheads of every measured workload that has a unit."""
    baseline = results.get(COLD_START)
    if baseline is None:
        return {}
    return {key: overhead(s, baseline) for key, s in results.items() if s.unit}


@dataclass(frozen=True)
class TargetCheck:
    """One of the issue's targets, evaluated on this run's figures."""

    target: str
    measured: str
    passed: bool | None  # None: could not be evaluated (say why in ``measured``)


def fmt_time(seconds: float) -> str:
    """Seconds as a short human figure: 1.23 s, 4.56 ms or 7.8 µs."""
    if math.isnan(seconds):
        return "n/a"
    magnitude = abs(seconds)
    if magnitude >= 1:
        return f"{seconds:.2f} s"
    if magnitude >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def check_targets(prefect: Mapping[str, Summary], headwater: Mapping[str, Summary],
                  workloads: Sequence[Workload]) -> list[TargetCheck]:
    """Evaluate the issue's targets; ratio targets need both engines' figures."""
    checks: list[TargetCheck] = []
    hw_over, pf_over = overheads(headwater), overheads(prefect)
    for w in workloads:
        if w.unit != "task" or w.key not in hw_over:
            continue
        name = f"per-task overhead <= 1/{TARGET_TASK_RATIO:.0f} of Prefect's ({w.title})"
        hw = hw_over[w.key].in_flow_s
        if w.key not in pf_over:
            checks.append(TargetCheck(name, f"Headwater {fmt_time(hw)}; no Prefect figure",
                                      None))
            continue
        pf = pf_over[w.key].in_flow_s
        if hw <= 0:
            checks.append(TargetCheck(name, f"Headwater below noise; Prefect {fmt_time(pf)}",
                                      True))
            continue
        ratio = pf / hw
        checks.append(TargetCheck(
            name, f"{fmt_time(hw)} vs {fmt_time(pf)}: Prefect/Headwater = {ratio:.0f}x",
            ratio >= TARGET_TASK_RATIO))
    if "subflows" in hw_over:
        sub = hw_over["subflows"].in_flow_s
        checks.append(TargetCheck(f"subflow overhead < {fmt_time(TARGET_SUBFLOW_S)}",
                                  fmt_time(sub), sub < TARGET_SUBFLOW_S))
    cold = headwater.get(COLD_START)
    if cold:
        checks.append(TargetCheck(f"cold start < {TARGET_COLD_START_S} s",
                                  f"{cold.wall_s:.3f} s (best wall)",
                                  cold.wall_s < TARGET_COLD_START_S))
        checks.append(TargetCheck(f"cold start < {TARGET_COLD_START_MB:.0f} MB",
                                  f"{cold.maxrss_mb:.1f} MB (peak RSS)",
                                  cold.maxrss_mb < TARGET_COLD_START_MB))
    large = headwater.get("seq_large")
    if large:
        checks.append(TargetCheck(f"memory of a {large.size:,}-task flow (reported)",
                                  f"{large.maxrss_mb:.1f} MB peak RSS", None))
    return checks


# --- the run record's cost (issue 12) ------------------------------------------------------


@dataclass(frozen=True)
class RecordCost:
    """What the run record costs one workload: Headwater with records on vs off.

    Medians over the rounds, not minima: both settings ran back to back in every round,
    so the comparison is paired. ``added_s`` is the median over rounds of the difference
    (on - off) of the per-unit in-flow overhead, each measured against the same round's
    empty flow of the same setting, so it need not equal ``per_unit_on_s -
    per_unit_off_s`` exactly. For the cold start (no unit) the ``added`` figures are per
    run: the record's fixed price for one empty flow.
    """

    workload: str
    title: str
    unit: str | None
    units: int
    rounds: int
    wall_off_s: float
    wall_on_s: float
    rss_off_mb: float
    rss_on_mb: float
    """Median peak RSS: a record is built in memory (several copies at the final flush)."""
    per_unit_off_s: float | None
    per_unit_on_s: float | None
    added_s: float | None
    """Median extra in-flow time per unit (per run for the cold start), final flush in."""
    added_excl_flush_s: float | None
    """The same with each records-on sample's final flush taken out of its flow time."""
    added_excl_flush_iqr_s: tuple[float, float] | None
    """First and third quartiles of those per-round differences: how far noise spreads
    them (on a shared machine, easily more than the 5 µs being judged on 1,000 units)."""
    record_bytes: float | None
    final_flush_s: float | None
    final_flush_max_s: float | None


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _quartiles(values: Sequence[float]) -> tuple[float, float] | None:
    if len(values) < 2:
        return None
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


def _final_flush(sample: Sample) -> float:
    value = sample.report.get("final_flush_s")
    return float(value) if value is not None else 0.0


def paired_added(on: Summary, off: Summary, base_on: Summary, base_off: Summary, *,
                 flush_out: bool) -> list[float]:
    """Per round: extra in-flow time per unit (per run without a unit), records on - off.

    Each setting's flow time is taken against the same round's empty flow of that
    setting, which cancels the record's fixed price per run; ``flush_out`` takes each
    records-on sample's final flush out of its flow time.
    """
    units = max(on.units, 1) if on.unit else 1
    rounds = min(len(on.samples), len(off.samples), len(base_on.samples),
                 len(base_off.samples))
    out: list[float] = []
    for i in range(rounds):
        w_on, c_on = on.samples[i], base_on.samples[i]
        on_flow = w_on.flow_s - (_final_flush(w_on) if flush_out else 0.0)
        off_flow = off.samples[i].flow_s
        if on.unit:
            on_flow -= c_on.flow_s - (_final_flush(c_on) if flush_out else 0.0)
            off_flow -= base_off.samples[i].flow_s
        out.append((on_flow - off_flow) / units)
    return out


def median_per_unit(summary: Summary, baseline: Summary) -> float:
    """(median flow time - the baseline's median flow time) / units."""
    flows = statistics.median(x.flow_s for x in summary.samples)
    base = statistics.median(x.flow_s for x in baseline.samples)
    return (flows - base) / max(summary.units, 1)


def record_costs(on: Mapping[str, Summary], off: Mapping[str, Summary],
                 workloads: Sequence[Workload]) -> list[RecordCost]:
    """The run record's cost for every workload measured both ways (cold start first)."""
    costs: list[RecordCost] = []
    base_on, base_off = on.get(COLD_START), off.get(COLD_START)
    if base_on is None or base_off is None or not base_on.samples or not base_off.samples:
        return costs
    for w in workloads:
        s_on, s_off = on.get(w.key), off.get(w.key)
        if s_on is None or s_off is None or not s_on.samples or not s_off.samples:
            continue
        flushes = [float(x.report["final_flush_s"]) for x in s_on.samples
                   if x.report.get("final_flush_s") is not None]
        sizes = [float(x.report["record_bytes"]) for x in s_on.samples
                 if x.report.get("record_bytes") is not None]
        added = paired_added(s_on, s_off, base_on, base_off, flush_out=False)
        added_excl = paired_added(s_on, s_off, base_on, base_off, flush_out=True)
        costs.append(RecordCost(
            workload=w.key, title=w.title, unit=w.unit, units=s_on.units, rounds=len(added),
            wall_off_s=statistics.median(x.wall_s for x in s_off.samples),
            wall_on_s=statistics.median(x.wall_s for x in s_on.samples),
            rss_off_mb=statistics.median(x.maxrss_mb for x in s_off.samples),
            rss_on_mb=statistics.median(x.maxrss_mb for x in s_on.samples),
            per_unit_off_s=median_per_unit(s_off, base_off) if w.unit else None,
            per_unit_on_s=median_per_unit(s_on, base_on) if w.unit else None,
            added_s=_median(added),
            added_excl_flush_s=_median(added_excl),
            added_excl_flush_iqr_s=_quartiles(added_excl),
            record_bytes=_median(sizes),
            final_flush_s=_median(flushes),
            final_flush_max_s=max(flushes) if flushes else None,
        ))
    return costs


def fmt_bytes(size: float | None) -> str:
    """A byte count as bytes and MB (10^6), e.g. ``4,739,641 B (4.74 MB)``."""
    if size is None:
        return "-"
    return f"{size:,.0f} B ({size / 1e6:.2f} MB)" if size >= 100_000 else f"{size:,.0f} B"


def record_rows(costs: Sequence[RecordCost]) -> list[tuple[str, ...]]:
    """Rows of the run-record table, one per workload."""
    def cell(value: float | None, suffix: str = "") -> str:
        return "-" if value is None else fmt_time(value) + suffix

    rows: list[tuple[str, ...]] = []
    for c in costs:
        per = f" per {c.unit}" if c.unit else " per run"
        flush = ("-" if c.final_flush_s is None else
                 f"{fmt_time(c.final_flush_s)} ({cell(c.final_flush_max_s)})")
        iqr = (f" (IQR {fmt_time(c.added_excl_flush_iqr_s[0])} … "
               f"{fmt_time(c.added_excl_flush_iqr_s[1])})" if c.added_excl_flush_iqr_s else "")
        rows.append((
            c.title, cell(c.per_unit_off_s), cell(c.per_unit_on_s),
            cell(c.added_s, per), cell(c.added_excl_flush_s, per) + iqr,
            fmt_bytes(c.record_bytes), flush,
            f"{fmt_time(c.wall_off_s)} → {fmt_time(c.wall_on_s)}",
            f"{c.rss_off_mb:.1f} → {c.rss_on_mb:.1f} MB",
        ))
    return rows


RECORD_HEADER = ("workload (median of N rounds)", "in-flow per unit: records off", "records on",
                 "added", "added, final flush excluded", "record.json", "final flush (max)",
                 "process wall: records off → on", "peak RSS: records off → on")


def check_record_targets(costs: Sequence[RecordCost],
                         workloads: Sequence[Workload]) -> list[TargetCheck]:
    """The issue's four run-record targets, on the paired records on/off figures."""
    checks: list[TargetCheck] = []
    by_key = {c.workload: c for c in costs}
    for c in costs:
        if c.unit not in RECORD_TASK_UNITS or c.added_excl_flush_s is None:
            continue
        iqr = c.added_excl_flush_iqr_s
        spread = (f", IQR {fmt_time(iqr[0])} … {fmt_time(iqr[1])} over {c.rounds} rounds"
                  if iqr else "")
        checks.append(TargetCheck(
            f"run record adds <= {fmt_time(TARGET_RECORD_TASK_S)} per {c.unit} ({c.title}; "
            "final flush excluded, it has its own target)",
            f"{fmt_time(c.added_excl_flush_s)}{spread} (with the final flush: "
            f"{fmt_time(c.added_s or 0.0)}); per {c.unit} off {fmt_time(c.per_unit_off_s or 0)}"
            f" → on {fmt_time(c.per_unit_on_s or 0)}",
            c.added_excl_flush_s <= TARGET_RECORD_TASK_S))
    size_name = f"record of a {TARGET_RECORD_TASKS:,}-task run <= {TARGET_RECORD_BYTES / 1e6:g} MB"
    sequential = [by_key[w.key] for w in workloads
                  if w.script == "sequential_tasks.py" and w.key in by_key
                  and by_key[w.key].record_bytes is not None]
    exact = [c for c in sequential if c.units == TARGET_RECORD_TASKS]
    if exact:
        size = exact[0].record_bytes or 0.0
        checks.append(TargetCheck(size_name, f"{fmt_bytes(size)} ({exact[0].title})",
                                  size <= TARGET_RECORD_BYTES))
    elif sequential:
        largest = max(sequential, key=lambda c: c.units)
        per_task = (largest.record_bytes or 0.0) / max(largest.units, 1)
        checks.append(TargetCheck(
            size_name, f"not measured: {largest.title} wrote {fmt_bytes(largest.record_bytes)}"
            f", about {fmt_bytes(per_task * TARGET_RECORD_TASKS)} at {TARGET_RECORD_TASKS:,}",
            None))
    flushed = [c for c in costs if c.final_flush_s is not None]
    if flushed:
        worst = max(flushed, key=lambda c: c.final_flush_s or 0.0)
        value = worst.final_flush_s or 0.0
        checks.append(TargetCheck(
            f"final flush <= {fmt_time(TARGET_FINAL_FLUSH_S)} (slowest workload, median)",
            f"{fmt_time(value)} ({worst.title}; max {fmt_time(worst.final_flush_max_s or 0)})",
            value <= TARGET_FINAL_FLUSH_S))
    cold = by_key.get(COLD_START)
    if cold:
        checks.append(TargetCheck(
            f"cold start with records on < {TARGET_COLD_START_S} s (median wall)",
            f"{cold.wall_on_s:.3f} s (records off: {cold.wall_off_s:.3f} s)",
            cold.wall_on_s < TARGET_COLD_START_S))
    return checks


def record_table(costs: Sequence[RecordCost], off_name: str) -> str:
    """The markdown table of :func:`record_rows`, its header naming the rounds."""
    rounds = min(c.rounds for c in costs)
    header = (RECORD_HEADER[0].replace("N", str(rounds)),
              *(name.replace("records off", off_name) for name in RECORD_HEADER[1:]))
    return markdown_table(header, record_rows(costs))


def render_records(on: Mapping[str, Summary], off: Mapping[str, Summary],
                   workloads: Sequence[Workload],
                   before: Mapping[str, Summary] | None = None) -> str:
    """The run-record section of the report: its table and its targets.

    With ``before`` (``--records-before``), a second table compares records on with an
    SDK from before run records, which also shows what the engine pays for the record
    whether or not it is written (errors and tracebacks kept, upstream task runs).
    """
    costs = record_costs(on, off, workloads)
    if not costs:
        return ""
    verdict = {True: "PASS", False: "FAIL", None: "info"}
    checks = check_record_targets(costs, workloads)
    text = ("Run record (issue 12): Headwater with records on (the default) vs "
            "HEADWATER_RUN_STORE=off, paired in each round.\n\n"
            + record_table(costs, "records off") + "\n\n"
            + markdown_table(("target (run record)", "measured", "result"),
                             [(c.target, c.measured, verdict[c.passed]) for c in checks])
            + "\n")
    before_costs = record_costs(on, before, workloads) if before else []
    if before_costs:
        text += ("\nThe same records-on samples vs the SDK before run records "
                 "(--records-before), paired in each round (not judged):\n\n"
                 + record_table(before_costs, "before records") + "\n")
    return text


# --- report ---------------------------------------------------------------------------------


def ratio_cell(prefect: float | None, headwater: float | None) -> str:
    """Prefect/Headwater, or a dash when either side is missing or not positive."""
    if prefect is None or headwater is None or headwater <= 0 or prefect <= 0:
        return "-"
    return f"{prefect / headwater:,.1f}x"


def table_rows(prefect: Mapping[str, Summary], headwater: Mapping[str, Summary],
               workloads: Sequence[Workload]) -> list[tuple[str, str, str, str]]:
    """Rows of (figure, Prefect, Headwater, ratio) for the markdown table."""
    rows: list[tuple[str, str, str, str]] = []

    def add(name: str, pf: float | None, hw: float | None,
            fmt: Any = fmt_time) -> None:
        rows.append((name, "-" if pf is None else fmt(pf), "-" if hw is None else fmt(hw),
                     ratio_cell(pf, hw)))

    def get(results: Mapping[str, Summary], key: str, attr: str) -> float | None:
        summary = results.get(key)
        return None if summary is None else float(getattr(summary, attr))

    add("cold start: wall (import + empty flow; Prefect with its server up)",
        get(prefect, COLD_START, "wall_s"), get(headwater, COLD_START, "wall_s"))
    if EPHEMERAL_COLD_START in prefect:
        add("cold start without a server: wall", get(prefect, EPHEMERAL_COLD_START, "wall_s"),
            get(headwater, COLD_START, "wall_s"))
        add("cold start without a server: peak RSS",
            get(prefect, EPHEMERAL_COLD_START, "maxrss_mb"),
            get(headwater, COLD_START, "maxrss_mb"), lambda mb: f"{mb:.1f} MB")
    add("cold start: import", get(prefect, COLD_START, "import_s"),
        get(headwater, COLD_START, "import_s"))
    add("cold start: CPU (user+sys, incl. children)", get(prefect, COLD_START, "cpu_s"),
        get(headwater, COLD_START, "cpu_s"))
    add("cold start: peak RSS", get(prefect, COLD_START, "maxrss_mb"),
        get(headwater, COLD_START, "maxrss_mb"), lambda mb: f"{mb:.1f} MB")
    for w in workloads:
        if w.key == COLD_START:
            continue
        add(f"{w.title}: process wall", get(prefect, w.key, "wall_s"),
            get(headwater, w.key, "wall_s"))
    pf_over, hw_over = overheads(prefect), overheads(headwater)
    for w in workloads:
        if w.unit is None:
            continue
        pf, hw = pf_over.get(w.key), hw_over.get(w.key)
        units = headwater[w.key].units if w.key in headwater else 0
        for label, attr in (("process", "process_s"), ("in-flow", "in_flow_s"),
                            ("CPU", "cpu_s")):
            pf_value = getattr(pf, attr) if pf else None
            hw_value = getattr(hw, attr) if hw else None
            name = f"per {w.unit} ({w.title}), {label} Δ"
            if hw_value is not None and abs(hw_value * units) < NOISE_FLOOR_S:
                # A difference of a few ms between two processes is jitter, not overhead.
                rows.append((name, "-" if pf_value is None else fmt_time(pf_value),
                             f"{fmt_time(hw_value)} (within noise)", "-"))
            else:
                add(name, pf_value, hw_value)
    cache_pf, cache_hw = prefect.get("cache_hits"), headwater.get("cache_hits")
    add("cache: first run (misses + persist), process wall",
        cache_pf.extra.get("first_run_wall_s") if cache_pf else None,
        cache_hw.extra.get("first_run_wall_s") if cache_hw else None)
    add("peak RSS, largest sequential flow", get(prefect, "seq_large", "maxrss_mb"),
        get(headwater, "seq_large", "maxrss_mb"), lambda mb: f"{mb:.1f} MB")
    return rows


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_report(prefect: Mapping[str, Summary], headwater: Mapping[str, Summary],
                  workloads: Sequence[Workload], engines: Mapping[str, Engine], *,
                  repeat: int, prefect_repeat: int,
                  headwater_records_off: Mapping[str, Summary] | None = None,
                  headwater_before_records: Mapping[str, Summary] | None = None) -> str:
    """The markdown printed at the end of a run."""
    pf_name = f"Prefect {engines['prefect'].version}" if "prefect" in engines else "Prefect"
    hw_name = (f"Headwater {engines['headwater'].version}" if "headwater" in engines
               else "Headwater")
    header = f"figure (best of {prefect_repeat} / {repeat} runs)"
    figures = markdown_table((header, pf_name, hw_name, "Prefect/Headwater"),
                             table_rows(prefect, headwater, workloads))
    checks = check_targets(prefect, headwater, workloads)
    verdict = {True: "PASS", False: "FAIL", None: "info"}
    targets = markdown_table(("target (Headwater)", "measured", "result"),
                             [(c.target, c.measured, verdict[c.passed]) for c in checks])
    records = (render_records(headwater, headwater_records_off, workloads,
                              headwater_before_records)
               if headwater_records_off else "")
    return f"{figures}\n\n{targets}\n" + (f"\n{records}" if records else "")


def environment_info(engines: Mapping[str, Engine],
                     loadavg_at_start: tuple[float, float, float]) -> dict[str, Any]:
    """Machine and version facts stored beside the figures."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": loadavg_at_start,
        "loadavg_at_end": os.getloadavg(),
        "engines": {name: {"version": e.version, "python": str(e.python)}
                    for name, e in engines.items()},
    }


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write the results JSON, creating ``benchmarks/results/`` when needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")


def load_summaries(saved: Mapping[str, Any]) -> dict[str, Summary]:
    """Summaries of one engine as written by ``asdict`` into the results JSON."""
    summaries: dict[str, Summary] = {}
    for key, data in saved.items():
        fields = {**data, "samples": [Sample(**sample) for sample in data["samples"]]}
        summaries[key] = Summary(**fields)
    return summaries


def render_saved(path: Path) -> str:
    """The markdown report of a results file written by an earlier run."""
    saved = json.loads(path.read_text(encoding="utf-8"))
    workloads = [Workload(**w) for w in saved["workloads"]]
    engines = {name: Engine(name, Path(e["python"]), "", {}, e["version"])
               for name, e in saved["environment"]["engines"].items()}
    results = {name: load_summaries(saved["results"].get(name, {}))
               for name in (*ENGINES, RECORDS_OFF, RECORDS_BEFORE)}
    return render_report(results["prefect"], results["headwater"], workloads, engines,
                         repeat=saved["repeat"],
                         prefect_repeat=saved.get("prefect_repeat", saved["repeat"]),
                         headwater_records_off=results[RECORDS_OFF],
                         headwater_before_records=results[RECORDS_BEFORE])


# --- profiling --------------------------------------------------------------------------


def profile_headwater(engine: Engine, workload: Workload, timeout_s: float,
                      log: LogFn) -> str:
    """Run one Headwater workload under cProfile (cold start: ``-X importtime`` too).

    Returns the text report; the raw ``.prof`` file is kept in ``benchmarks/results/``.
    """
    import pstats
    from io import StringIO

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    prof = RESULTS_DIR / f"profile-{engine.name}-{workload.key}.prof"
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as home:
        run_workload_process(engine, workload, Path(home), timeout_s,
                             ["-m", "cProfile", "-o", str(prof)])
    out = StringIO()
    stats = pstats.Stats(str(prof), stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)
    text = out.getvalue()
    if workload.key == COLD_START:
        text += "\n" + import_times(engine, workload, timeout_s)
    log(f"profile written to {prof.relative_to(REPO_DIR)}")
    return text


def import_times(engine: Engine, workload: Workload, timeout_s: float) -> str:
    """The 25 slowest imports (cumulative) of the workload, from ``-X importtime``."""
    env = {**clean_environ(), **engine.env}
    with tempfile.TemporaryDirectory(prefix="bench-importtime-") as home:
        env[engine.home_var] = home
        env["BENCH_REPORT"] = str(Path(home) / "report.json")
        done = subprocess.run([str(engine.python), "-X", "importtime", workload.script,
                               engine.name], cwd=WORKLOADS_DIR, env=env, capture_output=True,
                              text=True, timeout=timeout_s, check=False)
    rows: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    lines = [f"{us / 1000:8.1f} ms  {name}" for us, name in rows[:25]]
    return "slowest imports (cumulative):\n" + "\n".join(lines) + "\n"


# --- command line -----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run in < 60 s: sizes / 10, one repeat, Headwater only "
                             "unless --engines says otherwise")
    parser.add_argument("--repeat", type=int, default=None,
                        help="samples per workload and engine (median reported; default 3, "
                             "1 with --quick)")
    parser.add_argument("--prefect-repeat", type=int, default=None,
                        help="samples per Prefect workload (default: --repeat); Prefect needs "
                             "minutes per sample, Headwater milliseconds")
    parser.add_argument("--engines", default=None,
                        help="comma-separated subset of prefect,headwater (default: both; "
                             "headwater with --quick)")
    parser.add_argument("--workloads", default=None,
                        help="comma-separated workload keys (cold_start is always run: it "
                             "is the baseline): seq_small,seq_large,map,subflows,cache_hits,"
                             "retries")
    parser.add_argument("--records", action="store_true",
                        help="the run record's cost only: Headwater with records on vs "
                             "HEADWATER_RUN_STORE=off (Headwater only unless --engines says "
                             "otherwise)")
    parser.add_argument("--no-records", action="store_true",
                        help="skip the records-off samples (by default every Headwater run "
                             "also measures HEADWATER_RUN_STORE=off, paired)")
    parser.add_argument("--records-before", type=Path, default=None, metavar="PYTHON",
                        help="also measure, in the same rounds, an interpreter whose headwater "
                             "is an SDK from before run records (e.g. a venv with sdk/ at "
                             "43b0fe4); the report compares records on with it, not judged")
    parser.add_argument("--headwater-python", type=Path, default=None,
                        help="interpreter with headwater installed (default: the repo's .venv)")
    parser.add_argument("--prefect-api", choices=("server", "ephemeral"), default="server",
                        help="server (default): Prefect workloads talk to one local API server "
                             "the harness starts, and the cold start is also measured without "
                             "it; ephemeral: every Prefect process starts its own temporary "
                             "server (Prefect's default without PREFECT_API_URL)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds before one workload process is killed")
    parser.add_argument("--json", type=Path, default=None,
                        help="results file (default: benchmarks/results/sdk_overhead-<time>.json)")
    parser.add_argument("--render", type=Path, default=None, metavar="RESULTS_JSON",
                        help="print the report of an earlier results file, measuring nothing")
    parser.add_argument("--profile", metavar="WORKLOAD", default=None,
                        help="instead of measuring, profile one Headwater workload with "
                             "cProfile (cold_start: also -X importtime) and print where the "
                             "time goes")
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.prefect_repeat = args.prefect_repeat or args.repeat
    if args.records and args.no_records:
        parser.error("--records and --no-records contradict each other: choose one")
    if args.records_before and args.no_records:
        parser.error("--records-before needs the records comparison: drop --no-records")
    default_engines = "headwater" if args.quick or args.records else ",".join(ENGINES)
    args.engines = [e.strip() for e in (args.engines or default_engines).split(",") if e]
    unknown = set(args.engines) - set(ENGINES)
    if unknown:
        parser.error(f"--engines: unknown {sorted(unknown)}; choose from {list(ENGINES)}")
    return args


def select_workloads(all_workloads: Sequence[Workload], keys: str | None) -> list[Workload]:
    """The requested workloads, always including the cold-start baseline first."""
    if not keys:
        return list(all_workloads)
    wanted = {k.strip() for k in keys.split(",") if k.strip()} | {COLD_START}
    known = {w.key for w in all_workloads}
    if wanted - known:
        raise SystemExit(f"--workloads: unknown {sorted(wanted - known)}; "
                         f"choose from {sorted(known)}")
    return [w for w in all_workloads if w.key in wanted]


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the markdown report and write the JSON results."""
    args = parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.render:
        print(render_saved(args.render))
        return 0
    workloads = select_workloads(build_workloads(args.quick), args.workloads)
    if args.profile:
        engine = headwater_engine(args.headwater_python, log)
        chosen = select_workloads(build_workloads(args.quick), args.profile)
        print(profile_headwater(engine, chosen[-1], args.timeout, log))
        return 0

    engines: dict[str, Engine] = {}
    for name in args.engines:
        engines[name] = (prefect_engine(log) if name == "prefect"
                         else headwater_engine(args.headwater_python, log))
    started, loadavg_at_start = time.time(), os.getloadavg()
    results: dict[str, dict[str, Summary]] = {"prefect": {}, "headwater": {}, RECORDS_OFF: {},
                                              RECORDS_BEFORE: {}}
    errors: dict[str, str] = {}
    for name, engine in engines.items():
        try:
            if name == "prefect":
                results[name] = measure_prefect(engine, workloads, args, log, errors)
            else:
                companions = [] if args.no_records else [records_off(engine)]
                if args.records_before:
                    companions.append(before_records(engine, args.records_before))
                measured = measure_engine(engine, workloads, repeat=args.repeat,
                                          timeout_s=args.timeout, log=log, errors=errors,
                                          companions=companions)
                results[name] = measured[0]
                if companions:
                    results[RECORDS_OFF] = measured[1]
                if args.records_before:
                    results[RECORDS_BEFORE] = measured[2]
        except BenchError as exc:
            # Keep the other engine's figures: a half table beats none, and says why.
            errors[name] = str(exc)
            log(f"[{name}] FAILED: {exc}")

    report = render_report(results["prefect"], results["headwater"], workloads, engines,
                           repeat=args.repeat, prefect_repeat=args.prefect_repeat,
                           headwater_records_off=results[RECORDS_OFF],
                           headwater_before_records=results[RECORDS_BEFORE])
    print(report)
    for name, message in errors.items():
        print(f"**{name} failed:** {message.splitlines()[0]}\n")

    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started))
    path = args.json or RESULTS_DIR / f"sdk_overhead-{stamp}.json"
    checks = check_targets(results["prefect"], results["headwater"], workloads)
    checks += check_record_targets(
        record_costs(results["headwater"], results[RECORDS_OFF], workloads), workloads)
    write_json(path, {
        "started": stamp,
        "duration_s": time.time() - started,
        "quick": args.quick,
        "repeat": args.repeat,
        "prefect_repeat": args.prefect_repeat,
        "prefect_api": args.prefect_api,
        "environment": environment_info(engines, loadavg_at_start),
        "workloads": [asdict(w) for w in workloads],
        "results": {name: {key: asdict(s) for key, s in by_key.items()}
                    for name, by_key in results.items()},
        "overheads": {name: {key: asdict(o) for key, o in overheads(by_key).items()}
                      for name, by_key in results.items()},
        "record_costs": [asdict(c) for c in record_costs(results["headwater"],
                                                          results[RECORDS_OFF], workloads)],
        "record_costs_vs_before": [asdict(c) for c in record_costs(
            results["headwater"], results[RECORDS_BEFORE], workloads)],
        "targets": [asdict(c) for c in checks],
        "errors": errors,
        "markdown": report,
    })
    log(f"results written to {path}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
