"""1,000 Schedules firing every few seconds on one operator: lag, exactness, CPU, memory.

Run from the repository root::

    .venv/bin/python benchmarks/scheduling.py                 # 1,000 × every 5 s, 180 s
    .venv/bin/python benchmarks/scheduling.py --quick         # ~30 s smoke run
    .venv/bin/python benchmarks/scheduling.py --schedules 500 --interval 2 --duration 60

Set-up: three processes, so none of them shares a GIL with another. The emulated API
server (``headwater_dev``) runs in a child process of its own, which also records every
FlowRun the moment it is stored; the operator runs in another (``KUBECONFIG`` points at the
emulator), so its CPU time and peak RSS are its own; this process only drives and measures
them. The emulator's CPU time is reported too: on a real cluster the API server runs
elsewhere, so its share is a test artifact. ``--operator schedules`` (the default) runs
only the Schedule controller (``run_operator(controllers=("schedules",))``, as
``--controllers schedules`` does): the FlowRun lifecycle would otherwise start a pod for
each of the ~200 runs a second, which measures pods, not the scheduler. In its place the
emulator marks each run ``Completed`` ``--complete-after`` seconds (default 2) after
storing it, so Schedules see their runs end as in production; ``--complete-after 0`` keeps
every run active (each Schedule's ``status.active`` then grows a tick at a time: the worst
case).
``--operator full`` runs ``python -m headwater_operator`` with every controller; there the
emulator plays the kubelet instead, ending each flow-run pod (exit 0, a run summary)
``--complete-after`` seconds after it was created, so each run goes through the whole
FlowRun lifecycle.

The Schedules are ``interval`` schedules with anchors staggered over the interval's
whole seconds, so each second a 1/``interval`` share of them fires at once (a burst, as
at a real ``:00``). FlowRuns accumulate (no run history runs in ``schedules`` mode);
``--keep-seconds N`` deletes older ones, but the emulator's garbage collector scans every
object on each delete, so at this rate the emulator, not the operator, becomes the limit.

Figures, for ticks inside the measurement window (after every Schedule woke once):

* lag: when the emulator stored the FlowRun minus its tick (the tick is the run name's
  epoch suffix); p50 / p99 / max;
* duplicates (a tick with more than one FlowRun; also ``409`` on create, harmless
  retries) and missed ticks (a tick in the window with no FlowRun) — both must be 0;
* the operator's CPU seconds over the window, and its peak RSS (``VmHWM``);
* the fire-time computation per tick (``benchmarks/fire_times.py``'s measurement on this
  very expression).

Targets: p99 lag ≤ 1 s, RSS ≤ 150 MB. The markdown table goes to stdout, with peers'
reference figures beside ours; everything to ``benchmarks/results/scheduling-<UTC>.json``.

``--burst N`` measures the top of the hour instead: real cron fleets say ``0 * * * *``
and all fire on the same instant. N Schedules ``* * * * *`` stand for such a fleet
without waiting an hour: they all fire on each minute boundary. Once every Schedule has
woken once, the next ``--boundaries`` (1 or 2) minute boundaries are measured: runs
created (N per boundary), duplicates and missed (both must be 0), the lag from the
boundary to the emulator storing the FlowRun (p50 / p99 / max; target p99 ≤ 5 s at
N = 5,000), and the operator's CPU per run created. The wait ends when every expected
run is stored (at least ``--grace`` seconds after the last boundary, so late duplicates
count) or ``--burst-timeout`` seconds after it. JSON to
``benchmarks/results/scheduling-burst-<UTC>.json``::

    .venv/bin/python benchmarks/scheduling.py --burst 5000
    .venv/bin/python benchmarks/scheduling.py --burst 500 --boundaries 2
    .venv/bin/python benchmarks/scheduling.py --burst 5000 --cron "0 * * * *"  # the real thing

The stand-in is not free of bias: the scheduler looks for a cron's previous fire time by
stepping back from three hours past the instant (``fire_times._cron_previous``, the DST
margin), one fire time at a time, so a minutely cron costs it ~180 croniter steps per
look-up where an hourly one costs 3. ``--cron "0 * * * *"`` measures the real fleet.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import gc
import json
import multiprocessing
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blackbox import cpu_seconds, freeze_periodically, peak_rss_mb, percentile
from headwater.contract import LABEL_FLOW_RUN, LABEL_SCHEDULE
from headwater_operator.scheduling import fire_times, next_fire_time, parse_schedule_expression

# The emulator is imported where it runs (the emulator process), never at the top: the
# operator process runs this file too (--run-operator), and the emulator's modules (its
# validators, a CEL runtime, RE2) would inflate the operator's measured RSS.
if TYPE_CHECKING:
    from headwater_dev.emulator import BackgroundEmulator
    from headwater_dev.store import ObjectStore, WatchEvent

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
NAMESPACE = "bench"
ANCHOR = datetime(2024, 1, 1, tzinfo=UTC)
TARGET_P99_SECONDS = 1.0
TARGET_RSS_MB = 150.0
REFERENCE = [
    ("Prefect scheduler", "loops every 60 s; a run is Late 15 s after its time"),
    ("Kubernetes CronJob",
     "requeues each CronJob for its next time + 100 ms (before 1.21: polled every 10 s)"),
]


# --- the operator process ---------------------------------------------------------------
def run_schedule_operator(namespace: str) -> None:
    """Child process: the operator with only the Schedule controller, until SIGTERM."""
    from headwater_operator import kube, runner

    kube.configure()
    runner.freeze_startup_objects()  # as python -m headwater_operator does
    gc_log = os.environ.get("HEADWATER_BENCH_GC_LOG")
    if gc_log:
        pauses = GcPauses().install()
        atexit.register(lambda: Path(gc_log).write_text(json.dumps(pauses.pauses)))
    operator = runner.run_operator(namespaces=[namespace], controllers=("schedules",))
    profile = os.environ.get("HEADWATER_BENCH_PROFILE")
    if not profile:
        asyncio.run(operator)
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(operator)
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


def start_operator(mode: str, kubeconfig: Path, log: Path) -> subprocess.Popen[bytes]:
    """The operator as its own process, pointed at the emulator, logging to ``log``.

    Its log goes to a file, not a pipe: nobody reads a pipe during the run, and once its
    buffer filled, the operator's next log line would block its event loop.
    """
    env = {**os.environ, "KUBECONFIG": str(kubeconfig),
           "HEADWATER_BENCH_GC_LOG": str(log.with_suffix(".gc.json"))}
    if mode == "full":
        command = [sys.executable, "-m", "headwater_operator", "--namespace", NAMESPACE,
                   "--metrics-port", "0", "--health-port", "0"]
    else:
        command = [sys.executable, __file__, "--run-operator"]
    with log.open("wb") as sink:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)


# --- recording what the emulator stores --------------------------------------------------
@dataclass
class Recorder:
    """Every FlowRun the emulator stored: (schedule, tick) → wall-clock times stored."""

    stored: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    deleted: set[tuple[str, int]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    complete: Callable[[str], None] | None = None
    """Marks a run Completed (``--complete-after``); called that many seconds after."""
    complete_after: float = 0.0
    pods: dict[tuple[str, int], float] = field(default_factory=dict)
    """``--operator full``: when each scheduled run's first pod was stored."""
    finish_pod: Callable[[str, str], None] | None = None
    """``--operator full``: ends a pod (name, container) ``complete_after`` s later."""

    def on_pod(self, event: WatchEvent) -> None:
        """Store callback for pods: the first pod of each scheduled run."""
        if event.type != "ADDED":
            return
        run = (event.object["metadata"].get("labels") or {}).get(LABEL_FLOW_RUN, "")
        schedule, _, tick = run.rpartition("-")
        if schedule and tick.isdigit():
            with self.lock:
                self.pods.setdefault((schedule, int(tick)), time.time())
        if self.finish_pod is not None:
            asyncio.get_running_loop().call_later(
                self.complete_after, self.finish_pod, event.object["metadata"]["name"],
                event.object["spec"]["containers"][0]["name"])

    def on_event(self, event: WatchEvent) -> None:
        """Store callback, on the emulator's thread, at the moment of the write."""
        if event.type != "ADDED":
            return
        now = time.time()
        meta = event.object["metadata"]
        schedule = (meta.get("labels") or {}).get(LABEL_SCHEDULE)
        if schedule is None:
            return
        tick = int(meta["name"].rsplit("-", 1)[1])
        with self.lock:
            self.stored.setdefault((schedule, tick), []).append(now)
        if self.complete is not None:
            # Later, on the emulator's loop: the store is mid-write right now.
            asyncio.get_running_loop().call_later(self.complete_after, self.complete,
                                                  meta["name"])


