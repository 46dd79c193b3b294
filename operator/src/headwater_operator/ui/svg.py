"""Inline SVG for the UI's pictures, computed on the server (no JavaScript library).

* :func:`runs_over_time` — runs per time bucket, stacked by phase;
* :func:`gantt` — a run's task runs and subflows on a time axis, one lane each, or one
  lane per task key when there are more than :data:`GANTT_LANE_LIMIT` (aggregated);
* :func:`dependency_graph` — the task dependency graph from ``upstream``/``waitFor``,
  laid out in layers (longest path from a source), aggregated per task key when large;
* :func:`layered_layout` and :func:`lineage_svg` — the asset lineage graph of
  ``/assets`` (each node a link to its asset).

What it must respect: every text that comes from an object or a record is escaped
(:func:`esc`) — a task name is user input; each picture has a ``<title>`` and
``role="img"`` with an ``aria-label`` so it is not silent to a screen reader, and the
same facts are in a table or list beside it. The lineage graph holds links, so it is a
``role="group"`` (an image may hold nothing interactive), and each node's link is named
by its own ``<title>``, the whole key, of which the node shows the tail.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from headwater_operator.cli.output import parse_time

PHASE_COLOURS: dict[str, str] = {
    "Completed": "#2e7d32", "Failed": "#c62828", "Crashed": "#6a1b9a",
    "Cancelled": "#757575", "Cancelling": "#9e9e9e", "Running": "#1565c0",
    "Retrying": "#0277bd", "AwaitingRetry": "#4fc3f7", "Pending": "#90caf9",
    "Scheduled": "#b0bec5", "Late": "#ef6c00", "AwaitingConcurrencySlot": "#ffb300",
}
STATE_COLOURS: dict[str, str] = {
    "COMPLETED": "#2e7d32", "FAILED": "#c62828", "CRASHED": "#6a1b9a",
    "CANCELLED": "#757575", "CANCELLING": "#9e9e9e", "RUNNING": "#1565c0",
    "PENDING": "#90caf9", "SCHEDULED": "#b0bec5", "PAUSED": "#ffb300",
}
OTHER = "#607d8b"
BUCKETS = 30
"""Bars of the runs-over-time chart."""


def esc(value: Any) -> str:
    """``value`` as text safe inside SVG markup (attributes included)."""
    return html.escape(str(value), quote=True)


def _frame(width: int, height: int, label: str, body: Iterable[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{esc(label)}" '
            'class="chart">'
            f"<title>{esc(label)}</title>{''.join(body)}</svg>")


def runs_over_time(runs: Sequence[tuple[float, str]], now: datetime,
                   buckets: int = BUCKETS) -> str:
    """Stacked bars of runs per time bucket by phase; ``runs`` are (POSIX time, phase).

    The axis spans the runs' times (at least an hour, unless that passes ``now``), cut
    into ``buckets`` equal parts.
    """
    times = runs
    if not times:
        return _frame(600, 40, "Runs over time: no runs", [
            '<text x="10" y="25" class="muted">No runs to chart.</text>'])
    first = min(t for t, _ in times)
    last = max(*(t for t, _ in times), min(now.timestamp(), first + 3600))
    span = max(last - first, 1.0)
    start = datetime.fromtimestamp(first, now.tzinfo)
    end = datetime.fromtimestamp(last, now.tzinfo)
    counts: list[Counter[str]] = [Counter() for _ in range(buckets)]
    for moment, phase in times:
        index = min(int((moment - first) / span * buckets), buckets - 1)
        counts[index][phase] += 1
    tallest: int = max(sum(c.values()) for c in counts) or 1
    width, height, left, bottom = 600, 160, 40, 20
    bar = (width - left) / buckets
    body = [f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
            'stroke="#999"/>',
            f'<text x="{left - 4}" y="12" text-anchor="end" font-size="10">{tallest}</text>',
            f'<text x="{left}" y="{height - 4}" font-size="10">{esc(_short(start))}</text>',
            f'<text x="{width}" y="{height - 4}" text-anchor="end" font-size="10">'
            f"{esc(_short(end))}</text>"]
    scale = (height - bottom - 10) / tallest
    for index, bucket in enumerate(counts):
        y: float = height - bottom
        for phase in sorted(bucket, key=lambda p: list(PHASE_COLOURS).index(p)
                            if p in PHASE_COLOURS else 99):
            h = bucket[phase] * scale
            y -= h
            body.append(f'<rect x="{left + index * bar + 1:.1f}" y="{y:.1f}" '
                        f'width="{bar - 2:.1f}" height="{h:.1f}" '
                        f'fill="{PHASE_COLOURS.get(phase, OTHER)}">'
                        f"<title>{esc(phase)}: {bucket[phase]}</title></rect>")
    total = Counter(phase for _, phase in times)
    legend = ", ".join(f"{phase} {count}" for phase, count in sorted(total.items()))
    return _frame(width, height, f"Runs over time by phase: {legend}", body)


def _short(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


# --- the Gantt timeline -------------------------------------------------------------------

GANTT_LANE_LIMIT = 300
"""Beyond this many task runs the timeline has one lane per task key."""


def _state_type(obj: Mapping[str, Any]) -> str:
    history = obj.get("stateHistory") or []
    if history and isinstance(history[-1], Mapping):
        return str(history[-1].get("type") or "")
    state = obj.get("state")
    if isinstance(state, Mapping):
        return str(state.get("type") or "")
    return str(state or "").upper()


def gantt(lanes: Sequence[Mapping[str, Any]], now: datetime, label: str) -> str:
    """Bars on a time axis; each lane is ``{label, start, end, state, count?}`` with
    datetimes (``end`` None: still running, drawn to ``now``)."""
    timed = [lane for lane in lanes if lane.get("start") is not None]
    if not timed:
        return _frame(600, 40, f"{label}: nothing has started", [
            '<text x="10" y="25">Nothing has started yet.</text>'])
    start: datetime = min(lane["start"] for lane in timed)
    end: datetime = max(lane.get("end") or now for lane in timed)
    span = max((end - start).total_seconds(), 0.001)
    row, left, width = 16, 220, 900
    height = row * len(timed) + 24
    body = [f'<text x="{left}" y="{height - 6}" font-size="10">{esc(_clock(start))}</text>',
            f'<text x="{width}" y="{height - 6}" text-anchor="end" font-size="10">'
            f"{esc(_clock(end))} ({span:.2f}s)</text>"]
    for index, lane in enumerate(timed):
        y = index * row + 2
        x0 = left + (lane["start"] - start).total_seconds() / span * (width - left)
        x1 = left + ((lane.get("end") or now) - start).total_seconds() / span * (width - left)
        colour = STATE_COLOURS.get(str(lane.get("state") or ""), OTHER)
        name = str(lane.get("label") or "")
        shown = name if len(name) <= 32 else name[:31] + "…"
        count = f" ×{lane['count']}" if lane.get("count", 1) != 1 else ""
        body.append(f'<text x="{left - 6}" y="{y + 11}" text-anchor="end" font-size="11">'
                    f"{esc(shown)}{esc(count)}</text>")
        body.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1.5):.1f}" '
                    f'height="{row - 4}" fill="{colour}"><title>{esc(name)}{esc(count)}: '
                    f"{esc(lane.get('state') or '')}</title></rect>")
    return _frame(width, height, label, body)


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S")


def task_lanes(task_runs: Sequence[tuple[int, Mapping[str, Any]]],
               times: Mapping[str, tuple[Any, Any]]) -> list[dict[str, Any]]:
    """Gantt lanes: one per task run, or per task key (``count`` > 1, the earliest start
    and latest end, the worst state) beyond :data:`GANTT_LANE_LIMIT`."""
    lanes: list[dict[str, Any]] = []
    for depth, task_run in task_runs:
        start, end = times.get(str(task_run.get("id")), (None, None))
        lanes.append({"label": "  " * depth + str(task_run.get("name") or ""),
                      "key": str(task_run.get("taskKey") or task_run.get("name") or ""),
                      "start": parse_time(start), "end": parse_time(end),
                      "state": _state_type(task_run)})
    if len(lanes) <= GANTT_LANE_LIMIT:
        return lanes
    by_key: dict[str, dict[str, Any]] = {}
    for lane in lanes:
        group = by_key.setdefault(lane["key"], {
            "label": lane["key"], "start": None, "end": lane["end"], "state": "",
            "count": 0, "states": Counter()})
        group["count"] += 1
        group["states"][lane["state"]] += 1
        if lane["start"] is not None and (group["start"] is None
                                          or lane["start"] < group["start"]):
            group["start"] = lane["start"]
        if lane["end"] is None or group["end"] is None:
            group["end"] = None if lane["end"] is None else group["end"]
        elif lane["end"] > group["end"]:
            group["end"] = lane["end"]
    for group in by_key.values():
        states: Counter[str] = group.pop("states")
        group["state"] = next((s for s in ("CRASHED", "FAILED", "RUNNING", "CANCELLED")
                               if states.get(s)), states.most_common(1)[0][0])
    return list(by_key.values())


# --- the dependency graph -----------------------------------------------------------------

GRAPH_NODE_LIMIT = 150
"""Beyond this many task runs the graph has one node per task key."""


def graph_nodes(task_runs: Sequence[Mapping[str, Any]]
                ) -> tuple[dict[str, dict[str, Any]], set[tuple[str, str]]]:
    """Nodes ``{id: {label, state, count}}`` and edges (upstream, downstream) from the
    task runs' ``upstream`` and ``waitFor``; per task key beyond :data:`GRAPH_NODE_LIMIT`."""
    aggregate = len(task_runs) > GRAPH_NODE_LIMIT
    owner: dict[str, str] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for task_run in task_runs:
        ident = str(task_run.get("id"))
        node = str(task_run.get("taskKey") or task_run.get("name")) if aggregate else ident
        owner[ident] = node
        entry = nodes.setdefault(node, {"label": str(
            task_run.get("taskKey") or task_run.get("name")) if aggregate else str(
            task_run.get("name") or ident), "state": _state_type(task_run), "count": 0})
        entry["count"] += 1
        if _state_type(task_run) in ("FAILED", "CRASHED"):
            entry["state"] = _state_type(task_run)
    edges: set[tuple[str, str]] = set()
    for task_run in task_runs:
        target = owner[str(task_run.get("id"))]
        for source_id in [*(task_run.get("upstream") or []), *(task_run.get("waitFor") or [])]:
            source = owner.get(str(source_id))
            if source is not None and source != target:
                edges.add((source, target))
    return nodes, edges


