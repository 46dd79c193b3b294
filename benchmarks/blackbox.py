"""The operator as a black box: an emulated cluster in a child process, operators as others.

Shared by ``chaos.py`` (random SIGKILLs, then a verdict; ``tests/api/test_chaos.py`` runs
it too) and ``soak.py`` (10,000 runs through the whole lifecycle). Neither looks inside
the operator: it is ``python -m headwater_operator`` in a process of its own
(:func:`operator_command`), talking HTTP to the emulator, so these harnesses keep
measuring whatever the operator's core becomes. Everything they judge is recorded on
the emulator's side, at the moment the emulated API server stores it.

The child process (:func:`serve`) runs, on the emulator's event loop:

* the emulated API server (``headwater_dev``), with Headwater's CRDs;
* a :class:`Ledger`: every FlowRun and pod, stored or deleted, with the wall-clock time
  of each write (store callbacks, called inside the write);
* a :class:`ScriptedKubelet`: each flow-run pod is bound, reported ``Pending``, then
  ``Running``, then ``Succeeded`` (exit 0, a run summary) or, for a seeded fraction of
  attempts, ``Failed`` (exit 1, a ``Failed`` summary), after short seeded delays. It
  knows which pods it has running, so it records every instant at which more pods of a
  concurrency-limited Deployment run than its limit;
* a :class:`Feed`: ad-hoc FlowRuns created at a steady rate or at random (Poisson)
  moments, written straight into the store, as a client's create would be.

The driver talks to it through :class:`ClusterProcess` (``ask("command", *args)``, a
pipe round trip to :class:`ClusterCommands`). The kubelet and the feed write through the
store, not HTTP: a real kubelet and real clients are other processes, and the emulator
serving their HTTP would only add CPU to a process that is already a test artifact.

Constraints: import nothing heavy at the top (``scheduling.py``'s operator process
imports this module for a few helpers, and its RSS is measured); keep what crosses the
pipe plain data (dicts, lists, dataclasses defined here).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.contract import (
    ANNOTATION_SCHEDULED_TIME,
    LABEL_ATTEMPT,
    LABEL_DEPLOYMENT,
    LABEL_FLOW_RUN,
    LABEL_MANAGED_BY,
    LABEL_SCHEDULE,
    MANAGED_BY_VALUE,
)

if TYPE_CHECKING:  # the emulator is imported where it runs: the child process
    from headwater_dev.emulator import BackgroundEmulator
    from headwater_dev.store import ObjectStore, WatchEvent

JsonObject = dict[str, Any]
TERMINAL_RUN_PHASES = frozenset({"Completed", "Failed", "Crashed", "Cancelled"})
"""FlowRun phases that never change again (the API's ``TERMINAL_PHASES``, as strings: this
harness reads the wire, not the operator's models)."""
GROUP_VERSION = ("headwater.dev", "v1alpha1")


# --- small measurements of another process (Linux /proc) --------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """Peak resident set size of a process so far (``VmHWM``; ``VmRSS``: now), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/<pid>/status (Linux only)")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (not empty), e.g. ``fraction=0.99``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


EMULATOR_GC_FREEZE_SECONDS = 5.0


def freeze_periodically(loop: asyncio.AbstractEventLoop) -> None:
    """``gc.freeze()`` now and every few seconds on ``loop`` (the emulator's).

    The emulator keeps every object ever stored (each FlowRun a tree of dicts), so
    without this its full garbage collections walk them all and stall its one event
    loop, for longer the longer the benchmark runs (measured: up to 0.6 s after two
    minutes, which the operator's lag then shows). A real API server keeps objects in
    etcd; freezing what is stored puts the emulator closer to that. Stored objects are
    plain trees, freed by reference counting when deleted, frozen or not.
    """
    gc.freeze()
    loop.call_later(EMULATOR_GC_FREEZE_SECONDS, freeze_periodically, loop)


# --- what the emulator records ------------------------------------------------------------
@dataclass
class RunRecord:
    """One FlowRun name as the API server saw it."""

    name: str
    deployment: str
    schedule: str | None
    tick: int | None
    """The tick (unix seconds) of a scheduled run, from its scheduled-time annotation."""
    created: float
    """Wall-clock time the emulator stored it (its first create)."""
    creates: int = 1
    """How many times an object of this name was created (more than 1: re-created)."""
    phase: str | None = None
    """Its latest ``status.phase`` (kept when it is deleted)."""
    ended: float | None = None
    """When the emulator first stored a terminal phase for it."""
    deleted: float | None = None


@dataclass
class PodRecord:
    """One pod name (``<run>-<attempt>``) as the API server and the kubelet saw it."""

    name: str
    run: str
    attempt: int
    deployment: str
    created: float
    creates: int = 1
    running: float | None = None
    """When the kubelet reported it Running."""
    outcome: str | None = None
    """``Succeeded`` or ``Failed``, as the kubelet decided and reported it."""
    finished: float | None = None
    deleted: float | None = None


@dataclass
class Violation:
    """An instant at which more pods of a limited Deployment ran than its limit."""

    at: float
    deployment: str
    limit: int
    running: list[str]


@dataclass
class LedgerSnapshot:
    """Everything the ledger and the kubelet recorded, as plain data for the driver."""

    runs: dict[str, RunRecord]
    pods: dict[str, PodRecord]
    violations: list[Violation]
    max_running: dict[str, int]
    """The most pods of each Deployment that ran at one instant."""


class Ledger:
    """Store callbacks recording every FlowRun and pod write, at the moment of the write.

    Called on the emulator's loop, inside the store's write: they only update dicts.
    """

    def __init__(self) -> None:
        self.runs: dict[str, RunRecord] = {}
        self.pods: dict[str, PodRecord] = {}
        self.lock = threading.Lock()

    def on_flowrun(self, event: WatchEvent) -> None:
        """Record a FlowRun create, phase change or delete."""
        now = time.time()
        obj = event.object
        meta = obj["metadata"]
        name = str(meta["name"])
        with self.lock:
            record = self.runs.get(name)
            if event.type == "ADDED":
                if record is not None:
                    record.creates += 1
                    return
                labels = meta.get("labels") or {}
                self.runs[name] = record = RunRecord(
                    name=name, deployment=str((obj.get("spec") or {}).get(
                        "deploymentRef", {}).get("name", "")),
                    schedule=labels.get(LABEL_SCHEDULE), tick=_tick(meta), created=now)
            if record is None:
                return
            phase = (obj.get("status") or {}).get("phase")
            if phase:
                record.phase = str(phase)
                if record.ended is None and phase in TERMINAL_RUN_PHASES:
                    record.ended = now
            if event.type == "DELETED":
                record.deleted = now

    def on_pod(self, event: WatchEvent) -> None:
        """Record a flow-run pod's create or delete (the kubelet records the rest)."""
        meta = event.object["metadata"]
        labels = meta.get("labels") or {}
        if labels.get(LABEL_MANAGED_BY) != MANAGED_BY_VALUE:
            return
        name = str(meta["name"])
        now = time.time()
        with self.lock:
            record = self.pods.get(name)
            if event.type == "ADDED":
                if record is not None:
                    record.creates += 1
                    return
                self.pods[name] = PodRecord(
                    name=name, run=str(labels.get(LABEL_FLOW_RUN, "")),
                    attempt=int(labels.get(LABEL_ATTEMPT, "0") or 0),
                    deployment=str(labels.get(LABEL_DEPLOYMENT, "")), created=now)
            elif event.type == "DELETED" and record is not None:
                record.deleted = now

    def pod_transition(self, name: str, *, running: float | None = None,
                       outcome: str | None = None, finished: float | None = None) -> None:
        """The kubelet reported ``name`` Running, or finished with ``outcome``."""
        with self.lock:
            record = self.pods.get(name)
            if record is None:
                return
            if running is not None:
                record.running = running
            if outcome is not None:
                record.outcome, record.finished = outcome, finished


def _tick(meta: Mapping[str, Any]) -> int | None:
    stamp = (meta.get("annotations") or {}).get(ANNOTATION_SCHEDULED_TIME)
    if not stamp:
        return None
    return int(datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp())


# --- the kubelet stand-in -------------------------------------------------------------------
@dataclass(frozen=True)
class KubeletScript:
    """How the kubelet stand-in treats pods: delays (seconds) and the failure fraction.

    Each pod's delays and outcome come from a generator seeded with ``seed`` and the
    pod's name, so a rerun with the same seed fails the same attempts however the
    timing falls.
    """

    seed: int = 0
    fail_fraction: float = 0.0
    bind_after: tuple[float, float] = (0.02, 0.2)
    start_after: tuple[float, float] = (0.02, 0.3)
    run_for: tuple[float, float] = (0.3, 2.0)
    limits: Mapping[str, int] = field(default_factory=dict)
    """Concurrency limit of each limited Deployment (name → limit)."""

    def plan(self, pod: str) -> tuple[float, float, float, bool]:
        """``(bind delay, start delay, run time, fails)`` of one pod."""
        rng = random.Random(f"{self.seed}/{pod}")
        return (rng.uniform(*self.bind_after), rng.uniform(*self.start_after),
                rng.uniform(*self.run_for), rng.random() < self.fail_fraction)


class ScriptedKubelet:
    """Moves each flow-run pod through Pending → Running → Succeeded/Failed on a timer.

    A pod that is gone or being deleted when its next step comes is left alone. The
    Running set per Deployment is this kubelet's own: a pod enters it when reported
    Running and leaves it when reported terminal or deleted, so a concurrency violation
    is an overlap of the kubelet's own reports.
    """

    def __init__(self, store: ObjectStore, namespace: str, script: KubeletScript,
                 ledger: Ledger) -> None:
        self.store = store
        self.namespace = namespace
        self.script = script
        self.ledger = ledger
        self.pods = store.resource("", "v1", "pods")
        self.running: dict[str, set[str]] = {}
        self.max_running: dict[str, int] = {}
        self.violations: list[Violation] = []

    def on_pod(self, event: WatchEvent) -> None:
        """Store callback: plan a new pod's life; forget a deleted one."""
        meta = event.object["metadata"]
        labels = meta.get("labels") or {}
        if labels.get(LABEL_MANAGED_BY) != MANAGED_BY_VALUE:
            return
        name, deployment = str(meta["name"]), str(labels.get(LABEL_DEPLOYMENT, ""))
        if event.type == "DELETED":
            self.running.get(deployment, set()).discard(name)
            return
        if event.type != "ADDED":
            return
        bind, start, run, fails = self.script.plan(name)
        loop = asyncio.get_running_loop()  # the store is mid-write: act later
        loop.call_later(bind, self._bind, name)
        loop.call_later(bind + start, self._run, name, deployment)
        loop.call_later(bind + start + run, self._finish, name, deployment, fails)

    def _live(self, name: str) -> JsonObject | None:
        from headwater_dev.store import ApiError

        try:
            pod = self.store.get(self.pods, self.namespace, name)
        except ApiError:
            return None
        return None if pod["metadata"].get("deletionTimestamp") else pod

    def _report(self, pod: JsonObject, status: JsonObject) -> None:
        from headwater_dev import podstatus
        from headwater_dev.store import ApiError

        # As the kubelet: the whole status, unconditionally (no resourceVersion).
        pod["status"] = podstatus.with_qos_class_of(status, pod)
        pod["metadata"].pop("resourceVersion", None)
        with contextlib.suppress(ApiError):  # deleted meanwhile
            self.store.replace(self.pods, self.namespace, pod["metadata"]["name"], pod,
                               subresource="status")

    def _names(self, pod: JsonObject) -> dict[str, str]:
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        return {"container": str(container.get("name") or "flow"),
                "image": str(container.get("image") or "example/flow:1")}

    def _bind(self, name: str) -> None:
        from headwater_dev import podstatus
        from headwater_dev.store import ApiError

        pod = self._live(name)
        if pod is None or (pod.get("spec") or {}).get("nodeName"):
            return
        with contextlib.suppress(ApiError):
            self.store.bind_pod(self.pods, self.namespace, name, {
                "apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}})
        pod = self._live(name)
        if pod is not None:
            self._report(pod, podstatus.scheduled(datetime.now(UTC), **self._names(pod)))

    def _run(self, name: str, deployment: str) -> None:
        from headwater_dev import podstatus

        pod = self._live(name)
        if pod is None:
            return
        now = time.time()
        names = self._names(pod)
        self._report(pod, podstatus.running(datetime.fromtimestamp(now, UTC),
                                            container=names["container"],
                                            image=names["image"]))
        running = self.running.setdefault(deployment, set())
        running.add(name)
        self.max_running[deployment] = max(self.max_running.get(deployment, 0), len(running))
        limit = self.script.limits.get(deployment)
        if limit is not None and len(running) > limit:
            self.violations.append(Violation(now, deployment, limit, sorted(running)))
        self.ledger.pod_transition(name, running=now)

    def _finish(self, name: str, deployment: str, fails: bool) -> None:
        from headwater_dev import podstatus
        from headwater_dev.kubelet import default_summary

        self.running.get(deployment, set()).discard(name)
        pod = self._live(name)
        if pod is None:
            return
        now = time.time()
        names = self._names(pod)
        moment = datetime.fromtimestamp(now, UTC)
        status = (podstatus.failed(moment, 1, default_summary(
            "Failed", message="chaos: this attempt fails on purpose"), **names) if fails
            else podstatus.succeeded(moment, default_summary(), **names))
        self._report(pod, status)
        self.ledger.pod_transition(name, outcome="Failed" if fails else "Succeeded",
                                   finished=now)


# --- ad-hoc runs --------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedPlan:
    """Ad-hoc FlowRuns to create: ``count`` (None: until stopped) at ``rate`` per second.

    ``poisson``: at random moments (exponential gaps, seeded); otherwise exactly every
    ``1/rate`` seconds from the start. Each run goes to one of ``deployments``, chosen
    with the weights given.
    """

    rate: float
    deployments: Sequence[tuple[str, float]]
    count: int | None = None
    poisson: bool = False
    seed: int = 0
    prefix: str = "adhoc"


class Feed:
    """Creates the runs of a :class:`FeedPlan` on the emulator's loop."""

    def __init__(self, store: ObjectStore, namespace: str, plan: FeedPlan) -> None:
        self.store = store
        self.namespace = namespace
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.created = 0
        self.started = time.monotonic()
        self.due = self.started
        self.handle: asyncio.TimerHandle | None = None
        self.flowruns = store.resource(*GROUP_VERSION, "flowruns")
        self.names = [name for name, _ in plan.deployments]
        self.weights = [weight for _, weight in plan.deployments]

    def start(self) -> None:
        self._schedule_next()

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _schedule_next(self) -> None:
        if self.plan.count is not None and self.created >= self.plan.count:
            self.handle = None
            return
        gap = (self.rng.expovariate(self.plan.rate) if self.plan.poisson
               else 1.0 / self.plan.rate)
        self.due += gap
        loop = asyncio.get_running_loop()
        # Absolute times, so a late create does not delay the ones after it.
        self.handle = loop.call_at(loop.time() + max(0.0, self.due - time.monotonic()),
                                   self._create)

    def _create(self) -> None:
        deployment = self.rng.choices(self.names, self.weights)[0]
        self.created += 1
        self.store.create(self.flowruns, self.namespace, {
            "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": f"{self.plan.prefix}-{self.created:06d}"},
            "spec": {"deploymentRef": {"name": deployment}}})
        self._schedule_next()


# --- the child process --------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterConfig:
    """What the child process sets up before it answers: namespace and kubelet script."""

    namespace: str
    kubelet: KubeletScript
    gc_freeze: bool = True


class ClusterCommands:
    """What the driver may ask of the cluster process; each runs on the emulator's loop."""

    def __init__(self, api: BackgroundEmulator, config: ClusterConfig, ledger: Ledger,
                 kubelet: ScriptedKubelet) -> None:
        self.api = api
        self.config = config
        self.ledger = ledger
        self.kubelet = kubelet
        self.feed: Feed | None = None

    @property
    def store(self) -> ObjectStore:
        return self.api.emulator.store

    def apply(self, objects: Sequence[JsonObject]) -> None:
        """Create each object (``apiVersion``/``kind`` decide the resource) in the namespace."""
        plurals = {"Namespace": ("", "v1", "namespaces"), "Flow": (*GROUP_VERSION, "flows"),
                   "Deployment": (*GROUP_VERSION, "deployments"),
                   "Schedule": (*GROUP_VERSION, "schedules"),
                   "FlowRun": (*GROUP_VERSION, "flowruns"),
                   "Block": (*GROUP_VERSION, "blocks"),
                   "Automation": (*GROUP_VERSION, "automations"),
                   "Secret": ("", "v1", "secrets")}

        def write() -> None:
            for body in objects:
                spec = self.store.resource(*plurals[body["kind"]])
                self.store.create(spec, self.config.namespace if spec.namespaced else None,
                                  body)
        self.api.call(write)

    def start_feed(self, plan: FeedPlan) -> None:
        """Start creating ad-hoc runs (one feed at a time)."""
        def start() -> None:
            self.feed = Feed(self.store, self.config.namespace, plan)
            self.feed.start()
        self.api.call(start)

    def stop_feed(self) -> int:
        """Stop the feed; how many runs it created."""
        def stop() -> int:
            if self.feed is None:
                return 0
            self.feed.stop()
            return self.feed.created
        return self.api.call(stop)

    def fed(self) -> int:
        """How many runs the feed has created so far."""
        return self.api.call(lambda: 0 if self.feed is None else self.feed.created)

    def schedules(self) -> list[JsonObject]:
        """Every Schedule as stored (spec, status, creationTimestamp)."""
        return self.api.objects("schedules", self.config.namespace)

    def suspend_schedules(self) -> None:
        """Set ``spec.suspend`` on every Schedule (a user's merge patch)."""
        def write() -> None:
            spec = self.store.resource(*GROUP_VERSION, "schedules")
            for obj in self.store.list_objects(spec, self.config.namespace)[0]:
                self.store.patch(spec, self.config.namespace, obj["metadata"]["name"],
                                 "merge", {"spec": {"suspend": True}})
        self.api.call(write)

    def counts(self) -> dict[str, int]:
        """How many objects of each kind the emulator holds now (all namespaces)."""
        def count() -> dict[str, int]:
            found: dict[str, int] = {}
            for spec, _ in self.store.iter_objects():
                found[spec.plural] = found.get(spec.plural, 0) + 1
            return found
        return self.api.call(count)

    def request_mark(self) -> int:
        """A position in the emulator's request log to count from (:meth:`requests_since`)."""
        return self.api.call(self.api.requests.mark)

    def requests_since(self, mark: int) -> dict[str, int]:
        """Requests served since ``mark``, by ``"verb resource"`` (errors included).

        Every HTTP request here is an operator's: the kubelet stand-in and the feed write
        to the store directly.
        """
        def count() -> dict[str, int]:
            found: dict[str, int] = {}
            for record in self.api.requests.since(mark):
                key = f"{record.verb} {record.resource}"
                found[key] = found.get(key, 0) + 1
            return found
        return self.api.call(count)

    def unfinished(self) -> tuple[int, int]:
        """Runs recorded but not terminal, and pods the kubelet has not finished."""
        with self.ledger.lock:
            runs = sum(1 for r in self.ledger.runs.values()
                       if r.phase not in TERMINAL_RUN_PHASES and r.deleted is None)
            pods = sum(1 for p in self.ledger.pods.values()
                       if p.outcome is None and p.deleted is None)
        return runs, pods

    def snapshot(self) -> LedgerSnapshot:
        """A copy of everything recorded so far."""
        def copy() -> LedgerSnapshot:
            with self.ledger.lock:
                return LedgerSnapshot(
                    runs={k: RunRecord(**vars(v)) for k, v in self.ledger.runs.items()},
                    pods={k: PodRecord(**vars(v)) for k, v in self.ledger.pods.items()},
                    violations=list(self.kubelet.violations),
                    max_running=dict(self.kubelet.max_running))
        return self.api.call(copy)


def serve(conn: Connection, config: ClusterConfig) -> None:
    """Child process: the emulator, ledger and kubelet, answering ``(command, args)``.

    Sends the kubeconfig path first; ``("stop", ())`` ends it. A command that raises
    sends back ``("error", traceback)`` instead of hanging the driver.
    """
    from headwater_dev.emulator import BackgroundEmulator

    ledger = Ledger()
    with BackgroundEmulator() as api:
        store = api.emulator.store
        kubelet = ScriptedKubelet(store, config.namespace, config.kubelet, ledger)
        pods = store.resource("", "v1", "pods")
        api.call(store.subscribe, store.resource(*GROUP_VERSION, "flowruns"),
                 ledger.on_flowrun)
        api.call(store.subscribe, pods, ledger.on_pod)
        api.call(store.subscribe, pods, kubelet.on_pod)
        if config.gc_freeze:
            api.call(lambda: freeze_periodically(asyncio.get_running_loop()))
        commands = ClusterCommands(api, config, ledger, kubelet)
        conn.send(str(api.kubeconfig_path))
        while True:
            command, arguments = conn.recv()
            if command == "stop":
                return
            try:
                conn.send(("ok", getattr(commands, command)(*arguments)))
            except Exception:
                conn.send(("error", traceback.format_exc()))


class ClusterProcess:
    """The driver's handle on the cluster process: each method is a command round trip."""

    def __init__(self, config: ClusterConfig) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, config), daemon=True,
                                       name="headwater-blackbox-cluster")
        self.process.start()
        self.kubeconfig_path = Path(self._conn.recv())

    @property
    def pid(self) -> int:
        """The cluster process's id (for its CPU time)."""
        assert self.process.pid is not None
        return self.process.pid

    def ask(self, command: str, *arguments: Any) -> Any:
        """Run one :class:`ClusterCommands` method in the cluster process."""
        self._conn.send((command, arguments))
        status, value = self._conn.recv()
        if status == "error":
            raise RuntimeError(f"the cluster process failed running {command}:\n{value}")
        return value

    def close(self) -> None:
        """Stop the cluster process."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self._conn.send(("stop", ()))
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()

    def __enter__(self) -> ClusterProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# --- the operator processes ---------------------------------------------------------------
def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (for an operator's probe server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


LEADER_ELECTION = ("--leader-elect-lease-duration", "8s", "--leader-elect-renew-deadline", "6s",
                   "--leader-elect-retry-period", "2s")
"""Leader election's durations for the black-box runs: about half the chart's 15/10/2 s,
so that a run of 100 kills, each costing a Lease expiry, takes minutes less. Takeover
with the chart's own durations is what ``tests/api/test_ha_replicas.py`` proves."""


