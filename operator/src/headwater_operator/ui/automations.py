"""``/automations`` and ``/automations/<ns>/<name>``: what fires each Automation, what it
does, and how its deliveries went.

Read-only pages over the watch-backed Automation store (Prefect's Automations page, for
Headwater's ``Automation`` kind: docs/automations.md). What it must respect: every figure
is the operator's own status (``delivered``, ``failed``, ``retried``, the ledger, the last
delivery of each action), never recomputed here; an action shows the Block it sends
through by name only — Blocks hold no secret values and this page reads no Secret; a
template is shown as its source text, never rendered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from headwater_operator.cli.get import action_type, automation_trigger, last_delivery
from headwater_operator.ui import objects
from headwater_operator.ui.app import render, state_of


def setup(app: web.Application) -> None:
    """Add the pages of this module."""
    app.router.add_get("/automations", list_page)
    app.router.add_get("/automations/{namespace}/{name}", detail_page)


def action_summary(action: Mapping[str, Any]) -> dict[str, str]:
    """One action as the pages show it: its type and what it targets."""
    kind = action_type(action)
    body = action.get(kind) or {}
    if kind == "notify":
        target = f"Block {(body.get('blockRef') or {}).get('name') or '?'}"
    elif kind == "runDeployment":
        target = f"Deployment {body.get('name') or '?'}"
    elif kind == "suspend":
        target = "the run's Deployment"
    elif kind == "cancelRun":
        target = "the run"
    else:
        target = ""
    return {"type": kind, "target": target}


async def list_page(request: web.Request) -> web.Response:
    state = state_of(request)
    namespace = request.query.get("namespace") or None
    rows = []
    for body in objects.listed(state.automations, namespace):
        status = body.get("status") or {}
        rows.append({"namespace": body["metadata"]["namespace"],
                     "name": body["metadata"]["name"], "status": status,
                     "trigger": automation_trigger(body),
                     "actions": [action_summary(a)
                                 for a in (body.get("spec") or {}).get("actions") or []],
                     "last": last_delivery(status), "ready": objects.condition(body)})
    return render(request, "automations.html", **objects.views(
        rows=rows, namespace=namespace,
        namespaces=objects.namespaces(objects.listed(state.automations))))


async def detail_page(request: web.Request) -> web.Response:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    body = state_of(request).automations.get(namespace, name)
    if body is None:
        raise web.HTTPNotFound(text=f"Automation {namespace}/{name} not found (or not yet "
                                    "seen by the UI's watch); see /automations")
    spec, status = body.get("spec") or {}, body.get("status") or {}
    actions = [{**action_summary(action), "index": index, "spec": action}
               for index, action in enumerate(spec.get("actions") or [])]
    last_by_action = {int(item.get("action", -1)): item
                      for item in status.get("lastDeliveries") or []}
    ledger = sorted(status.get("ledger") or [], key=lambda entry: str(entry.get("time")),
                    reverse=True)
    return render(request, "automation.html", **objects.views(
        namespace=namespace, name=name, spec=spec, counts=status,
        trigger=automation_trigger(body), actions=actions, last_by_action=last_by_action,
        ledger=ledger, ready=objects.condition(body), conditions=objects.conditions(body)))