@dataclass
class GcPauses:
    """This process's full (generation 2) garbage collections: when each ended, how long.

    The emulator keeps every FlowRun (tens of thousands of nested dicts), so its full
    collections grow with the run and stall its one event loop: a benchmark artifact (a
    real API server keeps objects in etcd), reported so it is not mistaken for the
    operator's lag.
    """

    pauses: list[tuple[float, float]] = field(default_factory=list)
    _started: float = 0.0

    def install(self) -> GcPauses:
        gc.callbacks.append(self._on_gc)
        return self

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif info.get("generation") == 2:
            self.pauses.append((time.time(), time.perf_counter() - self._started))


def pause_summary(pauses: list[tuple[float, float]], start: float, end: float
                  ) -> dict[str, float]:
    """Count, total and longest of the full collections that ended in [start, end]."""
    inside = [seconds for ended, seconds in pauses if start <= ended <= end]
    return {"count": len(inside), "total_ms": round(1000 * sum(inside), 1),
            "max_ms": round(1000 * max(inside, default=0.0), 1)}


# --- objects -----------------------------------------------------------------------------
def schedule_body(index: int, interval: int, cron: str | None = None) -> dict[str, Any]:
    """Schedule ``s<index>``: every ``interval`` seconds (anchors staggered), or ``cron``."""
    anchor = ANCHOR + timedelta(seconds=index % interval)
    when = {"cron": cron} if cron else {
        "interval": f"{interval}s", "anchorTime": anchor.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "Schedule",
        "metadata": {"name": f"s{index:04d}", "namespace": NAMESPACE},
        "spec": {"deploymentRef": {"name": "bench"}, **when},
    }