def layers(nodes: Iterable[str], edges: set[tuple[str, str]]) -> dict[str, int]:
    """Each node's layer: the longest path to it from a node without inputs, in
    topological order (nodes of a cycle, which task runs never form, go to layer 0)."""
    members = list(nodes)
    outputs: dict[str, list[str]] = defaultdict(list)
    pending = dict.fromkeys(members, 0)
    for source, target in edges:
        outputs[source].append(target)
        pending[target] += 1
    layer = dict.fromkeys(members, 0)
    ready = [node for node in members if pending[node] == 0]
    while ready:
        node = ready.pop()
        for target in outputs[node]:
            layer[target] = max(layer[target], layer[node] + 1)
            pending[target] -= 1
            if pending[target] == 0:
                ready.append(target)
    return layer


def dependency_graph(task_runs: Sequence[Mapping[str, Any]], label: str) -> str:
    """The layered dependency graph of ``task_runs`` (see :func:`graph_nodes`)."""
    nodes, edges = graph_nodes(task_runs)
    if not nodes:
        return _frame(600, 40, f"{label}: no task runs", [
            '<text x="10" y="25">No task runs.</text>'])
    layer = layers(nodes, edges)
    columns: dict[int, list[str]] = defaultdict(list)
    for node in nodes:
        columns[layer[node]].append(node)
    box_w, box_h, gap_x, gap_y = 160, 26, 60, 12
    position: dict[str, tuple[float, float]] = {}
    for column, members in columns.items():
        for row, node in enumerate(members):
            position[node] = (10 + column * (box_w + gap_x), 10 + row * (box_h + gap_y))
    width = int(max(x for x, _ in position.values()) + box_w + 20)
    height = int(max(y for _, y in position.values()) + box_h + 20)
    body = ['<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
            'markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
            '<path d="M 0 0 L 10 5 L 0 10 z" fill="#666"/></marker></defs>']
    for source, target in sorted(edges):
        (x0, y0), (x1, y1) = position[source], position[target]
        body.append(f'<line x1="{x0 + box_w:.0f}" y1="{y0 + box_h / 2:.0f}" x2="{x1:.0f}" '
                    f'y2="{y1 + box_h / 2:.0f}" stroke="#666" marker-end="url(#arrow)"/>')
    for node, (x, y) in position.items():
        info = nodes[node]
        name = info["label"] + (f" ×{info['count']}" if info["count"] > 1 else "")
        shown = name if len(name) <= 24 else name[:23] + "…"
        colour = STATE_COLOURS.get(info["state"], OTHER)
        body.append(f'<g><title>{esc(name)}: {esc(info["state"])}</title>'
                    f'<rect x="{x:.0f}" y="{y:.0f}" width="{box_w}" height="{box_h}" rx="4" '
                    f'fill="#fff" stroke="{colour}" stroke-width="2"/>'
                    f'<text x="{x + 6:.0f}" y="{y + 17:.0f}" font-size="11">{esc(shown)}'
                    "</text></g>")
    return _frame(width, height, label, body)

