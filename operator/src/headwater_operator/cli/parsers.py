"""The argument parsers of the operator-side commands, kept free of heavy imports.

``headwater`` builds its whole parser on every start (``headwater --help``, and also
``headwater execute`` on a machine where the operator package is installed), so this
module imports nothing but the standard library and :mod:`.common`: the Kubernetes
client, the API models and the scheduling code (about 1.5 s of imports on the 2-core dev
machine) are loaded by :func:`lazy` only when a command actually runs.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from headwater_operator.cli.common import (
    Handler,
    add_cluster_options,
    add_output_option,
    guarded,
)

DEFAULT_POLL_SECONDS = 1.0
"""How often ``run --wait``/``logs -f`` re-read the FlowRun (one GET each)."""
DEFAULT_MAX_RUNS = 100
"""More backfill ticks than this need an explicit ``--max-runs``: a typo in a window must
not create ten thousand runs."""
DEFAULT_COUNT = 10
"""Fire times ``schedule preview`` prints by default."""
DEFAULT_MATERIALIZATIONS = 10
"""Materializations ``lineage`` shows by default."""
KINDS = ("runs", "deployments", "schedules", "flows", "automations")
"""What ``get`` lists."""
ALIASES = {"run": "runs", "flowruns": "runs", "flowrun": "runs", "deployment": "deployments",
           "schedule": "schedules", "flow": "flows", "automation": "automations"}
"""Other names ``get`` accepts for a kind."""


def lazy(name: str, module: str, function: str) -> Handler:
    """A handler that imports ``headwater_operator.cli.<module>`` when the command runs."""

    def handler(args: argparse.Namespace) -> int:
        implementation = getattr(importlib.import_module(f"headwater_operator.cli.{module}"),
                                 function)
        result: int = guarded(name, implementation)(args)
        return result

    handler.__name__ = function
    return handler


def register(subparsers: Any) -> None:
    """Add every operator-side command to the ``headwater`` argument parser."""
    for add in (_register_run, _register_backfill, _register_get, _register_describe,
                _register_logs, _register_artifacts, _register_lineage, _register_preview,
                _register_ui, _register_deploy, _register_block, _register_variable):
        add(subparsers)


def _register_run(subparsers: Any) -> None:
    """Add ``run``."""
    parser = subparsers.add_parser(
        "run", help="start an ad-hoc run of a Deployment",
        description="Create a FlowRun of DEPLOYMENT. Parameters merge Flow defaults < "
        "Deployment parameters < --params-file < -p, and are validated against the Flow's "
        "parametersSchema before anything is created.")
    parser.add_argument("deployment", help="name of the Deployment to run")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter; VALUE is parsed as JSON when it is JSON; repeatable")
    parser.add_argument("--params-file", metavar="FILE",
                        help="YAML or JSON object of parameters (-p flags override it)")
    parser.add_argument("--name", help="FlowRun name (default: generated, '<deployment>-xxxxx')")
    parser.add_argument("--wait", action="store_true",
                        help="wait for the run to end; exit 1 unless it ends Completed")
    parser.add_argument("--follow", action="store_true",
                        help="stream the pod logs of every attempt until the run ends "
                        "(implies --wait)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="with --wait/--follow: stop waiting after SECONDS and exit 1 "
                        "(the run itself continues)")
    parser.add_argument("--poll-interval", type=float, default=DEFAULT_POLL_SECONDS,
                        help=argparse.SUPPRESS)
    add_cluster_options(parser)
    parser.set_defaults(func=lazy("run", "run", "cmd_run"))


def _register_backfill(subparsers: Any) -> None:
    """Add ``backfill``."""
    parser = subparsers.add_parser(
        "backfill", help="create the runs a Schedule would have made in a window",
        description="Create one FlowRun per tick of SCHEDULE in [--start, --end), with the "
        "scheduler's own run names, so repeating a backfill creates nothing new.")
    parser.add_argument("schedule", help="name of the Schedule to replay")
    parser.add_argument("--start", required=True, metavar="TIME",
                        help="window start, inclusive (ISO 8601; no offset = the schedule's "
                        "timezone), e.g. 2026-03-01 or 2026-03-01T06:00:00Z")
    parser.add_argument("--end", required=True, metavar="TIME",
                        help="window end, exclusive (same format as --start)")
    parser.add_argument("--max-runs", type=int, metavar="N",
                        help=f"allow up to N runs (default: refuse more than "
                        f"{DEFAULT_MAX_RUNS})")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the ticks, run names and parameters; create nothing")
    add_cluster_options(parser)
    parser.set_defaults(func=lazy("backfill", "backfill", "cmd_backfill"))


def _register_get(subparsers: Any) -> None:
    """Add ``get``."""
    parser = subparsers.add_parser(
        "get", help="list runs, deployments, schedules, flows or automations",
        description="List Headwater objects (or show one by NAME).")
    parser.add_argument("kind", choices=[*KINDS, *ALIASES], metavar="KIND",
                        help="runs | deployments | schedules | flows | automations")
    parser.add_argument("name", nargs="?", help="show only this object")
    parser.add_argument("-l", "--selector", help="label selector, e.g. team=data")
    parser.add_argument("--deployment", metavar="D", help="runs only: those of Deployment D")
    add_cluster_options(parser)
    parser.set_defaults(func=lazy("get", "get", "cmd_get"))


def _register_describe(subparsers: Any) -> None:
    """Add ``describe run`` and ``describe schedule``."""
    parser = subparsers.add_parser(
        "describe", help="show one run or schedule in detail",
        description="Show a FlowRun (with its task runs and subflow runs from the run "
                    "store), or a Schedule with its next fire times, with its recent Events.")
    parser.add_argument("kind", choices=["run", "runs", "flowrun",
                                         "schedule", "schedules", "hws"],
                        metavar="KIND", help="run | schedule")
    parser.add_argument("name", help="the FlowRun's or Schedule's name")
    parser.add_argument("--task", metavar="PATTERN",
                        help="run only: list the task runs whose name matches PATTERN, "
                        "case-insensitively: a glob when it has * ? or [ ('load*'), else a "
                        "substring ('orders')")
    parser.add_argument("--attempt", type=int, metavar="N",
                        help="run only: show attempt N's run record (default: the latest)")
    add_cluster_options(parser)
    parser.set_defaults(func=lazy("describe", "describe", "cmd_describe"))


def _register_logs(subparsers: Any) -> None:
    """Add ``logs`` and ``cancel``."""
    logs = subparsers.add_parser(
        "logs", help="print a run's logs (all attempts)",
        description="Print the logs of a FlowRun's attempts: from each attempt's pod while "
        "it exists, from the run store once the pod is gone.")
    logs.add_argument("run", help="FlowRun name")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="keep streaming the pods' output, across retries, until the run "
                      "ends (an attempt whose pod is gone is read from the run store)")
    logs.add_argument("--attempt", type=int, metavar="N",
                      help="only attempt N (1-based); with -f, start at attempt N")
    logs.add_argument("--task", metavar="NAME",
                      help="only the lines of task run NAME (a glob when it has * ? or [); "
                      "read from the run store, which a running attempt flushes every 2 s "
                      "(not with -f)")
    logs.add_argument("--from-store", action="store_true",
                      help="read the run store even while the pod exists (not with -f)")
    logs.add_argument("--poll-interval", type=float, default=DEFAULT_POLL_SECONDS,
                      help=argparse.SUPPRESS)
    add_cluster_options(logs)
    logs.set_defaults(func=lazy("logs", "logs", "cmd_logs"))
    cancel = subparsers.add_parser("cancel", help="ask the operator to stop a run",
                                   description="Request cancellation (spec.cancel: true).")
    cancel.add_argument("run", help="FlowRun name")
    add_cluster_options(cancel)
    cancel.set_defaults(func=lazy("cancel", "logs", "cmd_cancel"))


def _register_artifacts(subparsers: Any) -> None:
    """Add ``artifacts``."""
    parser = subparsers.add_parser(
        "artifacts", help="print a run's artifacts from its run record",
        description="Print the artifacts kept in a FlowRun's run record: markdown as text, "
        "tables as aligned columns, links as 'text <url>'.")
    parser.add_argument("run", help="FlowRun name")
    parser.add_argument("--attempt", type=int, metavar="N",
                        help="the record of attempt N (default: the latest)")
    add_cluster_options(parser)
    parser.set_defaults(func=lazy("artifacts", "artifacts", "cmd_artifacts"))


def _register_lineage(subparsers: Any) -> None:
    """Add ``lineage``."""
    parser = subparsers.add_parser(
        "lineage", help="show an asset's upstream, downstream and last materializations",
        description="Read the asset records (assets/<slug>/…) in the stores: --store URL, "
        "else every store the namespace's Deployments and FlowRuns name, else (no cluster "
        "reachable) the local result storage.")
    parser.add_argument("asset", metavar="ASSET_KEY", help="the asset's key, e.g. "
                        "s3://lake/marts/orders")
    parser.add_argument("--store", action="append", metavar="URL",
                        help="read this store root (a path or fsspec URL); repeatable; "
                        "default: the stores the cluster names")
    parser.add_argument("--limit", type=int, default=DEFAULT_MATERIALIZATIONS, metavar="N",
                        help=f"show the last N materializations "
                        f"(default {DEFAULT_MATERIALIZATIONS})")
    add_cluster_options(parser)
    parser.set_defaults(func=lazy("lineage", "lineage", "cmd_lineage"))


def _register_preview(subparsers: Any) -> None:
    """Add ``schedule preview``."""
    schedule = subparsers.add_parser("schedule", help="work with Schedule manifests offline")
    actions = schedule.add_subparsers(dest="schedule_command", metavar="ACTION",
                                      required=True)
    preview = actions.add_parser(
        "preview", help="print the next fire times of a Schedule manifest (offline)",
        description="Validate a Schedule manifest and print its next fire times in its "
        "timezone and in UTC, computed by the operator's scheduling code. No cluster needed.")
    preview.add_argument("-f", "--filename", required=True, metavar="FILE",
                         help="Schedule manifest (YAML or JSON; '-' reads stdin)")
    preview.add_argument("--count", type=int, default=DEFAULT_COUNT, metavar="N",
                         help=f"how many fire times (default {DEFAULT_COUNT})")
    preview.add_argument("--after", metavar="TIME",
                         help="start after this instant (ISO 8601; no offset = the "
                         "schedule's timezone; default: now)")
    add_output_option(preview)
    preview.set_defaults(func=lazy("schedule preview", "preview", "cmd_preview"))


DEFAULT_UI_PORT = 8090


def _register_ui(subparsers: Any) -> None:
    """Add ``ui``."""
    parser = subparsers.add_parser(
        "ui", help="serve the web UI: runs, task runs, logs, artifacts, schedules",
        description="Serve the Headwater web UI until Ctrl-C. Locally it reads and writes "
        "with your kubeconfig's identity and binds to 127.0.0.1; in the cluster "
        "(--in-cluster) it reads with its service account and writes only with "
        "--auth client, with the bearer token each browser signs in with (docs/ui.md).")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 with "
                        "--in-cluster)")
    parser.add_argument("--port", type=int, default=DEFAULT_UI_PORT,
                        help=f"port to listen on (default {DEFAULT_UI_PORT})")
    parser.add_argument("-n", "--namespace", action="append", default=[], metavar="NS",
                        help="serve this namespace; repeatable (default: the kubeconfig "
                        "context's, else 'default')")
    parser.add_argument("-A", "--all-namespaces", action="store_true",
                        help="serve every namespace")
    parser.add_argument("--kubeconfig", help="path of the kubeconfig file "
                        "(default: $KUBECONFIG, then ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context to use (default: current)")
    parser.add_argument("--in-cluster", action="store_true",
                        help="run inside the cluster with the pod's service account")
    parser.add_argument("--auth", choices=("server", "client"), default="server",
                        help="with --in-cluster: 'server' serves no write action "
                        "(default); 'client' makes writes with the browser's bearer token")
    parser.add_argument("--url", default=None, metavar="URL",
                        help="the UI's public address, for links (default: "
                        "$HEADWATER_UI_URL, else the address it listens on)")
    parser.add_argument("--image-origin", action="append", default=[], metavar="ORIGIN",
                        help="load image artifacts from this origin (e.g. "
                        "https://grafana.example.com); repeatable. Default: none, an image "
                        "artifact is shown as a link")
    parser.set_defaults(func=lazy("ui", "ui", "cmd_ui"))


def _register_deploy(subparsers: Any) -> None:
    """Add ``deploy``."""
    parser = subparsers.add_parser(
        "deploy", help="write (or --apply) a flow's Flow, Deployment and Schedule manifests",
        description="Build the Flow (parametersSchema from the function's signature), "
        "Deployment and Schedule manifests of a @flow, validate them as the API server "
        "would, then print them as YAML (default), write one file per object to "
        "--output-dir, or apply them with --apply. The flow file is imported, not run: "
        "its `if __name__ == '__main__':` block (a Prefect .serve()/.deploy()) is not.")
    parser.add_argument("entrypoint", help="'path/to/file.py:flow' (the path, relative to "
                        "the current directory, is the entrypoint in the image) or "
                        "'pkg.module:flow'")
    parser.add_argument("--entrypoint-root", metavar="DIR",
                        help="the directory the image copies into its working directory; "
                        "the entrypoint is the file's path relative to it (default: the "
                        "current directory). With the runtime image's 'COPY flows/ "
                        "/opt/flows/', pass --entrypoint-root flows")
    parser.add_argument("--name", required=True,
                        help="the Deployment's name (and the Schedule's), e.g. nightly")
    parser.add_argument("--image", required=True,
                        help="container image with the flow's code and the Headwater SDK")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--cron", metavar="EXPR", help="five-field cron, e.g. '0 6 * * *'")
    when.add_argument("--interval", type=float, metavar="SECONDS",
                      help="fixed interval in whole seconds, e.g. 3600")
    when.add_argument("--rrule", metavar="RULE",
                      help="RFC 5545 rule, e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9'")
    parser.add_argument("--timezone", metavar="TZ",
                        help="IANA zone of the schedule (default UTC), e.g. Europe/Paris")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a Deployment parameter (VALUE parsed as JSON when it is "
                        "JSON); repeatable")
    parser.add_argument("--description", help="the Deployment's description")
    parser.add_argument("--tag", action="append", default=[], help="a tag; repeatable")
    parser.add_argument("--paused", action="store_true",
                        help="create the Deployment paused (spec.paused)")
    parser.add_argument("--concurrency-limit", type=int, metavar="N",
                        help="at most N runs at once (spec.concurrency.limit)")
    parser.add_argument("-n", "--namespace",
                        help="metadata.namespace of the manifests (default: none, for "
                        "kustomize/Argo CD to set); with --apply, where to apply (default: "
                        "the kubeconfig context's, else 'default')")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--output-dir", metavar="DIR",
                       help="write one YAML file per object to DIR (created)")
    where.add_argument("--apply", action="store_true",
                       help="create or update the objects in the cluster of your kubeconfig")
    parser.add_argument("--kubeconfig", help="with --apply: the kubeconfig file "
                        "(default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
    parser.add_argument("--context", help="with --apply: the kubeconfig context")
    parser.set_defaults(func=lazy("deploy", "deploy", "cmd_deploy"))


def _register_block(subparsers: Any) -> None:
    """Add ``block create|get|describe|delete``."""
    block = subparsers.add_parser(
        "block", help="create, list, describe or delete Blocks in the cluster",
        description="Blocks in the cluster: the Block objects Block.load reads in flow-run "
        "pods (docs/blocks-kubernetes.md). Secret values are never command-line arguments.")
    actions = block.add_subparsers(dest="block_command", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create", help="create a Block (and the Secret of its secret fields)",
        description="Create Block NAME of --type module:Class with its fields. Secret "
        "fields go to the Secret NAME-block, owned by the Block: --secret FIELD prompts "
        "without echo (or reads one line of stdin), --secret-from-env FIELD=VAR reads an "
        "environment variable. Never pass a secret with --field.")
    create.add_argument("name", help="the block's name (a DNS-1123 label, e.g. warehouse)")
    create.add_argument("--type", required=True, metavar="MODULE:CLASS",
                        help="the block's Python class, e.g. mypkg.blocks:Warehouse")
    create.add_argument("--field", action="append", default=[], metavar="FIELD=VALUE",
                        help="a non-secret field; VALUE is parsed as JSON when it is JSON; "
                        "repeatable")
    create.add_argument("--block", action="append", default=[], metavar="FIELD=BLOCK",
                        help="a field whose value is another Block, by name; repeatable")
    create.add_argument("--secret", action="append", default=[], metavar="FIELD",
                        help="a secret field, read from a prompt (or a line of stdin); "
                        "repeatable")
    create.add_argument("--secret-from-env", action="append", default=[],
                        metavar="FIELD=ENVVAR",
                        help="a secret field, read from environment variable ENVVAR; "
                        "repeatable")
    create.add_argument("--overwrite", action="store_true",
                        help="replace the block if it exists")
    add_cluster_options(create)
    create.set_defaults(func=lazy("block create", "blocks", "cmd_block_create"))
    get = actions.add_parser("get", help="list Blocks (or show one)",
                             description="List the Blocks of the namespace: type and field "
                             "names (never a secret value).")
    get.add_argument("name", nargs="?", help="show only this block")
    add_cluster_options(get)
    get.set_defaults(func=lazy("block get", "blocks", "cmd_block_get"))
    describe = actions.add_parser(
        "describe", help="show a Block's fields (secret ones masked)",
        description="Show Block NAME: each field's value, nested blocks, and each secret "
        "field as ******** with the Secret key it comes from (the value is not read).")
    describe.add_argument("name", help="the block's name")
    add_cluster_options(describe)
    describe.set_defaults(func=lazy("block describe", "blocks", "cmd_block_describe"))
    delete = actions.add_parser("delete", help="delete a Block (and its Secret)",
                                description="Delete Block NAME; the garbage collector "
                                "deletes its Secret NAME-block with it.")
    delete.add_argument("name", help="the block's name")
    add_cluster_options(delete)
    delete.set_defaults(func=lazy("block delete", "blocks", "cmd_block_delete"))


def _register_variable(subparsers: Any) -> None:
    """Add ``variable get|set|ls|unset``."""
    variable = subparsers.add_parser(
        "variable", help="get, set, list or unset Variables in the cluster",
        description="Variables in the cluster: the values Variable.get reads "
        "(docs/blocks-kubernetes.md).")
    actions = variable.add_subparsers(dest="variable_command", metavar="ACTION",
                                      required=True)
    get = actions.add_parser("get", help="print a variable's value (JSON)")
    get.add_argument("name", help="the variable's name, e.g. last_sync")
    add_cluster_options(get)
    get.set_defaults(func=lazy("variable get", "blocks", "cmd_variable_get"))
    set_ = actions.add_parser("set", help="set a variable",
                              description="Set variable NAME to VALUE, parsed as JSON when "
                              "it is JSON (42, true, '{\"a\": 1}'), else a string.")
    set_.add_argument("name", help="the variable's name")
    set_.add_argument("value", help="the value (JSON, or a string)")
    set_.add_argument("--overwrite", action="store_true",
                      help="replace the value if the variable exists")
    add_cluster_options(set_)
    set_.set_defaults(func=lazy("variable set", "blocks", "cmd_variable_set"))
    ls = actions.add_parser("ls", help="list the variables and their values")
    add_cluster_options(ls)
    ls.set_defaults(func=lazy("variable ls", "blocks", "cmd_variable_ls"))
    unset = actions.add_parser("unset", help="delete a variable")
    unset.add_argument("name", help="the variable's name")
    add_cluster_options(unset)
    unset.set_defaults(func=lazy("variable unset", "blocks", "cmd_variable_unset"))