# --- the emulator process ----------------------------------------------------------------
class EmulatorCommands:
    """What the driver may ask of the emulator process (each runs on the emulator's loop)."""

    def __init__(self, api: BackgroundEmulator, recorder: Recorder) -> None:
        self.api = api
        self.recorder = recorder
        self.gc = GcPauses().install()
        self.profiler: Any = None

    def seed(self, schedules: int, interval: int, cron: str | None = None) -> None:
        """Namespace, Flow, Deployment and the Schedules, written straight into the store
        (``cron``: every Schedule has that expression instead of ``interval``)."""
        store = self.api.emulator.store

        def create(plural: str, group: str, body: dict[str, Any]) -> None:
            spec = store.resource(group, "v1" if not group else "v1alpha1", plural)
            store.create(spec, NAMESPACE if spec.namespaced else None, body)

        def write() -> None:
            create("namespaces", "", {"metadata": {"name": NAMESPACE}})
            create("flows", "headwater.dev", {"metadata": {"name": "bench"}, "spec": {
                "image": "example/flow:1", "entrypoint": "flows/bench.py:bench"}})
            create("deployments", "headwater.dev", {"metadata": {"name": "bench"},
                                                    "spec": {"flowRef": {"name": "bench"}}})
            for index in range(schedules):
                create("schedules", "headwater.dev", schedule_body(index, interval, cron))

        self.api.call(write)

    def planned(self) -> int:
        """How many Schedules have a ``status.nextScheduleTime`` (their daemon runs)."""
        return sum(1 for obj in self.api.objects("schedules", NAMESPACE)
                   if (obj.get("status") or {}).get("nextScheduleTime"))

    def mark(self) -> int:
        """A position in the request log to count from."""
        return self.api.call(self.api.emulator.requests.mark)

    def requests_since(self, mark: int) -> tuple[int, dict[str, int]]:
        """409s on FlowRun create, and requests by ``verb resource``, after ``mark``."""
        records = self.api.call(self.api.emulator.requests.since, mark)
        conflicts = sum(1 for r in records
                        if (r.verb, r.resource, r.code) == ("create", "flowruns", 409))
        return conflicts, dict(Counter(f"{r.verb} {r.resource}" for r in records))

    def prune(self, older_than: float) -> None:
        """Delete FlowRuns whose tick is older than ``older_than`` (the run history's job).

        By name, from what the recorder saw: listing thousands of runs each second would
        load the emulator more than the operator does.
        """
        recorder = self.recorder
        with recorder.lock:
            old = [key for key in recorder.stored
                   if key[1] < older_than and key not in recorder.deleted]
            recorder.deleted.update(old)

        def delete_old() -> None:
            from headwater_dev.store import ApiError, DeleteOptions

            store = self.api.emulator.store
            spec = store.resource("headwater.dev", "v1alpha1", "flowruns")
            for schedule, tick in old:
                with contextlib.suppress(ApiError):  # already gone
                    store.delete(spec, NAMESPACE, f"{schedule}-{tick}", DeleteOptions())
        self.api.call(delete_old)

    def complete_runs(self, names: list[str]) -> None:
        """Mark these FlowRuns ``Completed`` now, as ``--complete-after`` does."""
        def complete_all() -> None:
            for name in names:
                complete_run(self.api.emulator.store, name)
        self.api.call(complete_all)

    def profile_start(self) -> None:
        """cProfile the emulator's own thread (``HEADWATER_BENCH_PROFILE_EMULATOR``)."""
        import cProfile

        self.profiler = cProfile.Profile()
        self.api.call(self.profiler.enable)

    def profile_stop(self, path: str) -> None:
        """Stop profiling and write the stats to ``path``."""
        self.api.call(self.profiler.disable)
        self.profiler.dump_stats(path)

    def gc_pauses(self) -> list[tuple[float, float]]:
        """The emulator process's full garbage collections so far."""
        return list(self.gc.pauses)

    def stored(self) -> dict[tuple[str, int], list[float]]:
        """Every FlowRun stored so far: (schedule, tick) → times stored."""
        with self.recorder.lock:
            return dict(self.recorder.stored)

    def stored_count(self) -> int:
        """How many (schedule, tick) keys have a stored FlowRun."""
        with self.recorder.lock:
            return len(self.recorder.stored)

    def pods(self) -> dict[tuple[str, int], float]:
        """``--operator full``: (schedule, tick) → when the run's first pod was stored."""
        with self.recorder.lock:
            return dict(self.recorder.pods)


def complete_run(store: ObjectStore, name: str) -> None:
    """Mark the FlowRun ``name`` ``Completed`` (status subresource), unless it is gone."""
    from headwater_dev.store import ApiError

    flowruns = store.resource("headwater.dev", "v1alpha1", "flowruns")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with contextlib.suppress(ApiError):  # pruned meanwhile
        store.patch(flowruns, NAMESPACE, name, "merge", {"status": {
            "phase": "Completed", "reason": "Completed", "endTime": stamp}},
            subresource="status")


