"""``logs <run> [-f] [--attempt N] [--task NAME] [--from-store]`` and ``cancel <run>``.

``logs`` prints the flow's output (the stdout/stderr of the pod's ``flow`` container,
which is where ``headwater execute`` logs; asked for by name, so an injected sidecar
does not make the API server refuse the request) for every attempt in order, or only
``--attempt N``; a header line on stderr names each attempt's pod, so stdout stays
exactly the flow's output. ``-f`` keeps streaming, across retries, until the run ends.

Once an attempt's pod is gone (pruned, deleted), its lines come from the run store
(``status.runRecords``, read through :mod:`headwater.runstore`), rendered as the pod
printed them (:func:`render_log_line`, the SDK's text format). ``--from-store`` reads
the store even while the pod exists; ``--task NAME`` keeps one task run's lines and
therefore always reads the store (the pod's text output does not say reliably which
line is whose), which a running attempt flushes every 2 seconds. ``-f`` follows pods
only: with ``--task``/``--from-store`` it is refused, not silently ignored.

``cancel`` sets ``spec.cancel: true`` — the one spec field a user writes to ask the
operator to stop a run (the operator itself never writes spec). The operator moves the
run to Cancelling, stops its pod within the Deployment's ``cancelGracePeriodSeconds``
and ends it Cancelled.
"""

from __future__ import annotations

import argparse
import fnmatch
from collections.abc import Mapping
from typing import Any

from headwater_operator import kube
from headwater_operator.api import TERMINAL_PHASES
from headwater_operator.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Io,
    connect,
    patient_client,
)
from headwater_operator.cli.follow import LOG_CONTAINER, Watcher, phase_of
from headwater_operator.cli.output import parse_time, render_data
from headwater_operator.cli.store import (
    NO_STORE,
    RecordRef,
    StoreUnreadable,
    flow_run_names,
    log_lines,
    read_record,
    record_refs,
)
from headwater_operator.flowruns.render import pod_name


def attempts_to_show(started: int, attempt: int | None, run: str) -> list[int]:
    """Which attempts' logs to print: all started ones, or the one asked for."""
    if attempt is None:
        return list(range(1, started + 1))
    if attempt < 1 or attempt > started:
        raise CliError(f"FlowRun {run} has {started} attempt(s); --attempt must be between 1 "
                       f"and {started}" if started else
                       f"FlowRun {run} has not started a pod yet; use -f to wait for it",
                       EXIT_USAGE if started else EXIT_FAILED)
    return [attempt]


# --- lines from the run store ------------------------------------------------------------

LEVEL_WIDTH = 7
"""``%(levelname)-7s`` in :data:`headwater.logging.TEXT_FORMAT`."""


def line_matches(line: Mapping[str, Any], task: str | None) -> bool:
    """Whether a store line belongs to ``--task NAME``: its ``taskRunName`` equals NAME,
    or matches it as a shell glob when NAME has ``*``, ``?`` or ``[`` (``transform-*``)."""
    if task is None:
        return True
    name = line.get("taskRunName")
    if not isinstance(name, str):
        return False
    return fnmatch.fnmatchcase(name, task) if set("*?[") & set(task) else name == task


def render_log_line(line: Mapping[str, Any], flow_runs: Mapping[str, str]) -> str:
    """One store line as the pod printed it (``headwater.logging.TEXT_FORMAT``):
    ``HH:MM:SS.mmm | LEVEL   | Task run 'x' - message`` (UTC), labelled ``Flow run
    'name'`` for a flow run's own lines (``flow_runs``: id to name, from the record) and
    by the logger otherwise; a logged exception follows on the next lines."""
    moment = parse_time(line.get("time"))
    clock = (moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
             if moment is not None else "??:??:??.???")
    task_run, flow_run = line.get("taskRunName"), line.get("flowRunId")
    if isinstance(task_run, str):
        label = f"Task run {task_run!r}"
    elif isinstance(flow_run, str) and flow_run in flow_runs:
        label = f"Flow run {flow_runs[flow_run]!r}"
    else:
        label = str(line.get("logger") or "headwater")
    text = (f"{clock} | {line.get('level') or 'INFO'!s:<{LEVEL_WIDTH}} | {label} - "
            f"{line.get('message', '')}\n")
    exception = line.get("exception")
    if isinstance(exception, str) and exception:
        text += exception.rstrip("\n") + "\n"
    return text


