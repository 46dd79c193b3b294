"""``/flows`` and ``/flows/<ns>/<name>``: image, entrypoint, parameters schema, readiness.

Read-only pages over the watch-backed Flow store. The parameters schema is shown as a
table of its fields (name, type, default, required), read with the run form's own schema
reading (:func:`~headwater_operator.ui.forms.form_fields`), so the table and the form
agree on every type; the raw schema is shown too. Readiness is the operator's ``Ready``
condition, not recomputed here.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from headwater_operator.ui import objects
from headwater_operator.ui.app import render, state_of
from headwater_operator.ui.forms import form_fields


def setup(app: web.Application) -> None:
    """Add the pages of this module."""
    app.router.add_get("/flows", list_page)
    app.router.add_get("/flows/{namespace}/{name}", detail_page)


async def list_page(request: web.Request) -> web.Response:
    state = state_of(request)
    namespace = request.query.get("namespace") or None
    rows = [{"namespace": body["metadata"]["namespace"], "name": body["metadata"]["name"],
             "spec": body.get("spec") or {}, "ready": objects.condition(body)}
            for body in objects.listed(state.flows, namespace)]
    return render(request, "flows.html", **objects.views(
        rows=rows, namespace=namespace,
        namespaces=objects.namespaces(objects.listed(state.flows))))


def schema_rows(schema: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per parameter: name, type, default (JSON), required, description."""
    rows = []
    for field in form_fields(schema, {}):
        rows.append({"name": field.name, "type": field.type_label,
                     "default": field.default, "has_default": field.has_default,
                     "required": field.required, "description": field.description})
    return rows


async def detail_page(request: web.Request) -> web.Response:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    state = state_of(request)
    body = state.flows.get(namespace, name)
    if body is None:
        raise web.HTTPNotFound(text=f"Flow {namespace}/{name} not found (or not yet seen by "
                                    "the UI's watch); see /flows")
    spec = body.get("spec") or {}
    schema = spec.get("parametersSchema")
    deployments = [d for d in objects.listed(state.deployments, namespace)
                   if ((d.get("spec") or {}).get("flowRef") or {}).get("name") == name]
    return render(request, "flow.html", **objects.views(
                  body=body, namespace=namespace, name=name, spec=spec,
                  schema=schema if isinstance(schema, dict) else None,
                  parameters=schema_rows(schema if isinstance(schema, dict) else None),
                  ready=objects.condition(body), conditions=objects.conditions(body),
                  deployments=deployments))