def run_emulator(conn: Connection, complete_after: float, gc_freeze: bool,
                 mode: str = "schedules") -> None:
    """Child process: the emulated API server, answering ``(command, args)`` on ``conn``.

    Sends the kubeconfig path first; ``("stop", ())`` ends it. With ``complete_after``
    > 0, each run ends that many seconds after it was stored, so the Schedule sees it end
    (``status.active``, ``lastSuccessfulTime``), as in production. In ``schedules`` mode
    (no FlowRun lifecycle runs) the FlowRun itself is marked ``Completed``, as the
    lifecycle would once its pod finished; in ``full`` mode the emulator plays the
    kubelet instead: each flow-run pod exits 0 with a run summary that many seconds after
    it was created, and the operator's lifecycle completes the run as on a cluster.
    """
    from headwater_dev import podstatus
    from headwater_dev.emulator import BackgroundEmulator
    from headwater_dev.kubelet import default_summary
    from headwater_dev.store import ApiError

    recorder = Recorder()
    with BackgroundEmulator() as api:
        store = api.emulator.store
        flowruns = store.resource("headwater.dev", "v1alpha1", "flowruns")
        pods = store.resource("", "v1", "pods")

        def complete(name: str) -> None:
            complete_run(store, name)

        def finish_pod(name: str, container: str) -> None:
            status = podstatus.succeeded(datetime.now(UTC), default_summary(),
                                         container=container)
            with contextlib.suppress(ApiError):  # deleted meanwhile
                store.patch(pods, NAMESPACE, name, "merge", {"status": status},
                            subresource="status")

        recorder.complete_after = complete_after
        if mode == "full":
            if complete_after > 0:
                recorder.finish_pod = finish_pod
            api.call(store.subscribe, pods, recorder.on_pod)
        elif complete_after > 0:
            recorder.complete = complete
        api.call(store.subscribe, flowruns, recorder.on_event)
        if gc_freeze:
            api.call(lambda: freeze_periodically(asyncio.get_running_loop()))
        commands = EmulatorCommands(api, recorder)
        conn.send(str(api.kubeconfig_path))
        while True:
            command, arguments = conn.recv()
            if command == "stop":
                return
            conn.send(getattr(commands, command)(*arguments))