# --- the asset lineage graph (ui/assets.py) ----------------------------------------------
# Left to right, upstream first. Columns are :func:`layers` of the graph with the edges
# that close a cycle left out (records written by separate runs can loop); rows are
# ordered by a few barycenter sweeps so edges cross little. Deterministic for one input.

LINEAGE_NODE_WIDTH = 240
LINEAGE_NODE_HEIGHT = 36
LINEAGE_GAP_X = 80
LINEAGE_GAP_Y = 18
LINEAGE_MARGIN = 10
LINEAGE_LABEL_CHARS = 32
_LINEAGE_SWEEPS = 4


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
    layer = layers(nodes, set(kept))
    columns: dict[int, list[str]] = {}
    for node in sorted(nodes):
        columns.setdefault(layer[node], []).append(node)
    order = {node: index for column in columns.values() for index, node in enumerate(column)}
    for sweep in range(_LINEAGE_SWEEPS):
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
    step_x, step_y = LINEAGE_NODE_WIDTH + LINEAGE_GAP_X, LINEAGE_NODE_HEIGHT + LINEAGE_GAP_Y
    placed = {}
    for index, column in columns.items():
        for row, node in enumerate(column):
            placed[node] = Placed(node, index, row, LINEAGE_MARGIN + index * step_x,
                                  LINEAGE_MARGIN + row * step_y)
    tallest = max((len(c) for c in columns.values()), default=1)
    width = LINEAGE_MARGIN * 2 + max(len(columns), 1) * step_x - LINEAGE_GAP_X
    height = LINEAGE_MARGIN * 2 + tallest * step_y - LINEAGE_GAP_Y
    return Layout(placed, kept, width, height)


