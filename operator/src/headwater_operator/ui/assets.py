"""``/assets`` and ``/assets?key=K``: the lineage graph, an asset's upstream and
downstream, its materialization history and metadata.

Records are read as ``headwater lineage`` reads them (:mod:`headwater_operator.cli.lineage`):
the stores are the roots the served Deployments and FlowRuns name
(:func:`~headwater_operator.cli.lineage.cluster_roots`, from the watch-backed stores),
each asset's ``assets/<slug>/latest.json`` gives its upstream keys, and one asset's
history is :func:`~headwater_operator.cli.lineage.lineage`'s. Every byte goes through
:func:`headwater.results.resolve_storage` with the UI's own credentials, in a worker
thread (store reads block); a store that cannot be read is named on the page and
skipped.

The graph (:func:`lineage_edges`, :func:`focus`) is pure; it is laid out left to right,
upstream first, and drawn by :func:`headwater_operator.ui.svg.lineage_svg`.
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from headwater.results import resolve_storage
from markupsafe import Markup

from headwater_operator.cli.common import CliError, Io
from headwater_operator.cli.lineage import all_latest, cluster_roots, format_epoch, lineage
from headwater_operator.cli.store import StoreUnreadable, guard_store
from headwater_operator.ui import objects
from headwater_operator.ui.app import render, state_of
from headwater_operator.ui.svg import layered_layout, lineage_svg

HISTORY_LIMIT = 50


def setup(app: web.Application) -> None:
    """Add the page of this module."""
    app.router.add_get("/assets", assets_page)


# --- the graph (pure) -----------------------------------------------------------------

def lineage_edges(records: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[tuple[str, str]]]:
    """The keys (materialized and external upstreams) and the ``upstream -> key`` edges."""
    keys: dict[str, None] = {}
    edges: dict[tuple[str, str], None] = {}
    for record in records:
        key = str(record["key"])
        keys[key] = None
        for upstream in record.get("upstream") or ():
            keys[str(upstream)] = None
            edges[(str(upstream), key)] = None
    return sorted(keys), sorted(edges)


def focus(key: str, edges: Sequence[tuple[str, str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """``key`` with everything upstream and downstream of it, and the edges among them."""
    ups: dict[str, list[str]] = {}
    downs: dict[str, list[str]] = {}
    for source, target in edges:
        downs.setdefault(source, []).append(target)
        ups.setdefault(target, []).append(source)

    def reach(start: str, step: Mapping[str, list[str]]) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in step.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    kept = reach(key, ups) | reach(key, downs)
    # Only edges on a path through `key`: an upstream's other consumers are not shown.
    above, below = reach(key, ups), reach(key, downs)
    chosen = [(s, t) for s, t in edges
              if (s in above and t in above) or (s in below and t in below)]
    return sorted(kept), chosen


def asset_url(key: str) -> str:
    """``/assets?key=<key>`` with the key quoted."""
    return "/assets?key=" + quote(key, safe="")


# --- reading the stores -----------------------------------------------------------------

def read_latest_records(roots: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every asset's newest latest record over ``roots``, and the stores skipped (why)."""
    current: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for root in roots:
        try:
            records = guard_store(root, functools.partial(_all_latest_of, root))
        except StoreUnreadable as exc:
            skipped.append(exc.message)
            continue
        for record in records:
            known = current.get(record["key"])
            if known is None or _when(record) > _when(known):
                current[record["key"]] = record
    return sorted(current.values(), key=lambda r: str(r["key"])), skipped


def _all_latest_of(root: str) -> list[dict[str, Any]]:
    return all_latest(resolve_storage(root))


def _when(record: Mapping[str, Any]) -> float:
    value = record.get("materializedAt")
    return float(value) if isinstance(value, int | float) else 0.0


def read_asset(key: str, roots: Sequence[str]) -> tuple[dict[str, Any] | None, str | None,
                                                          list[str]]:
    """:func:`~headwater_operator.cli.lineage.lineage` of ``key``: (info, not-found
    message, skipped stores)."""
    err = io.StringIO()
    sink = Io(out=io.StringIO(), err=err, now=lambda: datetime.now(UTC))
    try:
        info = lineage(key, roots, sink, HISTORY_LIMIT)
    except CliError as exc:
        return None, exc.message, _skips(err.getvalue())
    return info, None, _skips(err.getvalue())


def _skips(text: str) -> list[str]:
    prefix = "headwater lineage: skipped a store: "
    return [line.removeprefix(prefix) for line in text.splitlines() if line.strip()]


async def assets_page(request: web.Request) -> web.Response:
    state = state_of(request)
    namespace = request.query.get("namespace") or None
    key = request.query.get("key") or None
    roots = cluster_roots(objects.listed(state.deployments, namespace),
                          objects.listed(state.flowruns, namespace))
    records, skipped = await asyncio.to_thread(read_latest_records, roots)
    nodes, edges = lineage_edges(records)
    info = missing = None
    known = key is None or key in nodes
    if key is not None:
        info, missing, more = await asyncio.to_thread(read_asset, key, roots)
        skipped = list(dict.fromkeys([*skipped, *more]))
        nodes, edges = focus(key, edges) if known else ([], [])
    layout = layered_layout(nodes, edges)
    materialized = {str(r["key"]) for r in records}
    svg = (Markup(lineage_svg(layout, key, set(nodes) - materialized, asset_url))
           if nodes else None)
    return render(request, "assets.html",
                  status=404 if missing and not known else 200, **objects.views(
                  key=key, info=info, missing=missing, records=records, roots=roots,
                  skipped=skipped, svg=svg, namespace=namespace, format_epoch=format_epoch,
                  asset_url=asset_url,
                  namespaces=objects.namespaces(objects.listed(state.deployments))))