class EmulatorProcess:
    """The driver's handle on the emulator process: each method is a command round trip."""

    def __init__(self, complete_after: float, gc_freeze: bool, mode: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(target=run_emulator,
                                       args=(child, complete_after, gc_freeze, mode),
                                       daemon=True,
                                       name="headwater-bench-emulator")
        self.process.start()
        self.kubeconfig_path = Path(self._conn.recv())

    @property
    def pid(self) -> int:
        """The emulator process's id (for its CPU time)."""
        assert self.process.pid is not None
        return self.process.pid

    def ask(self, command: str, *arguments: Any) -> Any:
        """Run one :class:`EmulatorCommands` method in the emulator process."""
        self._conn.send((command, arguments))
        return self._conn.recv()

    def close(self) -> None:
        """Stop the emulator process."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self._conn.send(("stop", ()))
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()


def start_py_spy(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Sample ``pid`` with py-spy for ``seconds`` into ``output`` (collapsed stacks).

    ``--gil``: only the thread holding the GIL is sampled, so the stacks show where the
    process spends Python CPU time, not where its threads wait for sockets.
    """
    py_spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [str(py_spy), "record", "--pid", str(pid), "--duration", str(int(seconds)),
         "--rate", "50", "--gil", "--format", "raw", "--output", str(output),
         "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)



# --- analysis ----------------------------------------------------------------------------
def expected_ticks(schedules: int, interval: int, start: float, end: float
                   ) -> set[tuple[str, int]]:
    """Every (schedule, tick) with ``start < tick <= end``, by the scheduler's own code."""
    begin, finish = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    expected: set[tuple[str, int]] = set()
    for index in range(schedules):
        anchor = ANCHOR + timedelta(seconds=index % interval)
        expr = parse_schedule_expression(interval=f"{interval}s", anchor_time=anchor)
        for tick in fire_times(expr, begin, finish):
            expected.add((f"s{index:04d}", int(tick.timestamp())))
    return expected


def fire_time_cost_us(interval: int) -> float:
    """µs per tick of ``next_fire_time`` on the benchmark's expression (fire_times.py)."""
    sys.path.insert(0, str(HERE))
    import fire_times as fire_bench  # type: ignore[import-not-found,unused-ignore]  # benchmarks/

    expr = parse_schedule_expression(interval=f"{interval}s", anchor_time=ANCHOR)
    best: float = min(fire_bench.per_tick_next(expr, 2000) for _ in range(5))
    return best * 1e6


# --- main --------------------------------------------------------------------------------
def wait_until_planned(emulator: EmulatorProcess, operator: subprocess.Popen[bytes],
                       schedules: int, timeout: float, log: Path) -> None:
    """Until every Schedule has a next tick in its status (it has woken once)."""
    began = time.time()
    while emulator.ask("planned") < schedules:
        if operator.poll() is not None:
            raise RuntimeError("the operator exited: " + log.read_text()[-4000:])
        if time.time() - began > timeout:
            raise TimeoutError(f"the Schedules were not all planned within {timeout} s")
        time.sleep(0.5)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    emulator = EmulatorProcess(args.complete_after, not args.emulator_gc_unfrozen,
                               args.operator)
    profiles: list[subprocess.Popen[bytes]] = []
    try:
        emulator.ask("seed", args.schedules, args.interval)
        began = time.time()
        log = RESULTS / "scheduling-operator.log"
        RESULTS.mkdir(parents=True, exist_ok=True)
        operator = start_operator(args.operator, emulator.kubeconfig_path, log)
        try:
            wait_until_planned(emulator, operator, args.schedules, args.startup_timeout, log)
            startup = time.time() - began
            emulator_profile = os.environ.get("HEADWATER_BENCH_PROFILE_EMULATOR")
            if emulator_profile:
                emulator.ask("profile_start")
            if args.py_spy is not None:
                args.py_spy.mkdir(parents=True, exist_ok=True)
                profiles = [start_py_spy(pid, args.duration, args.py_spy / f"{who}.txt")
                            for who, pid in (("operator", operator.pid),
                                             ("emulator", emulator.pid))]
            load_before = os.getloadavg()
            rss_at_start = peak_rss_mb(operator.pid, "VmRSS")
            window_start = time.time()
            cpu_start = cpu_seconds(operator.pid), cpu_seconds(emulator.pid)
            requests_mark = emulator.ask("mark")
            while time.time() < window_start + args.duration:
                time.sleep(1.0)
                if args.keep_seconds is not None:
                    emulator.ask("prune", time.time() - args.keep_seconds)
            window_end = time.time()
            cpu_window = cpu_seconds(operator.pid) - cpu_start[0]
            emulator_cpu = cpu_seconds(emulator.pid) - cpu_start[1]
            load_after = os.getloadavg()
            if emulator_profile:
                emulator.ask("profile_stop", emulator_profile)
            time.sleep(args.grace)  # ticks at the window's end get their chance
            rss = peak_rss_mb(operator.pid)
            conflicts, by_verb = emulator.ask("requests_since", requests_mark)
            stored: dict[tuple[str, int], list[float]] = emulator.ask("stored")
            pods: dict[tuple[str, int], float] = emulator.ask("pods")
            emulator_gc = emulator.ask("gc_pauses")
        finally:
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(20)
            except subprocess.TimeoutExpired:
                operator.kill()
        gc_log = log.with_suffix(".gc.json")
        operator_gc = json.loads(gc_log.read_text()) if gc_log.exists() else None
    finally:
        for profile in profiles:
            profile.wait(30)
        emulator.close()

    expected = expected_ticks(args.schedules, args.interval, window_start, window_end)
    lags = [times[0] - tick for key, times in stored.items() if key in expected
            for tick in (key[1],)]
    duplicates = sum(len(times) - 1 for key, times in stored.items() if key in expected)
    missed = sorted(key for key in expected if key not in stored)
    # --operator full: how long the FlowRun lifecycle took to start each run's pod.
    pod_lags = [pods[key] - stored[key][0] for key in expected
                if key in stored and key in pods]
    without_pod = sum(1 for key in expected if key in stored and key not in pods)
    window = window_end - window_start
    runs_created = by_verb.get("create flowruns", 0)
    return {
        "schedules": args.schedules, "interval_seconds": args.interval,
        "operator": args.operator, "complete_after_seconds": args.complete_after,
        "emulator_gc_frozen": not args.emulator_gc_unfrozen,
        "window_seconds": round(window, 1),
        "startup_seconds": round(startup, 1),
        "ticks_expected": len(expected), "runs_in_window": len(lags),
        "lag_p50_seconds": percentile(lags, 0.50) if lags else None,
        "lag_p99_seconds": percentile(lags, 0.99) if lags else None,
        "lag_max_seconds": max(lags) if lags else None,
        "lag_mean_seconds": statistics.fmean(lags) if lags else None,
        "duplicates": duplicates, "create_conflicts_409": conflicts,
        "missed_ticks": len(missed), "missed_examples": missed[:5],
        "run_to_pod_p50_seconds": percentile(pod_lags, 0.50) if pod_lags else None,
        "run_to_pod_p99_seconds": percentile(pod_lags, 0.99) if pod_lags else None,
        "runs_without_pod_after_grace": without_pod if args.operator == "full" else None,
        "operator_cpu_seconds": round(cpu_window, 2),
        "operator_cpu_percent_of_one_core": round(100 * cpu_window / window, 1),
        "operator_cpu_ms_per_tick": round(1000 * cpu_window / max(1, runs_created), 2),
        "emulator_cpu_seconds": round(emulator_cpu, 2),
        "emulator_cpu_percent_of_one_core": round(100 * emulator_cpu / window, 1),
        "operator_peak_rss_mb": round(rss, 1),
        "operator_rss_at_window_start_mb": round(rss_at_start, 1),
        # Requests served in the window over the runs created in it (not over the
        # in-window ticks: a lagging operator creates runs for earlier ticks).
        "api_requests_per_tick": round(sum(by_verb.values()) / max(1, runs_created), 2),
        "api_requests_by_verb": dict(Counter(by_verb).most_common()),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "fire_time_us_per_tick": round(fire_time_cost_us(args.interval), 2),
        "full_gc_pauses": {
            "operator": None if operator_gc is None else pause_summary(
                [tuple(pause) for pause in operator_gc], window_start, window_end),
            "emulator": pause_summary(emulator_gc, window_start, window_end),
        },
    }



# --- the top-of-the-hour burst (--burst N) ----------------------------------------------------
BURST_CRON = "* * * * *"
"""Every minute: stands for an hourly ``0 * * * *`` fleet without waiting an hour (but
see the docstring: today it costs the operator more per tick than an hourly cron)."""
TARGET_BURST_P99_SECONDS = 5.0


def cron_boundaries(cron: str, after: float, count: int) -> list[int]:
    """The first ``count`` fire times (unix seconds) of ``cron`` in UTC after ``after``."""
    expr = parse_schedule_expression(cron=cron)
    instants: list[int] = []
    moment = datetime.fromtimestamp(after, UTC)
    for _ in range(count):
        tick = next_fire_time(expr, moment)
        assert tick is not None
        instants.append(int(tick.timestamp()))
        moment = tick
    return instants


BURST_QUIET_SECONDS = 3.0
"""--burst: the API server must have served no request this long before the window opens."""
BURST_LEAD_SECONDS = 2.0
"""--burst: the measured boundary is at least this far after the window opens."""


def wait_until_quiet(emulator: EmulatorProcess, operator: subprocess.Popen[bytes],
                     seconds: float, timeout: float, log: Path) -> None:
    """Until the emulator has served no request for ``seconds`` but watches and Leases
    (runs a boundary fired during the start-up, their completions and status writes are
    all done)."""
    began = time.time()
    mark, since = emulator.ask("mark"), time.time()
    while time.time() - since < seconds:
        if operator.poll() is not None:
            raise RuntimeError("the operator exited: " + log.read_text()[-4000:])
        if time.time() - began > timeout:
            raise TimeoutError(f"the API server was not quiet for {seconds} s within "
                               f"{timeout} s")
        time.sleep(0.5)
        _, by_verb = emulator.ask("requests_since", mark)
        if any(not verb.startswith("watch ") and "leases" not in verb for verb in by_verb):
            mark, since = emulator.ask("mark"), time.time()


def wait_for_burst(emulator: EmulatorProcess, expected: set[tuple[str, int]],
                   last_boundary: int, grace: float, timeout: float) -> bool:
    """Until every expected run is stored (True), or ``timeout`` seconds after the last
    boundary (False); never before ``grace`` seconds after it (late duplicates count)."""
    while True:
        time.sleep(1.0)
        now = time.time()
        if now < last_boundary + grace:
            continue
        # The count first: copying every stored key each second would load the emulator.
        if emulator.ask("stored_count") >= len(expected):
            stored: dict[tuple[str, int], list[float]] = emulator.ask("stored")
            if all(key in stored for key in expected):
                return True
        if now > last_boundary + timeout:
            return False


def measure_burst(args: argparse.Namespace) -> dict[str, Any]:
    """``--burst N``: N cron Schedules fire on the same minute boundaries; see :func:`main`."""
    emulator = EmulatorProcess(args.complete_after, not args.emulator_gc_unfrozen,
                               args.operator)
    profiles: list[subprocess.Popen[bytes]] = []
    try:
        emulator.ask("seed", args.burst, args.interval, args.cron)
        began = time.time()
        log = RESULTS / "scheduling-operator.log"
        RESULTS.mkdir(parents=True, exist_ok=True)
        operator = start_operator(args.operator, emulator.kubeconfig_path, log)
        try:
            wait_until_planned(emulator, operator, args.burst, args.startup_timeout, log)
            startup = time.time() - began
            # A boundary that passed during the start-up fired the Schedules planned by
            # then: measure from a quiet API server, or that burst's tail is in the window.
            wait_until_quiet(emulator, operator, BURST_QUIET_SECONDS, args.startup_timeout,
                             log)
            window_start = time.time()
            boundaries = cron_boundaries(args.cron, window_start + BURST_LEAD_SECONDS,
                                         args.boundaries)
            expected = {(f"s{index:04d}", boundary) for index in range(args.burst)
                        for boundary in boundaries}
            if args.py_spy is not None:
                args.py_spy.mkdir(parents=True, exist_ok=True)
                seconds = boundaries[-1] + args.burst_timeout - time.time()
                profiles = [start_py_spy(pid, seconds, args.py_spy / f"{who}.txt")
                            for who, pid in (("operator", operator.pid),
                                             ("emulator", emulator.pid))]
            cpu_start = cpu_seconds(operator.pid), cpu_seconds(emulator.pid)
            requests_mark = emulator.ask("mark")
            complete = wait_for_burst(emulator, expected, boundaries[-1], args.grace,
                                      args.burst_timeout)
            window_end = time.time()
            for profile in profiles:  # py-spy writes its samples on SIGINT
                profile.send_signal(signal.SIGINT)
            cpu_window = cpu_seconds(operator.pid) - cpu_start[0]
            emulator_cpu = cpu_seconds(emulator.pid) - cpu_start[1]
            rss = peak_rss_mb(operator.pid)
            conflicts, by_verb = emulator.ask("requests_since", requests_mark)
            stored: dict[tuple[str, int], list[float]] = emulator.ask("stored")
        finally:
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(20)
            except subprocess.TimeoutExpired:
                operator.kill()
    finally:
        for profile in profiles:
            profile.wait(30)
        emulator.close()
    lags = [stored[key][0] - key[1] for key in expected if key in stored]
    runs_created = by_verb.get("create flowruns", 0)
    by_boundary = {boundary: sorted(stored[key][0] - boundary for key in expected
                                    if key in stored and key[1] == boundary)
                   for boundary in boundaries}
    return {
        "burst_schedules": args.burst, "cron": args.cron, "operator": args.operator,
        "boundaries": [datetime.fromtimestamp(b, UTC).isoformat() for b in boundaries],
        "complete_after_seconds": args.complete_after,
        "startup_seconds": round(startup, 1),
        "window_seconds": round(window_end - window_start, 1),
        "all_stored_before_timeout": complete,
        "ticks_expected": len(expected), "runs_created": len(lags),
        "duplicates": sum(len(stored[key]) - 1 for key in expected if key in stored),
        "create_conflicts_409": conflicts,
        "missed_ticks": sum(1 for key in expected if key not in stored),
        "lag_p50_seconds": percentile(lags, 0.50) if lags else None,
        "lag_p99_seconds": percentile(lags, 0.99) if lags else None,
        "lag_max_seconds": max(lags) if lags else None,
        "lag_by_boundary_p50_p99_max": {
            datetime.fromtimestamp(b, UTC).isoformat(): [
                round(percentile(v, 0.5), 3), round(percentile(v, 0.99), 3), round(v[-1], 3)]
            for b, v in by_boundary.items() if v},
        "operator_cpu_seconds": round(cpu_window, 2),
        "operator_cpu_ms_per_run": round(1000 * cpu_window / max(1, runs_created), 2),
        "emulator_cpu_seconds": round(emulator_cpu, 2),
        "operator_peak_rss_mb": round(rss, 1),
        "api_requests_per_run": round(sum(by_verb.values()) / max(1, runs_created), 2),
        "api_requests_by_verb": dict(Counter(by_verb).most_common()),
    }


def burst_table(result: dict[str, Any]) -> str:
    """The markdown table of a ``--burst`` run."""
    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 1000:.0f} ms"

    p99 = result["lag_p99_seconds"]
    rows = [
        ("cron Schedules firing together", f"{result['burst_schedules']} × "
         f"`{result['cron']}`, {len(result['boundaries'])} boundaries", ""),
        ("runs created (expected)", f"{result['runs_created']} ({result['ticks_expected']})",
         ""),
        ("boundary → FlowRun stored p50", ms(result["lag_p50_seconds"]), ""),
        ("boundary → FlowRun stored p99", ms(p99), "≤ 5 s " + (
            "✅" if p99 is not None and p99 <= TARGET_BURST_P99_SECONDS else "❌")),
        ("boundary → FlowRun stored max", ms(result["lag_max_seconds"]), ""),
        ("duplicates (409 retries)",
         f"{result['duplicates']} ({result['create_conflicts_409']})",
         "0 " + ("✅" if result["duplicates"] == 0 else "❌")),
        ("missed", str(result["missed_ticks"]),
         "0 " + ("✅" if result["missed_ticks"] == 0 else "❌")),
        ("operator CPU per run", f"{result['operator_cpu_ms_per_run']} ms "
         f"({result['operator_cpu_seconds']} s over {result['window_seconds']} s)", ""),
        ("emulator CPU (test artifact)", f"{result['emulator_cpu_seconds']} s", ""),
        ("start-up (every Schedule woke once)", f"{result['startup_seconds']} s", ""),
        ("operator peak RSS", f"{result['operator_peak_rss_mb']} MB", ""),
        ("API requests per run", str(result["api_requests_per_run"]), ""),
    ]
    lines = ["| measure | Headwater | target |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {target} |" for name, value, target in rows]
    return "\n".join(lines)


def _pauses(summary: dict[str, float] | None) -> str:
    if summary is None:
        return "n/a"
    return (f"{summary['count']:.0f} (total {summary['total_ms']:.0f} ms, longest "
            f"{summary['max_ms']:.0f} ms)")


def table(result: dict[str, Any]) -> str:
    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 1000:.0f} ms"

    p99 = result["lag_p99_seconds"]
    rows = [
        ("schedules × interval", f"{result['schedules']} × {result['interval_seconds']} s",
         ""),
        ("runs end after", f"{result['complete_after_seconds']} s"
         if result["complete_after_seconds"] else "never (stay active)", ""),
        ("window (ticks expected / runs)",
         f"{result['window_seconds']} s ({result['ticks_expected']} / "
         f"{result['runs_in_window']})", ""),
        ("tick → FlowRun lag p50", ms(result["lag_p50_seconds"]), ""),
        ("tick → FlowRun lag p99", ms(p99),
         "≤ 1 s " + ("✅" if p99 is not None and p99 <= TARGET_P99_SECONDS else "❌")),
        ("tick → FlowRun lag max", ms(result["lag_max_seconds"]), ""),
        ("duplicates (409 retries)",
         f"{result['duplicates']} ({result['create_conflicts_409']})",
         "0 " + ("✅" if result["duplicates"] == 0 else "❌")),
        ("missed ticks", str(result["missed_ticks"]),
         "0 " + ("✅" if result["missed_ticks"] == 0 else "❌")),
        *([("FlowRun → pod created p50 / p99 (full operator)",
            f"{ms(result['run_to_pod_p50_seconds'])} / {ms(result['run_to_pod_p99_seconds'])}"
            f"; {result['runs_without_pod_after_grace']} runs without a pod after the "
            "grace", "")] if result.get("runs_without_pod_after_grace") is not None else []),
        ("operator CPU", f"{result['operator_cpu_seconds']} s "
         f"({result['operator_cpu_percent_of_one_core']} % of a core; "
         f"{result['operator_cpu_ms_per_tick']} ms per run created)", ""),
        ("emulator CPU (test artifact)", f"{result['emulator_cpu_seconds']} s "
         f"({result['emulator_cpu_percent_of_one_core']} % of a core)", ""),
        ("start-up (every Schedule woke once)", f"{result['startup_seconds']} s", ""),
        ("load average (1 min) before / after",
         " / ".join(str(v) for v in result["load_average_before_after"]), ""),
        ("operator peak RSS (RSS when the window opened)",
         f"{result['operator_peak_rss_mb']} MB "
         f"({result['operator_rss_at_window_start_mb']} MB)",
         "≤ 150 MB " + ("✅" if result["operator_peak_rss_mb"] <= TARGET_RSS_MB else "❌")),
        ("API requests per tick", str(result["api_requests_per_tick"]), ""),
        ("fire-time computation", f"{result['fire_time_us_per_tick']} µs/tick", ""),
        ("full GC pauses in the window: operator; emulator (artifact)",
         "; ".join(_pauses(result["full_gc_pauses"][who]) for who in ("operator", "emulator")),
         ""),
    ]
    lines = ["| measure | Headwater | target |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {target} |" for name, value, target in rows]
    lines += ["", "| peer (reference, not measured here) | behaviour |", "|---|---|"]
    lines += [f"| {peer} | {text} |" for peer, text in REFERENCE]
    return "\n".join(lines)


