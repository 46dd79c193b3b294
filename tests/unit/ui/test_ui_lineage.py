"""The asset lineage graph: edges from records, the focus on one asset, the layout, SVG."""

from __future__ import annotations

from headwater_operator.ui.assets import asset_url, focus, lineage_edges
from headwater_operator.ui.svg import layered_layout, lineage_svg

RECORDS = [
    {"key": "s3://raw", "upstream": []},
    {"key": "s3://clean", "upstream": ["s3://raw"]},
    {"key": "s3://report", "upstream": ["s3://clean", "s3://fx"]},
    {"key": "s3://audit", "upstream": ["s3://raw"]},
    {"key": "s3://other", "upstream": []},
]


def test_edges_include_external_upstreams() -> None:
    nodes, edges = lineage_edges(RECORDS)
    assert "s3://fx" in nodes
    assert ("s3://fx", "s3://report") in edges
    assert len(edges) == 4


def test_focus_keeps_the_paths_through_the_asset_only() -> None:
    _, edges = lineage_edges(RECORDS)
    nodes, kept = focus("s3://clean", edges)
    assert nodes == ["s3://clean", "s3://raw", "s3://report"]
    # raw's other consumer (audit) and report's other input (fx) are off the path.
    assert sorted(kept) == [("s3://clean", "s3://report"), ("s3://raw", "s3://clean")]


def test_layout_puts_upstream_left_of_downstream() -> None:
    nodes, edges = lineage_edges(RECORDS)
    layout = layered_layout(nodes, edges)
    column = {key: placed.layer for key, placed in layout.nodes.items()}
    assert column["s3://raw"] == 0
    assert column["s3://clean"] == 1
    assert column["s3://report"] == 2  # longest path: raw -> clean -> report
    for source, target in layout.edges:
        assert layout.nodes[source].x < layout.nodes[target].x
    boxes = {(p.x, p.y) for p in layout.nodes.values()}
    assert len(boxes) == len(nodes)  # no two nodes share a place
    assert all(p.x >= 0 and p.y >= 0 for p in layout.nodes.values())
    assert max(p.x for p in layout.nodes.values()) < layout.width
    assert max(p.y for p in layout.nodes.values()) < layout.height
    assert layered_layout(nodes, edges) == layout  # deterministic


def test_ordering_uncrosses_a_simple_crossing() -> None:
    # a->y and b->x: sorted by name the edges cross; a barycenter sweep uncrosses them.
    layout = layered_layout(["a", "b", "x", "y"], [("a", "y"), ("b", "x")])
    assert layout.nodes["a"].row == layout.nodes["y"].row
    assert layout.nodes["b"].row == layout.nodes["x"].row


def test_a_cycle_is_drawn_without_looping() -> None:
    layout = layered_layout(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    assert len(layout.edges) == 2
    assert sorted(p.layer for p in layout.nodes.values()) == [0, 1, 2]


def test_svg_escapes_keys_and_links_each_node() -> None:
    hostile = 's3://x/"><script>alert(1)</script>'
    layout = layered_layout(["s3://a", hostile], [("s3://a", hostile)])
    svg = lineage_svg(layout, hostile, {"s3://a"}, asset_url)
    assert "<script>" not in svg
    assert svg.count('data-testid="asset-node"') == 2
    assert 'href="/assets?key=s3%3A%2F%2Fa"' in svg
    assert 'class="node selected"' in svg
    assert 'class="node external"' in svg


def test_each_node_link_is_named_by_its_whole_key_and_the_graph_is_a_group() -> None:
    # The node shows the key's tail; a screen reader hears the whole key (the link's own
    # <title>). A graph of links is a group: an image may hold nothing interactive.
    key = "warehouse://analytics/a-long-table-name-that-is-cut-short"
    svg = lineage_svg(layered_layout([key], []), None, set(), asset_url)
    assert svg.startswith('<svg class="lineage" xmlns="http://www.w3.org/2000/svg" '
                          'role="group" aria-label="Asset lineage graph"')
    assert f'data-key="{key}"><title>{key}</title><g class="node">' in svg
    assert f">…{key[-31:]}</text>" in svg
