"""``python -m headwater_operator`` (also ``headwater-operator``): run the operator.

The Helm chart passes exactly these flags::

    python -m headwater_operator [--namespace NS]... [--all-namespaces]
        [--metrics-port 8080] [--health-port 8081] [--peering headwater] [--standalone]
        [--log-format text|json] [--verbose]

and ``--config-error-grace-seconds S`` can be added (``operator.extraArgs``): how long a
run waits for a missing Secret or ConfigMap its pod needs (default 60).

Probes are served on ``<health-port>`` (:mod:`headwater_operator.health`): ``/healthz``
(alive) and ``/readyz`` (ready once the API server serves Headwater's CRDs and the
operator has started; until then it waits, and says why), Prometheus metrics on
``<metrics-port>``. SIGTERM (what the kubelet sends when the pod is
deleted) or SIGINT stops the operator gracefully, within a second when nothing hangs,
and it exits 0; a further signal while it stops is only logged
(:mod:`headwater_operator.shutdown`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

import kopf

from headwater_operator import kube, runner
from headwater_operator.flowruns.settings import DEFAULT_CONFIG_ERROR_GRACE


def build_parser() -> argparse.ArgumentParser:
    """The command line, documented for ``--help``."""
    parser = argparse.ArgumentParser(
        prog="headwater-operator",
        description="Run the Headwater operator (kopf) against the current cluster.")
    parser.add_argument("--namespace", "-n", action="append", default=[], metavar="NS",
                        help="watch this namespace (repeat for several)")
    parser.add_argument("--all-namespaces", "-A", action="store_true",
                        help="watch every namespace (needs cluster-wide RBAC)")
    parser.add_argument("--metrics-port", type=int, default=8080,
                        help="Prometheus metrics port (0 disables; default 8080)")
    parser.add_argument("--health-port", type=int, default=8081,
                        help="probe port: /healthz (alive) and /readyz (serving) "
                             "(0 disables; default 8081)")
    parser.add_argument("--peering", metavar="NAME", default=None,
                        help="join kopf peering NAME for HA replicas (e.g. headwater)")
    parser.add_argument("--standalone", action="store_true",
                        help="run without peering (a single replica; the default)")
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
    return parser


def validate(args: argparse.Namespace) -> str | None:
    """The error message for contradictory flags, or None."""
    if args.all_namespaces and args.namespace:
        return "use either --all-namespaces or --namespace, not both"
    if not args.all_namespaces and not args.namespace:
        return ("say what to watch: --namespace NS (repeatable) or --all-namespaces; "
                "the Helm chart sets one of them")
    if args.peering and args.standalone:
        return "use either --peering NAME (HA) or --standalone (one replica), not both"
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
    runner.import_handlers()
    runner.freeze_startup_objects()
    asyncio.run(runner.run_operator(
        namespaces=args.namespace or None, clusterwide=args.all_namespaces,
        peering=args.peering, standalone=not args.peering,
        health_port=args.health_port or None, metrics_port=args.metrics_port or None,
        config_error_grace_seconds=args.config_error_grace_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
