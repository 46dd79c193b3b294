"""``get runs|deployments|schedules|flows|automations`` and ``describe run``.

Tables show what a person scans for (phase, reason, next tick, …), with the same
columns as the CRDs' printer columns plus what ``kubectl get`` cannot compute (e.g. a
relative next tick). ``-o json|yaml`` prints the objects exactly as stored: one object
for ``get KIND NAME``, a ``List`` otherwise.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from headwater_operator import kube
from headwater_operator.cli.common import (
    EXIT_OK,
    CliError,
    Io,
    connect,
)
from headwater_operator.cli.output import (
    age,
    as_list,
    human_duration,
    or_none,
    relative,
    render_data,
    render_table,
)
from headwater_operator.cli.parsers import ALIASES
from headwater_operator.conditions import get_condition

Obj = Mapping[str, Any]
RowFn = Callable[[Obj, datetime], Sequence[str]]


@dataclass(frozen=True)
class Kind:
    """How one kind is listed: its resource, table headers and row function."""

    resource: kube.Resource
    label: str
    headers: tuple[str, ...]
    row: RowFn


def _spec(obj: Obj) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def _created(obj: Obj) -> Any:
    return obj["metadata"].get("creationTimestamp")


def run_row(obj: Obj, now: datetime) -> Sequence[str]:
    """NAME PHASE REASON DEPLOYMENT TRIGGER SCHEDULED DURATION ATTEMPTS AGE."""
    spec, status = _spec(obj), _status(obj)
    duration = status.get("durationSeconds")
    return (_name(obj), status.get("phase") or "Scheduled", or_none(status.get("reason")),
            or_none((spec.get("deploymentRef") or {}).get("name")
                    or (spec.get("flowRef") or {}).get("name")),
            or_none(spec.get("trigger")),
            or_none(status.get("scheduledTime") or spec.get("scheduledTime")),
            human_duration(duration) if isinstance(duration, int | float) else "<none>",
            str(status.get("attempts") or 0), age(_created(obj), now))


def deployment_row(obj: Obj, now: datetime) -> Sequence[str]:
    """NAME FLOW PAUSED ACTIVE QUEUED LAST-RUN AGE."""
    spec, status = _spec(obj), _status(obj)
    last = status.get("lastRun") or {}
    last_text = f"{last['name']} ({last.get('phase') or '?'})" if last.get("name") else "<none>"
    return (_name(obj), or_none((spec.get("flowRef") or {}).get("name")),
            or_none(bool(spec.get("paused"))), str(status.get("activeRuns") or 0),
            str(status.get("queuedRuns") or 0), last_text, age(_created(obj), now))


def schedule_expression(obj: Obj) -> str:
    """When a Schedule fires, as the operator wrote it (``status.expression``) or from
    its spec before the operator has seen it."""
    spec, status = _spec(obj), _status(obj)
    return str(status.get("expression") or spec.get("cron") or (
        f"every {spec['interval']}" if spec.get("interval") else f"rrule {spec.get('rrule')}"))


def schedule_row(obj: Obj, now: datetime) -> Sequence[str]:
    """NAME DEPLOYMENT EXPRESSION TIMEZONE SUSPENDED LAST NEXT AGE."""
    spec, status = _spec(obj), _status(obj)
    return (_name(obj), or_none((spec.get("deploymentRef") or {}).get("name")),
            schedule_expression(obj),
            spec.get("timezone") or "UTC", or_none(bool(spec.get("suspend"))),
            relative(status.get("lastScheduleTime"), now),
            relative(status.get("nextScheduleTime"), now), age(_created(obj), now))


def flow_row(obj: Obj, now: datetime) -> Sequence[str]:
    """NAME IMAGE ENTRYPOINT AGE."""
    spec = _spec(obj)
    return (_name(obj), or_none(spec.get("image")), or_none(spec.get("entrypoint")),
            age(_created(obj), now))


TRIGGER_KEYS = ("runPhase", "freshness", "recovery")
ACTION_KEYS = ("notify", "runDeployment", "cancelRun", "suspend")


def automation_trigger(obj: Obj) -> str:
    """``runPhase Failed,Crashed``, ``freshness etl 6h`` or ``recovery``: what fires it."""
    trigger = _spec(obj).get("trigger") or {}
    if (run_phase := trigger.get("runPhase")) is not None:
        return f"runPhase {','.join(run_phase.get('phases') or [])}"
    if (freshness := trigger.get("freshness")) is not None:
        within = freshness.get("within") or f"{freshness.get('withinSeconds')}s"
        return f"freshness {freshness.get('deployment')} {within}"
    return next((key for key in TRIGGER_KEYS if key in trigger), "<none>")


def action_type(action: Mapping[str, Any]) -> str:
    """``notify``, ``runDeployment``, ``cancelRun`` or ``suspend`` (``?`` if none)."""
    return next((key for key in ACTION_KEYS if key in action), "?")


def last_delivery(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The newest of an Automation's ``status.lastDeliveries`` (one per action)."""
    return max(status.get("lastDeliveries") or [], key=lambda item: str(item.get("time")),
               default=None)


