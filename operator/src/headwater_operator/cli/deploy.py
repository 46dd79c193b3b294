"""``headwater deploy path.py:flow``: a flow's Flow, Deployment and Schedule manifests.

The manifests are built by the SDK (:class:`headwater.deployments.DeployRequest`: the
Flow's ``parametersSchema`` from the function's signature, as ``headwater schema``
prints it; the schedules as ``flow.serve()`` fires them) and checked here with
:func:`~headwater_operator.api.validation.validate_manifest` — the CRDs' schemas, their
CEL rules and the operator's models — so nothing is written or applied that the API
server or the operator would refuse. Then they are

* printed as one multi-document YAML stream (the default: ``> k8s/etl.yaml``),
* written one file per object to ``--output-dir`` (``flow-<name>.yaml``,
  ``deployment-<name>.yaml``, ``schedule-<name>.yaml``) for GitOps, or
* applied with ``--apply``: created, or, when they exist, their spec replaced (labels
  and annotations merged), Flow first so no Deployment waits for its Flow.

``flow.deploy()`` runs this same command, handing it the request it built from Prefect's
arguments (``args.deploy_request``) instead of the command line's.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from headwater.cli import parse_param
from headwater.deployments import DeployRequest, collect_schedules, relative_path
from headwater.exceptions import EntrypointError
from headwater.loader import load_flow, split_entrypoint

from headwater_operator import kube
from headwater_operator.api.validation import validate_manifest
from headwater_operator.cli.common import EXIT_OK, EXIT_USAGE, CliError, Io, connect

RESOURCES = {"Flow": kube.FLOWS, "Deployment": kube.DEPLOYMENTS, "Schedule": kube.SCHEDULES}


def cmd_deploy(args: argparse.Namespace, io: Io) -> int:
    """Build, validate, then print, write or apply the manifests."""
    request: DeployRequest = getattr(args, "deploy_request", None) or request_from_args(args)
    try:
        manifests = request.manifests()
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    check_manifests(manifests)
    if args.apply:
        apply_manifests(manifests, args, io)
    elif args.output_dir:
        for path in write_manifests(manifests, Path(args.output_dir)):
            io.out.write(f"wrote {path}\n")
    else:
        io.out.write(yaml.safe_dump_all(manifests, sort_keys=False, allow_unicode=True))
    return EXIT_OK


def request_from_args(args: argparse.Namespace) -> DeployRequest:
    """The request the command line describes; errors name the option and the fix."""
    try:
        flow = load_flow(args.entrypoint)
        target, attribute = split_entrypoint(args.entrypoint)
        entrypoint = args.entrypoint
        if target.endswith(".py") or "/" in target:
            root = Path(args.entrypoint_root) if args.entrypoint_root else None
            entrypoint = f"{relative_path(Path(target), root)}:{attribute}"
        parameters = dict(parse_param(item) for item in args.param)
        interval = None if args.interval is None else timedelta(seconds=args.interval)
        schedules = collect_schedules(interval=interval, cron=args.cron, rrule=args.rrule,
                                      timezone=args.timezone)
        return DeployRequest(
            flow=flow, entrypoint=entrypoint, name=args.name, image=args.image,
            schedules=tuple(schedules), parameters=parameters,
            description=args.description, tags=tuple(args.tag), paused=args.paused,
            concurrency_limit=args.concurrency_limit,
            namespace=args.namespace if not args.apply else None)
    except EntrypointError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except (ValueError, TypeError) as exc:
        raise CliError(f"{exc}; nothing was written or applied", EXIT_USAGE) from None


def check_manifests(manifests: list[dict[str, Any]]) -> None:
    """Raise :class:`CliError` (exit 2) if the API server or operator would refuse one."""
    problems = [f"{doc['kind']} {doc['metadata']['name']}: {line}" for doc in manifests
                for line in validate_manifest(doc)]
    if problems:
        raise CliError("the generated manifests are invalid, nothing was written or "
                       "applied:\n  " + "\n  ".join(problems), EXIT_USAGE)


def manifest_filename(doc: dict[str, Any]) -> str:
    """``<kind>-<name>.yaml``, e.g. ``schedule-nightly.yaml``."""
    return f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"


def write_manifests(manifests: list[dict[str, Any]], directory: Path) -> list[Path]:
    """One YAML file per object in ``directory`` (created); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in manifests:
        path = directory / manifest_filename(doc)
        path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
                        encoding="utf-8")
        paths.append(path)
    return paths


def apply_manifests(manifests: list[dict[str, Any]], args: argparse.Namespace,
                    io: Io) -> None:
    """Create each object, or replace the spec of the one that exists (as ``kubectl
    apply`` does for the fields it manages: labels and annotations are merged)."""
    client, namespace = connect(args)
    for doc in manifests:
        resource = RESOURCES[doc["kind"]]
        body = {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}
        name = body["metadata"]["name"]
        try:
            client.create(resource, body, namespace=namespace)
            verb = "created"
        except kube.AlreadyExists:
            existing = client.get(resource, name, namespace=namespace)
            metadata = existing["metadata"]
            for key in ("labels", "annotations"):
                merged = {**(metadata.get(key) or {}), **(body["metadata"].get(key) or {})}
                if merged:
                    metadata[key] = merged
            client.replace(resource, {**body, "metadata": metadata}, namespace=namespace)
            verb = "configured"
        io.out.write(f"{doc['kind'].lower()}/{name} {verb} (namespace {namespace})\n")