def print_store_lines(ref: RecordRef, io: Io, task: str | None) -> int:
    """Print the attempt's lines from the store (those of ``task`` only, when given);
    returns how many. Raises :class:`StoreUnreadable` naming the URL and the fix."""
    try:
        names = flow_run_names(read_record(ref))
    except StoreUnreadable:
        names = {}  # flow-run lines are labelled by their logger; the lines still show
    shown = 0
    for line in log_lines(ref.url):
        if line_matches(line, task):
            io.out.write(render_log_line(line, names))
            shown += 1
    return shown


class StoreLogs:
    """Shows attempts from the run store and remembers whether one could not be read."""

    def __init__(self, io: Io, task: str | None) -> None:
        self.io, self.task = io, task
        self.failed = False

    def show(self, run: Mapping[str, Any], attempt: int, *, because: str = "") -> None:
        """Print ``attempt``'s lines from the store, or a note on stderr why not."""
        refs = {ref.attempt: ref for ref in record_refs(run)}
        ref = refs.get(attempt)
        if ref is None:
            self.io.err.write(f"({because}attempt {attempt} has no run record: {NO_STORE})\n"
                              if not refs else
                              f"({because}attempt {attempt} has no run record in the store)\n")
            return
        self.io.err.write(f"({because}reading the run store at {ref.url})\n")
        try:
            shown = print_store_lines(ref, self.io, self.task)
        except StoreUnreadable as exc:
            self.io.err.write(f"({exc.message})\n")
            self.failed = True
            return
        if not shown and self.task:
            self.io.err.write(f"(no lines of task run {self.task!r} in attempt {attempt})\n")


def cmd_logs(args: argparse.Namespace, io: Io) -> int:
    """Print (or follow) the logs of the run's attempts."""
    from_store = bool(args.from_store or args.task)
    if args.follow and from_store:
        raise CliError("-f follows the pods' output; --task and --from-store read the run "
                       "store, which -f does not follow: drop -f (a running attempt "
                       "flushes the store every 2 s, so running the command again shows "
                       "the newer lines)", EXIT_USAGE)
    client, namespace = connect(args)
    store = StoreLogs(io, args.task)
    watcher = Watcher(client, namespace, args.run, io, poll_seconds=args.poll_interval,
                      pod_gone=lambda run, attempt: store.show(
                          run, attempt, because=f"pod {pod_name(args.run, attempt)} no "
                          "longer exists; "))
    run = watcher.read()
    if args.follow:
        watcher.client = patient_client()  # the server answered: now wait out its restarts
        watcher.follow_logs(args.attempt or 1)
        return EXIT_FAILED if store.failed else EXIT_OK
    started = int((run.get("status") or {}).get("attempts") or 0)
    if started == 0 and args.attempt is None:
        raise CliError(f"FlowRun {namespace}/{args.run} has not started a pod yet (phase "
                       f"{phase_of(run)}); use -f to wait for its logs")
    if from_store and not record_refs(run):
        raise CliError(f"FlowRun {namespace}/{args.run} has no run record: {NO_STORE}")
    for attempt in attempts_to_show(started, args.attempt, args.run):
        pod = pod_name(args.run, attempt)
        if from_store:
            io.err.write(f"==> attempt {attempt} <==\n")
            store.show(run, attempt)
            continue
        io.err.write(f"==> attempt {attempt} (pod {pod}) <==\n")
        try:
            io.out.write(client.read_pod_log(pod, namespace=namespace,
                                             container=LOG_CONTAINER))
        except kube.NotFound:
            store.show(run, attempt, because=f"pod {pod} no longer exists; ")
        except kube.KubeError as exc:
            if exc.status != 400:
                raise
            io.err.write(f"(pod {pod} has not started its container yet: {exc.message})\n")
    return EXIT_FAILED if store.failed else EXIT_OK


def cmd_cancel(args: argparse.Namespace, io: Io) -> int:
    """Set ``spec.cancel: true`` unless the run already ended."""
    client, namespace = connect(args)
    watcher = Watcher(client, namespace, args.run, io)
    run = watcher.read()
    phase = phase_of(run)
    if phase in TERMINAL_PHASES:
        io.err.write(f"headwater cancel: FlowRun {namespace}/{args.run} already ended "
                     f"({phase}); nothing to cancel\n")
        return EXIT_OK  # the run is stopped, which is what the caller wanted
    patched = client.patch(kube.FLOWRUNS, args.run, {"spec": {"cancel": True}},
                           namespace=namespace)
    if args.output == "table":
        io.out.write(f"flowrun/{args.run} cancellation requested (phase {phase}); the "
                     "operator stops its pod and marks it Cancelled\n")
    else:
        io.out.write(render_data(patched, args.output))
    return EXIT_OK
