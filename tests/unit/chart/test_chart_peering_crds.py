"""kopf's peering CRDs come only with peering (item 14 of issue #10).

kopf's peering CRDs are cluster-wide objects every kopf operator in a cluster shares. A
Helm release that renders them owns them, and Helm refuses to install a release whose
object another release owns, so rendering them for a single standalone replica (which
never peers) broke installs next to any other kopf operator. kopf peers in the
operator's own mode (kopf 1.45 ``_core/reactor/running.py`` ``spawn_tasks`` sets
``settings.peering.clusterwide = clusterwide``, and ``_core/engines/peering.py``
``guess_selectors`` then picks ``clusterkopfpeerings`` or ``kopfpeerings``), so only that
one kind is needed.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Manifest, Render, RenderError

KEEP = "helm.sh/resource-policy"


def _peering_crds(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {m["spec"]["names"]["kind"]: m for m in manifests
            if m["kind"] == "CustomResourceDefinition" and m["spec"]["group"] == "kopf.dev"}


@pytest.mark.parametrize("values", [
    {},
    {"replicas": 1, "watchNamespaces": ["team-a"]},
    {"replicas": 1, "crds": {"install": True, "keep": False}},
], ids=["defaults", "namespaced", "keep-false"])
def test_a_single_replica_renders_no_peering_crd(render: Render, values: dict[str, Any]) -> None:
    manifests = render(values)
    assert _peering_crds(manifests) == {}
    assert not [m for m in manifests if m["kind"] in ("ClusterKopfPeering", "KopfPeering")]
    # The Headwater CRDs are still there.
    assert len([m for m in manifests if m["kind"] == "CustomResourceDefinition"]) == 4


def test_cluster_wide_peering_renders_only_clusterkopfpeerings_kept(render: Render) -> None:
    # crds.keep=false concerns Headwater's own CRDs; the shared peering CRD is kept anyway.
    crds = _peering_crds(render({"replicas": 2, "crds": {"install": True, "keep": False}}))
    assert list(crds) == ["ClusterKopfPeering"]
    assert crds["ClusterKopfPeering"]["spec"]["scope"] == "Cluster"
    assert crds["ClusterKopfPeering"]["metadata"]["annotations"][KEEP] == "keep"


def test_namespaced_peering_renders_only_kopfpeerings_kept(render: Render) -> None:
    crds = _peering_crds(render({"replicas": 3, "watchNamespaces": ["team-a", "team-b"]}))
    assert list(crds) == ["KopfPeering"]
    assert crds["KopfPeering"]["spec"]["scope"] == "Namespaced"
    assert crds["KopfPeering"]["metadata"]["annotations"][KEEP] == "keep"


def test_kopf_peering_value_forces_either_way(render: Render) -> None:
    # false: another kopf operator's release owns the CRD; the peering objects still come.
    manifests = render({"replicas": 2, "crds": {"install": True, "keep": True,
                                                "kopfPeering": False}})
    assert _peering_crds(manifests) == {}
    assert [m["kind"] for m in manifests if m["kind"] == "ClusterKopfPeering"] == [
        "ClusterKopfPeering"]
    forced = render({"crds": {"install": True, "keep": True, "kopfPeering": True}})
    assert list(_peering_crds(forced)) == ["ClusterKopfPeering"]
    # crds.install=false switches every CRD off, the peering one included.
    off = render({"replicas": 2, "crds": {"install": False, "keep": True, "kopfPeering": True}})
    assert _peering_crds(off) == {}


def test_kopf_peering_value_is_checked(render_error: RenderError) -> None:
    error = render_error({"crds": {"install": True, "keep": True, "kopfPeering": "yes"}})
    assert "kopfPeering" in error