def main() -> None:
    """Parse flags, run, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--interval", type=int, default=5, help="seconds between ticks")
    parser.add_argument("--duration", type=float, default=180.0,
                        help="measurement window in seconds")
    parser.add_argument("--quick", action="store_true", help="a ~30 s window")
    parser.add_argument("--operator", choices=("schedules", "full"), default="schedules",
                        help="which controllers the operator process runs (see the docstring)")
    parser.add_argument("--complete-after", type=float, default=2.0, metavar="SECONDS",
                        help="mark each run Completed this long after it is created, as "
                             "a 2-second flow would end (0: runs stay active forever)")
    parser.add_argument("--emulator-gc-unfrozen", action="store_true",
                        help="leave the emulator's stored objects in its garbage "
                             "collector's full passes (see freeze_periodically)")
    parser.add_argument("--keep-seconds", type=float, default=None,
                        help="delete FlowRuns older than this (the run history); off by "
                        "default: each emulator delete scans every object for dependents")
    parser.add_argument("--grace", type=float, default=3.0,
                        help="seconds after the window for its last ticks to land")
    parser.add_argument("--startup-timeout", type=float, default=300.0,
                        help="seconds for every Schedule's daemon to run once")
    parser.add_argument("--py-spy", type=Path, default=None, metavar="DIR",
                        help="sample the operator and the emulator with py-spy over the "
                        "window; collapsed stacks to DIR/operator.txt and DIR/emulator.txt")
    parser.add_argument("--burst", type=int, default=None, metavar="N",
                        help="N cron Schedules `* * * * *` firing on the same minute "
                        "boundaries instead (see the docstring)")
    parser.add_argument("--boundaries", type=int, default=1, choices=(1, 2),
                        help="--burst: how many minute boundaries to measure")
    parser.add_argument("--cron", default=BURST_CRON,
                        help="--burst: the Schedules' expression (default %(default)r; "
                        "'0 * * * *' measures a real hourly fleet, waiting for the hour)")
    parser.add_argument("--burst-timeout", type=float, default=300.0, metavar="SECONDS",
                        help="--burst: how long after the last boundary to wait for runs")
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON")
    parser.add_argument("--run-operator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_operator:
        run_schedule_operator(NAMESPACE)
        return
    if args.quick:
        args.duration = 30.0
    if args.burst is not None:
        main_burst(args)
        return
    result = measure(args)
    result["environment"] = {"python": platform.python_version(),
                             "machine": platform.machine(), "cpus": os.cpu_count(),
                             "command": " ".join(sys.argv),
                             "when": datetime.now(UTC).isoformat(timespec="seconds")}
    print(table(result))
    RESULTS.mkdir(exist_ok=True)
    path = args.json or RESULTS / f"scheduling-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {path}", file=sys.stderr)


def main_burst(args: argparse.Namespace) -> None:
    """``--burst N``: run, print the table and write the JSON."""
    result = measure_burst(args)
    result["environment"] = {"python": platform.python_version(),
                             "machine": platform.machine(), "cpus": os.cpu_count(),
                             "command": " ".join(sys.argv),
                             "when": datetime.now(UTC).isoformat(timespec="seconds"),
                             "load_average": os.getloadavg()}
    print(burst_table(result))
    RESULTS.mkdir(exist_ok=True)
    path = args.json or RESULTS / f"scheduling-burst-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
