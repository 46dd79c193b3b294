"""``python -m headwater_operator`` (also ``headwater-operator``): run the operator.

The Helm chart passes these flags::

    python -m headwater_operator [--namespace NS]... [--all-namespaces]
        [--metrics-port 8080] [--health-port 8081] [--log-format text|json] [--verbose]
        [--leader-elect [--leader-elect-resource-name headwater-operator]
                        [--leader-elect-resource-namespace NS]
                        [--leader-elect-lease-duration 15s]
                        [--leader-elect-renew-deadline 10s]
                        [--leader-elect-retry-period 2s]]

(leader election's flags are kube-controller-manager's), and ``--config-error-grace-seconds
S`` can be added (``operator.extraArgs``): how long a run waits for a missing Secret or
ConfigMap its pod needs (default 60). ``--run-store URL`` (the chart's ``runStore.url``) is
the default run store of runs whose Deployment names none (docs/run-store.md).
``--controllers`` runs only some controllers (benchmarks measure one at a time); a real
operator runs them all.

With ``--leader-elect`` every replica stands by until it holds the Lease (in
``--leader-elect-resource-namespace``, default ``$POD_NAMESPACE``, else the first
``--namespace``); only the leader runs controllers. A leader that cannot renew within the
renew deadline stops everything and exits with status 1, and Kubernetes restarts it as a
standby (:mod:`headwater_operator.leader`).

Probes are served on ``<health-port>`` (:mod:`headwater_operator.health`): ``/healthz``
(alive) and ``/readyz`` (ready once the API server serves Headwater's CRDs and the
operator leads with its controllers started, or stands by; until then it waits, and says
why), Prometheus metrics on ``<metrics-port>``. SIGTERM (what the kubelet sends when the
pod is deleted) or SIGINT stops the operator gracefully — a leader releases its Lease, so
a standby takes over at once — and it exits 0; a further signal while it stops is only
logged (:mod:`headwater_operator.shutdown`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from collections.abc import Sequence

import kopf

from headwater_operator import kube, runner
from headwater_operator.controllers.manager import CONTROLLERS
from headwater_operator.flowruns.settings import DEFAULT_CONFIG_ERROR_GRACE
from headwater_operator.leader import DEFAULT_LEASE_NAME, LeadershipLost, Timing


def build_parser() -> argparse.ArgumentParser:
    """The command line, documented for ``--help``."""
    parser = argparse.ArgumentParser(
        prog="headwater-operator",
        description="Run the Headwater operator against the current cluster.")
    parser.add_argument("--namespace", "-n", action="append", default=[], metavar="NS",
                        help="watch this namespace (repeat for several)")
    parser.add_argument("--all-namespaces", "-A", action="store_true",
                        help="watch every namespace (needs cluster-wide RBAC)")
    parser.add_argument("--metrics-port", type=int, default=8080,
                        help="Prometheus metrics port (0 disables; default 8080)")
    parser.add_argument("--health-port", type=int, default=8081,
                        help="probe port: /healthz (alive) and /readyz (serving) "
                             "(0 disables; default 8081)")
    election = parser.add_argument_group(
        "leader election", "with several replicas, only the holder of a Lease works")
    election.add_argument("--leader-elect", action="store_true",
                          help="stand by until this process holds the Lease (replicas > 1, "
                               "and any rolling update: the chart always sets it)")
    election.add_argument("--leader-elect-resource-name", metavar="NAME",
                          default=DEFAULT_LEASE_NAME,
                          help="the Lease's name (default %(default)s)")
    election.add_argument("--leader-elect-resource-namespace", metavar="NS", default=None,
                          help="the Lease's namespace (default: $POD_NAMESPACE, else the "
                               "first --namespace)")
    election.add_argument("--leader-elect-lease-duration", type=duration, metavar="D",
                          default=Timing().lease_duration,
                          help="how long a standby waits after the leader's last renewal "
                               "(default 15s)")
    election.add_argument("--leader-elect-renew-deadline", type=duration, metavar="D",
                          default=Timing().renew_deadline,
                          help="how long the leader retries renewing before it stops and "
                               "exits (default 10s)")
    election.add_argument("--leader-elect-retry-period", type=duration, metavar="D",
                          default=Timing().retry_period,
                          help="how often the leader renews and a standby looks "
                               "(default 2s)")
    parser.add_argument("--controllers", default=",".join(CONTROLLERS), metavar="LIST",
                        help="comma-separated controllers to run (default: all of "
                             "%(default)s)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="log line format (default text)")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig path (default: in-cluster, then $KUBECONFIG)")
    parser.add_argument("--config-error-grace-seconds", type=float, metavar="S",
                        default=DEFAULT_CONFIG_ERROR_GRACE.total_seconds(),
                        help="how long a run waits for a missing Secret or ConfigMap (or "
                             "key) its pod needs before it crashes; at most the Deployment's "
                             "pendingTimeoutSeconds (default %(default)g)")
    parser.add_argument("--run-store", metavar="URL", default=None,
                        help="default run store (a path or fsspec URL, e.g. "
                             "s3://bucket/headwater) of flow runs whose Deployment sets "
                             "neither runStore nor resultStorage; the operator also deletes "
                             "pruned runs' records there (default: none)")
    parser.add_argument("--ui-url", metavar="URL", default=None,
                        help="the Headwater UI's public address (the chart's ui.url); flow-run "
                             "pods get it as HEADWATER_UI_URL, so runtime.flow_run.ui_url "
                             "links each run's page (default: none)")
    return parser


def validate(args: argparse.Namespace) -> str | None:
    """The error message for contradictory flags, or None."""
    if args.all_namespaces and args.namespace:
        return "use either --all-namespaces or --namespace, not both"
    if not args.all_namespaces and not args.namespace:
        return ("say what to watch: --namespace NS (repeatable) or --all-namespaces; "
                "the Helm chart sets one of them")
    unknown = set(controllers(args)) - set(CONTROLLERS)
    if unknown:
        return (f"--controllers: unknown {', '.join(sorted(unknown))}; choose among "
                f"{', '.join(CONTROLLERS)}")
    if args.leader_elect:
        try:
            Timing(args.leader_elect_lease_duration, args.leader_elect_renew_deadline,
                   args.leader_elect_retry_period)
        except ValueError as exc:
            return str(exc).replace("leader election:", "--leader-elect-*:")
        if not lease_namespace(args):
            return ("--leader-elect needs the Lease's namespace: set "
                    "--leader-elect-resource-namespace, POD_NAMESPACE, or --namespace")
    if args.run_store is not None and not args.run_store.strip():
        return ("--run-store needs a path or fsspec URL (e.g. s3://bucket/headwater); "
                "leave it out for no default run store")
    if args.config_error_grace_seconds < 0:
        return (f"--config-error-grace-seconds must be 0 or more seconds, not "
                f"{args.config_error_grace_seconds:g}")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags and run the operator until it is stopped."""
    parser = build_parser()
    args = parser.parse_args(argv)
    error = validate(args)
    if error:
        parser.error(error)
    kopf.configure(verbose=args.verbose, debug=args.verbose,
                   log_format=kopf.LogFormat.JSON if args.log_format == "json"
                   else kopf.LogFormat.FULL)
    try:
        kube.configure(args.kubeconfig)
    except kube.KubeError as exc:
        logging.getLogger("headwater_operator").error("%s", exc.message)
        return 2
    election = None
    if args.leader_elect:
        election = runner.LeaderElectionConfig(
            namespace=lease_namespace(args) or "", name=args.leader_elect_resource_name,
            timing=Timing(args.leader_elect_lease_duration, args.leader_elect_renew_deadline,
                          args.leader_elect_retry_period))
    runner.freeze_startup_objects()
    try:
        asyncio.run(runner.run_operator(
            namespaces=args.namespace or None, clusterwide=args.all_namespaces,
            leader_election=election, controllers=controllers(args),
            health_port=args.health_port or None, metrics_port=args.metrics_port or None,
            config_error_grace_seconds=args.config_error_grace_seconds,
            run_store=args.run_store.strip() if args.run_store else None,
            ui_url=args.ui_url.strip() if args.ui_url else None))
    except LeadershipLost as exc:
        # controller-runtime's answer: exit, and let Kubernetes restart us as a standby.
        # At once (os._exit): nothing left in this process may write any more.
        logging.getLogger("headwater_operator").error(
            "leadership lost (%s); exiting so that a fresh process stands by", exc)
        logging.shutdown()
        os._exit(1)
    return 0


def duration(text: str) -> float:
    """A duration flag: ``15s``, ``1m``, ``1m30s``, ``500ms`` or plain seconds."""
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    total, rest = 0.0, value
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    while rest:
        match = DURATION_PART.match(rest)
        if match is None:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a duration; write e.g. 15s, 1m or 1m30s")
        total += float(match.group(1)) * units[match.group(2)]
        rest = rest[match.end():]
    return total


DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def controllers(args: argparse.Namespace) -> list[str]:
    """The controllers ``--controllers`` names."""
    return [name.strip() for name in str(args.controllers).split(",") if name.strip()]


def lease_namespace(args: argparse.Namespace) -> str | None:
    """Where the Lease lives: the flag, the pod's namespace, or the first watched one."""
    found: str | None = (args.leader_elect_resource_namespace
                         or os.environ.get("POD_NAMESPACE")
                         or (args.namespace[0] if args.namespace else None))
    return found


if __name__ == "__main__":
    sys.exit(main())
