"""``/assets``: the assets the watched FlowRuns materialized (``status.assets``).

The lineage page (graph, upstream/downstream, materialization history and metadata from
the stores' asset records) is built on this module (docs/ui.md). What it must respect:
reads come from the store only.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from headwater_operator.ui.app import state_of
from headwater_operator.ui.pages import object_table


async def assets_index(request: web.Request) -> web.Response:
    state = state_of(request)
    latest: dict[str, tuple[str, list[Any]]] = {}
    for (namespace, name), run in state.flowruns.items():
        status = run.get("status") or {}
        when = str(status.get("endTime") or "")
        for asset in status.get("assets") or []:
            key = str(asset.get("key") or "")
            if key and (key not in latest or when > latest[key][0]):
                latest[key] = (when, [key, str(asset.get("version") or ""),
                                      ", ".join(asset.get("upstream") or []),
                                      (name, f"/runs/{namespace}/{name}"), when])
    return object_table(request, title="Assets",
                        headers=("Key", "Version", "Upstream", "Last run", "Materialized"),
                        rows=[row for _, (_, row) in sorted(latest.items())],
                        empty="No asset materialized by the runs this UI watches.",
                        testid="asset-row")


def setup(app: web.Application) -> None:
    app.router.add_get("/assets", assets_index)
