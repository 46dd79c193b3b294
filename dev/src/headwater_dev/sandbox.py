"""``headwater dev``: the whole Headwater loop on a laptop, with only Python.

One process holds all the parts a cluster would:

* the **embedded Kubernetes API** (:mod:`.emulator`, the one the api tests use) serving
  the CRDs of ``crds/``, with a kubeconfig written to the state directory so ``kubectl``
  and ``headwater get runs`` work against it while the sandbox runs;
* the **real operator** (:mod:`headwater_operator.runner`, every handler), in-process;
* a **process kubelet** (:mod:`.process_kubelet`) that runs each flow-run pod's command
  (``headwater execute``) as a local subprocess, so the flow code really runs;
* one **home** under the state directory, ``<state dir>/home``: every pod's
  ``HEADWATER_HOME`` and the operator's default run store (``--run-store``), so results,
  asset records and run records share one root that ``headwater describe run``,
  ``logs`` and ``lineage`` read after the pods are gone;
* ``/metrics`` (the operator's registry) and a **live table** of the FlowRuns;
* the **web UI** (``--ui``, the default unless ``--until-complete``:
  :mod:`.sandbox_ui`), at the ``UI:`` address the banner prints.

It applies the manifests it is given (default: the examples), and stops on Ctrl-C or
SIGTERM, after ``--duration`` seconds, or — with ``--until-complete`` — once every FlowRun
is terminal and every Schedule due in its first 30 seconds has fired. The exit code is 1 when a
run ended Failed or Crashed (or ``--until-complete`` ran out of time), 2 for unusable
manifests or options, else 0; stopped by a signal, it is the shell's 128 + the signal
(130 for Ctrl-C, 143 for SIGTERM), after the same orderly shutdown: flow processes get
SIGTERM and a few seconds, the operator stops, the final table is printed. A second
signal during that shutdown is only noted.

It is a development tool: container images are ignored and the flow code of the
checkout runs with the sandbox's own Python. It says so when it starts.

Heavy imports (the emulator, kopf, aiohttp) happen in :meth:`Sandbox.run`, so registering the
``dev`` command costs the rest of the ``headwater`` CLI nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml
from headwater import contract
from headwater_operator import shutdown
from headwater_operator.cli.output import human_duration, parse_time, render_table

if TYPE_CHECKING:
    from headwater_dev.process_kubelet import ProcessKubelet

JsonObject = dict[str, Any]

DEFAULT_EXAMPLES = ("examples/quickstart", "examples/pipeline", "examples/assets",
                    "examples/blocks", "examples/chain")
DEFAULT_UNTIL_COMPLETE_CAP = 300.0
"""Seconds ``--until-complete`` waits at most when ``--duration`` does not say."""
SCHEDULE_HORIZON_SECONDS = 30.0
"""``--until-complete`` waits for the Schedules due this soon after the start (a 10 s
interval fires; a 15-minute cron, usually not: the session's length must not hang on
where the wall clock happens to be)."""
EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE = 0, 1, 2
FAILED_PHASES = frozenset({"Failed", "Crashed"})
APPLY_ORDER = {"Namespace": 0, "Secret": 1, "Block": 2, "Variable": 3,
               "ConcurrencyLimit": 3, "Flow": 4, "Deployment": 5, "Automation": 5, "Schedule": 6,
               "FlowRun": 7}
"""Referenced objects first, so no Deployment waits for its Flow (or a run for its
Blocks and their Secrets) to appear; Automations before any run, since only transitions
after an Automation exists fire it."""
RUN_HEADERS = ("NAME", "DEPLOYMENT", "PHASE", "ATTEMPTS", "SCHEDULED", "DURATION", "REASON")
BANNER = (
    "headwater dev: a local DEVELOPMENT sandbox, not a cluster. An embedded Kubernetes API,\n"
    "the real Headwater operator, and a stand-in kubelet that runs each flow-run pod's\n"
    "command as a local process. Container images are IGNORED: the flow code of {workdir}\n"
    "runs with {python}."
)


class SandboxError(Exception):
    """A problem the user must fix before the sandbox can start (exit code 2)."""


# --- manifests ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Manifest:
    """One document to apply, and where it came from (for error messages)."""

    source: str
    doc: JsonObject

    @property
    def kind(self) -> str:
        """The document's ``kind``."""
        return str(self.doc.get("kind") or "")

    @property
    def display_name(self) -> str:
        """``Kind/name`` (``Kind/prefix*`` for a ``generateName``)."""
        meta = self.doc.get("metadata") or {}
        return f"{self.kind}/{meta.get('name') or str(meta.get('generateName', '')) + '*'}"