def _short_key(key: str) -> str:
    return key if len(key) <= LINEAGE_LABEL_CHARS else "…" + key[-(LINEAGE_LABEL_CHARS - 1):]


def lineage_svg(layout: Layout, selected: str | None, external: set[str],
                href: Callable[[str], str]) -> str:
    """The graph as inline SVG: each node a link to its asset (``data-testid=
    "asset-node"``), ``selected`` highlighted, never-materialized keys dashed."""
    parts = [f'<svg class="lineage" xmlns="http://www.w3.org/2000/svg" role="group" '
             f'aria-label="Asset lineage graph" width="{layout.width}" '
             f'height="{layout.height}" viewBox="0 0 {layout.width} {layout.height}">']
    for source, target in layout.edges:
        a, b = layout.nodes[source], layout.nodes[target]
        x1, y1 = a.x + LINEAGE_NODE_WIDTH, a.y + LINEAGE_NODE_HEIGHT // 2
        x2, y2 = b.x, b.y + LINEAGE_NODE_HEIGHT // 2
        middle = (x1 + x2) // 2
        parts.append(f'<path class="edge" d="M{x1},{y1} C{middle},{y1} {middle},{y2} '
                     f'{x2},{y2}" fill="none"/>')
    box_w, box_h = LINEAGE_NODE_WIDTH, LINEAGE_NODE_HEIGHT
    for node in sorted(layout.nodes.values(), key=lambda n: (n.layer, n.row)):
        classes = ["node"]
        if node.key == selected:
            classes.append("selected")
        if node.key in external:
            classes.append("external")
        parts.append(
            f'<a href="{esc(href(node.key))}" data-testid="asset-node" '
            f'data-key="{esc(node.key)}"><title>{esc(node.key)}</title>'
            f'<g class="{" ".join(classes)}">'
            f'<rect x="{node.x}" y="{node.y}" width="{box_w}" height="{box_h}" rx="4"/>'
            f'<text x="{node.x + 8}" y="{node.y + box_h // 2 + 4}">'
            f'{esc(_short_key(node.key))}</text></g></a>')
    parts.append("</svg>")
    return "".join(parts)