def automation_row(obj: Obj, now: datetime) -> Sequence[str]:
    """NAME READY TRIGGER ACTIONS DELIVERED FAILED LAST DELIVERY AGE."""
    spec, status = _spec(obj), _status(obj)
    ready = get_condition(status.get("conditions"), "Ready")
    actions = ",".join(action_type(action) for action in spec.get("actions") or [])
    last = last_delivery(status)
    last_text = (f"{last.get('outcome')} {relative(last.get('time'), now)}"
                 if last is not None else "<none>")
    return (_name(obj), or_none(ready and ready.get("status")), automation_trigger(obj),
            or_none(actions or None),
            str(status.get("delivered") or 0), str(status.get("failed") or 0), last_text,
            age(_created(obj), now))


KINDS: dict[str, Kind] = {
    "runs": Kind(kube.FLOWRUNS, "FlowRun",
                 ("NAME", "PHASE", "REASON", "DEPLOYMENT", "TRIGGER", "SCHEDULED", "DURATION",
                  "ATTEMPTS", "AGE"), run_row),
    "deployments": Kind(kube.DEPLOYMENTS, "Deployment",
                        ("NAME", "FLOW", "PAUSED", "ACTIVE", "QUEUED", "LAST RUN", "AGE"),
                        deployment_row),
    "schedules": Kind(kube.SCHEDULES, "Schedule",
                      ("NAME", "DEPLOYMENT", "EXPRESSION", "TIMEZONE", "SUSPENDED", "LAST",
                       "NEXT", "AGE"), schedule_row),
    "flows": Kind(kube.FLOWS, "Flow", ("NAME", "IMAGE", "ENTRYPOINT", "AGE"), flow_row),
    "automations": Kind(kube.AUTOMATIONS, "Automation",
                        ("NAME", "READY", "TRIGGER", "ACTIONS", "DELIVERED", "FAILED",
                         "LAST DELIVERY", "AGE"), automation_row),
}



def sort_objects(kind: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs newest first (what people look for); everything else by name."""
    if kind == "runs":
        return sorted(items, key=lambda o: (str(o["metadata"].get("creationTimestamp") or ""),
                                            _name(o)), reverse=True)
    return sorted(items, key=_name)


def render_objects(kind: str, items: list[dict[str, Any]], output: str, now: datetime,
                   single: bool = False) -> str:
    """The listing in the requested format."""
    if output != "table":
        return render_data(items[0] if single else as_list(items), output)
    spec = KINDS[kind]
    return render_table(spec.headers, [spec.row(item, now) for item in items])


def cmd_get(args: argparse.Namespace, io: Io) -> int:
    """List (or get) the objects and print them."""
    kind = ALIASES.get(args.kind, args.kind)
    if args.deployment and kind != "runs":
        raise CliError("--deployment only applies to 'get runs'", 2)
    spec = KINDS[kind]
    client, namespace = connect(args)
    if args.name:
        try:
            items = [client.get(spec.resource, args.name, namespace=namespace)]
        except kube.NotFound:
            raise CliError(f"{spec.label} {namespace}/{args.name} not found; list them with: "
                           f"headwater get {kind} -n {namespace}") from None
    else:
        items = client.list(spec.resource, namespace=namespace, label_selector=args.selector)
    if args.deployment:
        # Filtered on the spec, not a label: runs created with kubectl may carry no labels.
        items = [item for item in items
                 if (_spec(item).get("deploymentRef") or {}).get("name") == args.deployment]
    items = sort_objects(kind, items)
    if not items and args.output == "table":
        io.err.write(f"No {kind} found in namespace {namespace}.\n")
        return EXIT_OK
    io.out.write(render_objects(kind, items, args.output, io.now(), single=bool(args.name)))
    return EXIT_OK