def find_workdir(start: Path) -> Path:
    """The checkout holding ``examples/flows`` at or above ``start``; else ``start``."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / "examples" / "flows").is_dir():
            return candidate
    return start


def manifest_files(path: Path) -> list[Path]:
    """``path`` itself, or a directory's ``*.yaml``/``*.yml`` but not kustomization.yaml."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SandboxError(f"-f {path}: no such file or directory")
    return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")
                  and p.stem != "kustomization")


def load_manifests(paths: Iterable[Path], namespace: str) -> list[Manifest]:
    """Every Headwater document under ``paths``, validated, in apply order.

    Raises :class:`SandboxError` naming the file, the document and the field for YAML
    that does not parse and for manifests the API server (or the operator) would reject.
    """
    from headwater_operator.api.validation import validate_manifest

    manifests: list[Manifest] = []
    for path in paths:
        for file in manifest_files(path):
            try:
                docs = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
            except yaml.YAMLError as exc:
                raise SandboxError(f"{file}: not valid YAML: {exc}") from exc
            for index, doc in enumerate(docs):
                if not isinstance(doc, dict):
                    continue
                source = f"{file}#{index}"
                if doc.get("kind") == "Namespace":
                    manifests.append(Manifest(source, doc))
                    continue
                if (doc.get("apiVersion"), doc.get("kind")) == ("v1", "Secret"):
                    # Checked by the embedded API server when applied, as by a real one.
                    doc.setdefault("metadata", {}).setdefault("namespace", namespace)
                    manifests.append(Manifest(source, doc))
                    continue
                if doc.get("apiVersion") != contract.API_VERSION:
                    raise SandboxError(f"{source}: the sandbox applies only Headwater objects "
                                       f"({contract.API_VERSION}), Secrets and Namespaces, "
                                       f"not {doc.get('apiVersion')} {doc.get('kind')}")
                errors = validate_manifest(doc)
                if errors:
                    raise SandboxError(f"{source} ({doc.get('kind')}): " + "; ".join(errors))
                doc.setdefault("metadata", {}).setdefault("namespace", namespace)
                manifests.append(Manifest(source, doc))
    return sorted(manifests, key=lambda m: APPLY_ORDER.get(m.kind, len(APPLY_ORDER)))


def namespaces_of(manifests: Iterable[Manifest], default: str) -> list[str]:
    """The namespaces the operator must watch: the default plus every one used."""
    found = {default}
    for manifest in manifests:
        meta = manifest.doc.get("metadata") or {}
        found.add(str(meta["name"] if manifest.kind == "Namespace" else meta["namespace"]))
    return sorted(found)


# --- what the table and the exit code say --------------------------------------------------
def _phase(run: Mapping[str, Any]) -> str:
    return str((run.get("status") or {}).get("phase") or "Scheduled")