def operator_command(replica: int, replicas: int, namespace: str, health_port: int
                     ) -> list[str]:
    """The command line of operator replica ``replica`` (0-based) of ``replicas``.

    Every replica is started as the chart starts it: with ``--leader-elect`` (the Lease in
    ``namespace``), so one leads and the others stand by. A restarted replica has a new
    identity and, like a restarted container, waits for its predecessor's Lease to expire.
    """
    del replica, replicas  # the same flags for every replica, as the chart's
    return [sys.executable, "-m", "headwater_operator", "--namespace", namespace,
            "--metrics-port", "0", "--health-port", str(health_port),
            "--leader-elect", "--leader-elect-resource-namespace", namespace,
            *LEADER_ELECTION]


@dataclass
class Replica:
    """One operator process slot: its current process and its probe port."""

    index: int
    health_port: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    starts: int = 0


class OperatorFleet:
    """``replicas`` operator processes against the cluster; start, SIGKILL, restart each.

    Each replica logs to ``<log_dir>/operator-<index>.log``, appended across restarts (a
    file, not a pipe: nobody reads a pipe during the run, and once its buffer filled the
    operator's next log line would block its event loop).
    """

    def __init__(self, kubeconfig: Path, namespace: str, replicas: int, log_dir: Path,
                 command: Callable[[int, int, str, int], list[str]] = operator_command
                 ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_dir = log_dir
        self.command = command
        self.replicas = [Replica(index, free_port()) for index in range(replicas)]

    def log_path(self, index: int) -> Path:
        return self.log_dir / f"operator-{index}.log"

    def start(self, index: int) -> None:
        """Start replica ``index`` (it must not be running)."""
        replica = self.replicas[index]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        argv = self.command(index, len(self.replicas), self.namespace, replica.health_port)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(index).open("ab") as sink:
            sink.write(f"\n=== start {replica.starts + 1} at {time.time():.3f}\n".encode())
            sink.flush()
            replica.process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                               stderr=sink)
        replica.started = time.monotonic()
        replica.starts += 1

    def start_all(self) -> None:
        for replica in self.replicas:
            self.start(replica.index)

    def pid(self, index: int) -> int:
        process = self.replicas[index].process
        assert process is not None
        return process.pid

    def alive(self, index: int) -> bool:
        process = self.replicas[index].process
        return process is not None and process.poll() is None

    def kill(self, index: int) -> None:
        """SIGKILL replica ``index`` and reap it."""
        process = self.replicas[index].process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def ready(self, index: int) -> bool:
        """Whether replica ``index`` answers ``/readyz`` with 200."""
        return self.readiness(index) is not None

    def readiness(self, index: int) -> str | None:
        """What replica ``index``'s ``/readyz`` says (``ok (leader)``, ``ok (standby)``), or
        None when it does not answer 200."""
        url = f"http://127.0.0.1:{self.replicas[index].health_port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as answer:
                if int(answer.status) != 200:
                    return None
                return str(answer.read().decode(errors="replace").strip())
        except (urllib.error.URLError, OSError):
            return None

    def wait_leader(self, timeout: float) -> int | None:
        """Until some replica leads (its index), or ``timeout`` passed (None).

        Raises if a replica exited meanwhile: that is the operator crashing, not chaos.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for replica in self.replicas:
                if not self.alive(replica.index):
                    tail = self.log_path(replica.index).read_text(errors="replace")[-3000:]
                    raise RuntimeError(
                        f"operator replica {replica.index} exited by itself:\n{tail}")
                if "leader" in (self.readiness(replica.index) or ""):
                    return replica.index
            time.sleep(0.1)
        return None

    def wait_ready(self, index: int, timeout: float) -> bool:
        """Until replica ``index`` is ready (True) or ``timeout`` passed (False).

        Raises if the process exited meanwhile: that is the operator crashing, not chaos.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive(index):
                tail = self.log_path(index).read_text(errors="replace")[-3000:]
                raise RuntimeError(f"operator replica {index} exited by itself:\n{tail}")
            if self.ready(index):
                return True
            time.sleep(0.1)
        return False

    def stop_all(self, timeout: float = 20.0) -> None:
        """SIGTERM every replica, SIGKILL what has not exited within ``timeout``."""
        for replica in self.replicas:
            if replica.process is not None and replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            if replica.process is None:
                continue
            try:
                replica.process.wait(timeout)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()


# --- objects ------------------------------------------------------------------------------
def namespace_body(name: str) -> JsonObject:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def flow_body(name: str) -> JsonObject:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "Flow",
            "metadata": {"name": name},
            "spec": {"image": "example/flow:1", "entrypoint": f"flows/{name}.py:{name}"}}


def deployment_body(name: str, flow: str, **spec: Any) -> JsonObject:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
            "metadata": {"name": name}, "spec": {"flowRef": {"name": flow}, **spec}}


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
