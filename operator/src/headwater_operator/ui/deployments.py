"""``/deployments``: the Deployments the UI's watches know, from the store.

The Deployment page with its Run and Backfill forms and Pause/Resume is built on this
module (docs/ui.md). What it must respect: reads come from the store only.
"""

from __future__ import annotations

from aiohttp import web

from headwater_operator.ui.app import state_of
from headwater_operator.ui.pages import Cell, object_table


async def deployments_index(request: web.Request) -> web.Response:
    state = state_of(request)
    rows: list[list[Cell]] = []
    for (namespace, name), deployment in sorted(state.deployments.items()):
        spec = deployment.get("spec") or {}
        rows.append([(name, f"/runs?namespace={namespace}&deployment={name}"), namespace,
                     str((spec.get("flowRef") or {}).get("name") or ""),
                     "paused" if spec.get("paused") else "active",
                     ", ".join(str(t) for t in spec.get("tags") or [])])
    return object_table(request, title="Deployments",
                        headers=("Name", "Namespace", "Flow", "State", "Tags"), rows=rows,
                        empty="No Deployments in the namespaces this UI watches.",
                        testid="deployment-row")


def setup(app: web.Application) -> None:
    app.router.add_get("/deployments", deployments_index)