def run_row(run: Mapping[str, Any], now: datetime) -> tuple[str, ...]:
    """One table row: NAME DEPLOYMENT PHASE ATTEMPTS SCHEDULED DURATION REASON.

    DURATION is the final ``durationSeconds``, or the time since the start while running.
    """
    from headwater_operator.api import TERMINAL_PHASES  # on use: `headwater --help` stays fast

    spec, status = run.get("spec") or {}, run.get("status") or {}
    ref = (spec.get("deploymentRef") or {}).get("name") or (
        f"flow/{(spec.get('flowRef') or {}).get('name')}")
    duration = status.get("durationSeconds")
    started = parse_time(status.get("startTime"))
    if isinstance(duration, int | float):
        shown = human_duration(duration)
    elif started is not None and _phase(run) not in TERMINAL_PHASES:
        shown = human_duration((now - started).total_seconds())
    else:
        shown = "-"
    scheduled = parse_time(status.get("scheduledTime") or spec.get("scheduledTime"))
    return (str(run["metadata"]["name"]), str(ref), _phase(run),
            str(status.get("attempts") or 0),
            scheduled.strftime("%Y-%m-%d %H:%M:%S") if scheduled else "-", shown,
            str(status.get("reason") or "-"))


def sorted_runs(runs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Runs in creation order (then by name): the order they happened in."""
    return sorted(runs, key=lambda r: (str(r["metadata"].get("creationTimestamp") or ""),
                                       str(r["metadata"]["name"])))


def render_runs(runs: Iterable[Mapping[str, Any]], now: datetime) -> str:
    """The table of runs (``No FlowRuns yet.`` when there are none)."""
    rows = [run_row(run, now) for run in sorted_runs(runs)]
    return render_table(RUN_HEADERS, rows) if rows else "No FlowRuns yet.\n"


def change_line(run: Mapping[str, Any], now: datetime) -> str:
    """One log line for a run's new state (the non-TTY form of the table)."""
    name, deployment, phase, attempts, _, duration, reason = run_row(run, now)
    return (f"{now.strftime('%H:%M:%S')}  {name}  deployment={deployment}  phase={phase}  "
            f"attempts={attempts}  duration={duration}  reason={reason}\n")


def failed_runs(runs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of the runs that ended Failed or Crashed."""
    return [str(r["metadata"]["name"]) for r in runs if _phase(r) in FAILED_PHASES]


def _ready(schedule: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (schedule.get("status") or {}).get("conditions") or ())


def schedule_settled(schedule: Mapping[str, Any], runs: Iterable[Mapping[str, Any]],
                     due_by: datetime) -> bool:
    """Whether ``--until-complete`` may stop waiting for ``schedule``.

    True once it has fired (a FlowRun carries its label), when it cannot fire (suspended
    or not Ready), or when its next tick falls after ``due_by`` (a daily
    schedule). False while the operator has not processed it yet.
    """
    meta, spec = schedule.get("metadata") or {}, schedule.get("spec") or {}
    if any((r["metadata"].get("labels") or {}).get(contract.LABEL_SCHEDULE) == meta.get("name")
           and r["metadata"].get("namespace") == meta.get("namespace") for r in runs):
        return True
    conditions = (schedule.get("status") or {}).get("conditions") or ()
    if spec.get("suspend") or (conditions and not _ready(schedule)):
        return True
    next_tick = parse_time((schedule.get("status") or {}).get("nextScheduleTime"))
    return next_tick is not None and next_tick > due_by


def is_complete(runs: Sequence[Mapping[str, Any]], schedules: Iterable[Mapping[str, Any]],
                due_by: datetime, deployments: Iterable[Mapping[str, Any]] = ()) -> bool:
    """Every FlowRun terminal, every Schedule settled (see :func:`schedule_settled`), and
    every run the Deployments' triggers call for created (an upstream run has ended, its
    downstream run is not there yet: docs/triggers.md)."""
    from headwater_operator.api import TERMINAL_PHASES  # on use: `headwater --help` stays fast
    from headwater_operator.triggering import pending_runs

    return (all(_phase(run) in TERMINAL_PHASES for run in runs)
            and all(schedule_settled(s, runs, due_by) for s in schedules)
            and not pending_runs([d for d in deployments
                                  if (d.get("spec") or {}).get("triggers")],
                                 runs, datetime.now(UTC)))


def metrics_summary(registry: Any) -> str:
    """One line from the operator's metrics: finished runs by phase, active runs, API calls."""
    finished: dict[str, float] = {}
    active = api = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "headwater_runs_total":
                phase = sample.labels.get("phase", "?")
                finished[phase] = finished.get(phase, 0.0) + sample.value
            elif sample.name == "headwater_active_runs":
                active += sample.value
            elif sample.name == "headwater_kubernetes_api_requests_total":
                api += sample.value
    runs = " ".join(f"{phase}={int(n)}" for phase, n in sorted(finished.items())) or "none"
    return (f"metrics: headwater_runs_total {runs}; headwater_active_runs {int(active)}; "
            f"operator API requests {int(api)}")


class RunTable:
    """The live table: redrawn in place on a terminal, one line per change otherwise."""

    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self._drawn_lines = 0
        self._seen: dict[str, tuple[str, ...]] = {}

    def update(self, runs: Sequence[Mapping[str, Any]], now: datetime) -> None:
        """Show the current state of ``runs``."""
        if self.tty:
            text = render_runs(runs, now)
            # Cursor up over the previous drawing, clear to the end of the screen, redraw.
            prefix = f"\x1b[{self._drawn_lines}F\x1b[J" if self._drawn_lines else ""
            self.out.write(prefix + text)
            self._drawn_lines = text.count("\n")
        else:
            for run in sorted_runs(runs):
                name, _, phase, attempts, _, _, reason = run_row(run, now)
                if self._seen.get(name) != (phase, attempts, reason):
                    self._seen[name] = (phase, attempts, reason)
                    self.out.write(change_line(run, now))
        self.out.flush()

    def final(self, runs: Sequence[Mapping[str, Any]], now: datetime) -> None:
        """The closing table, printed in full whatever the output is."""
        if self.tty and self._drawn_lines:
            self.out.write(f"\x1b[{self._drawn_lines}F\x1b[J")
        self.out.write("\n" + render_runs(runs, now))
        self.out.flush()


# --- the sandbox --------------------------------------------------------------------------
@dataclass
class SandboxOptions:
    """Everything ``headwater dev`` is told (see :func:`add_arguments`)."""

    manifests: list[Path]
    workdir: Path
    state_dir: Path
    duration: float | None = None
    until_complete: bool = False
    port: int | None = None
    metrics_port: int | None = 0
    namespace: str = "default"
    refresh_seconds: float = 0.5
    out: TextIO = field(default_factory=lambda: sys.stdout)
    tty: bool | None = None
    ui: bool = False
    """Serve the web UI (:mod:`.sandbox_ui`) while the sandbox runs."""
    ui_port: int = 0
    """The UI's port (0: a free one)."""
    pod_python: str = sys.executable
    """The interpreter that runs the flow-run pods (``--pod-python``): by default the
    sandbox's own; another environment's for flows needing what this one lacks
    (examples/dbt runs with ``.venv-dbt/bin/python``, which holds headwater-dbt)."""

    @property
    def cap_seconds(self) -> float | None:
        """How long the sandbox runs at most (None: until stopped)."""
        if self.duration is not None:
            return self.duration
        return DEFAULT_UNTIL_COMPLETE_CAP if self.until_complete else None


@dataclass
class SandboxResult:
    """How a sandbox session ended: the final runs, the exit code, what ran locally."""

    runs: list[JsonObject]
    exit_code: int
    reason: str
    kubelet: ProcessKubelet
    metrics_text: str
    pod_logs: dict[str, str]


class Sandbox:
    """One ``headwater dev`` session; ``await Sandbox(options).run(stop)``."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.kubeconfig_path = options.state_dir / "kubeconfig"
        self.metrics_url: str | None = None
        self.ui_url: str | None = None
        """The web UI's base address (``--ui``), once it serves."""
        # Set while running, for callers that drive the session (tests, embedding tools).
        self.emulator: Any = None
        self.kubelet: ProcessKubelet | None = None
        self.stopped_by: signal.Signals | None = None
        """The signal that stopped the session (set by whoever sets the stop event)."""

    def _say(self, text: str) -> None:
        self.options.out.write(text + "\n")
        self.options.out.flush()

    async def run(self, stop: asyncio.Event | None = None) -> SandboxResult:
        """Start everything, apply the manifests, show runs until done; tear down."""
        from headwater_operator import kube

        from headwater_dev.emulator import BackgroundEmulator

        options = self.options
        manifests = load_manifests(options.manifests, options.namespace)
        options.state_dir.mkdir(parents=True, exist_ok=True)
        stop = stop or asyncio.Event()
        emulator = BackgroundEmulator(port=options.port, kubeconfig_path=self.kubeconfig_path)
        emulator.start()
        self.emulator = emulator
        try:
            kube.configure(str(self.kubeconfig_path))
            return await self._run_started(emulator, manifests, stop)
        finally:
            kube.close()
            emulator.stop()
            self.kubeconfig_path.unlink(missing_ok=True)

    async def _run_started(self, emulator: Any, manifests: list[Manifest],
                           stop: asyncio.Event) -> SandboxResult:
        from headwater_operator import metrics

        from headwater_dev.harness import OperatorHarness
        from headwater_dev.process_kubelet import LocalRuntime, ProcessKubelet
        from headwater_dev.sandbox_ui import SandboxUi

        options = self.options
        namespaces = namespaces_of(manifests, options.namespace)
        await _ensure_namespaces(namespaces)
        if options.metrics_port is not None:
            metrics.start_metrics_server(options.metrics_port, addr="127.0.0.1")
            self.metrics_url = f"http://127.0.0.1:{metrics.metrics_server_port()}/metrics"
        runtime = LocalRuntime(workdir=options.workdir, state_dir=options.state_dir,
                               python=options.pod_python)
        # The run store is the pods' HEADWATER_HOME: records, results and asset records
        # share one root under the state directory (`headwater lineage` reads them there).
        operator = OperatorHarness(namespaces=namespaces, run_store=str(runtime.home))
        kubelet = ProcessKubelet(emulator.url, runtime, log_sink=emulator.append_log)
        self.kubelet = kubelet
        kubelet_task = asyncio.create_task(kubelet.run(), name="sandbox-kubelet")
        ui = SandboxUi(namespaces, options.ui_port)
        try:
            await operator.start()
            if options.ui:
                self.ui_url = await ui.start()
            self._banner(emulator.url)
            await self._apply(manifests)
            runs, reason, timed_out = await self._watch(emulator, stop)
        finally:
            await ui.stop()
            kubelet.stop()
            await kubelet_task
            await operator.stop()
            # What /metrics served last: scraped over HTTP when it is on, so the result
            # shows exactly what Prometheus would have seen.
            metrics_text = (await asyncio.to_thread(_scrape, self.metrics_url)
                            if self.metrics_url else _metrics_text(metrics.REGISTRY))
            if options.metrics_port is not None:
                metrics.stop_metrics_server()
        table = RunTable(options.out, tty=False)
        table.final(runs, datetime.now(UTC))
        self._say(metrics_summary(metrics.REGISTRY))
        return self._result(runs, reason, timed_out, kubelet=kubelet,
                            metrics_text=metrics_text, emulator=emulator)

    def _banner(self, url: str) -> None:
        options = self.options
        self._say(BANNER.format(workdir=options.workdir, python=sys.executable))
        self._say(f"API server: {url} (state in {options.state_dir})")
        self._say(f"  export KUBECONFIG={self.kubeconfig_path}")
        self._say("  kubectl get headwater   |   headwater get runs   |   headwater logs RUN")
        if self.metrics_url:
            self._say(f"metrics: {self.metrics_url}")
        if self.ui_url:
            self._say(f"UI: {self.ui_url}/runs")
        cap = options.cap_seconds
        until = ("until every run is done" if options.until_complete else "until Ctrl-C")
        self._say(f"running {until}" + (f" (at most {cap:g}s)" if cap is not None else "")
                  + "\n")

    async def _apply(self, manifests: list[Manifest]) -> None:
        from headwater_operator import kube

        client = kube.get_client()
        resources = {"Flow": kube.FLOWS, "Deployment": kube.DEPLOYMENTS,
                     "Schedule": kube.SCHEDULES, "FlowRun": kube.FLOWRUNS,
                     "Block": kube.BLOCKS, "Variable": kube.VARIABLES,
                     "ConcurrencyLimit": kube.CONCURRENCY_LIMITS, "Secret": kube.SECRETS,
                     "Automation": kube.AUTOMATIONS}
        for manifest in manifests:
            if manifest.kind == "Namespace":
                continue  # created before the operator started
            namespace = manifest.doc["metadata"]["namespace"]
            created = await client.create(resources[manifest.kind], manifest.doc,
                                          namespace=namespace)
            self._say(f"applied {manifest.kind}/{created['metadata']['name']} "
                      f"({manifest.source})")
        self._say("")

    async def _watch(self, emulator: Any, stop: asyncio.Event
                     ) -> tuple[list[JsonObject], str, bool]:
        """Refresh the table until stopped; the final runs, why it ended, whether timed out."""
        options = self.options
        tty = options.tty if options.tty is not None else options.out.isatty()
        table = RunTable(options.out, tty)
        started = time.monotonic()
        cap = options.cap_seconds
        horizon = min(cap, SCHEDULE_HORIZON_SECONDS) if cap is not None \
            else SCHEDULE_HORIZON_SECONDS
        schedules_due_by = datetime.now(UTC) + timedelta(seconds=horizon)
        while True:
            runs = emulator.objects("flowruns")
            table.update(runs, datetime.now(UTC))
            if stop.is_set():
                by = self.stopped_by.name if self.stopped_by is not None else "signal"
                return runs, f"stopped by {by}", False
            if options.until_complete and is_complete(runs, emulator.objects("schedules"),
                                                      schedules_due_by,
                                                      emulator.objects("deployments")):
                return runs, "every run is done", False
            if cap is not None and time.monotonic() - started >= cap:
                return runs, f"time cap of {cap:g}s reached", options.until_complete
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(options.refresh_seconds):
                    await stop.wait()

    def _result(self, runs: list[JsonObject], reason: str, timed_out: bool, *,
                kubelet: ProcessKubelet, metrics_text: str, emulator: Any) -> SandboxResult:
        failed = failed_runs(runs)
        code = EXIT_OK
        if failed:
            code = EXIT_RUN_FAILED
            self._say(f"failed runs: {', '.join(failed)} (see `headwater describe run NAME`)")
        if timed_out:
            code = EXIT_RUN_FAILED
            self._say(f"--until-complete: {reason} with runs still going; raise --duration "
                      "or look at the runs above that did not finish")
        code = shutdown.exit_code(self.stopped_by, code)
        self._say(f"sandbox stopped: {reason}; exit code {code}")
        logs = {f"{ns}/{name}": emulator.pod_log(ns, name) for ns, name in kubelet.processes}
        return SandboxResult(runs, code, reason, kubelet, metrics_text, logs)


async def _ensure_namespaces(names: Iterable[str]) -> None:
    from headwater_operator import kube

    client = kube.get_client()
    for name in names:
        with contextlib.suppress(kube.AlreadyExists):
            await client.create(kube.NAMESPACES, {"metadata": {"name": name}})


def _scrape(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        text: str = response.read().decode()
        return text


def _metrics_text(registry: Any) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()


# --- command line --------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``headwater dev``."""
    parser.add_argument("-f", "--filename", action="append", default=[], metavar="PATH",
                        help="manifest file or directory to apply (repeatable; default: "
                             + ", ".join(DEFAULT_EXAMPLES) + ")")
    parser.add_argument("--duration", type=float, metavar="S",
                        help="stop after S seconds (with --until-complete: the cap, "
                             f"default {DEFAULT_UNTIL_COMPLETE_CAP:g})")
    parser.add_argument("--until-complete", action="store_true",
                        help="stop once every FlowRun is terminal and every Schedule due "
                             f"in the first {SCHEDULE_HORIZON_SECONDS:g}s has fired")
    parser.add_argument("--port", type=int, default=None, metavar="P",
                        help="API server port (default: a free port)")
    parser.add_argument("--metrics-port", type=int, default=0, metavar="P",
                        help="/metrics port (default: a free port; -1 disables)")
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help="kubeconfig, run summaries and results (default: "
                             "<checkout>/.headwater/dev)")
    parser.add_argument("--namespace", default="default",
                        help="namespace for manifests that name none (default: default)")
    parser.add_argument("--ui", action=argparse.BooleanOptionalAction, default=None,
                        help="serve the web UI on 127.0.0.1 while the sandbox runs "
                             "(default: on, except with --until-complete)")
    parser.add_argument("--ui-port", type=int, default=0, metavar="P",
                        help="the web UI's port (default: a free port)")
    parser.add_argument("--pod-python", default=None, metavar="PATH",
                        help="the Python that runs the flow-run pods, with the headwater SDK "
                             "installed (default: the one running this command); e.g. "
                             ".venv-dbt/bin/python for examples/dbt")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show the operator's log (kopf) on stderr")


def options_from_args(args: argparse.Namespace, cwd: Path | None = None) -> SandboxOptions:
    """Turn parsed arguments into :class:`SandboxOptions` (defaults resolved)."""
    workdir = find_workdir(cwd or Path.cwd())
    paths = [Path(p) for p in args.filename] or [workdir / d for d in DEFAULT_EXAMPLES]
    if args.duration is not None and args.duration <= 0:
        raise SandboxError(f"--duration must be a positive number of seconds, not "
                           f"{args.duration:g}")
    pod_python = sys.executable
    if args.pod_python is not None:
        candidate = Path(args.pod_python).expanduser()
        if not candidate.is_file() or not os.access(candidate, os.X_OK):
            raise SandboxError(f"--pod-python {args.pod_python}: not an executable file; "
                               "give the path of a Python with the headwater SDK installed "
                               "(bash scripts/bootstrap.sh makes .venv-dbt/bin/python)")
        pod_python = str(candidate.absolute())
    return SandboxOptions(
        manifests=paths, workdir=workdir,
        state_dir=args.state_dir or workdir / ".headwater" / "dev",
        duration=args.duration, until_complete=args.until_complete, port=args.port,
        metrics_port=None if args.metrics_port < 0 else args.metrics_port,
        namespace=args.namespace,
        ui=not args.until_complete if args.ui is None else args.ui, ui_port=args.ui_port,
        pod_python=pod_python)


def _configure_logging(verbose: bool) -> None:
    # kopf logs every handler call at INFO; in a live table that is noise. Warnings
    # (a failing handler, a lost API connection) still show.
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        for name in ("kopf", "aiohttp", "headwater_operator"):
            logging.getLogger(name).setLevel(logging.WARNING)


async def _serve(options: SandboxOptions) -> int:
    stop = asyncio.Event()
    sandbox = Sandbox(options)

    def stop_session(signum: signal.Signals) -> None:
        sandbox.stopped_by = signum
        stop.set()

    # The sandbox's route stays in force while the operator inside it starts and stops
    # (kopf would install its own handlers: see headwater_operator.shutdown).
    with shutdown.signal_route(shutdown.once(stop_session, what="the sandbox")):
        result = await sandbox.run(stop)
    for warning in result.kubelet.warnings:
        sys.stderr.write(f"note: {warning}\n")
    return result.exit_code


def main(args: argparse.Namespace) -> int:
    """Run ``headwater dev`` with parsed ``args``; return the exit code."""
    try:
        options = options_from_args(args)
        _configure_logging(args.verbose)
        return asyncio.run(_serve(options))
    except SandboxError as exc:
        sys.stderr.write(f"headwater dev: {exc}\n")
        return EXIT_USAGE


def register(subparsers: Any) -> None:
    """Add ``dev`` to the ``headwater`` command line."""
    parser = subparsers.add_parser(
        "dev", help="run the examples locally: embedded API, operator, local pods",
        description="A local development sandbox: an embedded Kubernetes API, the real "
                    "operator and a kubelet that runs flow-run pods as local processes.")
    add_arguments(parser)
    parser.set_defaults(func=main)
