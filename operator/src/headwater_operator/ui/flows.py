"""``/flows``: the Flows the UI's watches know, from the store.

The Flow page (image, entrypoint, parameters schema, readiness) is built on this module
(docs/ui.md). What it must respect: reads come from the store only.
"""

from __future__ import annotations

from aiohttp import web

from headwater_operator.ui.app import state_of
from headwater_operator.ui.pages import Cell, object_table


async def flows_index(request: web.Request) -> web.Response:
    state = state_of(request)
    rows: list[list[Cell]] = []
    for (namespace, name), flow in sorted(state.flows.items()):
        spec = flow.get("spec") or {}
        conditions = (flow.get("status") or {}).get("conditions") or []
        ready = next((str(c.get("status")) for c in conditions
                      if isinstance(c, dict) and c.get("type") == "Ready"), "")
        rows.append([(name, f"/runs?namespace={namespace}&flow={name}"), namespace,
                     str(spec.get("image") or ""), str(spec.get("entrypoint") or ""), ready])
    return object_table(request, title="Flows",
                        headers=("Name", "Namespace", "Image", "Entrypoint", "Ready"),
                        rows=rows, empty="No Flows in the namespaces this UI watches.",
                        testid="flow-row")


def setup(app: web.Application) -> None:
    app.router.add_get("/flows", flows_index)
