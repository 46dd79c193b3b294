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

The graph (:func:`lineage_edges`, :func:`focus`, :func:`layered_layout`) is pure and
laid out left to right, upstream first; :func:`lineage_svg` draws it. Every text in the
SVG is escaped: asset keys come from flow code.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from headwater.results import resolve_storage
from markupsafe import Markup, escape

from headwater_operator.cli.common import CliError, Io
from headwater_operator.cli.lineage import all_latest, cluster_roots, format_epoch, lineage
from headwater_operator.cli.store import StoreUnreadable, guard_store
from headwater_operator.ui import objects
from headwater_operator.ui.app import render, state_of

HISTORY_LIMIT = 50
NODE_WIDTH = 240
NODE_HEIGHT = 36
GAP_X = 80
GAP_Y = 18
MARGIN = 10
LABEL_CHARS = 32
_SWEEPS = 4


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


@dataclass(frozen=True)
class Placed:
    """A node's place: its layer (column) and its row within it, and its box."""

    key: str
    layer: int
    row: int
    x: int
    y: int


@dataclass(frozen=True)
class Layout:
    """Every node placed, the edges, and the drawing's size."""

    nodes: dict[str, Placed]
    edges: list[tuple[str, str]]
    width: int
    height: int


def _acyclic(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``edges`` without those closing a cycle (records from separate runs may loop)."""
    out: dict[str, list[str]] = {node: [] for node in nodes}
    for source, target in edges:
        out[source].append(target)
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for root in nodes:
        if root in state:
            continue
        stack: list[tuple[str, Iterable[str]]] = [(root, iter(out[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(iter(children), None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(out[child])))
    return [edge for edge in edges if edge not in back]


def layered_layout(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> Layout:
    """Columns by longest path from the sources (upstream left), rows ordered by a few
    barycenter sweeps so edges cross little; deterministic for the same input."""
    kept = _acyclic(nodes, edges)
    preds: dict[str, list[str]] = {node: [] for node in nodes}
    succs: dict[str, list[str]] = {node: [] for node in nodes}
    for source, target in kept:
        preds[target].append(source)
        succs[source].append(target)
    layer: dict[str, int] = {}
    indegree = {node: len(preds[node]) for node in nodes}
    ready = sorted(node for node in nodes if indegree[node] == 0)
    while ready:
        node = ready.pop(0)
        layer[node] = max((layer[p] + 1 for p in preds[node]), default=0)
        for nxt in succs[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
        ready.sort()
    columns: dict[int, list[str]] = {}
    for node in sorted(nodes):
        columns.setdefault(layer[node], []).append(node)
    order = {node: index for column in columns.values() for index, node in enumerate(column)}
    for sweep in range(_SWEEPS):
        downward = sweep % 2 == 0
        for index in (sorted(columns) if downward else sorted(columns, reverse=True)):
            neighbours = preds if downward else succs
            column = columns[index]

            def weight(node: str, neighbours: Mapping[str, list[str]] = neighbours) -> float:
                near = neighbours[node]
                return (sum(order[n] for n in near) / len(near)) if near else order[node]

            column.sort(key=lambda node: (weight(node), node))
            for row, node in enumerate(column):
                order[node] = row
    placed = {}
    for index, column in columns.items():
        for row, node in enumerate(column):
            placed[node] = Placed(node, index, row, MARGIN + index * (NODE_WIDTH + GAP_X),
                                  MARGIN + row * (NODE_HEIGHT + GAP_Y))
    width = MARGIN * 2 + max((len(columns)), 1) * (NODE_WIDTH + GAP_X) - GAP_X
    height = MARGIN * 2 + max((len(c) for c in columns.values()), default=1) * (
        NODE_HEIGHT + GAP_Y) - GAP_Y
    return Layout(placed, kept, width, height)


def _short(key: str) -> str:
    return key if len(key) <= LABEL_CHARS else "…" + key[-(LABEL_CHARS - 1):]


def asset_url(key: str) -> str:
    """``/assets?key=<key>`` with the key quoted."""
    return "/assets?key=" + quote(key, safe="")


def lineage_svg(layout: Layout, selected: str | None, external: set[str]) -> Markup:
    """The graph as inline SVG: each node a link to its asset (``data-testid=
    "asset-node"``), ``selected`` highlighted, never-materialized keys dashed."""
    parts = [f'<svg class="lineage" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'aria-label="Asset lineage graph" width="{layout.width}" '
             f'height="{layout.height}" viewBox="0 0 {layout.width} {layout.height}">']
    for source, target in layout.edges:
        a, b = layout.nodes[source], layout.nodes[target]
        x1, y1 = a.x + NODE_WIDTH, a.y + NODE_HEIGHT // 2
        x2, y2 = b.x, b.y + NODE_HEIGHT // 2
        middle = (x1 + x2) // 2
        parts.append(f'<path class="edge" d="M{x1},{y1} C{middle},{y1} {middle},{y2} '
                     f'{x2},{y2}" fill="none"/>')
    for node in sorted(layout.nodes.values(), key=lambda n: (n.layer, n.row)):
        classes = ["node"]
        if node.key == selected:
            classes.append("selected")
        if node.key in external:
            classes.append("external")
        parts.append(
            f'<a href="{escape(asset_url(node.key))}" data-testid="asset-node" '
            f'data-key="{escape(node.key)}" aria-label="{escape(node.key)}">'
            f'<g class="{" ".join(classes)}"><title>{escape(node.key)}</title>'
            f'<rect x="{node.x}" y="{node.y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" '
            f'rx="4"/><text x="{node.x + 8}" y="{node.y + NODE_HEIGHT // 2 + 4}">'
            f'{escape(_short(node.key))}</text></g></a>')
    parts.append("</svg>")
    return Markup("".join(parts))


# --- reading the stores -----------------------------------------------------------------

def read_latest_records(roots: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every asset's newest latest record over ``roots``, and the stores skipped (why)."""
    current: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for root in roots:
        try:
            records = guard_store(root, lambda root=root: all_latest(resolve_storage(root)))
        except StoreUnreadable as exc:
            skipped.append(exc.message)
            continue
        for record in records:
            known = current.get(record["key"])
            if known is None or _when(record) > _when(known):
                current[record["key"]] = record
    return sorted(current.values(), key=lambda r: str(r["key"])), skipped


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
    if key is not None:
        info, missing, more = await asyncio.to_thread(read_asset, key, roots)
        skipped = list(dict.fromkeys([*skipped, *more]))
        if key in nodes:
            nodes, edges = focus(key, edges)
        else:
            nodes, edges = [key], []
    layout = layered_layout(nodes, edges)
    materialized = {str(r["key"]) for r in records}
    svg = lineage_svg(layout, key, set(nodes) - materialized) if nodes else None
    return render(request, "assets.html", status=404 if missing and key not in nodes else 200,
                  key=key, info=info, missing=missing, records=records, roots=roots,
                  skipped=skipped, svg=svg, namespace=namespace, format_epoch=format_epoch,
                  asset_url=asset_url,
                  namespaces=objects.namespaces(objects.listed(state.deployments)))
