"""``logs <run> [-f] [--attempt N]`` and ``cancel <run>``.

``logs`` prints the flow's output (the stdout/stderr of the pod's ``flow`` container,
which is where ``headwater execute`` logs; asked for by name, so an injected sidecar
does not make the API server refuse the request) for every attempt in order, or only
``--attempt N``; a header line on stderr names each attempt's pod, so stdout stays
exactly the flow's output. ``-f`` keeps streaming, across retries, until the run ends.

``cancel`` sets ``spec.cancel: true`` — the one spec field a user writes to ask the
operator to stop a run (the operator itself never writes spec). The operator moves the
run to Cancelling, stops its pod within the Deployment's ``cancelGracePeriodSeconds``
and ends it Cancelled.
"""

from __future__ import annotations

import argparse

from headwater_operator import kube
from headwater_operator.api import TERMINAL_PHASES
from headwater_operator.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Io,
    connect,
)
from headwater_operator.cli.follow import LOG_CONTAINER, Watcher, phase_of
from headwater_operator.cli.output import render_data
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


def cmd_logs(args: argparse.Namespace, io: Io) -> int:
    """Print (or follow) the logs of the run's attempts."""
    client, namespace = connect(args)
    watcher = Watcher(client, namespace, args.run, io, poll_seconds=args.poll_interval)
    run = watcher.read()
    if args.follow:
        watcher.follow_logs(args.attempt or 1)
        return EXIT_OK
    started = int((run.get("status") or {}).get("attempts") or 0)
    if started == 0 and args.attempt is None:
        raise CliError(f"FlowRun {namespace}/{args.run} has not started a pod yet (phase "
                       f"{phase_of(run)}); use -f to wait for its logs")
    for attempt in attempts_to_show(started, args.attempt, args.run):
        pod = pod_name(args.run, attempt)
        io.err.write(f"==> attempt {attempt} (pod {pod}) <==\n")
        try:
            io.out.write(client.read_pod_log(pod, namespace=namespace,
                                             container=LOG_CONTAINER))
        except kube.NotFound:
            io.err.write(f"(pod {pod} no longer exists; its logs are gone)\n")
        except kube.KubeError as exc:
            if exc.status != 400:
                raise
            io.err.write(f"(pod {pod} has not started its container yet: {exc.message})\n")
    return EXIT_OK


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
