"""``headwater run <deployment>``: an ad-hoc FlowRun, optionally waited for and followed.

Everything that can be checked is checked before the FlowRun is created: the
Deployment and its Flow exist and parse, the parameters (Flow < Deployment < file <
``-p``) satisfy the Flow's ``parametersSchema`` — the same check the operator's
admission applies, so a run the CLI creates is never rejected for its parameters later.
The FlowRun stores only the parameters the user gave; the operator merges the defaults
at admission, as for every other FlowRun.
"""

from __future__ import annotations

import argparse
from typing import Any, TypeVar

from headwater.contract import (
    ANNOTATION_TRIGGER,
    API_VERSION,
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    MANAGED_BY_VALUE,
)

from headwater_operator import kube
from headwater_operator.api import Deployment, Flow, InvalidResourceError, parse_resource
from headwater_operator.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    Io,
    connect,
    patient_client,
)
from headwater_operator.cli.follow import (
    Watcher,
    exit_code_for,
    final_line,
)
from headwater_operator.cli.output import render_data
from headwater_operator.cli.params import check_parameters, cli_parameters, effective_parameters
from headwater_operator.labels import label_value

TRIGGER = "cli"
_Kind = TypeVar("_Kind", Deployment, Flow)



def build_run(deployment: str, namespace: str, parameters: dict[str, Any],
              name: str | None = None, *, trigger: str = TRIGGER) -> dict[str, Any]:
    """The FlowRun body ``run`` creates (trigger ``cli``; the web UI's run form passes
    ``manual``)."""
    metadata: dict[str, Any] = {
        "namespace": namespace,
        "labels": {LABEL_DEPLOYMENT: label_value(deployment),
                   LABEL_MANAGED_BY: MANAGED_BY_VALUE},
        "annotations": {ANNOTATION_TRIGGER: trigger},
    }
    if name:
        metadata["name"] = name
    else:
        metadata["generateName"] = f"{deployment}-"
    return {
        "apiVersion": API_VERSION, "kind": "FlowRun", "metadata": metadata,
        "spec": {"deploymentRef": {"name": deployment}, "parameters": parameters,
                 "trigger": trigger},
    }


def our_earlier_run(client: kube.BlockingKube, body: dict[str, Any],
                    namespace: str) -> dict[str, Any] | None:
    """The FlowRun an earlier attempt of this create made, or None if the name is taken.

    A create retried after an attempt whose answer was lost (see ``kube.RetryPolicy``)
    meets its own object as 409 AlreadyExists. It is ours when it is the run asked for:
    every ``spec`` field sent has the value sent (the server may have added defaults).
    """
    try:
        existing = client.get(kube.FLOWRUNS, body["metadata"]["name"], namespace=namespace)
    except kube.NotFound:
        return None
    stored = existing.get("spec") or {}
    if all(stored.get(key) == value for key, value in body["spec"].items()):
        return existing
    return None


def load_deployment_and_flow(client: kube.BlockingKube, namespace: str,
                             name: str) -> tuple[Deployment, Flow]:
    """Read and parse a Deployment and the Flow it references; errors name the fix."""
    try:
        deployment_body = client.get(kube.DEPLOYMENTS, name, namespace=namespace)
    except kube.NotFound:
        raise CliError(f"Deployment {namespace}/{name} not found; list them with: "
                       f"headwater get deployments -n {namespace}") from None
    deployment = _parse(deployment_body, Deployment)
    flow_name = deployment.spec.flow_ref.name
    try:
        flow_body = client.get(kube.FLOWS, flow_name, namespace=namespace)
    except kube.NotFound:
        raise CliError(f"Flow {namespace}/{flow_name} (Deployment {name} spec.flowRef) not "
                       "found; create it or fix spec.flowRef.name") from None
    return deployment, _parse(flow_body, Flow)


def _parse(body: dict[str, Any], cls: type[_Kind]) -> _Kind:
    try:
        parsed = parse_resource(body)
    except InvalidResourceError as exc:
        raise CliError(f"{exc}; fix the object and retry", EXIT_USAGE) from None
    assert isinstance(parsed, cls)
    return parsed


def cmd_run(args: argparse.Namespace, io: Io) -> int:
    """Validate, create the FlowRun, then optionally follow and wait for it."""
    overrides = cli_parameters(args.params_file, args.param)
    client, namespace = connect(args)
    deployment, flow = load_deployment_and_flow(client, namespace, args.deployment)
    check_parameters(flow, effective_parameters(flow, deployment, overrides),
                     f"Deployment {namespace}/{args.deployment}")
    if deployment.spec.paused:
        io.err.write(f"warning: Deployment {args.deployment} is paused (spec.paused); the run "
                     "waits until it is resumed\n")
    body = build_run(args.deployment, namespace, overrides, args.name)
    try:
        created = client.create(kube.FLOWRUNS, body, namespace=namespace)
    except kube.AlreadyExists as exc:
        ours = our_earlier_run(client, body, namespace) if exc.after_uncertain_attempt else None
        if ours is None:
            raise CliError(f"FlowRun {namespace}/{args.name} already exists; choose another "
                           "--name or omit it to generate one", EXIT_USAGE) from None
        created = ours
    name = created["metadata"]["name"]
    if args.output == "table":
        io.out.write(f"flowrun/{name} created\n")
        from headwater_operator.cli.describe import run_link

        link = run_link(namespace, name)
        if link:
            io.out.write(f"UI: {link}\n")
    if not (args.wait or args.follow):
        if args.output != "table":
            io.out.write(render_data(created, args.output))
        return EXIT_OK
    watcher = Watcher(patient_client(), namespace, name, io, poll_seconds=args.poll_interval,
                      timeout_seconds=args.timeout)
    final = watcher.follow_logs() if args.follow else watcher.wait()
    return report_final(final, name, args, io)


def report_final(final: dict[str, Any] | None, name: str, args: argparse.Namespace,
                 io: Io) -> int:
    """Print how the run ended (or that waiting timed out) and return the exit code."""
    if final is None:
        io.err.write(f"headwater run: flowrun/{name} has not finished after {args.timeout:g}s; "
                     f"it keeps running (check it with: headwater describe run {name})\n")
        return EXIT_FAILED
    if args.output == "table":
        line = final_line(final)
        (io.out if exit_code_for(final) == EXIT_OK else io.err).write(line + "\n")
    else:
        io.out.write(render_data(final, args.output))
    return exit_code_for(final)
